package apicopy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestVolumeUpdate: the handler applies states by version (a redelivered
// message changes nothing), names the copy's cell from the first state,
// and a heal resend of what the copy holds is a no-op; a bad payload is a
// bad message.
func TestVolumeUpdate(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, voldb.MigrationSet, voldb.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return voldb.Create(ctx, tx, &voldb.Volume{ID: "v1", ProjectID: "p", UserID: "u", SizeGB: 1, Status: "creating", CreatedAt: t0})
		}); err != nil {
			t.Fatal(err)
		}
		h := &apicopy.Handlers{Sender: &recorder{}, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
		deliver := func(u wire.VolumeUpdate) error {
			p, _ := json.Marshal(u)
			return d.InTx(ctx, func(tx *db.Tx) error {
				return h.VolumeUpdate(ctx, tx, &wire.Envelope{Method: wire.MethodVolumeUpdate, RequestID: "req-1", Payload: p})
			})
		}
		u := wire.VolumeUpdate{Volumes: []wire.VolumeState{{ID: "v1", Cell: "api!c1", Version: 1, Status: "available", SizeGB: 1}}}
		for range 2 { // delivered twice
			if err := deliver(u); err != nil {
				t.Fatal(err)
			}
		}
		v, err := voldb.Get(ctx, d, "v1")
		if err != nil || v.Status != "available" || v.Cell != "api!c1" || v.Version != 1 {
			t.Fatalf("copy %+v %v", v, err)
		}
		// The API accepted an extend; the heal resend of version 1 does not undo it.
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: "v1", From: []string{"available"}, To: "extending", Now: t0})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		u.Heal = true
		if err := deliver(u); err != nil {
			t.Fatal(err)
		}
		if v, _ := voldb.Get(ctx, d, "v1"); v.Status != "extending" {
			t.Errorf("a heal resend replaced the API's status: %+v", v)
		}
		// The cell's answer (newer) replaces it, with a fault logged.
		if err := deliver(wire.VolumeUpdate{Volumes: []wire.VolumeState{{ID: "v1", Cell: "api!c1", Version: 2, Status: "error_extending", SizeGB: 1, Fault: "no room"}}}); err != nil {
			t.Fatal(err)
		}
		if v, _ := voldb.Get(ctx, d, "v1"); v.Status != "error_extending" || v.Version != 2 {
			t.Errorf("after the cell's answer: %+v", v)
		}
		err = d.InTx(ctx, func(tx *db.Tx) error {
			return h.VolumeUpdate(ctx, tx, &wire.Envelope{Method: wire.MethodVolumeUpdate, Payload: []byte("{")})
		})
		if we, ok := err.(*wire.Error); !ok || we.Code != wire.CodeBadMessage {
			t.Errorf("bad payload: %v", err)
		}
	})
}
