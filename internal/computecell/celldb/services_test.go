package celldb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestServicesAndAudit: a compute host's service shares its node's
// heartbeat and goes down when forced; disabling it takes its node out of
// scheduling; it cannot be deleted while it holds instances; the usage
// audit counts the instances that lived on a host in a period (deleted
// ones too), and runs once per host and period.
func TestServicesAndAudit(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		register(t, d, node("h1", 4), t0)
		register(t, d, node("h2", 4), t0)
		var svc celldb.Service
		err := d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			if svc, err = celldb.RegisterService(ctx, tx, "h1", celldb.BinaryCompute, t0); err != nil {
				return err
			}
			_, err = celldb.RegisterService(ctx, tx, "h2", celldb.BinaryCompute, t0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !svc.LastSeen.Equal(t0) || !svc.Up(t0.Add(time.Minute), time.Minute) || svc.Up(t0.Add(61*time.Second), time.Minute) || svc.Topic != "compute" {
			t.Errorf("registered service %+v", svc)
		}
		if err := celldb.Heartbeat(ctx, d, []string{"h1"}, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := celldb.GetService(ctx, d, svc.ID, "")
		if err != nil || !got.LastSeen.Equal(t0.Add(time.Hour)) {
			t.Errorf("a compute service's heartbeat is its node's: %+v %v", got, err)
		}
		yes := true
		err = d.InTx(ctx, func(tx *db.Tx) error {
			_, err := celldb.UpdateService(ctx, tx, svc.ID, celldb.ServiceChange{Disabled: &yes}, t0)
			return err
		})
		if err != nil || getNode(t, d, "h1").Enabled {
			t.Errorf("disabling the service leaves its node enabled (%v)", err)
		}

		// h1 holds an instance launched in June, deleted in July.
		uuids := insertInstances(t, d, 1)
		june, july := time.Date(2026, 6, 10, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 2, 0, 0, 0, 0, time.UTC)
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE instances SET host = 'h1', launched_at = ? WHERE uuid = ?`, db.Micros(june), uuids[0])
			return err
		}); err != nil {
			t.Fatal(err)
		}
		err = d.InTx(ctx, func(tx *db.Tx) error { _, err := celldb.DeleteService(ctx, tx, svc.ID); return err })
		if !errors.Is(err, celldb.ErrHostHasInstances) {
			t.Errorf("delete a service whose host has an instance: %v", err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE instances SET deleted = 1, deleted_at = ? WHERE uuid = ?`, db.Micros(july), uuids[0])
			return err
		}); err != nil {
			t.Fatal(err)
		}
		clock := func() time.Time { return t0 }
		for _, c := range []struct {
			host       string
			begin, end time.Time
			want       int
		}{
			{"h1", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), 1},
			{"h1", time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), 1},
			{"h1", time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), 0},
			{"h1", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), 0},
			{"h2", time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC), 0},
		} {
			ran, err := celldb.AuditHost(ctx, d, c.host, c.begin, c.end, clock)
			if err != nil || !ran {
				t.Fatalf("audit %s %v: ran %v, %v", c.host, c.begin, ran, err)
			}
			if again, err := celldb.AuditHost(ctx, d, c.host, c.begin, c.end, clock); err != nil || again {
				t.Errorf("a second audit of %s %v ran (%v)", c.host, c.begin, err)
			}
			logs, err := celldb.TaskLogs(ctx, d, c.begin, c.end)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, l := range logs {
				if l.Host == c.host {
					found = true
					if l.State != "DONE" || l.Items != c.want {
						t.Errorf("audit of %s for %v: %+v, want %d instances", c.host, c.begin, l, c.want)
					}
				}
			}
			if !found {
				t.Errorf("no task log for %s %v", c.host, c.begin)
			}
		}
		// Deleted, the host's service goes with its node.
		if err := d.InTx(ctx, func(tx *db.Tx) error { _, err := celldb.DeleteService(ctx, tx, svc.ID); return err }); err != nil {
			t.Fatal(err)
		}
		if _, err := celldb.GetService(ctx, d, svc.ID, ""); !errors.Is(err, celldb.ErrServiceNotFound) {
			t.Errorf("deleted service: %v", err)
		}
		if ns, _ := celldb.ListNodes(ctx, d); len(ns) != 1 || ns[0].Host != "h2" {
			t.Errorf("nodes after the delete: %+v", ns)
		}
	})
}
