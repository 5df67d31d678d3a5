package db_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

func TestMigrateIsIdempotentAndVersioned(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		ms := []db.Migration{
			{Version: 1, Name: "one", SQL: `CREATE TABLE a (id {{serial}}, v TEXT NOT NULL)`},
			{Version: 2, Name: "two", SQL: `ALTER TABLE a ADD COLUMN w {{bigint}} NOT NULL DEFAULT 0`},
		}
		for range 2 {
			if err := d.Migrate(ctx, "test", ms); err != nil {
				t.Fatalf("migrate: %v", err)
			}
		}
		if _, err := d.Exec(ctx, `INSERT INTO a (v, w) VALUES (?, ?)`, "x", 7); err != nil {
			t.Fatalf("insert after migrate: %v", err)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE set_name = ?`, "test").Scan(&n); err != nil || n != 2 {
			t.Fatalf("schema_migrations has %d rows (err %v), want 2", n, err)
		}
		bad := []db.Migration{{Version: 2, Name: "gap", SQL: `SELECT 1`}}
		if err := d.Migrate(ctx, "other", bad); err == nil {
			t.Fatal("a migration set that does not start at version 1 was accepted")
		}
	})
}

// TestMigrateRunsAGoStepOnceInItsTransaction: a migration's Go step runs
// after its SQL in the same transaction, once per database; when it fails,
// the migration's SQL is rolled back and the migration is not recorded, so
// the next start tries it again.
func TestMigrateRunsAGoStepOnceInItsTransaction(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		runs := 0
		fail := errors.New("step failed")
		step := func(ctx context.Context, tx *db.Tx) error {
			runs++
			if _, err := tx.Exec(ctx, `INSERT INTO b (v) VALUES (?)`, "from go"); err != nil {
				return err
			}
			if runs == 1 {
				return fail
			}
			return nil
		}
		ms := []db.Migration{{Version: 1, Name: "table and data", SQL: `CREATE TABLE b (id {{serial}}, v TEXT NOT NULL)`, Go: step}}
		if err := d.Migrate(ctx, "gostep", ms); !errors.Is(err, fail) {
			t.Fatalf("migrate with a failing step: %v, want %v", err, fail)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE set_name = ?`, "gostep").Scan(&n); err != nil || n != 0 {
			t.Fatalf("a failed migration was recorded: %d rows (err %v)", n, err)
		}
		if _, err := d.Exec(ctx, `SELECT COUNT(*) FROM b`); err == nil {
			t.Fatal("the failed migration's table is still there: its SQL was not rolled back")
		}
		for range 2 {
			if err := d.Migrate(ctx, "gostep", ms); err != nil {
				t.Fatalf("migrate: %v", err)
			}
		}
		if runs != 2 {
			t.Errorf("the Go step ran %d times, want 2 (the failed run, then once)", runs)
		}
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM b WHERE v = 'from go'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("the Go step's rows: %d (err %v), want 1", n, err)
		}
	})
}

// TestMigrateFillsAVersionMissingBelowTheLatest: a version missing below the
// latest applied one (taken back by hand) is applied again, not skipped
// because a later one is there.
func TestMigrateFillsAVersionMissingBelowTheLatest(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		ms := []db.Migration{
			{Version: 1, Name: "one", SQL: `CREATE TABLE a (id {{serial}}, v TEXT NOT NULL)`},
			{Version: 2, Name: "two", SQL: `CREATE TABLE b (id {{serial}})`},
			{Version: 3, Name: "three", SQL: `CREATE TABLE c (id {{serial}})`},
		}
		if err := d.Migrate(ctx, "test", ms); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `DROP TABLE b`); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `DELETE FROM schema_migrations WHERE set_name = 'test' AND version = 2`); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, "test", ms); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `INSERT INTO b DEFAULT VALUES`); err != nil {
			t.Fatalf("version 2 was not applied again: %v", err)
		}
	})
}
