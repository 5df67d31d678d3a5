package apidb

import (
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/archive"
)

// ArchivePlan is what "cellcloud db archive" moves of the API copy of the
// instances (docs/operations.md, Housekeeping): the deleted servers with
// their tags, and, deleted for good as Nova's archive deletes the API
// database's instance mappings, request specs and group members of the
// instances it archives, their server group memberships and the rows of
// other packages of the API cell's database given as drop (a server's
// security group bindings, its interfaces' device tags).
//
// Flavors and server groups deleted stay as tombstones (a deleted default
// flavor must not be seeded again; neither has a time of deletion).
func ArchivePlan(drop ...archive.Child) archive.Plan {
	children := []archive.Child{
		{Name: "server_tags", Column: "instance_uuid", Key: "instance_uuid"},
		{Name: "server_group_members", Column: "instance_uuid", Drop: true},
	}
	return archive.Plan{Tables: []archive.Table{
		{Name: "instances", Key: "uuid", Deleted: "deleted <> 0", Time: "deleted_at", Children: append(children, drop...)},
	}}
}

// ShadowMigrationSet names the migration set of the API copy's shadow
// tables (a set of its own, run after the API schema's).
const ShadowMigrationSet = "api_shadow"

// ShadowMigrations create the shadow tables of ArchivePlan; see
// celldb.ShadowMigrations for how they change.
var ShadowMigrations = []db.Migration{
	{Version: 1, Name: "shadow tables and the archive's indexes", SQL: archive.ShadowSQL(ArchivePlan())},
}
