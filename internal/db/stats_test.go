package db_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// insertFlushed inserts rows into table in a transaction whose statistics
// the server reports as it ends (pg_stat_force_next_flush), and waits
// until pg_stat_user_tables counts want changes since the last ANALYZE.
func insertFlushed(t *testing.T, d *db.DB, table string, from, to int, want int64) {
	t.Helper()
	ctx := context.Background()
	err := d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (id, v) SELECT i, 'row' FROM generate_series(?::int, ?::int) i`, from, to); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	waitChanges(t, d, table, want)
}

// waitChanges waits until pg_stat_user_tables counts want changes to
// table since its last ANALYZE.
func waitChanges(t *testing.T, d *db.DB, table string, want int64) {
	t.Helper()
	ctx := context.Background()
	testpoll.Eventually(t, 20*time.Second, fmt.Sprintf("%d changes to %s counted", want, table), func() (bool, string) {
		var n int64
		if err := d.QueryRow(ctx, `SELECT n_mod_since_analyze FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = ?`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == want, fmt.Sprintf("%d changes since the last analyze", n)
	})
}

func TestStatsKeeperAnalyzesYoungTablesAsTheyGrow(t *testing.T) {
	d := dbtest.Open(t, "postgres")
	ctx := context.Background()
	// Autovacuum off for these tables, so that only the keeper analyzes.
	for _, table := range []string{"young", "grown"} {
		if _, err := d.Exec(ctx, `CREATE TABLE `+table+` (id INTEGER PRIMARY KEY, v TEXT) WITH (autovacuum_enabled = false)`); err != nil {
			t.Fatal(err)
		}
	}
	k, err := db.NewStatsKeeper(d, time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	reltuples := func(table string) float64 {
		var n float64
		if err := d.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = to_regclass(?)`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// A table the size of a big cell's is autovacuum's: analyzed here
	// once by hand, then changed by more than a half.
	insertFlushed(t, d, "grown", 1, db.YoungRows, db.YoungRows)
	if _, err := d.Exec(ctx, `ANALYZE grown`); err != nil {
		t.Fatal(err)
	}
	insertFlushed(t, d, "grown", db.YoungRows+1, db.YoungRows+db.YoungRows*3/5, db.YoungRows*3/5)
	// A table whose rows change at a steady size is not analyzed again:
	// 300 rows, analyzed, then 1,000 updates.
	if _, err := d.Exec(ctx, `CREATE TABLE churn (id INTEGER PRIMARY KEY, v TEXT) WITH (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	insertFlushed(t, d, "churn", 1, 300, 300)
	if _, err := d.Exec(ctx, `ANALYZE churn`); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE churn SET v = ? WHERE id <= 250`, fmt.Sprint(i)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SELECT pg_stat_force_next_flush()`)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	waitChanges(t, d, "churn", 1000)

	// A new table with 200 rows, never analyzed: analyzed.
	insertFlushed(t, d, "young", 1, 200, 200)
	got, err := k.Round(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"young"}) {
		t.Fatalf("analyzed %v, want [young] (grown is left to autovacuum, churn has the size it had)", got)
	}
	if n := reltuples("young"); n != 200 {
		t.Fatalf("young: reltuples %v after the round, want 200", n)
	}
	if got, err := k.Round(ctx); err != nil || len(got) != 0 {
		t.Fatalf("a round with nothing changed analyzed %v (%v)", got, err)
	}

	// 140 rows more are fewer than 50 + 200/2: not yet; 160 are.
	// (insertFlushed waits for the inserts in n_mod_since_analyze; the
	// live rows are counted in the same report.)
	insertFlushed(t, d, "young", 201, 340, 140)
	if got, err := k.Round(ctx); err != nil || len(got) != 0 {
		t.Fatalf("140 rows changed in 200: analyzed %v (%v), want none", got, err)
	}
	insertFlushed(t, d, "young", 341, 360, 160)
	if got, err := k.Round(ctx); err != nil || !slices.Equal(got, []string{"young"}) {
		t.Fatalf("160 rows changed in 200: analyzed %v (%v), want [young]", got, err)
	}
	if n := reltuples("young"); n != 360 {
		t.Fatalf("young: reltuples %v after the second round, want 360", n)
	}
}

func TestStatsKeeperRunsUntilShutdown(t *testing.T) {
	d := dbtest.Open(t, "postgres")
	ctx := context.Background()
	if _, err := d.Exec(ctx, `CREATE TABLE young (id INTEGER PRIMARY KEY, v TEXT) WITH (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	insertFlushed(t, d, "young", 1, 100, 100)
	var logged bytes.Buffer
	k, err := db.NewStatsKeeper(d, 20*time.Millisecond, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 20*time.Second, "the running keeper to analyze the new table", func() (bool, string) {
		var analyzed bool
		if err := d.QueryRow(ctx, `SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE schemaname = current_schema() AND relname = 'young'`).Scan(&analyzed); err != nil {
			t.Fatal(err)
		}
		return analyzed, "not analyzed"
	})
	if err := k.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// It warns of an autovacuum turned off, and only then.
	var autovacuum string
	if err := d.QueryRow(ctx, `SELECT current_setting('autovacuum')`).Scan(&autovacuum); err != nil {
		t.Fatal(err)
	}
	if warned := strings.Contains(logged.String(), "autovacuum is off"); warned != (autovacuum == "off") {
		t.Errorf("autovacuum %s, warned %v: %s", autovacuum, warned, logged.String())
	}
}

func TestStatsKeeperDoesNothingOnSQLite(t *testing.T) {
	d := dbtest.Open(t, "sqlite")
	ctx := context.Background()
	if _, err := d.Exec(ctx, `CREATE TABLE young (id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	k, err := db.NewStatsKeeper(d, time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = k.Shutdown(ctx) }()
	if got, err := k.Round(ctx); err != nil || got != nil {
		t.Fatalf("a round on SQLite: %v, %v; want nothing", got, err)
	}
	if _, err := db.NewStatsKeeper(nil, 0, nil); err == nil {
		t.Fatal("a keeper without a database was made")
	}
}
