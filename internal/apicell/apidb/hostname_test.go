package apidb_test

import (
	"context"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestMigration18BackfillsHostnames: instances written before migration
// 18 are given the hostname their name made (what the API showed for
// them), Nova's sanitized name or "Server-{uuid}"; they are pinned to no
// zone; a rename afterwards keeps the hostname, an update giving one sets
// it.
func TestMigration18BackfillsHostnames(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations[:17]); err != nil {
			t.Fatalf("migrate to 17: %v", err)
		}
		t0 := time.Unix(1_700_000_000, 0).UTC()
		for uuid, name := range map[string]string{"a": "My Web_Server.1", "b": "***"} {
			if _, err := d.Exec(ctx, `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor_id, flavor,
				reservation_id, vm_state, availability_zone, created_at, updated_at) VALUES (?, ?, 'p', 'u', 'img', '1', '{}', 'r', 'active', 'az1', ?, ?)`,
				uuid, name, db.Micros(t0), db.Micros(t0)); err != nil {
				t.Fatal(err)
			}
		}
		migrated(t, d)
		for uuid, want := range map[string]string{"a": "my-web-server-1", "b": "Server-b"} {
			in, err := apidb.Get(ctx, d, uuid)
			if err != nil {
				t.Fatal(err)
			}
			if in.Hostname != want || in.HostnameOf() != want || in.PinnedZone != "" {
				t.Errorf("%s: hostname %q (%q), pinned %q; want %q, none", uuid, in.Hostname, in.HostnameOf(), in.PinnedZone, want)
			}
		}
		name, host := "renamed", "set-host"
		if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.UpdateServer(ctx, tx, "a", apidb.ServerUpdate{Name: &name}, t0) }); err != nil {
			t.Fatal(err)
		}
		if in, _ := apidb.Get(ctx, d, "a"); in.Name != name || in.Hostname != "my-web-server-1" {
			t.Errorf("after a rename: name %q hostname %q", in.Name, in.Hostname)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return apidb.UpdateServer(ctx, tx, "a", apidb.ServerUpdate{Hostname: &host}, t0)
		}); err != nil {
			t.Fatal(err)
		}
		if in, _ := apidb.Get(ctx, d, "a"); in.Hostname != host {
			t.Errorf("after an update with a hostname: %q", in.Hostname)
		}
	})
}

// TestDefaultHostname is Nova's _populate_instance_names over
// sanitize_hostname.
func TestDefaultHostname(t *testing.T) {
	for _, c := range []struct {
		name  string
		index int
		want  string
	}{
		{"web", 0, "web"},
		{"Web", 2, "web-2"},
		{"a.", 1, "a-1"},
		{"***", 3, "Server-u"},
		{"héllo wörld", 0, "héllo-wörld"},
		{"日本", 0, "Server-u"},
	} {
		if got := apidb.DefaultHostname(c.name, "u", c.index); got != c.want {
			t.Errorf("DefaultHostname(%q, %d) = %q, want %q", c.name, c.index, got, c.want)
		}
	}
}
