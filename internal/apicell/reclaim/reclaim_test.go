package reclaim_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/reclaim"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// sent records the messages a reclaim sends, in the transaction's
// database, as the outbox would.
type sent struct{ deletes map[string][]string }

func (s *sent) Send(_ context.Context, _ *db.Tx, to, method, _ string, payload any) error {
	if method != wire.MethodDeleteInstances {
		return nil
	}
	b, _ := json.Marshal(payload)
	var d wire.DeleteInstances
	_ = json.Unmarshal(b, &d)
	s.deletes[to] = append(s.deletes[to], d.UUIDs...)
	return nil
}

// TestOnceReclaimsOnlyWhatHasWaitedAndOnlyOnce: servers soft-deleted
// longer ago than the interval are deleted for good, once (a second round,
// or a second process, finds nothing more); one soft-deleted lately, one
// being restored and one active are left alone.
func TestOnceReclaimsOnlyWhatHasWaitedAndOnlyOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		f := apidb.DefaultFlavors[0]
		for _, c := range []struct {
			uuid, vm, task string
			at             time.Time
		}{
			{"old", "soft-delete", "", t0},
			{"recent", "soft-delete", "", t0.Add(50 * time.Minute)},
			{"restoring", "soft-delete", "restoring", t0},
			{"running", "active", "", t0},
		} {
			in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: c.uuid, Name: c.uuid, ProjectID: "p", UserID: "u", ImageRef: "i", CreatedAt: t0},
				FlavorID: f.ID, Flavor: f, VMState: "building", TaskState: "scheduling"}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, []apidb.Instance{in}) }); err != nil {
				t.Fatal(err)
			}
			if _, err := d.Exec(ctx, `UPDATE instances SET vm_state = ?, task_state = ?, cell_path = 'api!c1', host = 'h1', updated_at = ? WHERE uuid = ?`,
				c.vm, c.task, db.Micros(c.at), c.uuid); err != nil {
				t.Fatal(err)
			}
		}
		s := &sent{deletes: map[string][]string{}}
		r, err := reclaim.New(reclaim.Config{DB: d, Sender: s, Interval: time.Hour, Now: func() time.Time { return t0.Add(90 * time.Minute) }})
		if err != nil {
			t.Fatal(err)
		}
		n, err := r.Once(ctx)
		if err != nil || n != 1 {
			t.Fatalf("first round: %d reclaimed, %v; want 1", n, err)
		}
		if got := s.deletes["api!c1"]; len(got) != 1 || got[0] != "old" {
			t.Errorf("deletes sent: %v, want [old] to api!c1", s.deletes)
		}
		if n, err := r.Once(ctx); err != nil || n != 0 {
			t.Errorf("second round: %d reclaimed, %v; want 0", n, err)
		}
		for u, want := range map[string]bool{"old": true, "recent": false, "restoring": false, "running": false} {
			in, err := apidb.Get(ctx, d, u)
			if err != nil || in.DeleteRequested != want {
				t.Errorf("%s: delete requested %v (%v), want %v", u, in != nil && in.DeleteRequested, err, want)
			}
		}
	})
}
