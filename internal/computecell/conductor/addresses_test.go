package conductor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func (r *recorder) leaseRequests() []wire.LeaseBlocks {
	var out []wire.LeaseBlocks
	for _, m := range r.messages() {
		if m.Method == wire.MethodLeaseBlocks && m.To == root {
			var lb wire.LeaseBlocks
			_ = json.Unmarshal(m.Payload, &lb)
			out = append(out, lb)
		}
	}
	return out
}

// blocksLeased applies a blocks_leased as the cells service would, waking
// the conductor after it commits.
func blocksLeased(t *testing.T, e *cellEnv, m wire.BlocksLeased) {
	t.Helper()
	h := &network.Handlers{DB: e.db, Logger: quiet, OnBlocks: e.cd.BlocksArrived}
	b, _ := json.Marshal(&m)
	env := &wire.Envelope{ID: "m-blocks", Method: wire.MethodBlocksLeased, Version: wire.V1, Payload: b, RequestID: "req-blocks"}
	if err := e.db.InTx(context.Background(), func(tx *db.Tx) error { return h.BlocksLeased(context.Background(), tx, env) }); err != nil {
		t.Fatalf("blocks_leased: %v", err)
	}
}

// A cell without a free address asks the root for blocks once, and its
// builds wait for them holding no host (not in ERROR, not handed back);
// when the blocks come (twice: a repeat changes nothing) the builds go on
// at once, long before their wait would end.
func TestBuildWaitsForAddressBlocks(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1", "h2"}, noBlocks: true, addressWait: time.Hour})
	b := build(3, 0)
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)

	testpoll.Eventually(t, wait, "every build waiting for addresses", func() (bool, string) {
		if n := len(e.sent.leaseRequests()); n != 1 {
			return false, fmt.Sprintf("%d lease requests", n)
		}
		for _, s := range b.Instances {
			in := get(t, e.db, s.UUID)
			if in.TaskState != celldb.TaskScheduling || in.Host != "" {
				return false, fmt.Sprintf("%s in %q on %q", s.UUID, in.TaskState, in.Host)
			}
		}
		return len(claims(t, e.db)) == 0, "claims held"
	})
	if lr := e.sent.leaseRequests(); lr[0].NetworkName != "private" {
		t.Errorf("lease request %+v, want the default network by name", lr[0])
	}
	for _, s := range b.Instances {
		if in := get(t, e.db, s.UUID); in.VMState != celldb.VMBuilding || in.Fault != nil {
			t.Errorf("%s waiting is %q with fault %v, want building", s.UUID, in.VMState, in.Fault)
		}
	}
	if len(e.sent.buildFailed(t)) != 0 {
		t.Error("a build waiting for addresses was handed back")
	}

	m := network.SubnetBlocks("private", "sub-1", "10.0.0.0/8")
	m.NetworkID, m.Blocks = "net-1", m.Blocks[:1]
	blocksLeased(t, e, m)
	blocksLeased(t, e, m)
	testpoll.Eventually(t, wait, "every instance ACTIVE", func() (bool, string) {
		for _, s := range b.Instances {
			if in := get(t, e.db, s.UUID); in.VMState != celldb.VMActive {
				return false, fmt.Sprintf("%s is %q", s.UUID, in.VMState)
			}
		}
		return true, ""
	})
	seen := map[string]bool{}
	for _, s := range b.Instances {
		a, err := celldb.Addresses(context.Background(), e.db, s.UUID)
		if err != nil || len(a) != 1 || a[0].SubnetID != "sub-1" || a[0].NetworkID != "net-1" || a[0].PortID == "" || seen[a[0].Addr] {
			t.Errorf("%s addresses %+v, %v; want one of its own in sub-1 with a port", s.UUID, a, err)
			continue
		}
		seen[a[0].Addr] = true
	}
}

// When the root has no block left the builds that wait fail with Nova's
// NoMoreFixedIps, holding nothing.
func TestNetworkFullFailsTheBuild(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1"}, noBlocks: true, addressWait: time.Hour})
	b := build(1, 0)
	u := b.Instances[0].UUID
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)
	testpoll.Eventually(t, wait, "a lease request", func() (bool, string) {
		return len(e.sent.leaseRequests()) == 1, "none"
	})
	blocksLeased(t, e, wire.BlocksLeased{NetworkName: "private", Full: true})
	testpoll.Eventually(t, wait, "the instance in ERROR", func() (bool, string) {
		vm := get(t, e.db, u).VMState
		return vm == celldb.VMError, fmt.Sprintf("vm %q", vm)
	})
	in := get(t, e.db, u)
	want := fmt.Sprintf("Build of instance %s aborted: Failed to allocate the network(s) with error No fixed IP addresses available for network: private, not rescheduling.", u)
	if in.Fault == nil || in.Fault.Message != want || in.Fault.Code != 500 {
		t.Errorf("fault %+v, want %q", in.Fault, want)
	}
	if c := claims(t, e.db); len(c) != 0 {
		t.Errorf("claims %v left", c)
	}
}

// The NICs of a build travel with it: addresses the API cell handed out
// are the instance's as they are, in order, next to one the cell hands out.
func TestBuildWithNICs(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1"}})
	b := build(1, 0)
	u := b.Instances[0].UUID
	b.Instances[0].NICs = []wire.NIC{
		{NetworkID: "net-2", NetworkName: "user", PortID: "port-1", MAC: "fa:16:3e:aa:bb:cc", FixedIPs: []wire.FixedIP{{SubnetID: "sub-2", Addr: "172.16.0.5"}}},
		{NetworkName: "private"},
	}
	accept(t, e.db, e.cd, "req-1", b)
	if got := get(t, e.db, u).NICs; len(got) != 2 || got[0].PortID != "port-1" {
		t.Fatalf("NICs kept = %+v", got)
	}
	e.start(t)
	testpoll.Eventually(t, wait, "the instance ACTIVE", func() (bool, string) {
		vm := get(t, e.db, u).VMState
		return vm == celldb.VMActive, fmt.Sprintf("vm %q", vm)
	})
	a, err := celldb.Addresses(context.Background(), e.db, u)
	if err != nil || len(a) != 2 || a[0].Addr != "172.16.0.5" || a[0].PortID != "port-1" || a[0].MAC != "fa:16:3e:aa:bb:cc" ||
		!strings.HasPrefix(a[1].Addr, "10.0.1.") || a[1].SubnetID != "sub-1" {
		t.Errorf("addresses %+v, %v", a, err)
	}
}
