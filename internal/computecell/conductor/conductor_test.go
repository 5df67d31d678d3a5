package conductor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func TestNewRejectsBadConfig(t *testing.T) {
	d := openCellDB(t)
	ok := conductor.Config{Cell: cell, DB: d, Sender: &recorder{}, Scheduler: &fakeScheduler{}, Network: fakeNetwork{}, Compute: fakeCompute{}}
	if _, err := conductor.New(ok); err != nil {
		t.Fatalf("New: %v", err)
	}
	for name, mut := range map[string]func(*conductor.Config){
		"no db":        func(c *conductor.Config) { c.DB = nil },
		"no sender":    func(c *conductor.Config) { c.Sender = nil },
		"no scheduler": func(c *conductor.Config) { c.Scheduler = nil },
		"no network":   func(c *conductor.Config) { c.Network = nil },
		"no compute":   func(c *conductor.Config) { c.Compute = nil },
		"bad cell":     func(c *conductor.Config) { c.Cell = "api!" },
	} {
		c := ok
		mut(&c)
		if _, err := conductor.New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestAcceptBuildInsertsAtBaseVersionAndSendsOneUpdate(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	sent := &recorder{}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: sent, Scheduler: &fakeScheduler{}, Network: fakeNetwork{},
		Compute: fakeCompute{}, Logger: quiet, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	b := build(3, 7)
	accept(t, d, cd, "req-1", b)

	for i, spec := range b.Instances {
		in := get(t, d, spec.UUID)
		if in.Version != 8 {
			t.Errorf("%s: version %d, want BaseVersion+1 = 8", spec.UUID, in.Version)
		}
		if in.VMState != celldb.VMBuilding || in.TaskState != celldb.TaskScheduling || in.Host != "" || in.Deleted {
			t.Errorf("%s: vm %q task %q host %q, want building, scheduling, no host", spec.UUID, in.VMState, in.TaskState, in.Host)
		}
		if in.RequestID != "req-1" || in.Name != spec.Name || in.ReservationID != "r-1" || in.LaunchIndex != i || in.ProjectID != "p1" {
			t.Errorf("%s: stored %+v, want the spec and request id", spec.UUID, in)
		}
		if !reflect.DeepEqual(in.Flavor, small) {
			t.Errorf("%s: flavor %+v, want %+v", spec.UUID, in.Flavor, small)
		}
		if in.Build.Scheduler != parent || in.Build.Attempts != 1 || !reflect.DeepEqual(in.Build.Hints, b.Hints) ||
			!reflect.DeepEqual(in.Build.ImageProps, b.ImageProperties) {
			t.Errorf("%s: build context %+v, want the build's", spec.UUID, in.Build)
		}
	}

	msgs := sent.messages()
	if len(msgs) != 1 {
		t.Fatalf("AcceptBuild sent %d messages, want one for the whole batch: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if m.To != root || m.Method != wire.MethodInstanceUpdate || m.RequestID != "req-1" {
		t.Errorf("sent %s to %s (request %q), want instance_update to %s for req-1", m.Method, m.To, m.RequestID, root)
	}
	var u wire.InstanceUpdate
	if err := json.Unmarshal(m.Payload, &u); err != nil {
		t.Fatal(err)
	}
	if u.Heal || len(u.Instances) != 3 {
		t.Fatalf("update %+v, want the 3 instances, not a heal", u)
	}
	for i, st := range u.Instances {
		if st.UUID != b.Instances[i].UUID || st.Cell != cell || st.Version != 8 || st.VMState != celldb.VMBuilding ||
			st.TaskState != celldb.TaskScheduling || st.Host != "" || st.Deleted {
			t.Errorf("state %d = %+v, want instance %s in %s at version 8, building/scheduling", i, st, b.Instances[i].UUID, cell)
		}
	}

	// The same instances again (a repeated build) conflict, and nothing is
	// sent for them.
	err = d.InTx(ctx, func(tx *db.Tx) error { return cd.AcceptBuild(ctx, tx, envelope("req-2", b), b) })
	if !errors.Is(err, wire.ErrConflict) {
		t.Errorf("repeated AcceptBuild = %v, want ErrConflict", err)
	}
	if n := len(sent.messages()); n != 1 {
		t.Errorf("%d messages after a rejected build, want still 1", n)
	}
	// Without a base version, instances start at version 1.
	b0 := build(1, 0)
	b0.Instances[0].UUID = uuidN(50)
	accept(t, d, cd, "req-3", b0)
	if in := get(t, d, uuidN(50)); in.Version != 1 {
		t.Errorf("version %d without a base version, want 1", in.Version)
	}
}

func TestLoopBuildsToActive(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1", "h2"}})
	b := build(4, 0)
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)

	testpoll.Eventually(t, wait, "every instance ACTIVE", func() (bool, string) {
		for _, s := range b.Instances {
			if in := get(t, e.db, s.UUID); in.VMState != celldb.VMActive {
				return false, fmt.Sprintf("%s is %q", s.UUID, in.VMState)
			}
		}
		return true, ""
	})
	cl := claims(t, e.db)
	addrs := map[string]bool{}
	for _, s := range b.Instances {
		in := get(t, e.db, s.UUID)
		if in.TaskState != "" || in.PowerState != celldb.PowerRunning || in.LaunchedAt.IsZero() || in.Fault != nil {
			t.Errorf("%s: task %q power %d launched %v fault %v, want a running instance", s.UUID, in.TaskState, in.PowerState, in.LaunchedAt, in.Fault)
		}
		if in.Host != "h1" && in.Host != "h2" {
			t.Errorf("%s on host %q", s.UUID, in.Host)
		}
		if cl[s.UUID] != in.Host {
			t.Errorf("%s on %s has its claim on %q", s.UUID, in.Host, cl[s.UUID])
		}
		if !slices.Contains(e.driver.List(in.Host), s.UUID) {
			t.Errorf("%s is not running on %s", s.UUID, in.Host)
		}
		a, err := celldb.Addresses(context.Background(), e.db, s.UUID)
		if err != nil || len(a) != 1 {
			t.Fatalf("%s addresses %v, %v; want one", s.UUID, a, err)
		}
		if addrs[a[0].Addr] {
			t.Errorf("address %s given twice", a[0].Addr)
		}
		addrs[a[0].Addr] = true

		// The API cell heard of it last as ACTIVE, with its address, at
		// the version the cell holds.
		sts := e.sent.statesOf(t, s.UUID)
		if len(sts) < 2 {
			t.Fatalf("%s: %d states sent, want scheduling and active", s.UUID, len(sts))
		}
		last := sts[len(sts)-1]
		if last.VMState != celldb.VMActive || last.Version != in.Version || last.Host != in.Host || len(last.Addresses) != 1 ||
			last.Addresses[0].Addr != a[0].Addr || last.Cell != cell {
			t.Errorf("%s: last state sent %+v, want ACTIVE at version %d on %s with %s", s.UUID, last, in.Version, in.Host, a[0].Addr)
		}
		for i := 1; i < len(sts); i++ {
			if sts[i].Version <= sts[i-1].Version {
				t.Errorf("%s: versions sent do not grow: %d then %d", s.UUID, sts[i-1].Version, sts[i].Version)
			}
		}
	}
	if len(cl) != 4 {
		t.Errorf("%d claims, want 4", len(cl))
	}
	if n, v := used(t, e.db); n != 4 || v != 4 {
		t.Errorf("nodes count %d instances and %d vCPUs, want 4 and 4", n, v)
	}
	if len(e.sent.buildFailed(t)) != 0 {
		t.Error("a build that fits was handed back")
	}
	select {
	case <-e.changes:
	default:
		t.Error("the capacity notifier was not told after builds")
	}
}

func TestAllHostsFailingEndsInError(t *testing.T) {
	hosts := []string{"h1", "h2", "h3"}
	e := newCell(t, cellOpts{hosts: hosts, driver: fake.Config{FailHosts: hosts}})
	b := build(1, 0)
	u := b.Instances[0].UUID
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)

	testpoll.Eventually(t, wait, "the instance in ERROR", func() (bool, string) {
		vm := get(t, e.db, u).VMState
		return vm == celldb.VMError, fmt.Sprintf("vm %q", vm)
	})
	in := get(t, e.db, u)
	if in.Fault == nil || !strings.HasPrefix(in.Fault.Message, "No valid host was found") || in.Fault.Code != 500 {
		t.Fatalf("fault %+v, want code 500 and a message starting with %q", in.Fault, "No valid host was found")
	}
	if in.TaskState != "" || in.PowerState != celldb.PowerNoState {
		t.Errorf("task %q power %d, want none and no state", in.TaskState, in.PowerState)
	}
	testpoll.Eventually(t, wait, "the ERROR state sent up", func() (bool, string) {
		sts := e.sent.statesOf(t, u)
		return len(sts) > 0 && sts[len(sts)-1].VMState == celldb.VMError, fmt.Sprintf("states sent %+v", sts)
	})
	sts := e.sent.statesOf(t, u)
	last := sts[len(sts)-1]
	if last.Fault == nil || last.Fault.Message != in.Fault.Message || last.Version != in.Version || last.Cell != cell {
		t.Errorf("last state sent %+v, want the fault at version %d", last, in.Version)
	}
	if c := claims(t, e.db); len(c) != 0 {
		t.Errorf("claims %v left by failed spawns", c)
	}
	if n, _ := used(t, e.db); n != 0 {
		t.Errorf("nodes count %d instances, want 0", n)
	}
	for _, h := range hosts {
		if got := e.driver.List(h); len(got) != 0 {
			t.Errorf("%s runs %v", h, got)
		}
	}
	// A host failure inside the cell is the instance's fault, not a reason
	// to hand the build back.
	if bf := e.sent.buildFailed(t); len(bf) != 0 {
		t.Errorf("build handed back: %+v", bf)
	}
}

func TestPartialMultiCreateHandsTheRestBack(t *testing.T) {
	// One host with room for two small instances.
	e := newCell(t, cellOpts{hosts: []string{"h1"},
		spec: compute.HostSpec{VCPUs: 2, RAMMB: 2048, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}})
	b := build(3, 5)
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)

	testpoll.Eventually(t, wait, "two ACTIVE and one build_failed", func() (bool, string) {
		active := 0
		for _, s := range b.Instances[:2] {
			if get(t, e.db, s.UUID).VMState == celldb.VMActive {
				active++
			}
		}
		failed := len(e.sent.buildFailed(t))
		return active == 2 && failed > 0, fmt.Sprintf("%d ACTIVE, %d build_failed", active, failed)
	})
	left := b.Instances[2]
	if _, err := celldb.Get(context.Background(), e.db, left.UUID); !errors.Is(err, celldb.ErrNotFound) {
		t.Errorf("instance handed back is still in the cell: %v", err)
	}
	bf := e.sent.buildFailed(t)
	if len(bf) != 1 {
		t.Fatalf("%d build_failed messages, want 1", len(bf))
	}
	m := bf[0]
	if m.To != parent || m.RequestID != "req-1" {
		t.Errorf("build_failed to %q (request %q), want to the scheduling parent %q for req-1", m.To, m.RequestID, parent)
	}
	var f wire.BuildFailed
	if err := json.Unmarshal(m.Payload, &f); err != nil {
		t.Fatal(err)
	}
	if f.Cell != cell || f.Reason == "" || f.Exhausted {
		t.Errorf("build_failed from %q reason %q exhausted %v, want from %s with a reason, not exhausted", f.Cell, f.Reason, f.Exhausted, cell)
	}
	if len(f.Build.Instances) != 1 || !reflect.DeepEqual(f.Build.Instances[0], left) {
		t.Errorf("handed back %+v, want only %+v", f.Build.Instances, left)
	}
	if !reflect.DeepEqual(f.Build.Flavor, small) || f.Build.Scheduler != parent || f.Build.Attempts != 1 ||
		!reflect.DeepEqual(f.Build.Hints, b.Hints) || !reflect.DeepEqual(f.Build.ImageProperties, b.ImageProperties) {
		t.Errorf("handed-back build %+v lost the original build's context", f.Build)
	}
	// Versions only grow: the next cell counts on from above anything this
	// cell used for the instance.
	highest := b.BaseVersion + 1
	for _, st := range e.sent.statesOf(t, left.UUID) {
		highest = max(highest, st.Version)
	}
	if f.Build.BaseVersion <= highest {
		t.Errorf("BaseVersion %d, want above %d, the highest version the purged instance had", f.Build.BaseVersion, highest)
	}
	if c := claims(t, e.db); len(c) != 2 || c[left.UUID] != "" {
		t.Errorf("claims %v, want the two built instances'", c)
	}
}

func TestNothingFitsHandsTheWholeBuildBack(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1"},
		spec: compute.HostSpec{VCPUs: 1, RAMMB: 512, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}})
	b := build(2, 0)
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)
	testpoll.Eventually(t, wait, "a build_failed", func() (bool, string) { return len(e.sent.buildFailed(t)) > 0, "none sent" })
	var f wire.BuildFailed
	if err := json.Unmarshal(e.sent.buildFailed(t)[0].Payload, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Build.Instances) != 2 || f.Build.BaseVersion <= 1 {
		t.Errorf("handed back %d instances at base version %d, want both above version 1", len(f.Build.Instances), f.Build.BaseVersion)
	}
	if n, err := celldb.CountInstances(context.Background(), e.db); err != nil || n != 0 {
		t.Errorf("%d instances left in the cell (%v), want 0", n, err)
	}
}

func TestDeleteInstances(t *testing.T) {
	ctx := context.Background()
	e := newCell(t, cellOpts{hosts: []string{"h1"}})
	b := build(1, 0)
	u := b.Instances[0].UUID
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)
	testpoll.Eventually(t, wait, "the instance ACTIVE", func() (bool, string) {
		vm := get(t, e.db, u).VMState
		return vm == celldb.VMActive, fmt.Sprintf("vm %q", vm)
	})
	active := get(t, e.db, u)
	addrs, err := celldb.Addresses(ctx, e.db, u)
	if err != nil || len(addrs) != 1 {
		t.Fatalf("addresses %v, %v", addrs, err)
	}

	err = e.db.InTx(ctx, func(tx *db.Tx) error {
		if err := e.cd.DeleteInstances(ctx, tx, envelope("req-del", &wire.DeleteInstances{UUIDs: []string{u, uuidN(404)}})); err != nil {
			return err
		}
		in, err := celldb.Get(ctx, tx, u)
		if err != nil {
			return err
		}
		if in.TaskState != celldb.TaskDeleting || in.Deleted {
			t.Errorf("in the delete's transaction: task %q deleted %v, want deleting and not yet deleted", in.TaskState, in.Deleted)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("DeleteInstances: %v", err)
	}

	testpoll.Eventually(t, wait, "the instance deleted", func() (bool, string) {
		in := get(t, e.db, u)
		return in.Deleted, fmt.Sprintf("vm %q task %q", in.VMState, in.TaskState)
	})
	in := get(t, e.db, u)
	if in.VMState != celldb.VMDeleted || in.TaskState != "" || in.PowerState != celldb.PowerNoState || in.Version <= active.Version {
		t.Errorf("deleted instance %+v, want vm deleted, no task, no power state, version above %d", in, active.Version)
	}
	if got := e.driver.List(active.Host); len(got) != 0 {
		t.Errorf("%s still runs %v", active.Host, got)
	}
	if a, _ := celldb.Addresses(ctx, e.db, u); len(a) != 0 {
		t.Errorf("deleted instance keeps %v", a)
	}
	var holder *string
	if err := e.db.QueryRow(ctx, `SELECT instance_uuid FROM fixed_ips WHERE address = ?`, addrs[0].Addr).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if holder != nil {
		t.Errorf("address %s still held by %s", addrs[0].Addr, *holder)
	}
	if c := claims(t, e.db); len(c) != 0 {
		t.Errorf("claims %v after the delete", c)
	}
	if n, v := used(t, e.db); n != 0 || v != 0 {
		t.Errorf("nodes count %d instances, %d vCPUs after the delete", n, v)
	}
	testpoll.Eventually(t, wait, "the deleted state sent up", func() (bool, string) {
		sts := e.sent.statesOf(t, u)
		return len(sts) > 0 && sts[len(sts)-1].Deleted, fmt.Sprintf("states sent %+v", sts)
	})
	sts := e.sent.statesOf(t, u)
	last := sts[len(sts)-1]
	if last.VMState != celldb.VMDeleted || last.Version != in.Version || len(last.Addresses) != 0 || last.Cell != cell {
		t.Errorf("deleted state sent %+v, want vm deleted at version %d without addresses", last, in.Version)
	}

	// Deleting it again changes nothing; a malformed payload is a bad message.
	if err := e.db.InTx(ctx, func(tx *db.Tx) error {
		return e.cd.DeleteInstances(ctx, tx, envelope("req-del2", &wire.DeleteInstances{UUIDs: []string{u}}))
	}); err != nil {
		t.Fatal(err)
	}
	if again := get(t, e.db, u); again.Version != in.Version || again.TaskState != "" {
		t.Errorf("a second delete changed the instance: %+v", again)
	}
	bad := envelope("req-bad", nil)
	bad.Payload = json.RawMessage(`{"uuids": 7}`)
	err = e.db.InTx(ctx, func(tx *db.Tx) error { return e.cd.DeleteInstances(ctx, tx, bad) })
	if !errors.Is(err, wire.ErrBadMessage) {
		t.Errorf("malformed delete_instances = %v, want ErrBadMessage", err)
	}
}

func TestStartRecoversHalfDoneBuilds(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: "h1", AvailabilityZone: "nova", HypervisorType: "fake", VCPUs: 16,
		RAMMB: 65536, DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	// What a stopped process left: one instance allocating its network, one
	// spawning, both with a claim on h1; one ACTIVE with its claim; one
	// still waiting for a host.
	tasks := map[string]string{uuidN(1): celldb.TaskNetworking, uuidN(2): celldb.TaskSpawning, uuidN(3): "", uuidN(4): celldb.TaskScheduling}
	err := d.InTx(ctx, func(tx *db.Tx) error {
		for _, u := range slices.Sorted(maps.Keys(tasks)) {
			in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i", ReservationID: "r", CreatedAt: t0},
				Flavor: small, VMState: celldb.VMBuilding, TaskState: tasks[u], Version: 3}
			if tasks[u] != celldb.TaskScheduling {
				in.Host = "h1"
			}
			if tasks[u] == "" {
				in.VMState = celldb.VMActive
			}
			if err := celldb.Insert(ctx, tx, []celldb.Instance{in}, t0); err != nil {
				return err
			}
			if in.Host != "" {
				if err := celldb.Claim(ctx, tx, u, "h1", small.Need(), t0); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The scheduler is down, so the loop leaves what recover did alone.
	sched := &fakeScheduler{fn: func(*hostsched.Request) ([]hostsched.Selection, error) { return nil, errors.New("scheduler down") }}
	sent := &recorder{}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: sent, Scheduler: sched, Network: fakeNetwork{}, Compute: fakeCompute{},
		PollInterval: time.Hour, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := cd.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })

	for _, u := range []string{uuidN(1), uuidN(2)} {
		in := get(t, d, u)
		if in.TaskState != celldb.TaskScheduling || in.Host != "" || in.VMState != celldb.VMBuilding {
			t.Errorf("%s (was %s): task %q host %q vm %q, want back to scheduling with no host", u, tasks[u], in.TaskState, in.Host, in.VMState)
		}
		if in.Version <= 3 {
			t.Errorf("%s: version %d, want bumped above 3", u, in.Version)
		}
	}
	if in := get(t, d, uuidN(3)); in.TaskState != "" || in.Host != "h1" || in.Version != 3 {
		t.Errorf("ACTIVE instance changed by recover: %+v", in)
	}
	if in := get(t, d, uuidN(4)); in.TaskState != celldb.TaskScheduling || in.Version != 3 {
		t.Errorf("waiting instance changed by recover: %+v", in)
	}
	if c := claims(t, d); !reflect.DeepEqual(c, map[string]string{uuidN(3): "h1"}) {
		t.Errorf("claims after recover = %v, want only the ACTIVE instance's", c)
	}
	if n, v := used(t, d); n != 1 || v != 1 {
		t.Errorf("h1 counts %d instances and %d vCPUs, want the ACTIVE one only", n, v)
	}
	// The loop then asks for hosts for all three waiting instances.
	testpoll.Eventually(t, wait, "the loop asking the scheduler", func() (bool, string) { return sched.count() > 0, "not asked" })
	sched.mu.Lock()
	req := sched.calls[0]
	sched.mu.Unlock()
	if req.NumInstances != 3 || req.Flavor != small.Need() {
		t.Errorf("scheduler asked for %+v, want 3 small instances", req)
	}
}

func TestHealSendsRecentChangesInOneMessage(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	sent := &recorder{}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: sent, Scheduler: &fakeScheduler{}, Network: fakeNetwork{},
		Compute: fakeCompute{}, HealWindow: 10 * time.Minute, Logger: quiet, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing changed: nothing is sent.
	if err := cd.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(sent.messages()); n != 0 {
		t.Fatalf("Heal of an empty cell sent %d messages", n)
	}

	insert := func(u string, at time.Time, version int64) {
		t.Helper()
		in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i", CreatedAt: at},
			Flavor: small, VMState: celldb.VMActive, Host: "h1", Version: version}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, at) }); err != nil {
			t.Fatal(err)
		}
	}
	insert(uuidN(1), t0.Add(-30*time.Minute), 4) // too old
	insert(uuidN(2), t0.Add(-9*time.Minute), 5)
	insert(uuidN(3), t0.Add(-time.Minute), 6)
	insert(uuidN(4), t0.Add(-20*time.Minute), 2)
	// Deleted a minute ago: the delete must be healed too.
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		_, err := celldb.Update(ctx, tx, uuidN(4), nil, celldb.Change{Deleted: true}, t0.Add(-time.Minute))
		return err
	}); err != nil {
		t.Fatal(err)
	}

	if err := cd.Heal(ctx); err != nil {
		t.Fatalf("Heal: %v", err)
	}
	msgs := sent.messages()
	if len(msgs) != 1 {
		t.Fatalf("Heal sent %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.To != root || m.Method != wire.MethodInstanceUpdate {
		t.Errorf("Heal sent %s to %s, want instance_update to %s", m.Method, m.To, root)
	}
	var u wire.InstanceUpdate
	if err := json.Unmarshal(m.Payload, &u); err != nil {
		t.Fatal(err)
	}
	if !u.Heal {
		t.Error("heal message not flagged as a heal")
	}
	got := map[string]wire.InstanceState{}
	for _, st := range u.Instances {
		got[st.UUID] = st
	}
	if len(u.Instances) != 3 || len(got) != 3 {
		t.Fatalf("healed %d instances (%v), want the 3 changed in the window", len(u.Instances), slices.Collect(maps.Keys(got)))
	}
	for _, want := range []string{uuidN(2), uuidN(3), uuidN(4)} {
		st, ok := got[want]
		if !ok {
			t.Errorf("%s not healed", want)
			continue
		}
		in := get(t, d, want)
		if st.Version != in.Version || st.Cell != cell || st.Deleted != in.Deleted || st.VMState != in.VMState {
			t.Errorf("healed %+v, want the instance as stored (version %d, deleted %v)", st, in.Version, in.Deleted)
		}
	}
	if _, ok := got[uuidN(1)]; ok {
		t.Errorf("%s, unchanged for 30 minutes, was healed", uuidN(1))
	}

	// Many changes go in batches of at most 500.
	err = d.InTx(ctx, func(tx *db.Tx) error {
		var many []celldb.Instance
		for i := range 600 {
			many = append(many, celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: uuidN(1000 + i), Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i"},
				Flavor: small, VMState: celldb.VMActive})
		}
		return celldb.Insert(ctx, tx, many, t0.Add(-time.Second))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cd.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	msgs = sent.messages()[1:]
	total, distinct := 0, map[string]bool{}
	for _, m := range msgs {
		var u wire.InstanceUpdate
		if err := json.Unmarshal(m.Payload, &u); err != nil {
			t.Fatal(err)
		}
		if !u.Heal || len(u.Instances) > 500 {
			t.Errorf("heal batch of %d (heal %v), want at most 500, flagged", len(u.Instances), u.Heal)
		}
		total += len(u.Instances)
		for _, st := range u.Instances {
			distinct[st.UUID] = true
		}
	}
	// The 600 share one change time: the pages are cut by UUID within it,
	// and none is sent twice or left out.
	if len(msgs) != 2 || total != 603 || len(distinct) != 603 {
		t.Errorf("healing 603 instances sent %d messages with %d (%d distinct) in all, want 2 with 603", len(msgs), total, len(distinct))
	}
}

// TestRecoverLeavesServerActionsAlone: an instance spawning for an
// unshelve (a pending server action) is resumed by the action, not rebuilt
// by the conductor.
func TestRecoverLeavesServerActionsAlone(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: "h1", AvailabilityZone: "nova", HypervisorType: "fake", VCPUs: 16,
		RAMMB: 65536, DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	u := uuidN(7)
	err := d.InTx(ctx, func(tx *db.Tx) error {
		in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i", ReservationID: "r", CreatedAt: t0},
			Flavor: small, VMState: "shelved_offloaded", TaskState: celldb.TaskSpawning, Version: 3, Host: "h1"}
		if err := celldb.Insert(ctx, tx, []celldb.Instance{in}, t0); err != nil {
			return err
		}
		if err := celldb.Claim(ctx, tx, u, "h1", small.Need(), t0); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE instances SET action = 'unshelve' WHERE uuid = ?`, u)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sched := &fakeScheduler{fn: func(*hostsched.Request) ([]hostsched.Selection, error) { return nil, errors.New("scheduler down") }}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: &recorder{}, Scheduler: sched, Network: fakeNetwork{}, Compute: fakeCompute{},
		PollInterval: time.Hour, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := cd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(ctx) })
	in, err := celldb.Get(ctx, d, u)
	if err != nil {
		t.Fatal(err)
	}
	if in.TaskState != celldb.TaskSpawning || in.Host != "h1" {
		t.Errorf("recover touched an unshelving instance: task %q host %q", in.TaskState, in.Host)
	}
}

// TestARecordedBuildSendsNoAcceptedState: when the cell that sent the build
// recorded it in the API cell's copy already (b.Recorded), the cell sends
// no "scheduling" state up; the instances start at the version recorded
// (BaseVersion+1), and the first state the API cell hears is ACTIVE, newer.
func TestARecordedBuildSendsNoAcceptedState(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1", "h2"}})
	b := build(2, 4)
	b.Recorded = true
	accept(t, e.db, e.cd, "req-1", b)
	for _, s := range b.Instances {
		if in := get(t, e.db, s.UUID); in.Version != 5 {
			t.Errorf("%s accepted at version %d, want the recorded 5", s.UUID, in.Version)
		}
	}
	if u := e.sent.updates(t); len(u) != 0 {
		t.Fatalf("a recorded build sent %+v on acceptance, want nothing", u)
	}
	e.start(t)
	for _, s := range b.Instances {
		testpoll.Eventually(t, wait, "ACTIVE sent up", func() (bool, string) {
			sts := e.sent.statesOf(t, s.UUID)
			return len(sts) > 0 && sts[len(sts)-1].VMState == celldb.VMActive, fmt.Sprintf("states sent %+v", sts)
		})
		sts := e.sent.statesOf(t, s.UUID)
		if sts[0].VMState != celldb.VMActive || sts[0].Version <= 5 {
			t.Errorf("%s: first state sent %+v, want ACTIVE above version 5", s.UUID, sts[0])
		}
	}
}
