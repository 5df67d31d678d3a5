package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/archive"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func migrateAll(t *testing.T, d *db.DB, root bool) {
	t.Helper()
	for _, s := range schemas(root) {
		if err := d.Migrate(context.Background(), s.set, s.ms); err != nil {
			t.Fatal(err)
		}
	}
}

// Every table the archive moves has its shadow table with the same
// columns, after every migration: a migration that adds a column to one
// of them and forgets its shadow table fails here.
func TestShadowTablesHaveEveryColumn(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		for _, root := range []bool{true, false} {
			if root {
				migrateAll(t, d, true)
			} else {
				d = dbtest.Open(t, map[db.Dialect]string{db.SQLite: "sqlite", db.Postgres: "postgres"}[d.Dialect])
				migrateAll(t, d, false)
			}
			tables := ArchivePlan(root).ShadowTables()
			if len(tables) < 3 {
				t.Fatalf("root %v: shadow tables %v", root, tables)
			}
			for _, tb := range tables {
				main, err := archive.TableColumns(ctx, d, tb)
				if err != nil {
					t.Fatal(err)
				}
				shadow, err := archive.TableColumns(ctx, d, archive.ShadowPrefix+tb)
				if err != nil {
					t.Fatalf("root %v: %s has no shadow table: %v", root, tb, err)
				}
				slices.Sort(main)
				slices.Sort(shadow)
				if !slices.Equal(main, shadow) {
					t.Errorf("root %v: %s has columns %v, its shadow table %v", root, tb, main, shadow)
				}
			}
		}
	})
}

// The API cell's archive: the copy of a server deleted before the cutoff
// goes with its tags, group memberships and security group bindings (and
// a late update of it from its cell brings nothing back); a server
// deleted after the cutoff and a live one stay; deleted volumes and
// expired tokens go too.
func TestAPICopyArchive(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrateAll(t, d, true)
		now := time.Now().UTC()
		old, recent, live := "11111111-0000-0000-0000-000000000001", "11111111-0000-0000-0000-000000000002", "11111111-0000-0000-0000-000000000003"
		seedAPIServers(t, d, now, old, recent, live)
		exec := func(q string, args ...any) {
			t.Helper()
			if _, err := d.Exec(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		for _, u := range []string{old, recent, live} {
			exec(`INSERT INTO server_tags (instance_uuid, tag) VALUES (?, 'a'), (?, 'b')`, u, u)
			exec(`INSERT INTO security_group_bindings (instance_uuid, security_group_id) VALUES (?, 'sg1')`, u)
		}
		exec(`INSERT INTO server_groups (uuid, name, project_id, user_id, policy, created_at) VALUES ('g1', 'g', 'p1', 'u1', 'affinity', 0)`)
		exec(`INSERT INTO server_group_members (group_uuid, instance_uuid) VALUES ('g1', ?), ('g1', ?)`, old, live)
		exec(`INSERT INTO volumes (id, project_id, user_id, size_gb, status, created_at, deleted, deleted_at) VALUES
			('vol-old', 'p1', 'u1', 1, 'deleted', 0, 1, ?), ('vol-live', 'p1', 'u1', 1, 'available', 0, 0, 0)`, db.Micros(now.Add(-40*24*time.Hour)))
		exec(`INSERT INTO volume_metadata (volume_id, meta_key, meta_value) VALUES ('vol-old', 'k', 'v')`)
		exec(`INSERT INTO volume_snapshots (id, volume_id, project_id, user_id, size_gb, status, created_at, deleted, deleted_at) VALUES
			('snap-of-old', 'vol-old', 'p1', 'u1', 1, 'deleted', 0, 1, ?)`, db.Micros(now.Add(-40*24*time.Hour)))
		exec(`INSERT INTO id_tokens (hash, audit_id, user_id, methods, issued_at, expires_at) VALUES
			('expired', 'a1', 'u1', 'password', 0, ?), ('valid', 'a2', 'u1', 'password', 0, ?)`, db.Micros(now.Add(-40*24*time.Hour)), db.Micros(now.Add(time.Hour)))

		got, err := archive.Archive(ctx, d, ArchivePlan(true), archive.Options{MaxRows: 1, Before: now.Add(-30 * 24 * time.Hour), UntilComplete: true})
		if err != nil {
			t.Fatal(err)
		}
		want := archive.Counts{"instances": 1, "server_tags": 2, "server_group_members": 1, "security_group_bindings": 1,
			"volumes": 1, "volume_metadata": 1, "volume_snapshots": 1, "id_tokens": 1}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("archived %v, want %v", got, want)
		}
		if _, err := apidb.Get(ctx, d, old); err == nil {
			t.Error("the archived server is still in the API copy")
		}
		for _, u := range []string{recent, live} {
			if _, err := apidb.Get(ctx, d, u); err != nil {
				t.Errorf("server %s after the archive: %v", u, err)
			}
		}
		deleted, err := apidb.List(ctx, d, apidb.ListOptions{OnlyDeleted: true})
		if err != nil || len(deleted) != 1 || deleted[0].UUID != recent {
			t.Errorf("deleted servers listed after the archive: %d, %v; want the recent one", len(deleted), err)
		}
		// A late update of the archived server from its cell (a heal, a
		// redelivery) brings nothing back.
		var a apidb.Applied
		if err := d.InTx(ctx, func(tx *db.Tx) (err error) {
			a, err = apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: old, Cell: "api!c1", Version: 99, VMState: "deleted", Deleted: true}, now)
			return err
		}); err != nil || a.Changed {
			t.Errorf("late update of an archived server: %+v, %v", a, err)
		}
		if _, err := apidb.Get(ctx, d, old); err == nil {
			t.Error("a late update brought the archived server back")
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM server_tags WHERE instance_uuid = ?`, live).Scan(&n); err != nil || n != 2 {
			t.Errorf("tags of the live server: %d, %v", n, err)
		}
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM shadow_server_tags WHERE instance_uuid = ?`, old).Scan(&n); err != nil || n != 2 {
			t.Errorf("shadow tags of the archived server: %d, %v", n, err)
		}
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM id_tokens WHERE hash = 'valid'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("valid token: %d, %v", n, err)
		}
	})
}

// seedAPIServers writes the API copy of three servers of project p1: one
// deleted 40 days before now, one deleted an hour before, one live.
func seedAPIServers(t *testing.T, d *db.DB, now time.Time, old, recent, live string) {
	t.Helper()
	ctx := context.Background()
	var insts []apidb.Instance
	for _, u := range []string{old, recent, live} {
		insts = append(insts, apidb.Instance{
			InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm-" + u, ProjectID: "p1", UserID: "u1", ImageRef: "img", ReservationID: "r-" + u, CreatedAt: now.Add(-50 * 24 * time.Hour)},
			FlavorID:     "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling",
		})
	}
	err := d.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.Create(ctx, tx, insts); err != nil {
			return err
		}
		for _, u := range []string{old, recent, live} {
			if _, err := apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 2, VMState: "active"}, now.Add(-45*24*time.Hour)); err != nil {
				return err
			}
		}
		for u, at := range map[string]time.Time{old: now.Add(-40 * 24 * time.Hour), recent: now.Add(-time.Hour)} {
			if _, err := apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: u, Cell: "api!c1", Version: 3, VMState: "deleted", Deleted: true}, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The periodic option: an API cell with housekeeping on archives the
// servers deleted before archive_older_than by itself, while the Compute
// API goes on listing the live server and, for an administrator, the
// deleted one not archived yet (GET /servers/detail?deleted=true).
func TestHousekeepingArchivesPeriodicallyAndTheAPIAnswers(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	// The database first, as a cell that ran before (the node's start
	// runs the same migrations again, which do nothing).
	cfg := &config.Config{Cell: "api", DataDir: dir, Broker: config.Broker{Listen: "127.0.0.1:0"},
		API:          config.API{Listen: "127.0.0.1:0", AdminPassword: "pw"},
		Housekeeping: config.Housekeeping{ArchiveInterval: config.Duration(20 * time.Millisecond), ArchiveOlderThan: config.Duration(24 * time.Hour), MaxRows: 1}}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	d, err := OpenDB(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	old, recent, live := "22222222-0000-0000-0000-000000000001", "22222222-0000-0000-0000-000000000002", "22222222-0000-0000-0000-000000000003"
	seedAPIServers(t, d, now, old, recent, live)
	d.Close()

	n, err := New(cfg, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := n.Start(sctx); err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	_, token, err := n.Identity.Issue(ctx, identity.AuthRequest{Password: &identity.PasswordMethod{UserName: "admin", DomainID: identity.DefaultDomainID, Password: "pw"},
		Scope: identity.Scope{ProjectName: "admin", DomainID: identity.DefaultDomainID}})
	if err != nil {
		t.Fatal(err)
	}
	list := func(query string) []string {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+n.APIAddr()+"/v2.1/servers/detail?all_tenants=1"+query, nil)
		req.Header.Set("X-Auth-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Servers []struct {
				ID string `json:"id"`
			} `json:"servers"`
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET servers%s: %s", query, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range body.Servers {
			ids = append(ids, s.ID)
		}
		slices.Sort(ids)
		return ids
	}
	testpoll.Eventually(t, 20*time.Second, "the periodic archive of the server deleted 40 days ago", func() (bool, string) {
		var c int
		if err := n.DB.QueryRow(ctx, `SELECT COUNT(*) FROM shadow_instances`).Scan(&c); err != nil {
			return false, err.Error()
		}
		return c == 1, fmt.Sprintf("%d servers in shadow_instances", c)
	})
	if got := list(""); !slices.Equal(got, []string{live}) {
		t.Errorf("servers: %v, want the live one", got)
	}
	if got := list("&deleted=true"); !slices.Equal(got, []string{recent}) {
		t.Errorf("deleted servers: %v, want the one deleted an hour ago (not archived yet)", got)
	}
	since := now.Add(-60 * 24 * time.Hour).Format("2006-01-02T15:04:05Z")
	if got := list("&changes-since=" + since); !slices.Equal(got, []string{recent, live}) {
		t.Errorf("servers changed since %s: %v, want the live one and the deleted one not archived yet", since, got)
	}
}

// Housekeeper.Once in a compute cell: the rows deleted before
// archive_older_than move, then the shadow rows deleted before
// purge_older_than go; a second round does nothing.
func TestHousekeeperOnceArchivesThenPurges(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrateAll(t, d, false)
		now := time.Now()
		for u, days := range map[string]int{"del-100": 100, "del-40": 40, "del-1": 1, "live": 0} {
			del, at := 1, db.Micros(now.Add(-time.Duration(days)*24*time.Hour))
			if days == 0 {
				del, at = 0, 0
			}
			if _, err := d.Exec(ctx, `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor, vm_state, version, created_at, updated_at, deleted, deleted_at)
				VALUES (?, 'vm', 'p', 'u', 'img', '{}', 'deleted', 1, 0, 0, ?, ?)`, u, del, at); err != nil {
				t.Fatal(err)
			}
		}
		var rounds []string
		h, err := NewHousekeeper(HousekeepingConfig{DB: d, Cell: "api!cell1", Logger: quietLog,
			Settings: config.Housekeeping{ArchiveInterval: config.Duration(time.Hour), ArchiveOlderThan: config.Duration(30 * 24 * time.Hour),
				PurgeOlderThan: config.Duration(60 * 24 * time.Hour), MaxRows: 1},
			Ran: func(a, p archive.Counts, err error) { rounds = append(rounds, fmt.Sprint(a, p, err)) }})
		if err != nil {
			t.Fatal(err)
		}
		a, p, err := h.Once(ctx)
		if err != nil || a["instances"] != 2 || p["shadow_instances"] != 1 {
			t.Fatalf("round: archived %v, purged %v, %v; want 2 archived (del-100, del-40), 1 purged (del-100)", a, p, err)
		}
		a, p, err = h.Once(ctx)
		if err != nil || a.Total() != 0 || p.Total() != 0 {
			t.Errorf("second round: archived %v, purged %v, %v; want nothing", a, p, err)
		}
		var main, shadow []string
		for _, q := range []struct {
			table string
			out   *[]string
		}{{"instances", &main}, {"shadow_instances", &shadow}} {
			rows, err := d.Query(ctx, `SELECT uuid FROM `+q.table+` ORDER BY uuid`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var u string
				_ = rows.Scan(&u)
				*q.out = append(*q.out, u)
			}
			rows.Close()
		}
		if !slices.Equal(main, []string{"del-1", "live"}) || !slices.Equal(shadow, []string{"del-40"}) {
			t.Errorf("instances %v, shadow %v; want [del-1 live] and [del-40]", main, shadow)
		}
		if len(rounds) != 2 {
			t.Errorf("Ran called %d times, want 2", len(rounds))
		}
	})
}
