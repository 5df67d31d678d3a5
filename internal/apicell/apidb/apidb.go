// Package apidb is the API cell's data: its copy of every instance (kept
// current by updates from the cells below, applied in version order) and the
// flavors. It knows nothing of hosts.
package apidb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Migrations is the API cell's schema.
var Migrations = []db.Migration{
	{Version: 1, Name: "instances copy and flavors", SQL: `
CREATE TABLE instances (
	uuid TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	image_ref TEXT NOT NULL,
	flavor_id TEXT NOT NULL,
	flavor TEXT NOT NULL,
	key_name TEXT NOT NULL DEFAULT '',
	user_data TEXT NOT NULL DEFAULT '',
	metadata TEXT NOT NULL DEFAULT '{}',
	availability_zone TEXT NOT NULL DEFAULT '',
	reservation_id TEXT NOT NULL,
	launch_index INTEGER NOT NULL DEFAULT 0,
	cell_path TEXT NOT NULL DEFAULT '',
	host TEXT NOT NULL DEFAULT '',
	node TEXT NOT NULL DEFAULT '',
	vm_state TEXT NOT NULL,
	task_state TEXT NOT NULL DEFAULT '',
	power_state INTEGER NOT NULL DEFAULT 0,
	version {{bigint}} NOT NULL DEFAULT 0,
	addresses TEXT NOT NULL DEFAULT '[]',
	fault TEXT NOT NULL DEFAULT '',
	delete_requested INTEGER NOT NULL DEFAULT 0,
	request_id TEXT NOT NULL DEFAULT '',
	launched_at {{bigint}} NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	deleted_at {{bigint}} NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_project ON instances (project_id, deleted, created_at);
CREATE INDEX instances_live ON instances (deleted, created_at);
CREATE INDEX instances_reservation ON instances (reservation_id);
CREATE TABLE flavors (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL UNIQUE,
	vcpus INTEGER NOT NULL,
	ram_mb {{bigint}} NOT NULL,
	root_gb {{bigint}} NOT NULL,
	ephemeral_gb {{bigint}} NOT NULL DEFAULT 0,
	swap_mb {{bigint}} NOT NULL DEFAULT 0,
	rxtx_factor DOUBLE PRECISION NOT NULL DEFAULT 1,
	is_public INTEGER NOT NULL DEFAULT 1,
	disabled INTEGER NOT NULL DEFAULT 0,
	description TEXT NOT NULL DEFAULT '',
	extra_specs TEXT NOT NULL DEFAULT '{}',
	created_at {{bigint}} NOT NULL
)`},
	// Flavor management (see flavor_manage.go): a deleted flavor stays as a
	// tombstone (deleted = 1, disabled = 1) so that SeedFlavors does not bring
	// a deleted default back; description_null tells a null description from
	// an empty one; flavor_projects is the access list of private flavors.
	{Version: 2, Name: "flavor management", SQL: `
ALTER TABLE flavors ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE flavors ADD COLUMN description_null INTEGER NOT NULL DEFAULT 1;
ALTER TABLE flavors ADD COLUMN updated_at {{bigint}} NOT NULL DEFAULT 0;
CREATE TABLE flavor_projects (
	flavor_id TEXT NOT NULL REFERENCES flavors (id) ON DELETE CASCADE,
	project_id TEXT NOT NULL,
	PRIMARY KEY (flavor_id, project_id)
);
CREATE INDEX flavor_projects_project ON flavor_projects (project_id)`},
	// Key pairs (see keypairs.go), per user as in Nova.
	{Version: 3, Name: "key pairs", SQL: `
CREATE TABLE key_pairs (
	id {{serial}},
	user_id TEXT NOT NULL,
	name TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	public_key TEXT NOT NULL,
	type TEXT NOT NULL DEFAULT 'ssh',
	created_at {{bigint}} NOT NULL,
	UNIQUE (user_id, name)
)`},
	// Server update, lock and tags (see servers_extra.go): description_null
	// tells a null description (Nova's None) from an empty one; locked_by is
	// "owner", "admin" or "" (not locked); an access IP of "" is none.
	{Version: 4, Name: "server description, access IPs, lock and tags", SQL: `
ALTER TABLE instances ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN description_null INTEGER NOT NULL DEFAULT 1;
ALTER TABLE instances ADD COLUMN access_ip_v4 TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN access_ip_v6 TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN locked_by TEXT NOT NULL DEFAULT '';
CREATE INDEX instances_updated ON instances (updated_at);
CREATE TABLE server_tags (
	instance_uuid TEXT NOT NULL REFERENCES instances (uuid) ON DELETE CASCADE,
	tag TEXT NOT NULL,
	PRIMARY KEY (instance_uuid, tag)
);
CREATE INDEX server_tags_tag ON server_tags (tag)`},
	// Server groups (see server_groups.go). A deleted group stays as a
	// tombstone (deleted = 1) and loses its members.
	{Version: 5, Name: "server groups", SQL: `
CREATE TABLE server_groups (
	uuid TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	policy TEXT NOT NULL,
	created_at {{bigint}} NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX server_groups_project ON server_groups (project_id, deleted, created_at);
CREATE TABLE server_group_members (
	group_uuid TEXT NOT NULL REFERENCES server_groups (uuid),
	instance_uuid TEXT NOT NULL,
	PRIMARY KEY (group_uuid, instance_uuid)
);
CREATE INDEX server_group_members_instance ON server_group_members (instance_uuid)`},
	// Quotas (see quotas.go): limits by project (and user), the quota
	// classes, and what each instance counts for. Usage is counted from
	// the instances themselves; quota_locks serialises the checks of one
	// project.
	{Version: 6, Name: "quotas", SQL: `
ALTER TABLE instances ADD COLUMN vcpus INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN memory_mb {{bigint}} NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN resize_vcpus INTEGER NOT NULL DEFAULT 0;
ALTER TABLE instances ADD COLUMN resize_memory_mb {{bigint}} NOT NULL DEFAULT 0;
CREATE INDEX instances_quota ON instances (project_id, deleted, user_id, vcpus, memory_mb);
CREATE TABLE quota_limits (
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL DEFAULT '',
	resource TEXT NOT NULL,
	hard_limit {{bigint}} NOT NULL,
	PRIMARY KEY (project_id, user_id, resource)
);
CREATE TABLE quota_classes (
	class_name TEXT NOT NULL,
	resource TEXT NOT NULL,
	hard_limit {{bigint}} NOT NULL,
	PRIMARY KEY (class_name, resource)
);
CREATE TABLE quota_locks (
	project_id TEXT PRIMARY KEY,
	checks {{bigint}} NOT NULL DEFAULT 0
)`},
	{Version: 7, Name: "host mappings", SQL: `
CREATE TABLE host_mappings (
	uuid TEXT PRIMARY KEY,
	cell TEXT NOT NULL,
	kind TEXT NOT NULL,
	host TEXT NOT NULL,
	binary_name TEXT NOT NULL DEFAULT '',
	updated_at {{bigint}} NOT NULL
);
CREATE INDEX host_mappings_host ON host_mappings (host, cell)`},
	{Version: 8, Name: "server group rules", SQL: `
ALTER TABLE server_groups ADD COLUMN max_server_per_host INTEGER NOT NULL DEFAULT 0`},
	// A list by status (GET /servers?status=ERROR, and BUILD, which the
	// bench polls) read every live instance through instances_live when
	// few or none matched; this finds the matches newest first by key.
	{Version: 9, Name: "instances by state", SQL: `
CREATE INDEX instances_state ON instances (vm_state, deleted, created_at)`},
	// Instances created before migration 6 count their flavor from here on
	// (what the node once did at every start).
	{Version: 10, Name: "counted flavor columns of older instances", Go: backfillQuotaColumns},
	// Below microversion 2.53 services and hypervisors have integer ids,
	// unique in the whole cloud: the API cell numbers them as their
	// mappings arrive (mappings already held are numbered in UUID order).
	{Version: 11, Name: "host mapping numbers", SQL: `
ALTER TABLE host_mappings ADD COLUMN num {{bigint}} NOT NULL DEFAULT 0;
UPDATE host_mappings SET num = (SELECT COUNT(*) FROM host_mappings h WHERE h.uuid <= host_mappings.uuid);
CREATE UNIQUE INDEX host_mappings_num ON host_mappings (num)`},
	// OS-DCF:diskConfig: AUTO (1) or MANUAL (0), as Nova's auto_disk_config.
	{Version: 12, Name: "auto disk config", SQL: `
ALTER TABLE instances ADD COLUMN auto_disk_config INTEGER NOT NULL DEFAULT 0`},
	// The snapshot a shelve made, in the API cell's image store ("": none):
	// Nova's system_metadata shelved_image_id.
	{Version: 13, Name: "shelved image", SQL: `
ALTER TABLE instances ADD COLUMN shelved_image_id TEXT NOT NULL DEFAULT ''`},
	// What a cell enforces on a server's ports, against what its build
	// carried (architecture §3.9): build_security_groups is the server's
	// groups as its build carried them, a JSON list of ids, recorded when
	// its groups first change ('': they never changed); ports_revised is
	// 1 once a port_update was due for one of its ports (a port update, a
	// change of its groups), so that a cell that builds it later is sent
	// its ports' states. Both are read where the copy's row is read
	// anyway, so a boot pays nothing for them.
	{Version: 14, Name: "security groups since the build", SQL: `
ALTER TABLE instances ADD COLUMN build_security_groups TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN ports_revised INTEGER NOT NULL DEFAULT 0`},
	// Host aggregates (see aggregates.go), as Nova keeps them in its API
	// database: deleted for good (a name is free again at once), the
	// availability zone as the metadata key availability_zone, a host by
	// its cell and its name in that cell. aggregate_lock's one row
	// serialises the changes (their zone checks read other aggregates).
	{Version: 15, Name: "host aggregates", SQL: `
CREATE TABLE aggregates (
	id {{serial}},
	uuid TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL UNIQUE,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL DEFAULT 0
);
CREATE TABLE aggregate_hosts (
	id {{serial}},
	aggregate_id {{bigint}} NOT NULL REFERENCES aggregates (id) ON DELETE CASCADE,
	cell TEXT NOT NULL,
	host TEXT NOT NULL,
	UNIQUE (aggregate_id, cell, host)
);
CREATE INDEX aggregate_hosts_host ON aggregate_hosts (host, cell);
CREATE TABLE aggregate_metadata (
	aggregate_id {{bigint}} NOT NULL REFERENCES aggregates (id) ON DELETE CASCADE,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (aggregate_id, key)
);
CREATE TABLE aggregate_lock (
	id INTEGER PRIMARY KEY,
	changes {{bigint}} NOT NULL
)`},
	// The aggregates' snapshots sent to the cells (package aggsync): for
	// each compute cell, the version (aggregate_lock.changes when it was
	// made) and default zone of the last host_aggregates it was sent.
	{Version: 16, Name: "host aggregates sent to the cells", SQL: `
CREATE TABLE aggregate_cells (
	cell TEXT PRIMARY KEY,
	version {{bigint}} NOT NULL,
	default_zone TEXT NOT NULL
)`},
	// Why a server is locked (2.73): Nova's system_metadata locked_reason;
	// '' is none (a reason given is never empty).
	{Version: 17, Name: "locked reason", SQL: `
ALTER TABLE instances ADD COLUMN locked_reason TEXT NOT NULL DEFAULT ''`},
	// The server's hostname (Nova's instance.hostname): set at create,
	// from the name or as given (2.90), and by an update or rebuild that
	// gives one; a rename keeps it. Rows made before are given the one
	// their name made, which is what the API showed for them ('' stays
	// "made from the name" for a row written without one). pinned_zone
	// is the zone the server is pinned to (Nova's
	// RequestSpec.availability_zone): the one its create asked for, then
	// the one an unshelve gives (2.77, 2.91; none, '', unpins it); rows
	// made before are pinned to none.
	{Version: 18, Name: "hostname and pinned zone", SQL: `
ALTER TABLE instances ADD COLUMN hostname TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN pinned_zone TEXT NOT NULL DEFAULT ''`, Go: backfillHostnames},
}

// ErrNotFound is returned for a missing instance or flavor.
var ErrNotFound = notfound.New("not found")

// Instance is the API cell's copy of an instance.
type Instance struct {
	wire.InstanceSpec
	FlavorID        string
	Flavor          wire.Flavor
	Cell            string
	Host            string
	Node            string
	VMState         string
	TaskState       string
	PowerState      int
	Version         int64
	Addresses       []wire.Address
	Fault           *wire.Fault
	DeleteRequested bool
	RequestID       string
	LaunchedAt      time.Time
	UpdatedAt       time.Time
	DeletedAt       time.Time
	Deleted         bool
	// Description is the server's description (nil: none, Nova's null).
	Description *string
	// AccessIPv4 and AccessIPv6 are the access addresses a user set ("": none).
	AccessIPv4, AccessIPv6 string
	// Locked is true while the server is locked; LockedBy is who locked it,
	// "owner" or "admin" ("" when unlocked), as in Nova.
	Locked   bool
	LockedBy string
	// LockedReason is the reason given with the lock (2.73; "": none).
	LockedReason string
	// Tags are the server's tags, sorted; nil until loaded (LoadTags).
	Tags []string
	// AutoDiskConfig is OS-DCF:diskConfig AUTO (false: MANUAL).
	AutoDiskConfig bool
	// ShelvedImageID is the image a shelve made of the server, until an
	// unshelve or a delete deletes it ("": none).
	ShelvedImageID string
	// SecurityGroups are the names of the server's security groups, each
	// once and sorted; nil until loaded (the Compute API loads them from
	// the Networking API's bindings).
	SecurityGroups []string
	// Hostname is the server's hostname (OS-EXT-SRV-ATTR:hostname): ""
	// only for a row written without one, whose hostname is its name's
	// (DefaultHostname).
	Hostname string
	// PinnedZone is the availability zone the server is pinned to ("":
	// none), which an unshelve to a host checks the host against (2.91).
	PinnedZone string
	// VolumesAttached are the volumes attached to the server, in the
	// order of its devices; nil until loaded (the Compute API loads them
	// from the volume copy's mirror of the attachments).
	VolumesAttached []AttachedVolume
}

// AttachedVolume is a volume attached to a server, as its views show it
// (os-extended-volumes:volumes_attached).
type AttachedVolume struct {
	ID                  string
	DeleteOnTermination bool
}

const cols = `uuid, name, project_id, user_id, image_ref, flavor_id, flavor, key_name, user_data, metadata, availability_zone,
	reservation_id, launch_index, cell_path, host, node, vm_state, task_state, power_state, version, addresses, fault,
	delete_requested, request_id, launched_at, created_at, updated_at, deleted_at, deleted,
	description, description_null, access_ip_v4, access_ip_v6, locked, locked_by, auto_disk_config, shelved_image_id,
	locked_reason, hostname, pinned_zone`

// b2i is a boolean as the database stores it.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Querier is a transaction or the database.
type Querier = db.Querier

func scan(r db.Scanner) (*Instance, error) {
	var in Instance
	var flavor, meta, addrs, fault string
	var delReq, deleted, descNull, locked, autoDisk int
	var launched, created, updated, deletedAt int64
	var desc string
	err := r.Scan(&in.UUID, &in.Name, &in.ProjectID, &in.UserID, &in.ImageRef, &in.FlavorID, &flavor, &in.KeyName, &in.UserData,
		&meta, &in.AvailabilityZone, &in.ReservationID, &in.LaunchIndex, &in.Cell, &in.Host, &in.Node, &in.VMState, &in.TaskState,
		&in.PowerState, &in.Version, &addrs, &fault, &delReq, &in.RequestID, &launched, &created, &updated, &deletedAt, &deleted,
		&desc, &descNull, &in.AccessIPv4, &in.AccessIPv6, &locked, &in.LockedBy, &autoDisk, &in.ShelvedImageID,
		&in.LockedReason, &in.Hostname, &in.PinnedZone)
	if err != nil {
		return nil, err
	}
	if descNull == 0 {
		in.Description = &desc
	}
	in.Locked = locked != 0
	in.AutoDiskConfig = autoDisk != 0
	_ = json.Unmarshal([]byte(flavor), &in.Flavor)
	_ = json.Unmarshal([]byte(meta), &in.Metadata)
	_ = json.Unmarshal([]byte(addrs), &in.Addresses)
	if fault != "" {
		in.Fault = &wire.Fault{}
		_ = json.Unmarshal([]byte(fault), in.Fault)
	}
	in.DeleteRequested = delReq != 0
	in.Deleted = deleted != 0
	in.LaunchedAt = db.FromMicros(launched)
	in.CreatedAt = db.FromMicros(created)
	in.UpdatedAt = db.FromMicros(updated)
	in.DeletedAt = db.FromMicros(deletedAt)
	return &in, nil
}

// Create inserts new instances (version 0: no cell has spoken yet).
func Create(ctx context.Context, tx *db.Tx, insts []Instance) error {
	for _, in := range insts {
		q, args := CreateStatement(tx, []Instance{in})
		if err := tx.ExecLater(ctx, q, args...); err != nil {
			return fmt.Errorf("create instance %s: %w", in.UUID, err)
		}
	}
	return nil
}

// CreateStatement is the statement that inserts new instances as Create
// does, all in one, for a caller that runs it in tx and writes what goes
// with them in the same statement (on PostgreSQL, from a WITH of it
// RETURNING uuid). The transaction remembers them as its own (created).
func CreateStatement(tx *db.Tx, insts []Instance) (string, []any) {
	for _, in := range insts {
		tx.Remember(createdKey(in.UUID), true)
	}
	const row = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	var b strings.Builder
	b.WriteString(`INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor_id, flavor, key_name, user_data,
			metadata, availability_zone, reservation_id, launch_index, vm_state, task_state, request_id, created_at, updated_at, vcpus, memory_mb,
			access_ip_v4, access_ip_v6, auto_disk_config, hostname, pinned_zone)
			VALUES `)
	args := make([]any, 0, 25*len(insts))
	for i, in := range insts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
		flavor, _ := json.Marshal(in.Flavor)
		meta, _ := json.Marshal(in.Metadata)
		if in.Metadata == nil {
			meta = []byte("{}")
		}
		now := db.Micros(in.CreatedAt)
		args = append(args, in.UUID, in.Name, in.ProjectID, in.UserID, in.ImageRef, in.FlavorID, string(flavor), in.KeyName, in.UserData,
			string(meta), in.AvailabilityZone, in.ReservationID, in.LaunchIndex, in.VMState, in.TaskState, in.RequestID, now, now,
			in.Flavor.VCPUs, in.Flavor.RAMMB, in.AccessIPv4, in.AccessIPv6, b2i(in.AutoDiskConfig), in.Hostname, in.PinnedZone)
	}
	return b.String(), args
}

// createdKey is what a transaction remembers of an instance it created.
func createdKey(uuid string) string { return "apidb.created " + uuid }

// created reports whether tx created every instance of uuids
// (CreateStatement): no other transaction has seen them.
func created(tx *db.Tx, uuids []string) bool {
	for _, u := range uuids {
		if _, ok := tx.Recall(createdKey(u)); !ok {
			return false
		}
	}
	return true
}

// Get reads one instance, deleted or not.
func Get(ctx context.Context, q Querier, uuid string) (*Instance, error) {
	in, err := scan(q.QueryRow(ctx, `SELECT `+cols+` FROM instances WHERE uuid = ?`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("instance %s: %w", uuid, ErrNotFound)
	}
	return in, err
}

// ListOptions filters, sorts and pages a list, as Nova's
// instance_get_all_by_filters_sort does. The zero value lists every live
// instance, newest first. Every value is passed to the query as a
// parameter; only column names chosen here (ServerSortKeys) are written
// into it.
type ListOptions struct {
	// ProjectID limits to one project; empty means all projects.
	ProjectID string
	// Limit is the page size (0: no limit).
	Limit int
	// Marker is the last instance of the previous page (deleted or not, of
	// any project); one that does not exist is ErrNotFound.
	Marker string
	// IncludeDeleted lists deleted instances too; OnlyDeleted lists only them.
	IncludeDeleted bool
	OnlyDeleted    bool
	// UserID, UUID, ImageRef, FlavorID and Host, when set, must match exactly.
	UserID, UUID, ImageRef, FlavorID, Host string
	// Locked, when set, must match whether the instance is locked (2.73).
	Locked *bool
	// VMStates and TaskStates, when not empty, are the states allowed (an
	// empty task state is "no task").
	VMStates, TaskStates []string
	// ChangesSince, when set, lists only instances updated at or after it.
	ChangesSince time.Time
	// ChangesBefore, when set, lists only instances updated at or before
	// it (2.66).
	ChangesBefore time.Time
	// Tags: all of them; TagsAny: at least one; NotTags: not all of them;
	// NotTagsAny: none of them (Nova's tags, tags-any, not-tags, not-tags-any).
	Tags, TagsAny, NotTags, NotTagsAny []string
	// Sort are the sort keys (keys of ServerSortKeys), first the primary.
	// created_at and uuid follow as tie-breakers, in the first key's
	// direction (descending when there is no key).
	Sort []SortKey
	// Match, when set, is a further filter applied to each row in sort
	// order (the regular expression filters); the limit counts only the
	// rows it keeps. The rows still come from one query.
	Match func(*Instance) bool
}

// SortKey is one sort key and its direction.
type SortKey struct {
	Key  string
	Desc bool
}

// ServerSortKeys maps Nova's server sort keys to columns. Keys of
// attributes this copy does not hold ("": a constant here, as they are for
// every instance) do not change the order. instance_type_id sorts by the
// flavor's id.
var ServerSortKeys = map[string]string{
	"access_ip_v4": "access_ip_v4", "access_ip_v6": "access_ip_v6", "auto_disk_config": "auto_disk_config",
	"availability_zone": "availability_zone", "config_drive": "", "created_at": "created_at",
	"display_description": "description", "display_name": "name", "host": "host", "hostname": "hostname",
	"image_ref": "image_ref", "instance_type_id": "flavor_id", "kernel_id": "", "key_name": "key_name",
	"launch_index": "launch_index", "launched_at": "launched_at", "locked": "locked", "locked_by": "locked_by", "node": "node",
	"power_state": "power_state", "progress": "", "project_id": "project_id", "ramdisk_id": "",
	"root_device_name": "", "task_state": "task_state", "terminated_at": "deleted_at", "updated_at": "updated_at",
	"user_id": "user_id", "uuid": "uuid", "vm_state": "vm_state",
}

// textColumns are the sort columns compared as text (in code point order
// on both engines).
var textColumns = map[string]bool{
	"access_ip_v4": true, "access_ip_v6": true, "availability_zone": true, "description": true, "name": true,
	"host": true, "hostname": true, "image_ref": true, "flavor_id": true, "key_name": true, "locked_by": true, "node": true,
	"project_id": true, "task_state": true, "user_id": true, "uuid": true, "vm_state": true,
}

// sortValue is in's value of a sort column, as the column stores it.
func (in *Instance) sortValue(col string) any {
	switch col {
	case "access_ip_v4":
		return in.AccessIPv4
	case "access_ip_v6":
		return in.AccessIPv6
	case "availability_zone":
		return in.AvailabilityZone
	case "auto_disk_config":
		return b2i(in.AutoDiskConfig)
	case "created_at":
		return db.Micros(in.CreatedAt)
	case "description":
		if in.Description == nil {
			return ""
		}
		return *in.Description
	case "name":
		return in.Name
	case "host":
		return in.Host
	case "hostname":
		return in.Hostname
	case "image_ref":
		return in.ImageRef
	case "flavor_id":
		return in.FlavorID
	case "key_name":
		return in.KeyName
	case "launch_index":
		return in.LaunchIndex
	case "launched_at":
		return db.Micros(in.LaunchedAt)
	case "locked":
		return b2i(in.Locked)
	case "locked_by":
		return in.LockedBy
	case "node":
		return in.Node
	case "power_state":
		return in.PowerState
	case "project_id":
		return in.ProjectID
	case "task_state":
		return in.TaskState
	case "deleted_at":
		return db.Micros(in.DeletedAt)
	case "updated_at":
		return db.Micros(in.UpdatedAt)
	case "user_id":
		return in.UserID
	case "uuid":
		return in.UUID
	case "vm_state":
		return in.VMState
	}
	panic("apidb: no sort value for column " + col)
}

type sortCol struct {
	col  string
	desc bool
}

// sortColumns resolves the sort keys to columns, with the tie-breakers.
func sortColumns(keys []SortKey) ([]sortCol, error) {
	desc := true
	if len(keys) > 0 {
		desc = keys[0].Desc
	}
	var out []sortCol
	seen := map[string]bool{}
	add := func(col string, d bool) {
		if col != "" && !seen[col] {
			seen[col] = true
			out = append(out, sortCol{col, d})
		}
	}
	for _, k := range keys {
		col, ok := ServerSortKeys[k.Key]
		if !ok {
			return nil, fmt.Errorf("server sort key %q is not one of the keys", k.Key)
		}
		add(col, k.Desc)
	}
	add("created_at", desc)
	add("uuid", desc)
	return out, nil
}

// placeholders is "?, ?, ..." for n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func anyOf(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// List returns instances in the order asked (newest first by default), in
// one query.
func List(ctx context.Context, q Querier, o ListOptions) ([]*Instance, error) {
	sorts, err := sortColumns(o.Sort)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	cond := func(c string, a ...any) {
		where = append(where, c)
		args = append(args, a...)
	}
	switch {
	case o.OnlyDeleted:
		cond("deleted = 1")
	case !o.IncludeDeleted:
		cond("deleted = 0")
	}
	for _, f := range []struct{ col, v string }{
		{"project_id", o.ProjectID}, {"user_id", o.UserID}, {"uuid", o.UUID}, {"image_ref", o.ImageRef},
		{"flavor_id", o.FlavorID}, {"host", o.Host},
	} {
		if f.v != "" {
			cond(f.col+" = ?", f.v)
		}
	}
	if o.Locked != nil {
		cond("locked = ?", b2i(*o.Locked))
	}
	if len(o.VMStates) > 0 {
		// Across projects, instances_state finds the few in a state; within
		// a project, its own index does better, which SQLite's planner
		// (without statistics) must be told by "+" (PostgreSQL's has them).
		col := "vm_state"
		if o.ProjectID != "" && dialectOf(q) == db.SQLite {
			col = "+vm_state"
		}
		cond(col+" IN ("+placeholders(len(o.VMStates))+")", anyOf(o.VMStates)...)
	}
	if len(o.TaskStates) > 0 {
		cond("task_state IN ("+placeholders(len(o.TaskStates))+")", anyOf(o.TaskStates)...)
	}
	if !o.ChangesBefore.IsZero() {
		cond("updated_at <= ?", db.Micros(o.ChangesBefore))
	}
	if !o.ChangesSince.IsZero() {
		cond("updated_at >= ?", db.Micros(o.ChangesSince))
	}
	const hasTag = "EXISTS (SELECT 1 FROM server_tags t WHERE t.instance_uuid = instances.uuid AND t.tag = ?)"
	const hasAnyTag = "EXISTS (SELECT 1 FROM server_tags t WHERE t.instance_uuid = instances.uuid AND t.tag IN (%s))"
	for _, t := range o.Tags {
		cond(hasTag, t)
	}
	if len(o.TagsAny) > 0 {
		cond(fmt.Sprintf(hasAnyTag, placeholders(len(o.TagsAny))), anyOf(o.TagsAny)...)
	}
	if len(o.NotTags) > 0 {
		all := make([]string, len(o.NotTags))
		for i := range all {
			all[i] = hasTag
		}
		cond("NOT ("+strings.Join(all, " AND ")+")", anyOf(o.NotTags)...)
	}
	if len(o.NotTagsAny) > 0 {
		cond("NOT "+fmt.Sprintf(hasAnyTag, placeholders(len(o.NotTagsAny))), anyOf(o.NotTagsAny)...)
	}
	expr := func(c sortCol) string {
		if textColumns[c.col] {
			return c.col + binary(q)
		}
		return c.col
	}
	if o.Marker != "" {
		m, err := Get(ctx, q, o.Marker)
		if err != nil {
			return nil, fmt.Errorf("marker %s: %w", o.Marker, ErrNotFound)
		}
		// After the marker in the sort order: (k1 op1 m1) OR (k1 = m1 AND
		// k2 op2 m2) OR ...; the last key (uuid) is unique, so the marker
		// itself is never listed again.
		var ors []string
		for i, s := range sorts {
			var ands []string
			for _, p := range sorts[:i] {
				ands = append(ands, expr(p)+" = ?")
				args = append(args, m.sortValue(p.col))
			}
			op := ">"
			if s.desc {
				op = "<"
			}
			ands = append(ands, expr(s)+" "+op+" ?")
			args = append(args, m.sortValue(s.col))
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	query := `SELECT ` + cols + ` FROM instances`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	order := make([]string, len(sorts))
	for i, s := range sorts {
		order[i] = expr(s) + " ASC"
		if s.desc {
			order[i] = expr(s) + " DESC"
		}
	}
	query += " ORDER BY " + strings.Join(order, ", ")
	if o.Limit > 0 && o.Match == nil {
		query += " LIMIT ?"
		args = append(args, o.Limit)
	}
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Instance
	for rows.Next() {
		in, err := scan(rows)
		if err != nil {
			return nil, err
		}
		if o.Match != nil && !o.Match(in) {
			continue
		}
		out = append(out, in)
		if o.Limit > 0 && len(out) == o.Limit {
			break
		}
	}
	return out, rows.Err()
}

// Applied says what applying an update did.
type Applied struct {
	// Changed is false when the update was older than the copy.
	Changed bool
	// Moved is true when the instance's cell changed.
	Moved bool
	// PrevCell is the copy's cell before the update.
	PrevCell string
	// Deleted and DeleteRequested are the copy's, after the update: it is
	// deleted, or a user asked for its deletion.
	Deleted, DeleteRequested bool
	// Stale is set for an update left alone that comes from a cell which
	// must not hold the instance live (see IsStale): the cell built it
	// from a build the API cell's record moved elsewhere.
	Stale bool
	// DropImage is the shelved image the update is done with (it ends an
	// unshelve, or deletes the instance): the copy no longer names it, and
	// the caller deletes it from the image store.
	DropImage string
	// AddressesChanged says that the update changed the instance's
	// addresses, and HadAddresses that it had some before; ProjectID and
	// AvailabilityZone are the instance's after the update (for its ports).
	AddressesChanged, HadAddresses bool
	ProjectID, AvailabilityZone    string
	// PortsRevised says that a port_update was due for one of the
	// instance's ports since its build (NotePortsRevised), and BuildGroups
	// are the server's groups as its build carried them when they changed
	// since (nil: they did not).
	PortsRevised bool
	BuildGroups  []string
}

// IsStale reports whether a live state that the copy leaves alone (it is
// not newer, or the copy is deleted) comes from a cell that must not hold
// the instance: any cell but the copy's. An instance lives in one cell;
// the copy names the cell whose versions won. A live state it leaves alone
// from another cell comes from a cell that built the instance from a build
// that was placed elsewhere after it (a build placed again when its cell
// did not take it in time, with its versions fenced above that cell's;
// see cells.FenceStep) — at the API cell, or at a routing cell with hosts
// of its own, which places the build on them after its child did not take
// it, so that the stale cell can be below the copy's — or one whose copy
// has no cell (no cell could build it). A placement recorded at a routing
// cell is never held against the cell below that builds it: that cell's
// versions are newer. A deletion is never stale: it holds nothing.
func IsStale(st wire.InstanceState, copyCell string) bool {
	return !st.Deleted && st.Cell != copyCell
}

// Standing is how a cell's state of an instance stands against the copy.
type Standing int

// The standings.
const (
	// Newer: ApplyUpdate applies it.
	Newer Standing = iota
	// Held: ApplyUpdate leaves it alone (the copy holds it or newer, or
	// has no such instance).
	Held
	// StaleCell: ApplyUpdate leaves it alone, and it comes from a cell that
	// must not hold the instance (IsStale).
	StaleCell
)

// Current says how each of states stands against the copy: Held for those
// ApplyUpdate would leave alone (of instances the copy does not have, has
// deleted, or holds at the same version or newer; a deletion from the
// copy's cell is always applied), StaleCell
// for those of them ApplyUpdate would report Stale, Newer for the rest. It
// reads the versions in a few queries rather than each instance whole, for
// the heal resends of a cell, which are mostly current.
func Current(ctx context.Context, q Querier, states []wire.InstanceState) (map[string]Standing, error) {
	const chunk = 100 // one statement text for every query: the last is padded
	type row struct {
		version int64
		deleted bool
		cell    string
	}
	have := make(map[string]row, len(states))
	for i := 0; i < len(states); i += chunk {
		args := make([]any, chunk)
		for j := range chunk {
			args[j] = states[min(i+j, len(states)-1)].UUID
		}
		rows, err := q.Query(ctx, `SELECT uuid, version, deleted, cell_path FROM instances WHERE uuid IN (`+placeholders(chunk)+`)`, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var u string
			var r row
			if err := rows.Scan(&u, &r.version, &r.deleted, &r.cell); err != nil {
				rows.Close()
				return nil, err
			}
			have[u] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make(map[string]Standing, len(states))
	for _, st := range states {
		r, ok := have[st.UUID]
		switch {
		case !ok:
			out[st.UUID] = Held
		case r.deleted || (st.Version <= r.version && (!st.Deleted || r.cell != st.Cell)):
			out[st.UUID] = Held
			if IsStale(st, r.cell) {
				out[st.UUID] = StaleCell
			}
		default:
			out[st.UUID] = Newer
		}
	}
	return out, nil
}

// ApplyUpdate applies a cell's state of an instance if it is newer than the
// copy (a deletion, which is final, is always applied when it comes from
// the copy's cell). Late and repeated updates
// leave the copy alone; so does a deletion from a cell the instance was
// moved away from, whose versions are fenced below the copy's.
func ApplyUpdate(ctx context.Context, tx *db.Tx, st wire.InstanceState, now time.Time) (Applied, error) {
	// What decides whether and how to apply it: a few columns, not the
	// whole row. On PostgreSQL the row is locked from this read on: a
	// delete that marks it concurrently (reading the cell it sends the
	// delete to) either commits first, and is seen here as a pending
	// delete to send on to the new cell, or reads the new cell after this
	// commits. Without the lock, both could read before either wrote and
	// the delete would go to the old cell only. (SQLite transactions here
	// take the write lock when they begin.)
	var r copyRow
	var err error
	written := false
	if tx.Dialect == db.Postgres {
		// The common case, a newer state of a live instance with no
		// shelved image (which the update would decide about), is written
		// by the statement that reads and locks the row: nothing of the
		// update then depends on the columns read, but its version, which
		// is the state's. Any other case is decided below, as on SQLite.
		// The update depends on the lock's read (o), so it runs after it
		// and on the row as locked.
		q, args := applyStatement(st, st.Version, "", now)
		err = tx.QueryRow(ctx, `WITH o AS (SELECT `+copyRowCols+` FROM instances WHERE uuid = ? FOR UPDATE),
			u AS (`+q+` WHERE uuid = ? AND EXISTS (SELECT 1 FROM o WHERE o.deleted = 0 AND o.version < ? AND o.shelved_image_id = '') RETURNING 1)
			SELECT o.*, EXISTS (SELECT 1 FROM u) FROM o`, append(append([]any{st.UUID}, args...), st.UUID, st.Version)...).
			Scan(append(r.dest(), &written)...)
	} else {
		err = tx.QueryRow(ctx, `SELECT `+copyRowCols+` FROM instances WHERE uuid = ?`, st.UUID).Scan(r.dest()...)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return Applied{}, nil // never created here (or purged): nothing to update
	}
	if err != nil {
		return Applied{}, fmt.Errorf("apply update to %s: %w", st.UUID, err)
	}
	a := Applied{Deleted: r.deleted, DeleteRequested: r.deleteRequested, ProjectID: r.projectID, AvailabilityZone: r.zone,
		PortsRevised: r.portsRevised}
	if r.buildGroups != "" {
		if err := json.Unmarshal([]byte(r.buildGroups), &a.BuildGroups); err != nil || a.BuildGroups == nil {
			a.BuildGroups = []string{}
		}
	}
	if a.Deleted || (st.Version <= r.version && (!st.Deleted || r.cell != st.Cell)) {
		a.PrevCell = r.cell
		a.Stale = IsStale(st, r.cell)
		return a, nil
	}
	// A shelved image is done with once an unshelve ends (the instance
	// ACTIVE after SHELVED or SHELVED_OFFLOADED while unshelving or
	// spawning: Nova deletes it there) or the instance is deleted. A reset
	// of a shelved instance keeps it (a later shelve or the deletion
	// deletes it). Only that id is cleared: a shelve started meanwhile
	// keeps the one it set.
	unshelved := (r.vmState == "shelved" || r.vmState == "shelved_offloaded") && (r.taskState == "unshelving" || r.taskState == "spawning") &&
		st.VMState == "active"
	if r.shelvedImage != "" && (st.Deleted || unshelved) {
		a.DropImage = r.shelvedImage
	}
	if !written {
		q, args := applyStatement(st, max(st.Version, r.version), a.DropImage, now)
		if err := tx.ExecLater(ctx, q+` WHERE uuid = ?`, append(args, st.UUID)...); err != nil {
			return Applied{}, fmt.Errorf("apply update to %s: %w", st.UUID, err)
		}
	}
	addrs := addressesJSON(st.Addresses)
	a.Changed, a.Moved, a.Deleted, a.PrevCell = true, r.cell != st.Cell, st.Deleted, r.cell
	a.AddressesChanged, a.HadAddresses = addrs != r.addresses, r.addresses != "[]" && r.addresses != ""
	if st.AvailabilityZone != "" {
		a.AvailabilityZone = st.AvailabilityZone
	}
	return a, nil
}

// copyRow is what ApplyUpdate reads of the copy of an instance
// (copyRowCols).
type copyRow struct {
	deleted, deleteRequested, portsRevised                                          bool
	version                                                                         int64
	cell, vmState, taskState, shelvedImage, addresses, projectID, zone, buildGroups string
}

const copyRowCols = `deleted, delete_requested, version, cell_path, vm_state, task_state, shelved_image_id, addresses, project_id,
	availability_zone, build_security_groups, ports_revised`

func (r *copyRow) dest() []any {
	return []any{&r.deleted, &r.deleteRequested, &r.version, &r.cell, &r.vmState, &r.taskState, &r.shelvedImage, &r.addresses,
		&r.projectID, &r.zone, &r.buildGroups, &r.portsRevised}
}

// addressesJSON is the copy's addresses column for a state's addresses.
func addressesJSON(addrs []wire.Address) string {
	if addrs == nil {
		return "[]"
	}
	b, _ := json.Marshal(addrs)
	return string(b)
}

// applyStatement is the UPDATE (up to its WHERE) that writes a cell's
// state of an instance to the copy at version, clearing the shelved image
// dropImage ("": none).
func applyStatement(st wire.InstanceState, version int64, dropImage string, now time.Time) (string, []any) {
	fault := ""
	if st.Fault != nil {
		b, _ := json.Marshal(st.Fault)
		fault = string(b)
	}
	deleted, deletedAt := 0, int64(0)
	if st.Deleted {
		deleted, deletedAt = 1, db.Micros(now)
	}
	// A resize counts the larger of its two flavors for quota until it is
	// confirmed or reverted (or fails): then only the flavor it has.
	resizing := 1
	if st.TaskState == "" && st.VMState != "resized" {
		resizing = 0
	}
	q := `UPDATE instances SET cell_path = ?, host = ?, node = ?,
		availability_zone = CASE WHEN ? <> '' THEN ? ELSE availability_zone END,
		image_ref = CASE WHEN ? <> '' THEN ? ELSE image_ref END,
		vm_state = ?, task_state = ?, power_state = ?,
		version = ?, addresses = ?, fault = ?, launched_at = ?, updated_at = ?, deleted = ?, deleted_at = ?,
		resize_vcpus = resize_vcpus * ?, resize_memory_mb = resize_memory_mb * ?,
		shelved_image_id = CASE WHEN shelved_image_id = ? THEN '' ELSE shelved_image_id END`
	args := []any{st.Cell, st.Host, st.Node, st.AvailabilityZone, st.AvailabilityZone, st.ImageRef, st.ImageRef,
		st.VMState, st.TaskState, st.PowerState, version, addressesJSON(st.Addresses), fault,
		db.Micros(st.LaunchedAt), db.Micros(now), deleted, deletedAt, resizing, resizing, dropImage}
	if f := st.Flavor; f != nil {
		// Resize changes the flavor, and what the instance counts for.
		flavorJSON, _ := json.Marshal(*f)
		q += `, flavor = ?, flavor_id = ?, vcpus = ?, memory_mb = ?`
		args = append(args, string(flavorJSON), f.ID, f.VCPUs, f.RAMMB)
	}
	return q, args
}

// RecordPlaced applies to live instances the state a cell gives them when
// it accepts their build: in cell, at version, building and scheduling,
// where the copy is older than that (as ApplyUpdate would). It is one
// statement for all of them, and returns those whose deletion is pending
// and those for whose ports a port_update was due since their build
// (NotePortsRevised): the cell that takes the build is sent their states.
func RecordPlaced(ctx context.Context, tx *db.Tx, uuids []string, cell string, version int64, now time.Time) (deleting, revised []string, err error) {
	if len(uuids) == 0 {
		return nil, nil, nil
	}
	args := []any{cell, version, db.Micros(now)}
	for _, u := range uuids {
		args = append(args, u)
	}
	args = append(args, version)
	// "+deleted": without it SQLite's planner reads every live instance
	// through instances_live (deleted, created_at) instead of the few by
	// their key.
	// A first placement (version 0: recorded inside the create's
	// transaction, as a rule) keeps the row's updated_at, its creation
	// time: no indexed column then changes (vm_state and task_state are
	// as created), so PostgreSQL can update the row in place on its page
	// (a heap-only tuple) without a new entry in each of the table's
	// indexes. Nothing a user sees changes with a placement.
	q := `UPDATE instances SET cell_path = ?, host = '', node = '', vm_state = 'building', task_state = 'scheduling',
		power_state = 0, addresses = '[]', fault = '', launched_at = 0, version = ?,
		updated_at = CASE WHEN version = 0 THEN updated_at ELSE ? END
		WHERE uuid IN (` + placeholders(len(uuids)) + `) AND +deleted = 0 AND version < ?`
	// Instances this transaction created (the create's own placement, as
	// a rule) have no delete pending and no port revised: no other
	// transaction could see them to ask for either. Nothing is read back,
	// so the statement goes with the transaction's next.
	if created(tx, uuids) {
		if err := tx.ExecLater(ctx, q, args...); err != nil {
			return nil, nil, fmt.Errorf("record the placement of %d instances in %s: %w", len(uuids), cell, err)
		}
		return nil, nil, nil
	}
	rows, err := tx.Query(ctx, q+` RETURNING uuid, delete_requested, ports_revised`, args...)
	if err != nil {
		return nil, nil, fmt.Errorf("record the placement of %d instances in %s: %w", len(uuids), cell, err)
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		var pending, rev bool
		if err := rows.Scan(&u, &pending, &rev); err != nil {
			return nil, nil, err
		}
		if pending {
			deleting = append(deleting, u)
		}
		if rev {
			revised = append(revised, u)
		}
	}
	return deleting, revised, rows.Err()
}

// NotePortsRevised records that a port_update was due for one of the
// live instance's ports (sent to its cell, or not for want of one): a cell
// that builds it later is sent its ports' states (RecordPlaced,
// ApplyUpdate's PortsRevised). It returns the copy's cell, read as the
// row is written (so, on PostgreSQL, after a placement or an update that
// held the row committed: either that one saw the mark, or this reads
// its cell), and ErrNotFound for an instance that is not live.
func NotePortsRevised(ctx context.Context, tx *db.Tx, uuid string) (cell string, err error) {
	err = tx.QueryRow(ctx, `UPDATE instances SET ports_revised = 1 WHERE uuid = ? AND deleted = 0 RETURNING cell_path`, uuid).Scan(&cell)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("instance %s: %w", uuid, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("note the revised ports of %s: %w", uuid, err)
	}
	return cell, nil
}

// ReportedBelow reports whether the copy holds one of uuids at a version
// above version from cell or a cell below it: that subtree sent its state.
func ReportedBelow(ctx context.Context, q Querier, uuids []string, cell string, version int64) (bool, error) {
	if len(uuids) == 0 {
		return false, nil
	}
	args := make([]any, 0, len(uuids)+3)
	for _, u := range uuids {
		args = append(args, u)
	}
	// Cell names are [A-Za-z0-9-] joined by '!': nothing LIKE reads as a
	// pattern but the '%' added here.
	args = append(args, version, cell, cell+"!%")
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE uuid IN (`+placeholders(len(uuids))+`)
		AND version > ? AND (cell_path = ? OR cell_path LIKE ?)`, args...).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("states of %d instances from %s: %w", len(uuids), cell, err)
	}
	return n > 0, nil
}

// MarkDeleting records a user's delete: task state "deleting" and the flag
// that makes the delete follow the instance to whatever cell reports it.
func MarkDeleting(ctx context.Context, tx *db.Tx, uuid string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET task_state = 'deleting', delete_requested = 1, updated_at = ? WHERE uuid = ?`, db.Micros(now), uuid)
	return err
}

// MarkDeleted deletes the copy outright (an instance no cell holds).
func MarkDeleted(ctx context.Context, tx *db.Tx, uuid string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET vm_state = 'deleted', task_state = '', deleted = 1, deleted_at = ?, updated_at = ? WHERE uuid = ?`,
		db.Micros(now), db.Micros(now), uuid)
	return err
}

// SoftDeletedBefore lists (at most limit) live soft-deleted instances with
// no task, last changed before cutoff: those the reclaim deletes for good.
func SoftDeletedBefore(ctx context.Context, q Querier, cutoff time.Time, limit int) ([]string, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var u string
		return u, r.Scan(&u)
	}, `SELECT uuid FROM instances WHERE vm_state = 'soft-delete' AND deleted = 0 AND task_state = '' AND delete_requested = 0
		AND updated_at < ? ORDER BY updated_at LIMIT ?`, db.Micros(cutoff), limit)
}

// ResetUnplaced is os-resetState of a live instance no cell holds: the
// copy is its only record.
func ResetUnplaced(ctx context.Context, tx *db.Tx, uuid, vmState string, now time.Time) error {
	res, err := tx.Exec(ctx, `UPDATE instances SET vm_state = ?, task_state = '', updated_at = ? WHERE uuid = ? AND deleted = 0 AND cell_path = ''`,
		vmState, db.Micros(now), uuid)
	return affected(res, err, uuid)
}

// SetError puts an instance that no cell could build in ERROR. No cell
// holds it, so its cell is cleared (a cell that accepted it and handed it
// back no longer has it).
//
// Its version goes up to at least version: the build's base version, above
// every version a cell that had the build could have used (one that took
// it after it was moved on sends states that then lose, and is told to
// delete what it built).
func SetError(ctx context.Context, tx *db.Tx, uuid string, f wire.Fault, version int64, now time.Time) error {
	b, _ := json.Marshal(f)
	_, err := tx.Exec(ctx, `UPDATE instances SET vm_state = 'error', task_state = '', cell_path = '', host = '', node = '', fault = ?, updated_at = ?,
		version = CASE WHEN version < ? THEN ? ELSE version END WHERE uuid = ? AND deleted = 0`,
		string(b), db.Micros(now), version, version, uuid)
	return err
}
