package db_test

import (
	"context"
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
