// Package dbtest gives tests a fresh, empty database: a SQLite file in a
// temporary directory, and — when CELLCLOUD_TEST_POSTGRES holds a
// PostgreSQL URL — a fresh schema in that database, dropped afterwards.
package dbtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
)

// EnvPostgres names the environment variable with the PostgreSQL URL.
const EnvPostgres = "CELLCLOUD_TEST_POSTGRES"

// Engines lists the engines to run a storage test against: always
// "sqlite", and "postgres" when EnvPostgres is set.
func Engines() []string {
	if os.Getenv(EnvPostgres) != "" {
		return []string{"sqlite", "postgres"}
	}
	return []string{"sqlite"}
}

// ForEach runs f as a subtest against every engine in Engines, each with a
// fresh database. Without PostgreSQL it logs that the PostgreSQL run is skipped.
func ForEach(t *testing.T, f func(t *testing.T, d *db.DB)) {
	t.Helper()
	if os.Getenv(EnvPostgres) == "" {
		t.Logf("PostgreSQL run skipped: set %s to a PostgreSQL URL to run it", EnvPostgres)
	}
	for _, e := range Engines() {
		t.Run(e, func(t *testing.T) { f(t, Open(t, e)) })
	}
}

// Open returns a fresh database of the given engine, closed (and for
// PostgreSQL dropped) when the test ends. It skips the test when the
// engine is postgres and EnvPostgres is unset.
func Open(t testing.TB, engine string) *db.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	switch engine {
	case "sqlite":
		d, err := db.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	case "postgres":
		base := os.Getenv(EnvPostgres)
		if base == "" {
			t.Skipf("PostgreSQL not configured: set %s", EnvPostgres)
		}
		schema := "t_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
		admin, err := db.Open(ctx, base)
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
			admin.Close()
			t.Fatalf("create schema: %v", err)
		}
		d, err := db.Open(ctx, withSearchPath(base, schema))
		if err != nil {
			admin.Close()
			t.Fatalf("open postgres schema: %v", err)
		}
		t.Cleanup(func() {
			d.Close()
			_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			admin.Close()
		})
		return d
	}
	t.Fatalf("unknown engine %q", engine)
	return nil
}

// PostgresDSN returns a URL for a fresh schema (dropped when the test
// ends), for tests that start processes of their own; "" without PostgreSQL.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgres)
	if base == "" {
		return ""
	}
	d := Open(t, "postgres")
	var schema string
	if err := d.QueryRow(context.Background(), "SELECT current_schema()").Scan(&schema); err != nil {
		t.Fatalf("current schema: %v", err)
	}
	return withSearchPath(base, schema)
}

func withSearchPath(base, schema string) string {
	u, err := db.WithSearchPath(base, schema)
	if err != nil {
		panic(fmt.Sprintf("bad %s: %v", EnvPostgres, err))
	}
	return u
}
