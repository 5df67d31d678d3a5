package voldb

import (
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/archive"
)

// ArchivePlan is what "cellcloud db archive" moves of the API copy of the
// volumes: the deleted volumes with their metadata, snapshots (and
// theirs) and attachments, and the deleted snapshots of live volumes.
var ArchivePlan = archive.Plan{Tables: []archive.Table{
	{Name: "volumes", Key: "id", Deleted: "deleted <> 0", Time: "deleted_at", Children: []archive.Child{
		{Name: "volume_metadata", Column: "volume_id", Key: "volume_id"},
		{Name: "volume_snapshots", Column: "volume_id", Key: "id", Children: []archive.Child{
			{Name: "snapshot_metadata", Column: "snapshot_id", Key: "snapshot_id"},
		}},
		{Name: "volume_attachments", Column: "volume_id", Key: "id"},
	}},
	{Name: "volume_snapshots", Key: "id", Deleted: "deleted <> 0", Time: "deleted_at", Children: []archive.Child{
		{Name: "snapshot_metadata", Column: "snapshot_id", Key: "snapshot_id"},
	}},
}}

// ShadowMigrationSet names the migration set of the volume copy's shadow
// tables (a set of its own, run after the volume set).
const ShadowMigrationSet = "volume_shadow"

// ShadowMigrations create the shadow tables of ArchivePlan; see
// celldb.ShadowMigrations for how they change.
var ShadowMigrations = []db.Migration{
	{Version: 1, Name: "shadow tables and the archive's indexes", SQL: archive.ShadowSQL(ArchivePlan)},
}
