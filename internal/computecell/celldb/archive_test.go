package celldb_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/archive"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

var archNow = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func day(n int) time.Time { return archNow.Add(-time.Duration(n) * 24 * time.Hour) }

// shadowed is a compute cell's database with its shadow tables.
func shadowed(t *testing.T, d *db.DB) {
	t.Helper()
	migrated(t, d)
	if err := d.Migrate(context.Background(), celldb.ShadowMigrationSet, celldb.ShadowMigrations); err != nil {
		t.Fatalf("migrate shadow tables: %v", err)
	}
}

func exec(t *testing.T, d *db.DB, q string, args ...any) {
	t.Helper()
	if _, err := d.Exec(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// seedInstance writes an instance (deleted at deletedAt, or live when it
// is zero) with two actions of one event each, a migration, a block
// device mapping and a volume attachment.
func seedInstance(t *testing.T, d *db.DB, uuid string, deletedAt time.Time) {
	t.Helper()
	del := 0
	if !deletedAt.IsZero() {
		del = 1
	}
	exec(t, d, `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor, vm_state, version, created_at, updated_at, deleted, deleted_at)
		VALUES (?, 'vm', 'p', 'u', 'img', '{}', 'active', 1, ?, ?, ?, ?)`, uuid, db.Micros(day(60)), db.Micros(day(60)), del, db.Micros(deletedAt))
	for i := range 2 {
		var id int64
		if err := d.QueryRow(context.Background(), `INSERT INTO instance_actions (instance_uuid, action, request_id, start_time, updated_at)
			VALUES (?, 'create', ?, ?, ?) RETURNING id`, uuid, fmt.Sprintf("req-%s-%d", uuid, i), db.Micros(day(60)), db.Micros(day(60))).Scan(&id); err != nil {
			t.Fatal(err)
		}
		exec(t, d, `INSERT INTO instance_action_events (action_id, event, start_time) VALUES (?, 'spawn', ?)`, id, db.Micros(day(60)))
	}
	exec(t, d, `INSERT INTO migrations (instance_uuid, migration_type, source_host, old_flavor, new_flavor, old_vm_state, status, created_at, updated_at)
		VALUES (?, 'resize', 'h1', '{}', '{}', 'active', 'confirmed', 0, 0)`, uuid)
	exec(t, d, `INSERT INTO block_device_mappings (uuid, instance_uuid, source_type, destination_type, created_at, deleted) VALUES (?, ?, 'image', 'local', 0, ?)`,
		"bdm-"+uuid, uuid, del)
	exec(t, d, `INSERT INTO volume_attachments (id, volume_id, instance_uuid, attach_status, deleted) VALUES (?, ?, ?, 'detached', ?)`,
		"att-"+uuid, "vol-live", uuid, del)
}

// count is the rows of table whose column is value.
func count(t *testing.T, q db.Querier, table, where string, args ...any) int {
	t.Helper()
	var n int
	if err := q.QueryRow(context.Background(), `SELECT COUNT(*) FROM `+table+` WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// instanceRows counts an instance's rows of each of its tables, in the
// main tables (prefix "") or the shadow tables ("shadow_").
func instanceRows(t *testing.T, d *db.DB, prefix, uuid string) [6]int {
	return [6]int{
		count(t, d, prefix+"instances", "uuid = ?", uuid),
		count(t, d, prefix+"instance_actions", "instance_uuid = ?", uuid),
		count(t, d, prefix+"instance_action_events", "action_id IN (SELECT id FROM "+prefix+"instance_actions WHERE instance_uuid = ?)", uuid),
		count(t, d, prefix+"migrations", "instance_uuid = ?", uuid),
		count(t, d, prefix+"block_device_mappings", "instance_uuid = ?", uuid),
		count(t, d, prefix+"volume_attachments", "instance_uuid = ?", uuid),
	}
}

var whole, none = [6]int{1, 2, 2, 1, 1, 1}, [6]int{}

// where says where an instance's rows are: "main", "shadow", or what is
// wrong (rows split between the two, or some missing).
func where(t *testing.T, d *db.DB, uuid string) string {
	m, s := instanceRows(t, d, "", uuid), instanceRows(t, d, "shadow_", uuid)
	switch {
	case m == whole && s == none:
		return "main"
	case m == none && s == whole:
		return "shadow"
	}
	return fmt.Sprintf("split: main %v, shadow %v", m, s)
}

func TestArchiveMovesDeletedRowsOlderThanTheCutoffWithTheirDependents(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		shadowed(t, d)
		seedInstance(t, d, "old-deleted", day(40))
		seedInstance(t, d, "new-deleted", day(1))
		seedInstance(t, d, "live", time.Time{})
		// A volume deleted 40 days ago with a deleted snapshot and a
		// detached attachment; a live volume with a deleted snapshot of
		// 40 days and one of yesterday.
		exec(t, d, `INSERT INTO volumes (id, project_id, user_id, size_gb, status, version, created_at, updated_at, deleted) VALUES
			('vol-old', 'p', 'u', 1, 'deleted', 3, 0, ?, 1), ('vol-live', 'p', 'u', 1, 'available', 1, 0, ?, 0)`, db.Micros(day(40)), db.Micros(day(40)))
		exec(t, d, `INSERT INTO volume_snapshots (id, volume_id, size_gb, status, version, created_at, updated_at, deleted) VALUES
			('snap-of-old', 'vol-old', 1, 'deleted', 2, 0, ?, 1), ('snap-old', 'vol-live', 1, 'deleted', 2, 0, ?, 1),
			('snap-new', 'vol-live', 1, 'deleted', 2, 0, ?, 1), ('snap-live', 'vol-live', 1, 'available', 1, 0, ?, 0)`,
			db.Micros(day(40)), db.Micros(day(40)), db.Micros(day(1)), db.Micros(day(40)))
		exec(t, d, `INSERT INTO volume_attachments (id, volume_id, instance_uuid, attach_status, deleted) VALUES ('att-vol-old', 'vol-old', 'gone', 'detached', 1)`)
		// An instance deleted 40 days ago that the Block Storage API's
		// attachment of a live volume still names (its consumer has not
		// deleted it): the attachment stays.
		exec(t, d, `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor, vm_state, version, created_at, updated_at, deleted, deleted_at)
			VALUES ('old-api-att', 'vm', 'p', 'u', 'img', '{}', 'deleted', 1, 0, 0, 1, ?)`, db.Micros(day(40)))
		exec(t, d, `INSERT INTO volume_attachments (id, volume_id, instance_uuid, attach_status, deleted) VALUES ('att-api', 'vol-live', 'old-api-att', 'reserved', 0)`)
		// The task log: only with task_log.
		exec(t, d, `INSERT INTO task_log (task_name, state, host, period_beginning, period_ending, created_at, updated_at)
			VALUES ('instance_usage_audit', 'DONE', 'h1', 0, 1, 0, ?)`, db.Micros(day(40)))

		got, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1000, Before: day(30), UntilComplete: true})
		if err != nil {
			t.Fatal(err)
		}
		want := archive.Counts{"instances": 2, "instance_actions": 2, "instance_action_events": 2, "migrations": 1,
			"block_device_mappings": 1, "volume_attachments": 2, "volumes": 1, "volume_snapshots": 2}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("archived %v, want %v", got, want)
		}
		for u, w := range map[string]string{"old-deleted": "shadow", "new-deleted": "main", "live": "main"} {
			if g := where(t, d, u); g != w {
				t.Errorf("instance %s: %s, want %s", u, g, w)
			}
		}
		for table, ids := range map[string][2][]string{
			"volumes":            {{"vol-live"}, {"vol-old"}},
			"volume_snapshots":   {{"snap-live", "snap-new"}, {"snap-of-old", "snap-old"}},
			"volume_attachments": {{"att-api", "att-live", "att-new-deleted"}, {"att-old-deleted", "att-vol-old"}},
		} {
			for i, prefix := range []string{"", "shadow_"} {
				var have []string
				rows, err := d.Query(ctx, `SELECT id FROM `+prefix+table+` ORDER BY id`)
				if err != nil {
					t.Fatal(err)
				}
				for rows.Next() {
					var s string
					_ = rows.Scan(&s)
					have = append(have, s)
				}
				rows.Close()
				if fmt.Sprint(have) != fmt.Sprint(ids[i]) {
					t.Errorf("%s%s: %v, want %v", prefix, table, have, ids[i])
				}
			}
		}
		// The shadow row is the row, every column.
		var name, vm string
		var delAt int64
		if err := d.QueryRow(ctx, `SELECT name, vm_state, deleted_at FROM shadow_instances WHERE uuid = 'old-deleted'`).Scan(&name, &vm, &delAt); err != nil {
			t.Fatal(err)
		}
		if name != "vm" || vm != "active" || delAt != db.Micros(day(40)) {
			t.Errorf("shadow row: %s %s %d", name, vm, delAt)
		}
		if n := count(t, d, "task_log", "1 = 1"); n != 1 {
			t.Errorf("task_log archived without task_log: %d rows left", n)
		}

		// Again: nothing left to archive before the cutoff.
		got, err = archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1000, Before: day(30), UntilComplete: true})
		if err != nil || got.Total() != 0 {
			t.Errorf("second run archived %v, %v; want nothing", got, err)
		}
		// task_log asked for.
		got, err = archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1000, Before: day(30), Include: []string{"task_log"}})
		if err != nil || fmt.Sprint(got) != fmt.Sprint(archive.Counts{"task_log": 1}) {
			t.Errorf("task log run archived %v, %v; want task_log 1", got, err)
		}
		// No cutoff: every deleted row.
		got, err = archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1000, UntilComplete: true})
		if err != nil || got["instances"] != 1 || got["volume_snapshots"] != 1 || got["volume_attachments"] != 1 {
			t.Errorf("run without a cutoff archived %v, %v; want new-deleted and snap-new", got, err)
		}
		if w := where(t, d, "live"); w != "main" {
			t.Errorf("live instance: %s", w)
		}
	})
}

func TestArchiveBatchesConverge(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		shadowed(t, d)
		for i := range 5 {
			seedInstance(t, d, fmt.Sprintf("del-%d", i), day(40+i))
		}
		// Without --until-complete a run stops after max rows (one
		// instance, with its dependents); runs converge.
		runs := 0
		for {
			got, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1, Before: day(30)})
			if err != nil {
				t.Fatal(err)
			}
			if got.Total() == 0 {
				break
			}
			runs++
			if got["instances"] != 1 || got["instance_action_events"] != 2 {
				t.Fatalf("run %d archived %v, want one instance with its dependents", runs, got)
			}
			if runs > 5 {
				t.Fatal("archive runs do not converge")
			}
		}
		if runs != 5 {
			t.Errorf("%d runs, want 5", runs)
		}
		for i := range 5 {
			if w := where(t, d, fmt.Sprintf("del-%d", i)); w != "shadow" {
				t.Errorf("del-%d: %s", i, w)
			}
		}
		// With until-complete: one run, a batch per instance, oldest first.
		for i := range 3 {
			seedInstance(t, d, fmt.Sprintf("more-%d", i), day(40-i))
		}
		var batches []string
		got, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1, Before: day(30), UntilComplete: true,
			AfterBatch: func(c archive.Counts) { batches = append(batches, fmt.Sprint(c["instances"])) }})
		if err != nil || got["instances"] != 3 || len(batches) != 3 {
			t.Errorf("until complete: %v, %v, batches %v; want 3 instances in 3 batches", got, err, batches)
		}
	})
}

// A process killed between two batches (the context ends after the first)
// leaves each instance whole on one side; a rerun finishes.
func TestArchiveKilledBetweenBatchesLeavesAConsistentDatabase(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		shadowed(t, d)
		var uuids []string
		for i := range 4 {
			u := fmt.Sprintf("del-%d", i)
			uuids = append(uuids, u)
			seedInstance(t, d, u, day(40+i))
		}
		ctx, cancel := context.WithCancel(context.Background())
		batches := 0
		got, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1, Before: day(30), UntilComplete: true,
			AfterBatch: func(archive.Counts) { batches++; cancel() }})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("archive after the kill: %v, want context canceled", err)
		}
		if batches != 1 || got["instances"] != 1 {
			t.Fatalf("before the kill: %d batches, %v; want 1 batch of 1 instance", batches, got)
		}
		moved := 0
		for _, u := range uuids {
			switch w := where(t, d, u); w {
			case "shadow":
				moved++
			case "main":
			default:
				t.Errorf("instance %s after the kill: %s", u, w)
			}
		}
		if moved != 1 {
			t.Errorf("%d instances moved before the kill, want 1", moved)
		}
		// The rerun (a second time too: nothing is moved twice).
		for run := range 2 {
			got, err = archive.Archive(context.Background(), d, celldb.ArchivePlan, archive.Options{MaxRows: 1, Before: day(30), UntilComplete: true})
			if err != nil {
				t.Fatal(err)
			}
			if want := []int64{3, 0}[run]; got["instances"] != want {
				t.Errorf("rerun %d archived %v instances, want %d", run, got["instances"], want)
			}
		}
		for _, u := range uuids {
			if w := where(t, d, u); w != "shadow" {
				t.Errorf("instance %s after the rerun: %s", u, w)
			}
		}
	})
}

func TestPurgeRemovesShadowRowsOlderThanTheCutoff(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		shadowed(t, d)
		seedInstance(t, d, "del-90", day(90))
		seedInstance(t, d, "del-40", day(40))
		seedInstance(t, d, "live", time.Time{})
		if _, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1000, Before: day(30), UntilComplete: true}); err != nil {
			t.Fatal(err)
		}
		got, err := archive.Purge(ctx, d, celldb.ArchivePlan, archive.PurgeOptions{Before: day(60), MaxRows: 1})
		if err != nil {
			t.Fatal(err)
		}
		want := archive.Counts{"shadow_instances": 1, "shadow_instance_actions": 2, "shadow_instance_action_events": 2,
			"shadow_migrations": 1, "shadow_block_device_mappings": 1, "shadow_volume_attachments": 1}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("purged %v, want %v", got, want)
		}
		if s := instanceRows(t, d, "shadow_", "del-90"); s != none {
			t.Errorf("del-90 left in the shadow tables: %v", s)
		}
		if w := where(t, d, "del-40"); w != "shadow" {
			t.Errorf("del-40: %s, want kept in the shadow tables", w)
		}
		if w := where(t, d, "live"); w != "main" {
			t.Errorf("live: %s", w)
		}
		got, err = archive.Purge(ctx, d, celldb.ArchivePlan, archive.PurgeOptions{All: true})
		if err != nil || got["shadow_instances"] != 1 {
			t.Errorf("purge all: %v, %v; want del-40", got, err)
		}
		if s := instanceRows(t, d, "shadow_", "del-40"); s != none {
			t.Errorf("del-40 left after purge all: %v", s)
		}
		if _, err := archive.Purge(ctx, d, celldb.ArchivePlan, archive.PurgeOptions{}); !errors.Is(err, archive.ErrBadOptions) {
			t.Errorf("purge without a cutoff: %v, want ErrBadOptions", err)
		}
	})
}

func TestArchiveRefusesBadOptionsAndMissingShadowColumns(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		shadowed(t, d)
		for _, n := range []int{0, -1, archive.MaxRowsLimit + 1} {
			if _, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: n}); !errors.Is(err, archive.ErrBadOptions) {
				t.Errorf("max rows %d: %v, want ErrBadOptions", n, err)
			}
		}
		// A column added to instances and not to its shadow table: the
		// archive refuses, naming it, rather than lose it.
		exec(t, d, `ALTER TABLE instances ADD COLUMN colour TEXT NOT NULL DEFAULT ''`)
		seedInstance(t, d, "del", day(40))
		_, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 10})
		if err == nil || !strings.Contains(err.Error(), "shadow_instances lacks the columns colour") {
			t.Errorf("archive with a column missing from the shadow table: %v", err)
		}
		if w := where(t, d, "del"); w != "main" {
			t.Errorf("instance after the refusal: %s", w)
		}
	})
}

// A batch that fails halfway (here a trigger refuses the delete of the
// instance's migration, after its actions were moved; a process killed
// there is the same, its transaction never commits) moves nothing: the
// instance stays whole in its tables, and once the failure is gone a
// rerun moves it whole.
func TestArchiveFailingHalfwayThroughABatchMovesNothingOfIt(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		shadowed(t, d)
		seedInstance(t, d, "done", day(50))
		seedInstance(t, d, "halfway", day(40))
		if _, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 1, Before: day(45)}); err != nil {
			t.Fatal(err)
		}
		if d.Dialect == db.Postgres {
			exec(t, d, `CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql`)
			exec(t, d, `CREATE TRIGGER refuse BEFORE DELETE ON migrations FOR EACH ROW EXECUTE FUNCTION refuse()`)
		} else {
			exec(t, d, `CREATE TRIGGER refuse BEFORE DELETE ON migrations BEGIN SELECT RAISE(ABORT, 'refused'); END`)
		}
		_, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 10, Before: day(30), UntilComplete: true})
		if err == nil || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("archive with the delete refused: %v", err)
		}
		if w := where(t, d, "halfway"); w != "main" {
			t.Errorf("instance after the failed batch: %s, want whole in its tables", w)
		}
		if w := where(t, d, "done"); w != "shadow" {
			t.Errorf("instance of the batch before: %s, want in the shadow tables", w)
		}
		exec(t, d, `DROP TRIGGER refuse`+map[db.Dialect]string{db.Postgres: ` ON migrations`}[d.Dialect])
		got, err := archive.Archive(ctx, d, celldb.ArchivePlan, archive.Options{MaxRows: 10, Before: day(30), UntilComplete: true})
		if err != nil || got["instances"] != 1 {
			t.Fatalf("rerun: %v, %v", got, err)
		}
		if w := where(t, d, "halfway"); w != "shadow" {
			t.Errorf("instance after the rerun: %s", w)
		}
	})
}
