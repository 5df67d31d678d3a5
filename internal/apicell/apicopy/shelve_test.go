package apicopy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// images records what the handlers ask of the image store, in
// transactions that committed.
type images struct {
	stored, dropped, deleted []string
}

func (s *images) StoreData(_ context.Context, tx *db.Tx, id string, _ []byte) error {
	tx.AfterCommit(func() { s.stored = append(s.stored, id) })
	return nil
}

func (s *images) DropSnapshot(_ context.Context, tx *db.Tx, id string) error {
	tx.AfterCommit(func() { s.dropped = append(s.dropped, id) })
	return nil
}

func (s *images) DeleteImage(_ context.Context, tx *db.Tx, id string) error {
	tx.AfterCommit(func() { s.deleted = append(s.deleted, id) })
	return nil
}

// TestShelvedImageGoesWithTheShelve: the copy names the image a shelve
// made until the update that ends the unshelve (ACTIVE after SHELVED or
// SHELVED_OFFLOADED, while unshelving or spawning) or the deletion
// arrives: that update deletes the image, once (the same update again, or
// a later one, is held or finds no image named). Other updates (the
// shelve's own, a reset to error or to active) keep it. A failed snapshot deletes the image and the copy forgets it; the
// same failure arriving twice changes nothing more (the store is asked
// again and answers as it does for an image already gone).
func TestShelvedImageGoesWithTheShelve(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
			t.Fatal(err)
		}
		const u = "44444444-0000-4000-8000-0000000000a1"
		in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
			FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "active"}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, []apidb.Instance{in}) }); err != nil {
			t.Fatal(err)
		}
		store := &images{}
		h := &apicopy.Handlers{Sender: &recorder{}, Images: store, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
		version := int64(1)
		var last *wire.Envelope
		apply := func(env *wire.Envelope) {
			t.Helper()
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.InstanceUpdate(ctx, tx, env) }); err != nil {
				t.Fatal(err)
			}
		}
		update := func(vm, task string, deleted bool) {
			t.Helper()
			version++
			payload, _ := json.Marshal(&wire.InstanceUpdate{Instances: []wire.InstanceState{
				{UUID: u, Cell: "api!c1", Version: version, VMState: vm, TaskState: task, Deleted: deleted}}})
			last = &wire.Envelope{ID: "m", Method: wire.MethodInstanceUpdate, Version: wire.V1, Kind: wire.Targeted, Target: "api",
				Sender: "api!c1", Route: []string{"api!c1"}, RequestID: "req-u", Payload: payload}
			apply(last)
		}
		shelve := func(image string) {
			t.Helper()
			if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.SetShelvedImage(ctx, tx, u, image) }); err != nil {
				t.Fatal(err)
			}
		}
		named := func(what, want string) {
			t.Helper()
			got, err := apidb.Get(ctx, d, u)
			if err != nil {
				t.Fatal(err)
			}
			if got.ShelvedImageID != want {
				t.Errorf("%s: the copy names shelved image %q, want %q", what, got.ShelvedImageID, want)
			}
		}
		deleted := func(what string, want ...string) {
			t.Helper()
			if !slices.Equal(store.deleted, want) {
				t.Errorf("%s: deleted images %v, want %v", what, store.deleted, want)
			}
		}
		snapshotDone := func(image string, failed bool) {
			t.Helper()
			payload, _ := json.Marshal(&wire.SnapshotDone{ImageID: image, UUID: u, Failed: failed})
			env := &wire.Envelope{ID: "s", Method: wire.MethodSnapshotDone, Payload: payload, RequestID: "req-s"}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.SnapshotDone(ctx, tx, env) }); err != nil {
				t.Fatal(err)
			}
		}

		// A shelve offloads, and the unshelve ends ACTIVE: the image goes.
		shelve("img-1")
		update("active", "shelving", false)
		snapshotDone("img-1", false)
		update("shelved_offloaded", "", false)
		update("shelved_offloaded", "spawning", false)
		named("shelved", "img-1")
		deleted("while shelved")
		update("active", "", false)
		named("unshelved", "")
		deleted("unshelved", "img-1")
		apply(last)
		deleted("the same update again", "img-1")
		update("active", "", false)
		deleted("a later update", "img-1")

		// A SHELVED server powered on by its unshelve: the image goes.
		shelve("img-5")
		update("shelved", "", false)
		update("shelved", "unshelving", false)
		update("active", "", false)
		named("unshelved in place", "")
		deleted("unshelved in place", "img-1", "img-5")

		// A SHELVED server reset to active, or to error, keeps its image;
		// its deletion deletes it.
		shelve("img-2")
		update("shelved", "", false)
		update("active", "", false)
		named("reset to active", "img-2")
		update("shelved", "", false)
		update("error", "", false)
		named("reset to error", "img-2")
		update("deleted", "", true)
		named("deleted", "")
		deleted("deleted", "img-1", "img-5", "img-2")
		apply(last)
		deleted("the deletion again", "img-1", "img-5", "img-2")

		// A failed snapshot: the image is dropped and the copy forgets it,
		// once; the failure again changes nothing more.
		const u2 = "44444444-0000-4000-8000-0000000000a2"
		in.UUID = u2
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, []apidb.Instance{in}) }); err != nil {
			t.Fatal(err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.SetShelvedImage(ctx, tx, u2, "img-3") }); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			payload, _ := json.Marshal(&wire.SnapshotDone{ImageID: "img-3", UUID: u2, Failed: true})
			env := &wire.Envelope{ID: "f", Method: wire.MethodSnapshotDone, Payload: payload, RequestID: "req-f"}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.SnapshotDone(ctx, tx, env) }); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := apidb.Get(ctx, d, u2); err != nil || got.ShelvedImageID != "" {
			t.Errorf("after a failed snapshot the copy names %q (%v)", got.ShelvedImageID, err)
		}
		if !slices.Equal(store.dropped, []string{"img-3", "img-3"}) || len(store.deleted) != 3 {
			t.Errorf("a failed snapshot dropped %v and deleted %v", store.dropped, store.deleted)
		}
		// A failure for another image than the one named (an older
		// shelve's, late) leaves the named one.
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.SetShelvedImage(ctx, tx, u2, "img-4") }); err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(&wire.SnapshotDone{ImageID: "img-3", UUID: u2, Failed: true})
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return h.SnapshotDone(ctx, tx, &wire.Envelope{ID: "f2", Method: wire.MethodSnapshotDone, Payload: payload})
		}); err != nil {
			t.Fatal(err)
		}
		if got, _ := apidb.Get(ctx, d, u2); got.ShelvedImageID != "img-4" {
			t.Errorf("a late failure of another image cleared %q", got.ShelvedImageID)
		}
	})
}
