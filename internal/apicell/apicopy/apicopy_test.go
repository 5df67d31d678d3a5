package apicopy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

type sent struct{ to, method, requestID string }

// recorder keeps what was sent in transactions that committed.
type recorder struct {
	msgs     []sent
	payloads []any
}

func (r *recorder) Send(_ context.Context, tx *db.Tx, to, method, requestID string, p any) error {
	tx.AfterCommit(func() {
		r.msgs = append(r.msgs, sent{to, method, requestID})
		r.payloads = append(r.payloads, p)
	})
	return nil
}

// TestPlacedRecordsTheChildsAcceptance: Placed puts the state a child
// would send on acceptance into the copy (its cell, BaseVersion+1,
// building and scheduling); an older placement changes nothing; a build
// placed again elsewhere while its delete is pending takes the delete
// with it.
func TestPlacedRecordsTheChildsAcceptance(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
			t.Fatal(err)
		}
		const u = "44444444-0000-4000-8000-000000000001"
		in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
			FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling"}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, []apidb.Instance{in}) }); err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		h := &apicopy.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
		placed := func(child string, base int64) {
			t.Helper()
			b := &wire.BuildInstances{Instances: []wire.InstanceSpec{in.InstanceSpec}, BaseVersion: base, Recorded: true}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.Placed(ctx, tx, child, "req-1", b) }); err != nil {
				t.Fatalf("Placed(%s, %d): %v", child, base, err)
			}
		}
		copyIs := func(what, cell string, version int64) {
			t.Helper()
			got, err := apidb.Get(ctx, d, u)
			if err != nil {
				t.Fatal(err)
			}
			if got.Cell != cell || got.Version != version || got.VMState != "building" || got.TaskState != "scheduling" {
				t.Errorf("%s: copy in %q at version %d, %s/%s; want %q at %d, building/scheduling", what, got.Cell, got.Version,
					got.VMState, got.TaskState, cell, version)
			}
		}

		placed("api!c1", 0)
		copyIs("placed in c1", "api!c1", 1)
		placed("api!c2", 0)
		copyIs("an older placement", "api!c1", 1)
		if len(rec.msgs) != 0 {
			t.Fatalf("sent %v, want nothing", rec.msgs)
		}

		// c1 hands it back (at version 3) while a delete waits; c2 takes it.
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.MarkDeleting(ctx, tx, u, t0) }); err != nil {
			t.Fatal(err)
		}
		placed("api!c2", 3)
		got, _ := apidb.Get(ctx, d, u)
		if got.Cell != "api!c2" || got.Version != 4 {
			t.Errorf("placed again: copy in %q at %d, want api!c2 at 4", got.Cell, got.Version)
		}
		want := sent{"api!c2", wire.MethodDeleteInstances, "req-1"}
		if len(rec.msgs) != 1 || rec.msgs[0] != want {
			t.Errorf("sent %v, want %v", rec.msgs, want)
		}
	})
}

// TestStaleCellIsToldToDelete: a build placed in c2 after c1 did not take
// it in time is fenced (cells.FenceStep). If c1 took the first message
// after all, its states lose, and c1 is sent delete_instances for them:
// once per update, by the ordinary path and by the heal's quick check
// alike, with the instances of one cell in one message. Its deletion is
// not applied and sends nothing; nor do states from c2, the copy's cell.
// Two repeats of a stale update send two deletes, which c1 takes as one
// (an instance already deleting is skipped).
func TestStaleCellIsToldToDelete(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
			t.Fatal(err)
		}
		uuids := []string{"44444444-0000-4000-8000-000000000002", "44444444-0000-4000-8000-000000000003"}
		var specs []wire.InstanceSpec
		for _, u := range uuids {
			in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
				FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling"}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, []apidb.Instance{in}) }); err != nil {
				t.Fatal(err)
			}
			specs = append(specs, in.InstanceSpec)
		}
		rec := &recorder{}
		h := &apicopy.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
		for _, p := range []struct {
			cell string
			base int64
		}{{"api!c1", 0}, {"api!c2", 1 << 32}} {
			b := &wire.BuildInstances{Instances: specs, BaseVersion: p.base, Recorded: true}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.Placed(ctx, tx, p.cell, "req-1", b) }); err != nil {
				t.Fatal(err)
			}
		}
		update := func(heal bool, sts ...wire.InstanceState) {
			t.Helper()
			payload, err := json.Marshal(&wire.InstanceUpdate{Instances: sts, Heal: heal})
			if err != nil {
				t.Fatal(err)
			}
			env := &wire.Envelope{ID: "m", Method: wire.MethodInstanceUpdate, Version: wire.V1, Kind: wire.Targeted, Target: "api",
				Sender: "api!c1", Route: []string{"api!c1"}, RequestID: "req-2", Payload: payload}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.InstanceUpdate(ctx, tx, env) }); err != nil {
				t.Fatal(err)
			}
		}
		active := func(cell, u string, v int64) wire.InstanceState {
			return wire.InstanceState{UUID: u, Cell: cell, Version: v, VMState: "active"}
		}
		del := wire.DeleteInstances{UUIDs: uuids}
		for _, heal := range []bool{false, true} {
			rec.msgs, rec.payloads = nil, nil
			update(heal, active("api!c1", uuids[0], 4), active("api!c1", uuids[1], 4))
			want := sent{"api!c1", wire.MethodDeleteInstances, "req-2"}
			if len(rec.msgs) != 1 || rec.msgs[0] != want || !reflect.DeepEqual(rec.payloads[0], &del) {
				t.Errorf("heal=%v: sent %v %v, want one %v of both", heal, rec.msgs, rec.payloads, want)
			}
		}
		rec.msgs = nil
		for _, heal := range []bool{false, true} {
			update(heal, wire.InstanceState{UUID: uuids[0], Cell: "api!c1", Version: 6, VMState: "deleted", Deleted: true})
			update(heal, active("api!c2", uuids[1], 1<<32+1))
		}
		if len(rec.msgs) != 0 {
			t.Errorf("the stale cell's deletion sent %v, want nothing", rec.msgs)
		}
		for _, u := range uuids {
			got, err := apidb.Get(ctx, d, u)
			if err != nil || got.Deleted || got.Cell != "api!c2" || got.Version != 1<<32+1 {
				t.Errorf("%s: copy %+v (%v), want live in api!c2 at the fenced version", u, got, err)
			}
		}
	})
}

// TestRoutingCellsOwnBuildFencesItsChild: a routing cell with hosts of its
// own (api!r1) sent a build to its child (api!r1!c1), which did not prove
// alive in time, so r1 placed the build on its own hosts, fenced; the child
// had built it all the same. The instance must end in one cell, r1, whose
// versions are above the child's, though the child is below the cell the
// API recorded the placement in. The fault suite found both orders:
//
//   - the child's states first, then a user's delete done by the child, then
//     r1's live state: r1 is told to delete its own (it was left live for
//     ever when states from cells below or above the copy's were trusted);
//   - r1's state first, while the child's copy is live: the child is told to
//     delete at once (the copy moved up from it), and again for each later
//     live state of its, and its deletion does not delete the copy.
func TestRoutingCellsOwnBuildFencesItsChild(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
			t.Fatal(err)
		}
		const r1, c1 = "api!r1", "api!r1!c1"
		const fenced = 1 + 1<<32 // r1's base after it placed the build again
		rec := &recorder{}
		h := &apicopy.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
		newInstance := func(u string) {
			in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
				FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling"}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, []apidb.Instance{in}) }); err != nil {
				t.Fatal(err)
			}
			b := &wire.BuildInstances{Instances: []wire.InstanceSpec{in.InstanceSpec}, Recorded: true}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.Placed(ctx, tx, r1, "req-1", b) }); err != nil {
				t.Fatal(err)
			}
		}
		update := func(st wire.InstanceState) []sent {
			t.Helper()
			rec.msgs, rec.payloads = nil, nil
			payload, err := json.Marshal(&wire.InstanceUpdate{Instances: []wire.InstanceState{st}})
			if err != nil {
				t.Fatal(err)
			}
			env := &wire.Envelope{ID: "m", Method: wire.MethodInstanceUpdate, Version: wire.V1, Kind: wire.Targeted, Target: "api",
				Sender: st.Cell, Route: []string{st.Cell}, RequestID: "req-2", Payload: payload}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.InstanceUpdate(ctx, tx, env) }); err != nil {
				t.Fatal(err)
			}
			return rec.msgs
		}
		state := func(cell, u string, v int64, vm string) wire.InstanceState {
			return wire.InstanceState{UUID: u, Cell: cell, Version: v, VMState: vm, Deleted: vm == "deleted"}
		}
		deleteAt := func(cell string) []sent { return []sent{{cell, wire.MethodDeleteInstances, "req-2"}} }

		// The child's states first.
		u := "55555555-0000-4000-8000-000000000001"
		newInstance(u)
		if got := update(state(c1, u, 2, "active")); len(got) != 0 {
			t.Errorf("the child's first state (the placement was recorded at its parent) sent %v, want nothing", got)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			cur, err := apidb.Get(ctx, tx, u)
			if err != nil {
				return err
			}
			return apicopy.Delete(ctx, tx, rec, cur, "req-3", t0)
		}); err != nil {
			t.Fatal(err)
		}
		if got := update(state(c1, u, 3, "deleted")); len(got) != 0 {
			t.Errorf("the child's deletion sent %v", got)
		}
		if got := update(state(r1, u, fenced+1, "active")); !reflect.DeepEqual(got, deleteAt(r1)) {
			t.Errorf("r1's own build of a deleted instance: sent %v, want %v", got, deleteAt(r1))
		}
		if in, err := apidb.Get(ctx, d, u); err != nil || !in.Deleted {
			t.Errorf("copy %+v (%v), want deleted", in, err)
		}

		// r1's state first.
		u = "55555555-0000-4000-8000-000000000002"
		newInstance(u)
		update(state(c1, u, 2, "active"))
		if got := update(state(r1, u, fenced+1, "active")); !reflect.DeepEqual(got, deleteAt(c1)) {
			t.Errorf("r1's fenced state over the child's: sent %v, want %v", got, deleteAt(c1))
		}
		if got := update(state(c1, u, 3, "active")); !reflect.DeepEqual(got, deleteAt(c1)) {
			t.Errorf("a later state of the child: sent %v, want %v", got, deleteAt(c1))
		}
		if got := update(state(c1, u, 4, "deleted")); len(got) != 0 {
			t.Errorf("the child's deletion sent %v", got)
		}
		if in, err := apidb.Get(ctx, d, u); err != nil || in.Deleted || in.Cell != r1 || in.Version != fenced+1 {
			t.Errorf("copy %+v (%v), want live in %s at v%d", in, err, r1, int64(fenced+1))
		}
	})
}
