package db_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestQueryAllAnswersEachQueryInTurn: QueryAll runs its queries in order
// after the statements queued before them, each seeing the effects of
// those before it, and answers each as QueryRow would (its first row, or
// sql.ErrNoRows); on PostgreSQL all of it is one round trip.
func TestQueryAllAnswersEachQueryInTurn(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		createKV(t, d)
		trips := d.RoundTrips()
		var answers []db.Answer
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := tx.ExecLater(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "a", "1"); err != nil {
				return err
			}
			answers = tx.QueryAll(ctx, []db.Query{
				{SQL: `UPDATE kv SET v = ? WHERE k = ? RETURNING v, k = 'a', LENGTH(v)`, Args: []any{"22", "a"}},
				{SQL: `SELECT v, NULL FROM kv WHERE k = ?`, Args: []any{"a"}},
				{SQL: `SELECT v FROM kv WHERE k = ?`, Args: []any{"none"}},
				{SQL: `SELECT COUNT(*) FROM kv`},
			})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n := d.RoundTrips() - trips; d.Dialect == db.Postgres && n != 2 {
			t.Errorf("%d round trips, want 2 (the insert and the queries, the commit)", n)
		}
		var v string
		var isA bool
		var n int64
		if err := answers[0].Scan(&v, &isA, &n); err != nil || v != "22" || !isA || n != 2 {
			t.Errorf("the update: %q %v %d, %v; want 22 true 2", v, isA, n, err)
		}
		var none *string
		if err := answers[1].Scan(&v, &none); err != nil || v != "22" || none != nil {
			t.Errorf("the read after it: %q %v, %v; want the update's 22 and NULL", v, none, err)
		}
		if err := answers[2].Scan(&v); !errors.Is(err, sql.ErrNoRows) {
			t.Errorf("a query without rows: %v, want sql.ErrNoRows", err)
		}
		var count int
		if err := answers[3].Scan(&count); err != nil || count != 1 {
			t.Errorf("the count: %d, %v", count, err)
		}
		if err := answers[3].Scan(&count, &v); err == nil {
			t.Error("two destinations for one column: no error")
		}
	})
}

// TestQueryAllFailsTheTransactionWithAQuery: a query that fails answers
// its error (on PostgreSQL those after it too), which fails the
// transaction: nothing of it is kept. On PostgreSQL a caller that goes on
// has its commit refused (ErrRolledBack).
func TestQueryAllFailsTheTransactionWithAQuery(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		createKV(t, d)
		var answers []db.Answer
		err := d.InTx(ctx, func(tx *db.Tx) error {
			answers = tx.QueryAll(ctx, []db.Query{
				{SQL: `INSERT INTO kv (k, v) VALUES (?, ?) RETURNING k`, Args: []any{"a", "1"}},
				{SQL: `INSERT INTO kv (k, v) VALUES (?, ?) RETURNING k`, Args: []any{"a", "2"}},
				{SQL: `SELECT COUNT(*) FROM kv`},
			})
			if d.Dialect == db.Postgres {
				if err := answers[2].Scan(new(int)); err == nil {
					return errors.New("a query after the failed one answered")
				}
			}
			return answers[1].Scan(new(string))
		})
		if err == nil {
			t.Fatal("the transaction committed")
		}
		if !db.IsUniqueViolation(err) {
			t.Errorf("the transaction's error %v: want the unique violation", err)
		}
		var k string
		if err := answers[0].Scan(&k); err != nil || k != "a" {
			t.Errorf("the first insert answered %q, %v", k, err)
		}
		if n := countKV(t, d); n != 0 {
			t.Errorf("%d rows kept", n)
		}
		if d.Dialect != db.Postgres {
			return
		}
		err = d.InTx(ctx, func(tx *db.Tx) error {
			tx.QueryAll(ctx, []db.Query{{SQL: `SELECT CAST(? AS INTEGER)`, Args: []any{"x"}}})
			return nil
		})
		if !errors.Is(err, db.ErrRolledBack) {
			t.Errorf("a caller going on after a failed query: %v, want ErrRolledBack", err)
		}
	})
}

// TestDBQueryAllReadsInOneRoundTrip: outside a transaction QueryAll
// answers each query with all its rows (Each), on PostgreSQL in one round
// trip; a query that fails as it runs answers its error alone when it is
// the last (one PostgreSQL cannot even prepare fails them all, none run).
func TestDBQueryAllReadsInOneRoundTrip(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		createKV(t, d)
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			for _, k := range []string{"a", "b", "c"} {
				if err := tx.ExecLater(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, k, k+k); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		// A query that fails as it runs: SQLite's casts do not fail, and
		// its statements are prepared as they run.
		failing := `SELECT no_such_column FROM kv`
		if d.Dialect == db.Postgres {
			failing = `SELECT CAST(v AS INTEGER) FROM kv`
		}
		trips := d.RoundTrips()
		read := d.QueryAll(ctx, []db.Query{
			{SQL: `SELECT k, v FROM kv WHERE k <> ? ORDER BY k`, Args: []any{"b"}},
			{SQL: `SELECT v FROM kv WHERE k = ?`, Args: []any{"b"}},
			{SQL: `SELECT v FROM kv WHERE k = ?`, Args: []any{"none"}},
			{SQL: failing},
		})
		if n := d.RoundTrips() - trips; d.Dialect == db.Postgres && n != 1 {
			t.Errorf("%d round trips, want 1", n)
		}
		var got []string
		if err := read[0].Each(func(r db.Scanner) error {
			var k, v string
			err := r.Scan(&k, &v)
			got = append(got, k+"="+v)
			return err
		}); err != nil || len(got) != 2 || got[0] != "a=aa" || got[1] != "c=cc" {
			t.Errorf("the first query's rows: %v, %v", got, err)
		}
		var v string
		if err := read[1].Scan(&v); err != nil || v != "bb" {
			t.Errorf("the second: %q, %v", v, err)
		}
		if err := read[2].Scan(&v); !errors.Is(err, sql.ErrNoRows) {
			t.Errorf("a query without rows: %v, want sql.ErrNoRows", err)
		}
		if err := read[2].Each(func(db.Scanner) error { return errors.New("called") }); err != nil {
			t.Errorf("Each of no rows: %v", err)
		}
		if err := read[3].Scan(&v); err == nil {
			t.Error("a failed query answered")
		}
	})
}
