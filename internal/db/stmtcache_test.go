package db_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestStatementCache: SQLite statements are compiled once per connection
// and handed out again, and a statement whose rows are still open is not
// handed out twice: a query nested in the iteration of the same query
// gets a statement of its own, and both read their own rows.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			return err
		}
		for i := range 5 {
			if _, err := tx.Exec(ctx, `INSERT INTO t (k, v) VALUES (?, ?)`, i, "v"); err != nil {
				return err
			}
		}
		const q = `SELECT k FROM t WHERE k >= ? ORDER BY k`
		rows, err := tx.Query(ctx, q, 0)
		if err != nil {
			return err
		}
		defer rows.Close()
		outer := 0
		for rows.Next() {
			var k int
			if err := rows.Scan(&k); err != nil {
				return err
			}
			inner := 0
			in, err := tx.Query(ctx, q, k)
			if err != nil {
				return err
			}
			for in.Next() {
				inner++
			}
			in.Close()
			if inner != 5-k {
				t.Errorf("nested query from %d read %d rows, want %d", k, inner, 5-k)
			}
			outer++
		}
		if outer != 5 {
			t.Errorf("outer query read %d rows, want 5", outer)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	// The cached statement works again, in a new transaction.
	for range 3 {
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM t WHERE k >= ?`, 2).Scan(&n); err != nil || n != 3 {
			t.Fatalf("count: %d, %v", n, err)
		}
	}
}

// TestSavepoints: rolling back to a savepoint undoes the statements and
// the AfterCommit work registered since, and the rest of the transaction
// commits (the inbox's group commit relies on it), on every engine.
func TestSavepoints(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		ran := map[string]bool{}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `CREATE TABLE sp (k TEXT PRIMARY KEY)`); err != nil {
				return err
			}
			for _, k := range []string{"a", "b", "c"} {
				if err := tx.Savepoint(ctx, "m_"+k); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO sp (k) VALUES (?)`, k); err != nil {
					return err
				}
				tx.AfterCommit(func() { ran[k] = true })
				if k == "b" {
					if err := tx.RollbackTo(ctx, "m_"+k); err != nil {
						return err
					}
				}
				if err := tx.Release(ctx, "m_"+k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		rows, err := d.Query(ctx, `SELECT k FROM sp ORDER BY k`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		if strings.Join(keys, ",") != "a,c" || !ran["a"] || ran["b"] || !ran["c"] {
			t.Errorf("after rolling b back: rows %v, after-commit work %v", keys, ran)
		}
	})
}
