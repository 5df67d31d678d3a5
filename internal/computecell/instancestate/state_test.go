package instancestate_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/instancestate"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const cell = "api!cell1"

// setup is a migrated cell database with one instance, at version 1 in
// task state scheduling, and its owner sending through the real outbox.
func setup(t *testing.T, d *db.DB) (*instancestate.Owner, string) {
	t.Helper()
	ctx := context.Background()
	for _, m := range []struct {
		name string
		ms   []db.Migration
	}{{"outbox", outbox.Migrations}, {"compute", celldb.Migrations}} {
		if err := d.Migrate(ctx, m.name, m.ms); err != nil {
			t.Fatalf("migrate %s: %v", m.name, err)
		}
	}
	now := t0
	o, err := instancestate.New(cell, cells.NewSender("", cell, nil), func() time.Time { now = now.Add(time.Second); return now })
	if err != nil {
		t.Fatal(err)
	}
	in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: "u1", Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
		Flavor: wire.Flavor{ID: "1", Name: "small", VCPUs: 1, RAMMB: 512, RootGB: 1}, VMState: celldb.VMBuilding,
		TaskState: celldb.TaskScheduling, RequestID: "req-1"}
	if err := d.InTx(ctx, func(tx *db.Tx) error { return o.Create(ctx, tx, []celldb.Instance{in}, createAction, "req-1", false) }); err != nil {
		t.Fatalf("create: %v", err)
	}
	return o, in.UUID
}

// updates are the instance_updates queued for the API cell.
func updates(t *testing.T, d *db.DB) []wire.InstanceUpdate {
	t.Helper()
	es, err := outbox.Pending(context.Background(), d, "api", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.InstanceUpdate
	for _, e := range es {
		if e.Method != wire.MethodInstanceUpdate {
			t.Errorf("queued %s, want only %s", e.Method, wire.MethodInstanceUpdate)
			continue
		}
		var env wire.Envelope
		var u wire.InstanceUpdate
		if err := json.Unmarshal(e.Body, &env); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(env.Payload, &u); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

func TestTransition(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		o, u := setup(t, d)
		active, none := celldb.VMActive, ""
		change := celldb.Change{VMState: &active, TaskState: &none}

		// The wrong expected task state: a conflict, nothing written or sent.
		err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := o.Transition(ctx, tx, u, instancestate.Task(celldb.TaskSpawning), change)
			return err
		})
		if !errors.Is(err, wire.ErrConflict) {
			t.Fatalf("Transition with the wrong expected task = %v, want wire.ErrConflict", err)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Version != 1 || in.VMState != celldb.VMBuilding || in.TaskState != celldb.TaskScheduling {
			t.Errorf("a conflicting transition wrote the row: version %d, %s/%q", in.Version, in.VMState, in.TaskState)
		}
		if us := updates(t, d); len(us) != 0 {
			t.Errorf("a conflicting transition queued %d updates, want none", len(us))
		}

		// A transition in a transaction that rolls back: nothing written or sent.
		rollback := errors.New("roll back")
		err = d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := o.Transition(ctx, tx, u, instancestate.Task(celldb.TaskScheduling), change); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("InTx = %v, want the rollback", err)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Version != 1 || in.VMState != celldb.VMBuilding {
			t.Errorf("a rolled-back transition wrote the row: version %d, %s", in.Version, in.VMState)
		}
		if us := updates(t, d); len(us) != 0 {
			t.Errorf("a rolled-back transition queued %d updates, want none", len(us))
		}

		// Success: version+1, the row written, exactly one update queued
		// in the same transaction, carrying the new state.
		var got *celldb.Instance
		err = d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			got, err = o.Transition(ctx, tx, u, instancestate.Task(celldb.TaskScheduling), change)
			if err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE method = ?`, wire.MethodInstanceUpdate).Scan(&n); err != nil {
				return err
			}
			if n != 1 {
				t.Errorf("inside the transaction %d updates are queued, want 1", n)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("Transition: %v", err)
		}
		if got.Version != 2 || got.VMState != celldb.VMActive || got.TaskState != "" {
			t.Errorf("Transition returned version %d, %s/%q; want 2, active/\"\"", got.Version, got.VMState, got.TaskState)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Version != 2 || in.VMState != celldb.VMActive || in.TaskState != "" {
			t.Errorf("row after Transition: version %d, %s/%q; want 2, active/\"\"", in.Version, in.VMState, in.TaskState)
		}
		us := updates(t, d)
		if len(us) != 1 || len(us[0].Instances) != 1 {
			t.Fatalf("queued %+v, want one update of one instance", us)
		}
		if st := us[0].Instances[0]; st.UUID != u || st.Cell != cell || st.Version != 2 || st.VMState != celldb.VMActive || st.TaskState != "" || us[0].Heal {
			t.Errorf("queued state %+v, want %s of %s at version 2, active", st, u, cell)
		}
	})
}

func TestStepBumpsAndSendsNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		o, u := setup(t, d)
		host, networking := "h1", celldb.TaskNetworking
		err := d.InTx(ctx, func(tx *db.Tx) error {
			return o.Step(ctx, tx, u, instancestate.Task(celldb.TaskScheduling), celldb.Change{Host: &host, TaskState: &networking})
		})
		if err != nil {
			t.Fatal(err)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Version != 2 || in.Host != "h1" || in.TaskState != networking {
			t.Errorf("row after Step: version %d, host %q, task %q", in.Version, in.Host, in.TaskState)
		}
		if us := updates(t, d); len(us) != 0 {
			t.Errorf("Step queued %d updates, want none", len(us))
		}
		// The heal carries it up.
		if err := o.Heal(ctx, d, time.Hour); err != nil {
			t.Fatal(err)
		}
		us := updates(t, d)
		if len(us) != 1 || !us[0].Heal || len(us[0].Instances) != 1 || us[0].Instances[0].Version != 2 || us[0].Instances[0].Host != "h1" {
			t.Errorf("heal queued %+v, want one heal update of version 2 on h1", us)
		}
	})
}

func TestPlaceAndBeginSpawn(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		o, u := setup(t, d)
		// Each host in a zone of its own, from its aggregate.
		aggs := &wire.HostAggregates{Version: 1, DefaultZone: "nova"}
		for i, h := range []string{"h1", "h2"} {
			if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: h, HypervisorType: "fake", VCPUs: 1, RAMMB: 1024,
				DiskGB: 10, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, t0); err != nil {
				t.Fatal(err)
			}
			aggs.Aggregates = append(aggs.Aggregates, wire.HostAggregate{ID: int64(i + 1), UUID: "agg-" + h, Name: "agg-" + h,
				Metadata: map[string]string{wire.AggregateZoneKey: "az-" + h}, Hosts: []string{h}})
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { _, err := celldb.ApplyHostAggregates(ctx, tx, aggs); return err }); err != nil {
			t.Fatal(err)
		}
		in, _ := celldb.Get(ctx, d, u)
		if err := d.InTx(ctx, func(tx *db.Tx) error { return o.Place(ctx, tx, in, "h1") }); err != nil {
			t.Fatalf("Place: %v", err)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Host != "h1" || in.TaskState != celldb.TaskNetworking || in.AvailabilityZone != "az-h1" || in.Version != 2 {
			t.Errorf("after Place: host %q task %q zone %q version %d", in.Host, in.TaskState, in.AvailabilityZone, in.Version)
		}
		beginSpawn := func(host string) (sp *celldb.Instance, err error) {
			err = d.GroupQuery(ctx, o.BeginSpawnQuery(u, host), func(tx *db.Tx, a db.Answer) (err error) {
				sp, err = o.BeginSpawnFrom(ctx, tx, u, host, a)
				return err
			})
			return sp, err
		}
		sp, err := beginSpawn("h1")
		if err != nil || sp.TaskState != celldb.TaskSpawning || sp.Version != 3 {
			t.Fatalf("BeginSpawnQuery/From on the claimed host = %+v, %v", sp, err)
		}
		// Another host: the claim moves with a release and a new claim.
		if err := d.InTx(ctx, func(tx *db.Tx) error { return o.Release(ctx, tx, u) }); err != nil {
			t.Fatal(err)
		}
		sp, err = beginSpawn("h2")
		if err != nil || sp.Host != "h2" {
			t.Fatalf("BeginSpawnQuery/From on an unclaimed host = %+v, %v", sp, err)
		}
		ns, _ := celldb.ListNodes(ctx, d)
		for _, n := range ns {
			if want := map[string]int{"h1": 0, "h2": 1}[n.Host]; n.Instances != want {
				t.Errorf("%s holds %d claims, want %d", n.Host, n.Instances, want)
			}
		}
		if us := updates(t, d); len(us) != 0 {
			t.Errorf("Place and the spawn's begin queued %d updates, want none", len(us))
		}
		// Being deleted: neither on its claimed host nor on another.
		deleting := celldb.TaskDeleting
		if err := d.InTx(ctx, func(tx *db.Tx) error { return o.Step(ctx, tx, u, nil, celldb.Change{TaskState: &deleting}) }); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"h2", "h1"} {
			if sp, err := beginSpawn(h); !errors.Is(err, celldb.ErrGone) {
				t.Errorf("BeginSpawnQuery/From of an instance being deleted on %s = %+v, %v; want ErrGone", h, sp, err)
			}
		}
	})
}

func TestActionTravelsWithTheChange(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		o, u := setup(t, d)
		stopping := "powering-off"
		pending := &celldb.PendingAction{Action: "stop", Params: []byte(`{"x":1}`), RequestID: "req-2"}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return o.Step(ctx, tx, u, nil, celldb.Change{TaskState: &stopping, Action: pending})
		}); err != nil {
			t.Fatal(err)
		}
		ps, err := celldb.PendingActions(ctx, d, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].UUID != u || ps[0].Action != "stop" || string(ps[0].Params) != `{"x":1}` || ps[0].RequestID != "req-2" {
			t.Fatalf("pending actions %+v, want stop on %s", ps, u)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Version != 2 || in.TaskState != stopping || in.Action != "stop" {
			t.Errorf("after the Step: version %d, task %q, action %q", in.Version, in.TaskState, in.Action)
		}
		none := ""
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := o.Transition(ctx, tx, u, &stopping, celldb.Change{TaskState: &none, Action: &celldb.PendingAction{}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if ps, _ := celldb.PendingActions(ctx, d, 10); len(ps) != 0 {
			t.Errorf("pending actions %+v after the transition cleared it", ps)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Version != 3 || in.TaskState != "" || in.Action != "" {
			t.Errorf("after the Transition: version %d, task %q, action %q", in.Version, in.TaskState, in.Action)
		}
		// Clearing an action alone leaves the state and version.
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return o.Step(ctx, tx, u, nil, celldb.Change{TaskState: &stopping, Action: pending})
		}); err != nil {
			t.Fatal(err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return o.ClearAction(ctx, tx, u) }); err != nil {
			t.Fatal(err)
		}
		if in, _ := celldb.Get(ctx, d, u); in.Version != 4 || in.TaskState != stopping || in.Action != "" {
			t.Errorf("after ClearAction: version %d, task %q, action %q; want 4, %q, none", in.Version, in.TaskState, in.Action, stopping)
		}
		if us := updates(t, d); len(us) != 1 {
			t.Errorf("queued %d updates, want the one of the Transition", len(us))
		}
	})
}

// TestPurgeRemovesOnlyWhatWaitsForAHost: a purge (a build handed back)
// removes an instance still waiting for a host with any claim it holds,
// and leaves one being deleted to its delete; purging again removes
// nothing.
func TestPurgeRemovesOnlyWhatWaitsForAHost(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		o, u := setup(t, d)
		if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: "h1", HypervisorType: "fake", VCPUs: 4, RAMMB: 4096,
			DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, t0); err != nil {
			t.Fatal(err)
		}
		flavor := wire.Flavor{ID: "1", Name: "small", VCPUs: 1, RAMMB: 512, RootGB: 1}
		doomed := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: "u2", Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
			Flavor: flavor, VMState: celldb.VMBuilding, TaskState: celldb.TaskDeleting, RequestID: "req-2"}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := o.Create(ctx, tx, []celldb.Instance{doomed}, createAction, "req-2", false); err != nil {
				return err
			}
			// A claim the instance should not hold any more, and one on a
			// resize's destination: both go with it.
			if err := o.Claim(ctx, tx, u, "h1", flavor.Need()); err != nil {
				return err
			}
			return o.Claim(ctx, tx, celldb.DestClaimKey(u), "h1", flavor.Need())
		})
		if err != nil {
			t.Fatal(err)
		}
		var purged []string
		if err := d.InTx(ctx, func(tx *db.Tx) (err error) { purged, err = o.Purge(ctx, tx, []string{u, "u2", "u404"}); return err }); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if len(purged) != 1 || purged[0] != u {
			t.Errorf("purged %v, want only %s", purged, u)
		}
		if _, err := celldb.Get(ctx, d, u); !errors.Is(err, celldb.ErrNotFound) {
			t.Errorf("purged instance still read: %v", err)
		}
		if in, err := celldb.Get(ctx, d, "u2"); err != nil || in.TaskState != celldb.TaskDeleting {
			t.Errorf("the instance being deleted: %+v, %v; want it left deleting", in, err)
		}
		ns, _ := celldb.ListNodes(ctx, d)
		if len(ns) != 1 || ns[0].Instances != 0 || ns[0].UsedVCPUs != 0 {
			t.Errorf("nodes after the purge %+v, want h1 with no claim", ns)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) (err error) { purged, err = o.Purge(ctx, tx, []string{u, "u2"}); return err }); err != nil || len(purged) != 0 {
			t.Errorf("purging again = %v, %v; want nothing purged", purged, err)
		}
	})
}

// createAction is the first action of the instances these tests create.
var createAction = celldb.FirstAction{Action: "create", Event: "compute__do_build_and_run_instance"}
