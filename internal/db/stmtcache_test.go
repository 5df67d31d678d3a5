package db_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db"
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
