package node

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/config"
)

// SchemaStatus tells a database with no schema, a current one, and one a
// newer release migrated further, without migrating anything itself.
func TestSchemaStatus(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := &config.Config{Cell: "api!c1", DataDir: dir, Database: filepath.Join(dir, "cell.db")}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDBAsIs(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s, ok, err := SchemaStatus(ctx, d, false); err != nil || ok || !strings.Contains(s, "no schema yet") {
		t.Fatalf("empty database: %q ok=%v err=%v", s, ok, err)
	}
	// Still empty: SchemaStatus migrated nothing.
	if s, ok, _ := SchemaStatus(ctx, d, false); ok {
		t.Fatalf("a second look at an empty database: %q", s)
	}
	d.Close()

	m, err := OpenDB(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if s, ok, err := SchemaStatus(ctx, m, false); err != nil || !ok || s != "schema current" {
		t.Fatalf("migrated database: %q ok=%v err=%v", s, ok, err)
	}
	if _, err := m.Exec(ctx, `INSERT INTO schema_migrations (set_name, version, name, applied_at) VALUES ('compute', 9999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	if s, ok, err := SchemaStatus(ctx, m, false); err != nil || !ok || !strings.Contains(s, "newer release") || !strings.Contains(s, "compute 9999") {
		t.Fatalf("database of a newer release: %q ok=%v err=%v", s, ok, err)
	}
}
