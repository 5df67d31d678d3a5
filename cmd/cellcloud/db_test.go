package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/node"
)

// writeCellConfig writes a compute cell's configuration on dir and
// returns its path.
func writeCellConfig(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "cell1.json")
	if err := os.WriteFile(p, []byte(`{"cell": "api!cell1", "data_dir": "`+filepath.Join(dir, "data")+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDBCommandsBadInput(t *testing.T) {
	dir := t.TempDir()
	cfg := writeCellConfig(t, dir)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"db"}, 2, "subcommand is required"},
		{[]string{"db", "vacuum"}, 2, `unknown subcommand "vacuum"`},
		{[]string{"db", "archive"}, 2, "--config is required"},
		{[]string{"db", "archive", "--config", cfg, "--max-rows", "0"}, 2, "--max-rows 0 must be 1 to 10000"},
		{[]string{"db", "archive", "--config", cfg, "--max-rows", "-3"}, 2, "--max-rows -3"},
		{[]string{"db", "archive", "--config", cfg, "--before", "last tuesday"}, 4, `invalid value for --before: "last tuesday"`},
		{[]string{"db", "archive", "--config", cfg, "--older-than", "ten"}, 4, `invalid value for --older-than: "ten"`},
		{[]string{"db", "archive", "--config", cfg, "--older-than", "-1"}, 4, "--older-than"},
		{[]string{"db", "archive", "--config", cfg, "--older-than", "3", "--before", "2026-01-01"}, 4, "give one"},
		{[]string{"db", "archive", "--config", cfg, "--all"}, 2, "--all is purge's"},
		// The configuration names a database that is not there: refused,
		// and not created.
		{[]string{"db", "archive", "--config", cfg}, 3, "cell api!cell1: no database at " + filepath.Join(dir, "data", "cell.db")},
		{[]string{"db", "archive", "--config", filepath.Join(dir, "missing.json")}, 3, "missing.json"},
		{[]string{"db", "purge", "--config", cfg}, 1, "either --older-than, --before or --all is required"},
		{[]string{"db", "purge", "--config", cfg, "--before", "2026-13-40"}, 2, "invalid value for --before"},
		{[]string{"db", "purge", "--config", cfg, "--all", "--older-than", "3"}, 2, "--all purges every shadow row"},
		{[]string{"db", "purge", "--config", cfg, "--until-complete", "--all"}, 2, "archive's"},
		{[]string{"db", "purge", "--config", cfg, "--all", "--max-rows", "0"}, 2, "--max-rows 0 must be 1 to 10000"},
		{[]string{"db", "purge", "--config", cfg, "--all"}, 4, "no database at"},
	}
	for _, c := range cases {
		code, _, stderr := runCmd(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("cellcloud %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "cell.db")); err == nil {
		t.Error("db archive created the database it did not find")
	}
}

func TestParseCutoff(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-01":                    time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-01 08:30:00":           time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC),
		"2026-11-01T08:30:00+01:00":     time.Date(2026, 11, 1, 7, 30, 0, 0, time.UTC),
		"Sun Nov  1 08:30:00 UTC 2026":  time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC),
		"Sun, 01 Nov 2026 08:30:00 UTC": time.Date(2026, 11, 1, 8, 30, 0, 0, time.UTC),
	} {
		got, err := parseCutoff(in, "", now)
		if err != nil || !got.Equal(want) {
			t.Errorf("--before %q: %v, %v; want %v", in, got, err, want)
		}
	}
	got, err := parseCutoff("", "30", now)
	if err != nil || !got.Equal(now.Add(-30*24*time.Hour)) {
		t.Errorf("--older-than 30: %v, %v", got, err)
	}
	if got, err := parseCutoff("", "", now); err != nil || !got.IsZero() {
		t.Errorf("no cutoff: %v, %v", got, err)
	}
}

func TestDBArchiveAndPurge(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeCellConfig(t, dir)
	ctx := context.Background()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d, err := node.OpenDB(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * 24 * time.Hour)
	for i, at := range []time.Time{old, old, time.Now(), {}} {
		del := 1
		if at.IsZero() {
			del = 0
		}
		if _, err := d.Exec(ctx, `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor, vm_state, version, created_at, updated_at, deleted, deleted_at)
			VALUES (?, 'vm', 'p', 'u', 'img', '{}', 'deleted', 1, 0, 0, ?, ?)`, "i"+string(rune('0'+i)), del, db.Micros(at)); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `INSERT INTO instance_actions (instance_uuid, action, request_id, start_time, updated_at) VALUES (?, 'create', 'r', 0, 0)`, "i"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
	}
	d.Close()

	// One batch of one instance (no --until-complete): exit 1, the table.
	code, out, stderr := runCmd("db", "archive", "--config", cfgPath, "--older-than", "7", "--max-rows", "1", "--verbose")
	if code != 1 || !strings.Contains(out, "| api!cell1.instances        | 1                       |") ||
		!strings.Contains(out, "| api!cell1.instance_actions | 1                       |") || !strings.Contains(out, "Number of Rows Archived") {
		t.Fatalf("db archive: exit %d, out:\n%s\nstderr %q", code, out, stderr)
	}
	// Until complete: the other old one.
	code, out, _ = runCmd("db", "archive", "--config", cfgPath, "--older-than", "7", "--max-rows", "1", "--until-complete", "--verbose")
	if code != 1 || !strings.HasPrefix(out, "Archiving...") || !strings.Contains(out, ".complete") || !strings.Contains(out, "api!cell1.instances        | 1 ") {
		t.Fatalf("db archive --until-complete: exit %d, out:\n%s", code, out)
	}
	// Nothing left before the cutoff: exit 0.
	code, out, _ = runCmd("db", "archive", "--config", cfgPath, "--older-than", "7", "--verbose")
	if code != 0 || !strings.Contains(out, "Nothing was archived.") {
		t.Fatalf("db archive with nothing to do: exit %d, out %q", code, out)
	}
	// Purge: the shadow rows deleted before 2 days ago (both), then
	// nothing left (exit 3).
	code, out, _ = runCmd("db", "purge", "--config", cfgPath, "--older-than", "2", "--verbose")
	if code != 0 || !strings.Contains(out, "api!cell1.shadow_instances        | 2 ") {
		t.Fatalf("db purge: exit %d, out:\n%s", code, out)
	}
	code, out, _ = runCmd("db", "purge", "--config", cfgPath, "--all", "--verbose")
	if code != 3 || !strings.Contains(out, "Nothing was purged.") {
		t.Fatalf("db purge with nothing to purge: exit %d, out %q", code, out)
	}
	// Archive with --purge, no cutoff: the recent deleted one, then purged.
	code, out, _ = runCmd("db", "archive", "--config", cfgPath, "--purge", "--verbose")
	if code != 1 || !strings.Contains(out, "Rows were archived, running purge...") || !strings.Contains(out, "shadow_instances ") {
		t.Fatalf("db archive --purge: exit %d, out:\n%s", code, out)
	}
	d, err = node.OpenDB(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var live, shadow int
	if err := d.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM instances), (SELECT COUNT(*) FROM shadow_instances)`).Scan(&live, &shadow); err != nil {
		t.Fatal(err)
	}
	if live != 1 || shadow != 0 {
		t.Errorf("after all: %d instances, %d shadow rows; want the live one and none", live, shadow)
	}
}

// Several cells in one run, as nova-manage's --all-cells: every database
// is opened before anything is archived (a bad one stops the run with
// nothing done), and the table names each cell's tables.
func TestDBArchiveSeveralCells(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cellPath := writeCellConfig(t, dir)
	apiPath := filepath.Join(dir, "api.json")
	if err := os.WriteFile(apiPath, []byte(`{"cell": "api", "data_dir": "`+filepath.Join(dir, "api")+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-10 * 24 * time.Hour)
	for _, p := range []string{cellPath, apiPath} {
		cfg, err := config.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := node.OpenDB(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		q := `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor, vm_state, version, created_at, updated_at, deleted, deleted_at)
			VALUES ('gone', 'vm', 'p', 'u', 'img', '{}', 'deleted', 1, 0, 0, 1, ?)`
		if cfg.IsRoot() {
			q = `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor_id, flavor, reservation_id, vm_state, version, created_at, updated_at, deleted, deleted_at)
			VALUES ('gone', 'vm', 'p', 'u', 'img', '1', '{}', 'r', 'deleted', 1, 0, 0, 1, ?)`
		}
		if _, err := d.Exec(ctx, q, db.Micros(old)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		d.Close()
	}
	code, _, stderr := runCmd("db", "archive", "--config", cellPath, "--config", filepath.Join(dir, "nowhere.json"), "--older-than", "7")
	if code != 3 || !strings.Contains(stderr, "nowhere.json") {
		t.Fatalf("with a bad configuration: exit %d, stderr %q", code, stderr)
	}
	code, out, stderr := runCmd("db", "archive", "--config", cellPath, "--config", apiPath, "--older-than", "7", "--verbose")
	if code != 1 || !strings.Contains(out, "| api.instances ") || !strings.Contains(out, "| api!cell1.instances ") {
		t.Fatalf("two cells: exit %d, out:\n%s\nstderr %q (a bad configuration before must have archived nothing)", code, out, stderr)
	}
}
