package celldb

import (
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/archive"
)

// ArchivePlan is what "cellcloud db archive" moves in a compute cell's
// database (docs/operations.md, Housekeeping): the deleted instances with
// their actions and the actions' events, migrations, block device
// mappings and deleted volume attachments; the deleted volumes with their
// snapshots and attachments; the deleted snapshots of live volumes; and,
// when asked (--task-log), the usage audit's task log by age. Nothing
// else of a compute cell is soft-deleted: claims and fixed IPs go with
// the delete itself, early deletes and applied message ids are pruned by
// the cells service.
//
// The detached (deleted) block device mappings and volume attachments of
// a live instance stay until the instance is archived: they carry no
// time of their deletion.
var ArchivePlan = archive.Plan{Tables: []archive.Table{
	{Name: "instances", Key: "uuid", Deleted: "deleted <> 0", Time: "deleted_at", Children: []archive.Child{
		{Name: "instance_actions", Column: "instance_uuid", Key: "id", Children: []archive.Child{
			{Name: "instance_action_events", Column: "action_id", Key: "id"},
		}},
		{Name: "migrations", Column: "instance_uuid", Key: "id"},
		{Name: "block_device_mappings", Column: "instance_uuid", Key: "uuid"},
		// Only the deleted ones: an attachment of the Block Storage API's
		// attachments outlives its instance until its consumer deletes it
		// (as Cinder keeps it), and its volume still shows it.
		{Name: "volume_attachments", Column: "instance_uuid", Key: "id", Where: "deleted <> 0"},
	}},
	// A compute cell's volume rows have no deleted_at: updated_at is the
	// time of their deletion (the last change a deleted row has).
	{Name: "volumes", Key: "id", Deleted: "deleted <> 0", Time: "updated_at", Children: []archive.Child{
		{Name: "volume_snapshots", Column: "volume_id", Key: "id"},
		{Name: "volume_attachments", Column: "volume_id", Key: "id", Where: "deleted <> 0"},
	}},
	{Name: "volume_snapshots", Key: "id", Deleted: "deleted <> 0", Time: "updated_at"},
	{Name: "task_log", Key: "id", Time: "updated_at", Option: "task_log"},
}}

// ShadowMigrationSet names the migration set of the compute cell's shadow
// tables. It is a set of its own (run after the compute set), so that its
// versions are apart from the compute schema's.
const ShadowMigrationSet = "compute_shadow"

// ShadowMigrations create the shadow tables of ArchivePlan. A table added
// to the plan gets its shadow table by a new migration of the same SQL
// (which creates only what is missing); a migration that adds a column to
// one of the plan's tables adds it to the shadow table too, in a migration
// of this set (archive refuses to run otherwise, and the shadow column
// test fails).
var ShadowMigrations = []db.Migration{
	{Version: 1, Name: "shadow tables and the archive's indexes", SQL: archive.ShadowSQL(ArchivePlan)},
}
