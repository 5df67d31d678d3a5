package testtree_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/leases"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/up"
)

// userNetwork makes a network with one IPv4 subnet of cidr at the root.
func userNetwork(t *testing.T, d *db.DB, name, cidr string) (netID, subID string) {
	t.Helper()
	ctx := context.Background()
	err := d.InTx(ctx, func(tx *db.Tx) error {
		n := &netdb.Network{Name: name, ProjectID: "p", Shared: true, AdminStateUp: true}
		if err := netdb.CreateNetwork(ctx, tx, n, time.Now()); err != nil {
			return err
		}
		s, err := netdb.CreateSubnet(ctx, tx, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "p", IPVersion: 4, CIDR: cidr}, time.Now())
		if err != nil {
			return err
		}
		netID, subID = n.ID, s.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return netID, subID
}

// bootOn sends build_instances for n instances with one NIC on the network
// (the cell hands out its address) straight through the API cell's outbox,
// as the Compute API does, to targetCell ("" lets the root choose).
func bootOn(t *testing.T, tr *testtree.Tree, netID, netName, targetCell string, n int) []string {
	t.Helper()
	ctx := context.Background()
	f, err := apidb.GetFlavor(ctx, tr.API.DB, "1")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	// One build per instance, so the root spreads them over the cells.
	for i := range n {
		b := wire.BuildInstances{Flavor: f, Scheduler: up.Root, Attempts: 1, TargetCell: targetCell}
		spec := wire.InstanceSpec{UUID: uuid.NewString(), Name: fmt.Sprintf("vm-%d", i), ProjectID: "p", UserID: "u", ImageRef: up.DefaultImageID,
			ReservationID: "r-" + uuid.NewString(), CreatedAt: time.Now().UTC(), NICs: []wire.NIC{{NetworkID: netID, NetworkName: netName}}}
		b.Instances = []wire.InstanceSpec{spec}
		insts := []apidb.Instance{{InstanceSpec: spec, FlavorID: f.ID, Flavor: f, VMState: "building", TaskState: "scheduling"}}
		err = tr.API.DB.InTx(ctx, func(tx *db.Tx) error {
			if err := apidb.Create(ctx, tx, insts); err != nil {
				return err
			}
			return tr.API.Cells.Send(ctx, tx, up.Root, wire.MethodBuildInstances, "req-"+spec.UUID[:8], &b)
		})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, spec.UUID)
	}
	return out
}

// activeWithAddresses waits for every instance to be ACTIVE in the API
// cell with one address, and returns the addresses.
func activeWithAddresses(t *testing.T, tr *testtree.Tree, uuids []string) map[string]wire.Address {
	t.Helper()
	out := map[string]wire.Address{}
	testpoll.Eventually(t, 60*time.Second, "every instance ACTIVE with its address", func() (bool, string) {
		for _, u := range uuids {
			in, err := apidb.Get(context.Background(), tr.API.DB, u)
			if err != nil || in.VMState != "active" || len(in.Addresses) != 1 {
				if err == nil && in.Fault != nil {
					t.Fatalf("instance %s failed: %s", u, in.Fault.Message)
				}
				return false, fmt.Sprintf("%s not yet active with an address", u)
			}
			out[u] = in.Addresses[0]
		}
		return true, ""
	})
	return out
}

// Two cells boot at once on a small user subnet (/27, 29 usable
// addresses): every address is inside the subnet, none is given twice, and
// each comes from blocks its cell holds at the root.
func TestSmallSubnetAcrossCells(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 4})
	const cidr = "192.168.50.0/27"
	netID, subID := userNetwork(t, tr.API.DB, "small", cidr)
	uuids := bootOn(t, tr, netID, "small", "", 16)
	addrs := activeWithAddresses(t, tr, uuids)

	p := netip.MustParsePrefix(cidr)
	seen := map[string]string{}
	cellsUsed := map[string]bool{}
	for u, a := range addrs {
		ip, err := netip.ParseAddr(a.Addr)
		if err != nil || !p.Contains(ip) || a.Addr == "192.168.50.0" || a.Addr == "192.168.50.1" || a.Addr == "192.168.50.31" {
			t.Errorf("%s has %s, not a usable address of %s", u, a.Addr, cidr)
		}
		if other, dup := seen[a.Addr]; dup {
			t.Errorf("%s given to both %s and %s", a.Addr, other, u)
		}
		seen[a.Addr] = u
		if a.SubnetID != subID || a.NetworkID != netID || a.Network != "small" || a.PortID == "" {
			t.Errorf("%s address %+v, want subnet %s of network %s with a port", u, a, subID, netID)
		}
		in, _ := apidb.Get(context.Background(), tr.API.DB, u)
		cellsUsed[in.Cell] = true
		holder, err := netdb.BlockHolder(context.Background(), tr.API.DB, subID, ip)
		if err != nil || holder != in.Cell {
			t.Errorf("%s (in %s) has %s, whose block is held by %q (%v)", u, in.Cell, a.Addr, holder, err)
		}
	}
	t.Logf("16 instances in %d cells, addresses %v", len(cellsUsed), seen)
}

// A cell that is down when the root answers its lease request gets
// blocks_leased from the outbox when it comes back (once, however the
// relay retried), and the builds sent to it then take their addresses from
// that block without asking again. (That builds waiting for addresses go on
// when blocks come is the conductor's TestBuildWaitsForAddressBlocks.)
func TestBlocksLeasedToADownCellArriveWhenItReturns(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	netID, subID := userNetwork(t, tr.API.DB, "later", "172.20.0.0/24")
	ctx := context.Background()
	// Back on the same broker address, where the API cell's link finds it.
	cfg := testtree.StopCell(t, tr.Cells[1])

	// The root answers a lease request of the cell (as if it came just
	// before the cell went down): blocks_leased waits in the outbox.
	h := &leases.Handlers{Sender: tr.API.Cells.Sender(), Logger: testtree.Logger(t, 0), Now: time.Now}
	err := tr.API.DB.InTx(ctx, func(tx *db.Tx) error {
		env := &wire.Envelope{ID: uuid.NewString(), Method: wire.MethodLeaseBlocks, Version: wire.V1, Sender: cfg.Cell, RequestID: "req-lease",
			Payload: []byte(fmt.Sprintf(`{"network_id":%q,"count":1}`, netID))}
		return h.LeaseBlocks(ctx, tx, env)
	})
	if err != nil {
		t.Fatal(err)
	}
	ofLater := func() []string {
		held, err := netdb.HeldBlocks(ctx, tr.API.DB, cfg.Cell)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, b := range held {
			if b.SubnetID == subID {
				out = append(out, b.CIDR)
			}
		}
		return out
	}
	if got := ofLater(); len(got) != 1 || got[0] != "172.20.0.0/28" {
		t.Fatalf("%s holds %v of the subnet, want 172.20.0.0/28", cfg.Cell, got)
	}
	restarted := time.Now()
	back := testtree.RestartCell(t, cfg)
	testpoll.Eventually(t, 30*time.Second, "the block in the returned cell, and its capacity at the root", func() (bool, string) {
		var n int
		if err := back.DB.QueryRow(ctx, `SELECT COUNT(*) FROM address_blocks WHERE subnet_id = ? AND cidr = '172.20.0.0/28'`, subID).Scan(&n); err != nil || n != 1 {
			return false, fmt.Sprintf("%d blocks (%v)", n, err)
		}
		ns, err := cells.ListNeighbours(ctx, tr.API.DB)
		if err != nil {
			return false, err.Error()
		}
		for _, nb := range ns {
			if nb.Path == cfg.Cell {
				return nb.LastSeen.After(restarted) && nb.Report != nil, "no report since the restart"
			}
		}
		return false, "not a neighbour"
	})
	uuids := bootOn(t, tr, netID, "later", cfg.Cell, 3)
	addrs := activeWithAddresses(t, tr, uuids)
	for u, a := range addrs {
		ip := netip.MustParseAddr(a.Addr)
		if !netip.MustParsePrefix("172.20.0.0/28").Contains(ip) || a.SubnetID != subID {
			t.Errorf("%s has %+v, want an address of the block leased while the cell was down", u, a)
		}
	}
	if got := ofLater(); len(got) != 1 {
		t.Errorf("%s holds %v of the subnet, want the one block still", cfg.Cell, got)
	}
}
