package apicopy_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)

type sent struct{ to, method, requestID string }

// recorder keeps what was sent in transactions that committed.
type recorder struct{ msgs []sent }

func (r *recorder) Send(_ context.Context, tx *db.Tx, to, method, requestID string, _ any) error {
	tx.AfterCommit(func() { r.msgs = append(r.msgs, sent{to, method, requestID}) })
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
