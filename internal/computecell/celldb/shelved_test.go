package celldb_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestShelvedBefore lists the live SHELVED instances with no task and no
// pending action changed before the cutoff, oldest first; on SQLite it
// reads them through the partial index instances_shelved, which holds
// no other instance.
func TestShelvedBefore(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		var insts []celldb.Instance
		for i, vm := range []string{"shelved", "shelved", "active", "shelved", "shelved", "shelved"} {
			insts = append(insts, celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: fmt.Sprintf("u%d", i), Name: "vm", ProjectID: "p",
				UserID: "u", ImageRef: "img", CreatedAt: t0}, VMState: vm, Host: "h1"})
		}
		insts[3].TaskState = "unshelving"
		for i, in := range insts {
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				return celldb.Insert(ctx, tx, []celldb.Instance{in}, t0.Add(time.Duration(5-i)*time.Minute))
			}); err != nil {
				t.Fatal(err)
			}
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE instances SET action = 'unshelve' WHERE uuid = 'u4'`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE instances SET deleted = 1 WHERE uuid = 'u1'`)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		got, err := celldb.ShelvedBefore(ctx, d, t0.Add(5*time.Minute), 10)
		if err != nil || !slices.Equal(got, []string{"u5"}) {
			t.Errorf("shelved before t0+5m: %v (%v), want [u5]", got, err)
		}
		got, err = celldb.ShelvedBefore(ctx, d, t0.Add(6*time.Minute), 10)
		if err != nil || !slices.Equal(got, []string{"u5", "u0"}) {
			t.Errorf("shelved before t0+6m: %v (%v), want [u5 u0]", got, err)
		}
		if d.Dialect != db.SQLite {
			return
		}
		rows, err := d.Query(ctx, `EXPLAIN QUERY PLAN SELECT uuid FROM instances WHERE vm_state = 'shelved' AND deleted = 0 AND updated_at < ?
			AND task_state || '' = '' AND action || '' = '' ORDER BY updated_at LIMIT ?`, int64(0), 10)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if p := strings.Join(plan, "; "); !strings.Contains(p, "instances_shelved") {
			t.Errorf("query plan %q does not use instances_shelved", p)
		}
	})
}
