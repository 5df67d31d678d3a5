package apidb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestAnUpdateWaitsForADeleteMarkedConcurrently (PostgreSQL, where
// transactions run side by side): a delete reads the cell the copy names
// and marks the copy deleting; an update that moves the instance to
// another cell (a routing cell's child reporting it) runs meanwhile. The
// update waits for the delete's transaction and sees the pending delete,
// so that it is sent on to the new cell. Found by the fault suite: the
// update read the row before the delete committed, and the delete went
// only to the old cell, which does not have the instance.
func TestAnUpdateWaitsForADeleteMarkedConcurrently(t *testing.T) {
	d := dbtest.Open(t, "postgres")
	ctx := context.Background()
	migrated(t, d)
	const u = "66666666-0000-0000-0000-000000000001"
	create(t, d, instance(u, "p1", t0))
	apply(t, d, wire.InstanceState{UUID: u, Cell: "api!r1", Version: 1, VMState: "building", TaskState: "scheduling"}, t0)

	got := make(chan apidb.Applied, 1)
	err := d.InTx(ctx, func(tx *db.Tx) error {
		// The delete, as the Compute API's handler does it.
		cur, err := apidb.GetForUpdate(ctx, tx, u)
		if err != nil {
			return err
		}
		if cur.Cell != "api!r1" {
			t.Errorf("the copy names %q", cur.Cell)
		}
		if err := apidb.MarkDeleting(ctx, tx, u, t0); err != nil {
			return err
		}
		// The update from the instance's new cell, in its own
		// transaction, until it waits for this one.
		go func() {
			got <- apply(t, d, wire.InstanceState{UUID: u, Cell: "api!r1!c1", Version: 2, VMState: "active"}, t0)
		}()
		testpoll.Eventually(t, 10*time.Second, "the update to wait for the delete's transaction", func() (bool, string) {
			var n int
			if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n); err != nil {
				return false, err.Error()
			}
			return n > 0, fmt.Sprintf("%d waiting", n)
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if a := <-got; !a.Changed || !a.Moved || !a.DeleteRequested {
		t.Errorf("the update after the delete committed: %+v, want changed, moved, and the delete seen as pending", a)
	}
}
