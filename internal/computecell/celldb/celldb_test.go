package celldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var small = capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}

func migrated(t *testing.T, d *db.DB) {
	t.Helper()
	if err := d.Migrate(context.Background(), "compute", celldb.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

// node is a host with vcpus vCPUs and vcpus×1024 MB, ratios 1.
func node(host string, vcpus int) celldb.Node {
	return celldb.Node{Host: host, AvailabilityZone: "nova", HypervisorType: "fake", VCPUs: vcpus, RAMMB: int64(vcpus) * 1024,
		DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}
}

func register(t *testing.T, d *db.DB, n celldb.Node, now time.Time) {
	t.Helper()
	if err := celldb.RegisterNode(context.Background(), d, n, now); err != nil {
		t.Fatalf("register %s: %v", n.Host, err)
	}
}

func getNode(t *testing.T, d *db.DB, host string) celldb.Node {
	t.Helper()
	ns, err := celldb.ListNodes(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Host == host {
			return n
		}
	}
	t.Fatalf("no node %s", host)
	return celldb.Node{}
}

func uuidN(i int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", i) }

func insertInstances(t *testing.T, d *db.DB, n int) []string {
	t.Helper()
	ctx := context.Background()
	var insts []celldb.Instance
	var uuids []string
	for i := range n {
		u := uuidN(i)
		uuids = append(uuids, u)
		insts = append(insts, celldb.Instance{
			InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0.Add(time.Duration(i) * time.Second)},
			Flavor:       wire.Flavor{ID: "1", Name: "small", VCPUs: small.VCPUs, RAMMB: small.RAMMB, RootGB: small.DiskGB},
			VMState:      celldb.VMBuilding, TaskState: celldb.TaskScheduling,
		})
	}
	if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, insts, t0) }); err != nil {
		t.Fatalf("insert: %v", err)
	}
	return uuids
}

func claim(d *db.DB, uuid, host string, f capacity.Flavor) error {
	ctx := context.Background()
	return d.InTx(ctx, func(tx *db.Tx) error { return celldb.Claim(ctx, tx, uuid, host, f, t0) })
}

func release(d *db.DB, uuid string) error {
	ctx := context.Background()
	return d.InTx(ctx, func(tx *db.Tx) error { return celldb.Release(ctx, tx, uuid) })
}

func claimTotals(t *testing.T, d *db.DB, host string) (n, vcpus int, ram, disk int64) {
	t.Helper()
	err := d.QueryRow(context.Background(), `SELECT COUNT(*), COALESCE(SUM(vcpus), 0), COALESCE(SUM(ram_mb), 0), COALESCE(SUM(disk_gb), 0)
		FROM claims WHERE host = ?`, host).Scan(&n, &vcpus, &ram, &disk)
	if err != nil {
		t.Fatal(err)
	}
	return n, vcpus, ram, disk
}

// checkUse asserts the node's use columns equal the sum of its claims and
// the given count.
func checkUse(t *testing.T, d *db.DB, host string, want int) {
	t.Helper()
	n := getNode(t, d, host)
	cn, cv, cr, cd := claimTotals(t, d, host)
	if cn != want || n.Instances != want {
		t.Errorf("%s: %d claims, instances column %d; want %d", host, cn, n.Instances, want)
	}
	if n.UsedVCPUs != cv || n.UsedRAMMB != cr || n.UsedDiskGB != cd {
		t.Errorf("%s: used %d vCPU %d MB %d GB, claims sum to %d vCPU %d MB %d GB", host, n.UsedVCPUs, n.UsedRAMMB, n.UsedDiskGB, cv, cr, cd)
	}
	if n.UsedVCPUs != want*small.VCPUs || n.UsedRAMMB != int64(want)*small.RAMMB || n.UsedDiskGB != int64(want)*small.DiskGB {
		t.Errorf("%s: used %d vCPU %d MB %d GB, want %d small claims", host, n.UsedVCPUs, n.UsedRAMMB, n.UsedDiskGB, want)
	}
}

// concurrently runs f(i) for i in [0,n) at once and returns the errors.
func concurrently(n int, f func(i int) error) []error {
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f(i)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func TestClaimUnderConcurrencyNeverOversubscribes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		n := node("h1", 4) // 4 vCPU, 4096 MB: room for four
		register(t, d, n, t0)
		uuids := insertInstances(t, d, 20)

		errs := concurrently(len(uuids), func(i int) error { return claim(d, uuids[i], "h1", small) })
		ok, full := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, celldb.ErrClaimFailed):
				full++
			default:
				t.Errorf("claim %d: unexpected error %v", i, err)
			}
		}
		if ok != 4 || full != 16 {
			t.Errorf("%d claims succeeded and %d failed for want of room; want 4 and 16", ok, full)
		}
		checkUse(t, d, "h1", 4)
		if got := getNode(t, d, "h1"); got.FreeVCPUs() != 0 || got.FreeRAMMB() != 0 {
			t.Errorf("free after filling: %d vCPU %d MB, want 0 0", got.FreeVCPUs(), got.FreeRAMMB())
		}

		// Release every successful claim concurrently, twice over: each gives
		// back exactly once.
		var held []string
		for i, err := range errs {
			if err == nil {
				held = append(held, uuids[i])
			}
		}
		for i, err := range concurrently(3*len(held), func(i int) error { return release(d, held[i%len(held)]) }) {
			if err != nil {
				t.Errorf("release %d: %v", i, err)
			}
		}
		checkUse(t, d, "h1", 0)

		// The room is claimable again, by four of the others.
		errs = concurrently(8, func(i int) error { return claim(d, uuids[19-i], "h1", small) })
		ok = 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, celldb.ErrClaimFailed) {
				t.Errorf("claim: %v", err)
			}
		}
		if ok != 4 {
			t.Errorf("%d claims after release, want 4", ok)
		}
		checkUse(t, d, "h1", 4)
	})
}

func TestClaimAndReleaseSemantics(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		register(t, d, node("h1", 4), t0)
		register(t, d, node("h2", 4), t0)
		uuids := insertInstances(t, d, 3)
		a, b := uuids[0], uuids[1]

		// Idempotent for the same instance and host.
		for range 3 {
			if err := claim(d, a, "h1", small); err != nil {
				t.Fatalf("claim a on h1: %v", err)
			}
		}
		checkUse(t, d, "h1", 1)

		// The same instance on another host is refused and changes nothing.
		if err := claim(d, a, "h2", small); err == nil {
			t.Error("a second claim for the same instance on another host succeeded")
		}
		checkUse(t, d, "h1", 1)
		checkUse(t, d, "h2", 0)

		// Release gives back exactly once.
		if err := release(d, a); err != nil {
			t.Fatal(err)
		}
		checkUse(t, d, "h1", 0)
		if err := release(d, a); err != nil {
			t.Fatalf("second release: %v", err)
		}
		checkUse(t, d, "h1", 0)
		if err := release(d, "never-claimed"); err != nil {
			t.Errorf("release of an instance without a claim: %v", err)
		}
		if got := getNode(t, d, "h1"); got.UsedVCPUs != 0 || got.Instances != 0 {
			t.Errorf("use went below zero: %+v", got)
		}

		// A claim in a transaction that rolls back leaves nothing.
		ctx := context.Background()
		boom := errors.New("boom")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := celldb.Claim(ctx, tx, b, "h1", small, t0); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx = %v", err)
		}
		checkUse(t, d, "h1", 0)

		// A flavor bigger than the host, an unknown host and a disabled host all fail for want of room.
		if err := claim(d, b, "h1", capacity.Flavor{VCPUs: 5, RAMMB: 1024}); !errors.Is(err, celldb.ErrClaimFailed) {
			t.Errorf("claim of 5 vCPU on a 4 vCPU host = %v, want ErrClaimFailed", err)
		}
		if err := claim(d, b, "h1", capacity.Flavor{VCPUs: 1, RAMMB: 4097}); !errors.Is(err, celldb.ErrClaimFailed) {
			t.Errorf("claim of 4097 MB on a 4096 MB host = %v, want ErrClaimFailed", err)
		}
		if err := claim(d, b, "nowhere", small); !errors.Is(err, celldb.ErrClaimFailed) {
			t.Errorf("claim on an unknown host = %v, want ErrClaimFailed", err)
		}
		if _, err := d.Exec(ctx, `UPDATE compute_nodes SET enabled = 0 WHERE host = ?`, "h2"); err != nil {
			t.Fatal(err)
		}
		if err := claim(d, b, "h2", small); !errors.Is(err, celldb.ErrClaimFailed) {
			t.Errorf("claim on a disabled host = %v, want ErrClaimFailed", err)
		}
		checkUse(t, d, "h2", 0)

		// Ratios count: 2 vCPU at ratio 2 take four 1-vCPU instances.
		n := node("h3", 2)
		n.CPURatio, n.RAMRatio = 2, 2
		register(t, d, n, t0)
		okN := 0
		for i := range 6 {
			if err := claim(d, uuidN(100+i), "h3", small); err == nil {
				okN++
			}
		}
		if okN != 4 {
			t.Errorf("%d claims on 2 vCPU × ratio 2, want 4", okN)
		}

		// Re-registering a node keeps its use.
		n.VCPUs = 3
		register(t, d, n, t0.Add(time.Minute))
		if got := getNode(t, d, "h3"); got.VCPUs != 3 || got.UsedVCPUs != 4 || got.Instances != 4 || !got.HeartbeatAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after re-registering: %+v", got)
		}
	})
}

func TestUpdate(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		u := insertInstances(t, d, 1)[0]
		in, err := celldb.Get(ctx, d, u)
		if err != nil {
			t.Fatal(err)
		}
		if in.Version != 1 || in.TaskState != celldb.TaskScheduling {
			t.Fatalf("inserted at version %d task %q, want 1 scheduling", in.Version, in.TaskState)
		}
		update := func(expect *string, c celldb.Change, now time.Time) (*celldb.Instance, error) {
			var out *celldb.Instance
			err := d.InTx(ctx, func(tx *db.Tx) (err error) {
				out, err = celldb.Update(ctx, tx, u, expect, c, now)
				return err
			})
			return out, err
		}
		str := func(s string) *string { return &s }

		// A compare-and-swap on the wrong task state conflicts and bumps nothing.
		_, err = update(str(celldb.TaskSpawning), celldb.Change{VMState: str(celldb.VMActive), TaskState: str("")}, t0.Add(time.Minute))
		if !errors.Is(err, wire.ErrConflict) {
			t.Fatalf("Update with the wrong expected task = %v, want wire.ErrConflict", err)
		}
		after, _ := celldb.Get(ctx, d, u)
		if after.Version != 1 || after.TaskState != celldb.TaskScheduling || after.VMState != celldb.VMBuilding || !after.UpdatedAt.Equal(t0) {
			t.Errorf("a conflicting update changed the instance: %+v", after)
		}

		// Each update bumps the version by exactly one.
		steps := []struct {
			expect *string
			c      celldb.Change
		}{
			{str(celldb.TaskScheduling), celldb.Change{Host: str("h1"), TaskState: str(celldb.TaskNetworking)}},
			{str(celldb.TaskNetworking), celldb.Change{TaskState: str(celldb.TaskSpawning)}},
			{nil, celldb.Change{VMState: str(celldb.VMActive), TaskState: str(""), PowerState: func() *int { p := celldb.PowerRunning; return &p }()}},
			{nil, celldb.Change{}},
		}
		for i, s := range steps {
			now := t0.Add(time.Duration(i+2) * time.Minute)
			got, err := update(s.expect, s.c, now)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			stored, _ := celldb.Get(ctx, d, u)
			for _, in := range []*celldb.Instance{got, stored} {
				if in.Version != int64(i+2) {
					t.Errorf("step %d: version %d, want %d", i, in.Version, i+2)
				}
				if !in.UpdatedAt.Equal(now) {
					t.Errorf("step %d: updated_at %v, want %v", i, in.UpdatedAt, now)
				}
			}
		}
		final, _ := celldb.Get(ctx, d, u)
		if final.Host != "h1" || final.Node != "h1" || final.VMState != celldb.VMActive || final.TaskState != "" || final.PowerState != celldb.PowerRunning {
			t.Errorf("after the updates: %+v", final)
		}

		// Deleting is an update too.
		got, err := update(nil, celldb.Change{VMState: str(celldb.VMDeleted), Deleted: true}, t0.Add(time.Hour))
		if err != nil || !got.Deleted || got.Version != 6 {
			t.Errorf("delete: %+v, %v", got, err)
		}
		if n, _ := celldb.CountInstances(ctx, d); n != 0 {
			t.Errorf("CountInstances after delete = %d, want 0", n)
		}

		stored, _ := celldb.Get(ctx, d, u)
		if !stored.Deleted || stored.Version != 6 || stored.VMState != celldb.VMDeleted {
			t.Errorf("stored after delete: %+v", stored)
		}
		var deletedAt int64
		if err := d.QueryRow(ctx, `SELECT deleted_at FROM instances WHERE uuid = ?`, u).Scan(&deletedAt); err != nil || deletedAt != db.Micros(t0.Add(time.Hour)) {
			t.Errorf("deleted_at = %d, %v; want %d", deletedAt, err, db.Micros(t0.Add(time.Hour)))
		}
		// A later update keeps the deletion time.
		if _, err := update(nil, celldb.Change{}, t0.Add(2*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := d.QueryRow(ctx, `SELECT deleted_at FROM instances WHERE uuid = ?`, u).Scan(&deletedAt); err != nil || deletedAt != db.Micros(t0.Add(time.Hour)) {
			t.Errorf("deleted_at after a later update = %d, %v; want %d", deletedAt, err, db.Micros(t0.Add(time.Hour)))
		}
		var missing error
		err = d.InTx(ctx, func(tx *db.Tx) error {
			_, missing = celldb.Update(ctx, tx, "no-such-instance", nil, celldb.Change{}, t0)
			return nil
		})
		if err != nil || !errors.Is(missing, celldb.ErrNotFound) {
			t.Errorf("Update of a missing instance = %v, want ErrNotFound", missing)
		}
	})
}

func TestCapacity(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		now := t0.Add(time.Hour)
		const downAfter = time.Minute

		up1 := node("up1", 4)
		up2 := node("up2", 8)
		disabled := node("disabled", 16)
		stale := node("stale", 32)
		register(t, d, up1, now.Add(-downAfter)) // exactly at the limit: still up
		register(t, d, up2, now)
		register(t, d, disabled, now)
		register(t, d, stale, now.Add(-downAfter-time.Second))
		setZones(t, d, map[string]string{"up1": "az-up", "up2": "az-up", "disabled": "az-disabled", "stale": "az-stale"})
		if _, err := d.Exec(ctx, `UPDATE compute_nodes SET enabled = 0 WHERE host = ?`, "disabled"); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := claim(d, uuidN(i), "up1", small); err != nil {
				t.Fatal(err)
			}
		}
		if err := claim(d, uuidN(10), "stale", small); err != nil {
			t.Fatal(err)
		}

		r, err := celldb.Capacity(ctx, d, now, downAfter)
		if err != nil {
			t.Fatal(err)
		}
		if r.Hosts != 4 || r.Instances != 3 {
			t.Errorf("hosts %d instances %d, want 4 and 3", r.Hosts, r.Instances)
		}
		if r.TotalVCPUs != 4+8+16+32 || r.TotalRAMMB != (4+8+16+32)*1024 || r.TotalDiskGB != 4000 {
			t.Errorf("totals %d vCPU %d MB %d GB, want every host's", r.TotalVCPUs, r.TotalRAMMB, r.TotalDiskGB)
		}
		// Only up1 (2 free) and up2 (8 free) offer anything.
		if r.FreeVCPUs != 2+8 || r.FreeRAMMB != (2+8)*1024 || r.FreeDiskGB != 1000-20+1000 {
			t.Errorf("free %d vCPU %d MB %d GB, want only the enabled, live hosts' (10 vCPU, 10240 MB, 1980 GB)", r.FreeVCPUs, r.FreeRAMMB, r.FreeDiskGB)
		}
		if got := r.Fits(small); got != 10 {
			t.Errorf("Fits(small) = %d, want 10 (2 on up1, 8 on up2)", got)
		}
		if got := r.Fits(capacity.Flavor{VCPUs: 16, RAMMB: 1024}); got != 0 {
			t.Errorf("Fits(16 vCPU) = %d, want 0: only a disabled or stale host is that big", got)
		}
		if len(r.AvailabilityZones) != 1 || r.AvailabilityZones[0] != "az-up" {
			t.Errorf("zones %v, want [az-up]", r.AvailabilityZones)
		}
		slots := 0
		for _, s := range r.Slots {
			slots += s.Count
		}
		if slots != 2 {
			t.Errorf("slots %+v: %d hosts, want 2", r.Slots, slots)
		}

		// A heartbeat brings the stale host back.
		if err := celldb.Heartbeat(ctx, d, []string{"stale"}, now); err != nil {
			t.Fatal(err)
		}
		r, err = celldb.Capacity(ctx, d, now, downAfter)
		if err != nil {
			t.Fatal(err)
		}
		if r.FreeVCPUs != 2+8+31 {
			t.Errorf("free vCPU after the stale host's heartbeat = %d, want 41", r.FreeVCPUs)
		}
	})
}

func TestActionsStartAndFinish(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		t1, t2 := t0.Add(time.Second), t0.Add(time.Minute)
		in := func(f func(tx *db.Tx) error) {
			t.Helper()
			if err := d.InTx(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		for _, u := range []string{uuidN(1), uuidN(2)} {
			in(func(tx *db.Tx) error {
				return celldb.StartActionWithEvent(ctx, tx, wire.ActionRecord{Action: "create", UUID: u, RequestID: "req-" + u, UserID: "u", ProjectID: "p", StartTime: t0},
					"compute__do_build_and_run_instance", "", t1)
			})
		}
		in(func(tx *db.Tx) error {
			return celldb.FinishAction(ctx, tx, uuidN(1), "req-"+uuidN(1), "Success", "", "h1", t2)
		})
		in(func(tx *db.Tx) error {
			return celldb.FinishAction(ctx, tx, uuidN(2), "req-"+uuidN(2), "Error", "boom", "h2", t2)
		})
		// An instance with no such action: nothing happens.
		in(func(tx *db.Tx) error {
			return celldb.FinishAction(ctx, tx, uuidN(3), "req-none", "Success", "", "h3", t2)
		})

		for _, c := range []struct{ uuid, message, result, host, traceback string }{
			{uuidN(1), "", "Success", "h1", ""},
			{uuidN(2), "Error", "Error", "h2", "boom"},
		} {
			acts, err := celldb.ListActions(ctx, d, c.uuid, "")
			if err != nil || len(acts) != 1 {
				t.Fatalf("%s: %d actions, %v", c.uuid, len(acts), err)
			}
			a := acts[0]
			if a.Action != "create" || a.Message != c.message || !a.StartTime.Equal(t0) || !a.UpdatedAt.Equal(t2) || len(a.Events) != 1 {
				t.Errorf("%s: action %+v, want create started %v, updated %v, message %q, one event", c.uuid, a, t0, t2, c.message)
				continue
			}
			e := a.Events[0]
			if e.Event != "compute__do_build_and_run_instance" || !e.StartTime.Equal(t1) || !e.FinishTime.Equal(t2) ||
				e.Result != c.result || e.Host != c.host || e.Traceback != c.traceback {
				t.Errorf("%s: event %+v, want started %v, finished %v, %s on %s (%q)", c.uuid, e, t1, t2, c.result, c.host, c.traceback)
			}
		}
	})
}

func TestUpdateClaimedOnlyChangesALiveInstanceClaimedOnTheHost(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		register(t, d, node("h1", 8), t0)
		register(t, d, node("h2", 8), t0)
		us := insertInstances(t, d, 3)
		spawning, deleting := celldb.TaskSpawning, celldb.TaskDeleting
		host := "h1"
		change := celldb.Change{Host: &host, TaskState: &spawning}
		updateClaimed := func(u, host string) *celldb.Instance {
			t.Helper()
			var out *celldb.Instance
			q := celldb.UpdateClaimedQuery(u, host, change, t0.Add(time.Minute))
			if err := d.GroupQuery(ctx, q, func(tx *db.Tx, a db.Answer) (err error) {
				out, err = celldb.UpdateClaimedFrom(ctx, tx, u, change, a)
				return err
			}); err != nil {
				t.Fatalf("UpdateClaimedQuery(%s, %s): %v", u, host, err)
			}
			return out
		}
		unchanged := func(u string, what string) {
			t.Helper()
			if in, _ := celldb.Get(ctx, d, u); in.Version != 1 || in.TaskState == spawning {
				t.Errorf("%s: the instance changed: version %d task %q", what, in.Version, in.TaskState)
			}
		}

		// No claim at all, then a claim on another host: nothing changes.
		if in := updateClaimed(us[0], "h1"); in != nil {
			t.Errorf("no claim: got %+v, want nil", in)
		}
		unchanged(us[0], "no claim")
		if err := claim(d, us[0], "h2", small); err != nil {
			t.Fatal(err)
		}
		if in := updateClaimed(us[0], "h1"); in != nil {
			t.Errorf("claim on h2: got %+v, want nil", in)
		}
		unchanged(us[0], "claim on another host")

		// Claimed on the host: changed, as Update would.
		if err := claim(d, us[1], "h1", small); err != nil {
			t.Fatal(err)
		}
		in := updateClaimed(us[1], "h1")
		if in == nil || in.Version != 2 || in.TaskState != spawning || in.Host != "h1" || !in.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("claimed on h1: got %+v", in)
		}
		if stored, _ := celldb.Get(ctx, d, us[1]); stored.Version != 2 || stored.TaskState != spawning {
			t.Errorf("stored: %+v", stored)
		}

		// Claimed, but being deleted: nothing changes.
		if err := claim(d, us[2], "h1", small); err != nil {
			t.Fatal(err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := celldb.Update(ctx, tx, us[2], nil, celldb.Change{TaskState: &deleting}, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if in := updateClaimed(us[2], "h1"); in != nil {
			t.Errorf("being deleted: got %+v, want nil", in)
		}
		if stored, _ := celldb.Get(ctx, d, us[2]); stored.TaskState != deleting {
			t.Errorf("being deleted: task %q", stored.TaskState)
		}
	})
}

// TestFailedClaimLeavesNothingInACommittedTransaction: a caller that goes
// on after a refused claim and commits finds no claim row left over, and
// ClaimZone tells the host's zone, again for a repeated claim.
func TestFailedClaimLeavesNothingInACommittedTransaction(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		register(t, d, node("h1", 1), t0)
		setZones(t, d, map[string]string{"h1": "az9"})
		us := insertInstances(t, d, 2)
		var zones []string
		var refused error
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			zones, refused = nil, nil
			for range 2 {
				az, err := celldb.ClaimZone(ctx, tx, us[0], "h1", small, t0)
				if err != nil {
					return err
				}
				zones = append(zones, az)
			}
			_, refused = celldb.ClaimZone(ctx, tx, us[1], "h1", small, t0)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(zones) != 2 || zones[0] != "az9" || zones[1] != "az9" {
			t.Errorf("zones of a claim and its repeat = %q, want az9 twice", zones)
		}
		if !errors.Is(refused, celldb.ErrClaimFailed) {
			t.Errorf("claim on a full host = %v, want ErrClaimFailed", refused)
		}
		checkUse(t, d, "h1", 1)
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM claims WHERE instance_uuid = ?`, us[1]).Scan(&n); err != nil || n != 0 {
			t.Errorf("the refused claim left %d rows (%v)", n, err)
		}
	})
}

// TestPlaceClaimsAndRecordsTheHost: Place takes a claim and records the
// host on an instance waiting for one (networking, the host's zone when
// asked, the version up by one); it does so again for a claim held on the
// same host. A full host refuses it with ErrClaimFailed and nothing
// changes; an instance no longer waiting (being deleted) fails with
// wire.ErrConflict, and the caller's rollback leaves nothing.
func TestPlaceClaimsAndRecordsTheHost(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		register(t, d, node("h1", 2), t0)
		register(t, d, node("h2", 2), t0)
		setZones(t, d, map[string]string{"h1": "az9", "h2": "az8"})
		us := insertInstances(t, d, 5)
		at := t0.Add(time.Minute)
		place := func(u, host string, takeZone bool) error {
			return d.InTx(ctx, func(tx *db.Tx) error { return celldb.Place(ctx, tx, u, host, small, takeZone, at) })
		}
		placed := func(u, host, zone string, version int64) {
			t.Helper()
			in, err := celldb.Get(ctx, d, u)
			if err != nil {
				t.Fatal(err)
			}
			if in.Host != host || in.Node != host || in.TaskState != celldb.TaskNetworking || in.AvailabilityZone != zone ||
				in.Version != version || !in.UpdatedAt.Equal(at) {
				t.Errorf("%s: host %q node %q task %q zone %q version %d updated %v; want %s, networking, zone %q, version %d",
					u, in.Host, in.Node, in.TaskState, in.AvailabilityZone, in.Version, in.UpdatedAt, host, zone, version)
			}
		}
		if err := place(us[0], "h1", true); err != nil {
			t.Fatal(err)
		}
		placed(us[0], "h1", "az9", 2)
		if err := place(us[1], "h1", false); err != nil {
			t.Fatal(err)
		}
		placed(us[1], "h1", "", 2)
		checkUse(t, d, "h1", 2)

		// h1 is full: refused, nothing changes.
		if err := place(us[2], "h1", true); !errors.Is(err, celldb.ErrClaimFailed) {
			t.Errorf("Place on a full host = %v, want ErrClaimFailed", err)
		}
		checkUse(t, d, "h1", 2)
		if in, _ := celldb.Get(ctx, d, us[2]); in.Version != 1 || in.Host != "" || in.TaskState != celldb.TaskScheduling {
			t.Errorf("refused placement changed the instance: %+v", in)
		}

		// A claim held already on h2 (a repeat after a restart): placed.
		if err := claim(d, us[3], "h2", small); err != nil {
			t.Fatal(err)
		}
		if err := place(us[3], "h2", true); err != nil {
			t.Fatal(err)
		}
		placed(us[3], "h2", "az8", 2)
		checkUse(t, d, "h2", 1)

		// Being deleted: a conflict, and the rollback leaves no claim.
		deleting := celldb.TaskDeleting
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return celldb.Set(ctx, tx, us[4], nil, celldb.Change{TaskState: &deleting}, t0)
		}); err != nil {
			t.Fatal(err)
		}
		if err := place(us[4], "h2", true); !errors.Is(err, wire.ErrConflict) {
			t.Errorf("Place of an instance being deleted = %v, want wire.ErrConflict", err)
		}
		checkUse(t, d, "h2", 1)
		if err := place("no-such-instance", "h2", true); !errors.Is(err, celldb.ErrNotFound) {
			t.Errorf("Place of a missing instance = %v, want ErrNotFound", err)
		}
		checkUse(t, d, "h2", 1)
	})
}

// TestStatesAgreesWithState: the heal's batched States gives, for each
// instance, what State gives alone: addresses for the live ones that have
// them, none for the others and for the deleted.
func TestStatesAgreesWithState(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		us := insertInstances(t, d, 4)
		for i, u := range us[:3] {
			if _, err := d.Exec(ctx, `INSERT INTO fixed_ips (subnet_id, address_int, address, network, network_id, instance_uuid, port_id, mac, updated_at) VALUES ('sub-1', ?, ?, 'private', 'net-1', ?, ?, ?, 0)`,
				100+i, fmt.Sprintf("10.0.0.%d", 100+i), u, fmt.Sprintf("port-%d", i), fmt.Sprintf("fa:16:3e:00:00:%02x", i)); err != nil {
				t.Fatal(err)
			}
		}
		// us[2] is deleted (its address not yet freed); us[3] has none.
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := celldb.Update(ctx, tx, us[2], nil, celldb.Change{Deleted: true}, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		var insts []*celldb.Instance
		for _, u := range []string{us[3], us[1], us[2], us[0]} {
			in, err := celldb.Get(ctx, d, u)
			if err != nil {
				t.Fatal(err)
			}
			insts = append(insts, in)
		}
		got, err := celldb.States(ctx, d, "api!c1", insts)
		if err != nil || len(got) != len(insts) {
			t.Fatalf("States = %d states, %v", len(got), err)
		}
		for i, in := range insts {
			want, err := celldb.State(ctx, d, "api!c1", in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got[i], want) {
				t.Errorf("%s: States gives\n%+v\nState gives\n%+v", in.UUID, got[i], want)
			}
		}
		if len(got[1].Addresses) != 1 || got[1].Addresses[0].Addr != "10.0.0.101" || len(got[0].Addresses) != 0 || len(got[2].Addresses) != 0 {
			t.Errorf("addresses: %+v", got)
		}
		if sts, err := celldb.States(ctx, d, "api!c1", nil); err != nil || len(sts) != 0 {
			t.Errorf("States of none = %v, %v", sts, err)
		}
	})
}

// TestUpdateStateIsUpdateThenState: UpdateState changes what Update
// changes, with the same compare-and-swap and errors, and returns the
// state State gives after it: the live instance's addresses in NIC order,
// none for one deleted. On PostgreSQL, where it is one statement, an
// update that waited for another transaction (which changed the row and
// gave the instance an address) returns the address that transaction
// added, as a read after the update would.
func TestUpdateStateIsUpdateThenState(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		us := insertInstances(t, d, 4)
		addr := func(q interface {
			Exec(context.Context, string, ...any) (sql.Result, error)
		}, u string, i, nic int) {
			t.Helper()
			if _, err := q.Exec(ctx, `INSERT INTO fixed_ips (subnet_id, address_int, address, network, network_id, instance_uuid, port_id, mac, nic, updated_at) VALUES ('sub-1', ?, ?, 'private', 'net-1', ?, ?, ?, ?, 0)`,
				100+i, fmt.Sprintf("10.0.0.%d", 100+i), u, fmt.Sprintf("port-%d", i), fmt.Sprintf("fa:16:3e:00:00:%02x", i), nic); err != nil {
				t.Fatal(err)
			}
		}
		addr(d, us[0], 1, 1) // us[0]: two NICs, the second written first
		addr(d, us[0], 2, 0)
		addr(d, us[2], 3, 0) // us[2]: deleted below, its address not yet freed
		str := func(s string) *string { return &s }
		updateState := func(u string, expect *string, c celldb.Change) (*celldb.Instance, wire.InstanceState, error) {
			var in *celldb.Instance
			var st wire.InstanceState
			err := d.InTx(ctx, func(tx *db.Tx) (err error) {
				in, st, err = celldb.UpdateState(ctx, tx, "api!c1", u, expect, c, t0.Add(time.Minute))
				return err
			})
			return in, st, err
		}
		if _, _, err := updateState(us[0], str(celldb.TaskSpawning), celldb.Change{TaskState: str("")}); !errors.Is(err, wire.ErrConflict) {
			t.Errorf("UpdateState with the wrong expected task = %v, want wire.ErrConflict", err)
		}
		if _, _, err := updateState("no-such-instance", nil, celldb.Change{}); !errors.Is(err, celldb.ErrNotFound) {
			t.Errorf("UpdateState of a missing instance = %v, want ErrNotFound", err)
		}
		if in, _ := celldb.Get(ctx, d, us[0]); in.Version != 1 {
			t.Fatalf("refused updates changed the instance: version %d", in.Version)
		}
		check := func(u string, expect *string, c celldb.Change, addrs []string) {
			t.Helper()
			in, st, err := updateState(u, expect, c)
			if err != nil {
				t.Fatalf("UpdateState %s: %v", u, err)
			}
			now, err := celldb.Get(ctx, d, u)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(in, now) {
				t.Errorf("%s: UpdateState returned\n%+v\nthe row is\n%+v", u, in, now)
			}
			want, err := celldb.State(ctx, d, "api!c1", now)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(st, want) {
				t.Errorf("%s: UpdateState gives\n%+v\nState gives\n%+v", u, st, want)
			}
			var got []string
			for _, a := range st.Addresses {
				got = append(got, a.Addr)
			}
			if !slices.Equal(got, addrs) {
				t.Errorf("%s: addresses %v, want %v", u, got, addrs)
			}
		}
		check(us[0], str(celldb.TaskScheduling), celldb.Change{Host: str("h1"), TaskState: str(celldb.TaskSpawning)}, []string{"10.0.0.102", "10.0.0.101"})
		check(us[1], nil, celldb.Change{TaskState: str(celldb.TaskSpawning)}, nil)
		check(us[2], nil, celldb.Change{Deleted: true}, nil)

		if d.Dialect != db.Postgres {
			return
		}
		// us[3]: another transaction changes the row and gives it an
		// address while UpdateState waits for its lock.
		locked, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			done <- d.InTx(ctx, func(tx *db.Tx) error {
				if err := celldb.Set(ctx, tx, us[3], nil, celldb.Change{Host: str("h2")}, t0); err != nil {
					return err
				}
				addr(tx, us[3], 4, 0)
				close(locked)
				<-release
				return nil
			})
		}()
		<-locked
		type result struct {
			st  wire.InstanceState
			err error
		}
		got := make(chan result, 1)
		go func() {
			_, st, err := updateState(us[3], nil, celldb.Change{TaskState: str(celldb.TaskSpawning)})
			got <- result{st, err}
		}()
		testpoll.Eventually(t, 10*time.Second, "the update to wait for the row's lock", func() (bool, string) {
			var n int
			err := d.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()
				AND query LIKE 'WITH u AS (UPDATE instances SET task_state = %'`).Scan(&n)
			return err == nil && n > 0, fmt.Sprintf("%d waiting (%v)", n, err)
		})
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		if r.st.Version != 3 || r.st.Host != "h2" || len(r.st.Addresses) != 1 || r.st.Addresses[0].Addr != "10.0.0.104" {
			t.Errorf("after waiting: version %d, host %q, addresses %+v; want 3, h2, 10.0.0.104", r.st.Version, r.st.Host, r.st.Addresses)
		}
	})
}

// TestSetIsUpdateWithoutTheRowBack: Set changes what Update changes, with
// the same compare-and-swap and the same errors.
func TestSetIsUpdateWithoutTheRowBack(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		u := insertInstances(t, d, 1)[0]
		set := func(uuid string, expect *string, c celldb.Change) error {
			return d.InTx(ctx, func(tx *db.Tx) error { return celldb.Set(ctx, tx, uuid, expect, c, t0.Add(time.Minute)) })
		}
		str := func(s string) *string { return &s }
		if err := set(u, str(celldb.TaskSpawning), celldb.Change{TaskState: str("")}); !errors.Is(err, wire.ErrConflict) {
			t.Errorf("Set with the wrong expected task = %v, want wire.ErrConflict", err)
		}
		if err := set("no-such-instance", nil, celldb.Change{}); !errors.Is(err, celldb.ErrNotFound) {
			t.Errorf("Set of a missing instance = %v, want ErrNotFound", err)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Version != 1 {
			t.Fatalf("refused Sets changed the instance: version %d", in.Version)
		}
		if err := set(u, str(celldb.TaskScheduling), celldb.Change{Host: str("h1"), TaskState: str(celldb.TaskNetworking), AvailabilityZone: str("az1")}); err != nil {
			t.Fatal(err)
		}
		in, _ := celldb.Get(ctx, d, u)
		if in.Version != 2 || in.Host != "h1" || in.Node != "h1" || in.TaskState != celldb.TaskNetworking || in.AvailabilityZone != "az1" ||
			!in.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after Set: %+v", in)
		}
	})
}

// TestListDeletingCarriesTheDeletesRequestID: the instances being deleted
// come with the request id of their latest delete action, not their
// build's (nor another action's); one with no delete action has none.
func TestListDeletingCarriesTheDeletesRequestID(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		us := insertInstances(t, d, 3)
		deleting := celldb.TaskDeleting
		err := d.InTx(ctx, func(tx *db.Tx) error {
			for _, u := range us[:2] {
				if err := celldb.Set(ctx, tx, u, nil, celldb.Change{TaskState: &deleting}, t0); err != nil {
					return err
				}
			}
			for _, a := range []wire.ActionRecord{
				{Action: "create", UUID: us[0], RequestID: "req-build", StartTime: t0},
				{Action: "delete", UUID: us[0], RequestID: "req-del-old", StartTime: t0},
				{Action: "delete", UUID: us[0], RequestID: "req-del", StartTime: t0},
				{Action: "reboot", UUID: us[0], RequestID: "req-reboot", StartTime: t0},
				{Action: "delete", UUID: us[2], RequestID: "req-del-2", StartTime: t0},
			} {
				if _, err := celldb.StartAction(ctx, tx, a); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		ds, err := celldb.ListDeleting(ctx, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, x := range ds {
			got[x.UUID] = x.DeleteRequestID
		}
		if want := map[string]string{us[0]: "req-del", us[1]: ""}; !reflect.DeepEqual(got, want) {
			t.Errorf("ListDeleting = %v, want %v", got, want)
		}
	})
}

// TestInsertStartingRecordsTheFirstAction: InsertStarting records each
// instance with its first action, begun at the instance's creation, and
// the action's first event, as StartActionWithEvent would; on PostgreSQL
// in one statement an instance. An instance already there is refused
// (wire.ErrConflict) and records no second action.
func TestInsertStartingRecordsTheFirstAction(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		t1 := t0.Add(time.Second)
		first := celldb.FirstAction{Action: "create", Event: "compute__do_build_and_run_instance", Host: "", At: t1}
		var insts []celldb.Instance
		for i := range 2 {
			insts = append(insts, celldb.Instance{
				InstanceSpec: wire.InstanceSpec{UUID: uuidN(i), Name: "vm", ProjectID: "p", UserID: "u" + uuidN(i), ImageRef: "img", CreatedAt: t0},
				Flavor:       wire.Flavor{ID: "1", Name: "small", VCPUs: 1, RAMMB: 1024, RootGB: 10},
				VMState:      celldb.VMBuilding, TaskState: celldb.TaskScheduling, RequestID: "req-" + uuidN(i),
			})
		}
		before := d.Statements()
		if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.InsertStarting(ctx, tx, insts, t1, first) }); err != nil {
			t.Fatal(err)
		}
		if n := d.Statements() - before; d.Dialect == db.Postgres && n != 2 {
			t.Errorf("%d statements for two instances with their actions, want 2", n)
		}
		for _, in := range insts {
			got, err := celldb.Get(ctx, d, in.UUID)
			if err != nil || got.RequestID != in.RequestID || got.Version != 1 {
				t.Fatalf("%s: %+v, %v", in.UUID, got, err)
			}
			acts, err := celldb.ListActions(ctx, d, in.UUID, "")
			if err != nil || len(acts) != 1 {
				t.Fatalf("%s: %d actions, %v", in.UUID, len(acts), err)
			}
			a := acts[0]
			if a.Action != "create" || a.RequestID != in.RequestID || a.UserID != in.UserID || a.ProjectID != "p" || a.Message != "" ||
				!a.StartTime.Equal(t0) || !a.UpdatedAt.Equal(t1) || len(a.Events) != 1 {
				t.Errorf("%s: action %+v, want create by %s under %s, started %v, updated %v, one event", in.UUID, a, in.UserID, in.RequestID, t0, t1)
				continue
			}
			if e := a.Events[0]; e.Event != first.Event || !e.StartTime.Equal(t1) || !e.FinishTime.IsZero() || e.Result != "" {
				t.Errorf("%s: event %+v, want %s started %v, not finished", in.UUID, e, first.Event, t1)
			}
		}
		err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.InsertStarting(ctx, tx, insts[:1], t1, first) })
		if !errors.Is(err, wire.ErrConflict) {
			t.Errorf("inserting an instance again = %v, want wire.ErrConflict", err)
		}
		if acts, err := celldb.ListActions(ctx, d, insts[0].UUID, ""); err != nil || len(acts) != 1 {
			t.Errorf("after the refused insert: %d actions, %v; want the first alone", len(acts), err)
		}
	})
}

// TestUpdateStateEndsTheActionOnlyWhenItUpdates: a change with EndAction
// ends the action as FinishAction does (on PostgreSQL in UpdateState's
// one statement); a change refused (the wrong task state) ends nothing,
// even in a transaction that goes on and commits.
func TestUpdateStateEndsTheActionOnlyWhenItUpdates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		u := insertInstances(t, d, 1)[0]
		t1, t2 := t0.Add(time.Second), t0.Add(time.Minute)
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return celldb.StartActionWithEvent(ctx, tx, wire.ActionRecord{Action: "create", UUID: u, RequestID: "req-1", UserID: "u", ProjectID: "p", StartTime: t0},
				"compute__do_build_and_run_instance", "", t1)
		}); err != nil {
			t.Fatal(err)
		}
		active, none := celldb.VMActive, ""
		end := &celldb.ActionEnd{RequestID: "req-1", Result: "Success", Host: "h1", At: t2}
		wrong := celldb.TaskSpawning
		var refused error
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, _, refused = celldb.UpdateState(ctx, tx, "api!c1", u, &wrong, celldb.Change{VMState: &active, TaskState: &none, EndAction: end}, t2)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !errors.Is(refused, wire.ErrConflict) {
			t.Fatalf("UpdateState with the wrong task state = %v, want wire.ErrConflict", refused)
		}
		ended := func() wire.EventRecord {
			t.Helper()
			acts, err := celldb.ListActions(ctx, d, u, "req-1")
			if err != nil || len(acts) != 1 || len(acts[0].Events) != 1 {
				t.Fatalf("actions %+v, %v", acts, err)
			}
			return acts[0].Events[0]
		}
		if e := ended(); !e.FinishTime.IsZero() || e.Result != "" {
			t.Fatalf("a refused change ended the action: %+v", e)
		}
		scheduling := celldb.TaskScheduling
		var statements int64
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			before := d.Statements()
			_, st, err := celldb.UpdateState(ctx, tx, "api!c1", u, &scheduling, celldb.Change{VMState: &active, TaskState: &none, EndAction: end}, t2)
			statements = d.Statements() - before
			if err == nil && (st.VMState != active || st.TaskState != "") {
				err = fmt.Errorf("state %+v, want active", st)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if d.Dialect == db.Postgres && statements != 1 {
			t.Errorf("%d statements for the change and the action's end, want 1", statements)
		}
		if e := ended(); !e.FinishTime.Equal(t2) || e.Result != "Success" || e.Host != "h1" {
			t.Errorf("event %+v, want finished %v, Success on h1", e, t2)
		}
	})
}

// TestPlaceAllIsPlaceOfEachInTurn: PlaceAll places each instance as Place
// would, in order — one whose host filled up with the claims before it is
// refused (ErrClaimFailed, its claim undone), one that holds its claim
// already is placed, one no longer scheduling is a conflict — and on
// PostgreSQL sends them in one round trip.
func TestPlaceAllIsPlaceOfEachInTurn(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		register(t, d, node("h1", 2), t0)
		register(t, d, node("h2", 2), t0)
		setZones(t, d, map[string]string{"h1": "az9", "h2": "az8"})
		us := insertInstances(t, d, 6)
		at := t0.Add(time.Minute)
		if err := claim(d, us[3], "h2", small); err != nil {
			t.Fatal(err)
		}
		deleting := celldb.TaskDeleting
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return celldb.Set(ctx, tx, us[4], nil, celldb.Change{TaskState: &deleting}, t0)
		}); err != nil {
			t.Fatal(err)
		}
		place := func(ps []celldb.Placement) (errs []error, trips int64) {
			t.Helper()
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				before := d.RoundTrips()
				errs = celldb.PlaceAll(ctx, tx, ps, at)
				trips = d.RoundTrips() - before
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return errs, trips
		}
		// Two on h1, in one round trip.
		errs, trips := place([]celldb.Placement{{UUID: us[0], Host: "h1", Need: small, TakeZone: true}, {UUID: us[1], Host: "h1", Need: small}})
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("two placements with room: %v", errs)
		}
		if d.Dialect == db.Postgres && trips != 1 {
			t.Errorf("two placements: %d round trips, want 1", trips)
		}
		errs, _ = place([]celldb.Placement{
			{UUID: us[2], Host: "h1", Need: small, TakeZone: true}, // h1 is full
			{UUID: us[3], Host: "h2", Need: small, TakeZone: true}, // holds its claim already
			{UUID: us[5], Host: "h2", Need: small, TakeZone: true}, // the last room on h2
		})
		if !errors.Is(errs[0], celldb.ErrClaimFailed) || errs[1] != nil || errs[2] != nil {
			t.Fatalf("placements: %v; want ErrClaimFailed, nil, nil", errs)
		}
		// Being deleted: a conflict, whose claim the caller's rollback
		// undoes (as after Place).
		register(t, d, node("h3", 1), t0)
		err := d.InTx(ctx, func(tx *db.Tx) error {
			return celldb.PlaceAll(ctx, tx, []celldb.Placement{{UUID: us[4], Host: "h3", Need: small, TakeZone: true}}, at)[0]
		})
		if !errors.Is(err, wire.ErrConflict) {
			t.Errorf("the placement of an instance being deleted: %v, want ErrConflict", err)
		}
		checkUse(t, d, "h3", 0)
		for _, c := range []struct {
			u, host, zone string
		}{{us[0], "h1", "az9"}, {us[1], "h1", ""}, {us[3], "h2", "az8"}, {us[5], "h2", "az8"}} {
			in, err := celldb.Get(ctx, d, c.u)
			if err != nil || in.Host != c.host || in.TaskState != celldb.TaskNetworking || in.AvailabilityZone != c.zone || in.Version != 2 {
				t.Errorf("%s: %+v, %v; want on %s, networking, zone %q, version 2", c.u, in, err, c.host, c.zone)
			}
		}
		if in, _ := celldb.Get(ctx, d, us[2]); in.Host != "" || in.TaskState != celldb.TaskScheduling || in.Version != 1 {
			t.Errorf("the refused placement changed its instance: %+v", in)
		}
		checkUse(t, d, "h1", 2)
		checkUse(t, d, "h2", 2)
	})
}

// TestHeartbeatDoesNotWaitForAHostHeld: a heartbeat marks every host at
// once; on PostgreSQL one whose row another transaction holds (a claim
// under way) is skipped rather than waited for, and marked by the next
// heartbeat once the row is free.
func TestHeartbeatDoesNotWaitForAHostHeld(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		register(t, d, node("h1", 2), t0)
		register(t, d, node("h2", 2), t0)
		beat := func(at time.Time) {
			t.Helper()
			if err := celldb.Heartbeat(ctx, d, []string{"h1", "h2"}, at); err != nil {
				t.Fatal(err)
			}
		}
		beats := func() (h1, h2 time.Time) {
			t.Helper()
			return getNode(t, d, "h1").HeartbeatAt, getNode(t, d, "h2").HeartbeatAt
		}
		t1, t2, t3 := t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(3*time.Minute)
		beat(t1)
		if h1, h2 := beats(); !h1.Equal(t1) || !h2.Equal(t1) {
			t.Fatalf("heartbeats %v %v, want both %v", h1, h2, t1)
		}
		if d.Dialect != db.Postgres {
			return // SQLite's writers take turns: no row is held meanwhile
		}
		held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		free := sync.OnceFunc(func() { close(release) })
		defer free() // a failure below must not leave the claim's transaction open
		go func() {
			done <- d.InTx(ctx, func(tx *db.Tx) error {
				if err := celldb.Claim(ctx, tx, uuidN(1), "h1", small, t0); err != nil {
					return err
				}
				close(held)
				<-release
				return nil
			})
		}()
		<-held
		beaten := make(chan error, 1)
		go func() { beaten <- celldb.Heartbeat(ctx, d, []string{"h1", "h2"}, t2) }()
		var err error
		testpoll.Eventually(t, 10*time.Second, "the heartbeat to end while h1's row is held", func() (bool, string) {
			select {
			case err = <-beaten:
				return true, ""
			default:
				return false, "still waiting"
			}
		})
		free()
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if h1, h2 := beats(); !h1.Equal(t1) || !h2.Equal(t2) {
			t.Errorf("heartbeats %v %v, want h1's held one left at %v and h2's %v", h1, h2, t1, t2)
		}
		beat(t3)
		if h1, h2 := beats(); !h1.Equal(t3) || !h2.Equal(t3) {
			t.Errorf("heartbeats %v %v after the row was freed, want both %v", h1, h2, t3)
		}
	})
}
