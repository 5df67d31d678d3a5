package compute

import (
	"context"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The creates that db.Group commits in one transaction take a project's
// quota lock and read its limits once: the second create's check runs no
// statement. A rollback to a savepoint undoes the lock taken under it
// (PostgreSQL releases it), so the next check takes it, and reads the
// limits, again.
func TestQuotaLockAndLimitsOncePerTransaction(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		h := &quotaChecker{defaults: quota.Defaults{Instances: quota.Unlimited, Cores: quota.Unlimited, RAM: quota.Unlimited}}
		f := wire.Flavor{ID: "1", VCPUs: 1, RAMMB: 512}
		// advisory counts the advisory locks this transaction holds.
		advisory := func(tx *db.Tx) int {
			if tx.Dialect != db.Postgres {
				return 0
			}
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		check := func(tx *db.Tx) int64 {
			t.Helper()
			before := d.Statements()
			n, err := h.fitInstances(ctx, tx, "p1", "u1", f, 1, 3)
			if err != nil || n != 3 {
				t.Fatalf("fitInstances = %d, %v; want 3, nil", n, err)
			}
			return d.Statements() - before
		}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			first := check(tx)
			want := int64(1) // the limits
			if tx.Dialect == db.Postgres {
				want = 2 // and the lock
			}
			if first != want {
				t.Errorf("the first check ran %d statements, want %d", first, want)
			}
			if n := check(tx); n != 0 {
				t.Errorf("the second check in the transaction ran %d statements, want 0", n)
			}
			held := advisory(tx)
			if tx.Dialect == db.Postgres && held != 1 {
				t.Errorf("%d advisory locks held after two checks, want 1", held)
			}
			if err := tx.Savepoint(ctx, "s"); err != nil {
				return err
			}
			if err := tx.RollbackTo(ctx, "s"); err != nil {
				return err
			}
			if err := tx.Release(ctx, "s"); err != nil {
				return err
			}
			// Under a savepoint rolled back, the lock goes with it.
			if err := tx.Savepoint(ctx, "s2"); err != nil {
				return err
			}
			again := check(tx)
			if again != want {
				t.Errorf("the check after a rollback to a savepoint ran %d statements, want %d", again, want)
			}
			if tx.Dialect == db.Postgres {
				if n := advisory(tx); n != 2 {
					t.Errorf("%d advisory locks held with a lock taken under a savepoint, want 2", n)
				}
				if err := tx.RollbackTo(ctx, "s2"); err != nil {
					return err
				}
				if n := advisory(tx); n != 1 {
					t.Errorf("%d advisory locks held after rolling back the savepoint, want 1: PostgreSQL kept the lock taken under it", n)
				}
				if n := check(tx); n != want {
					t.Errorf("the check after the savepoint's lock was undone ran %d statements, want %d", n, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
