// Package celldb is a compute cell's own data: its instances (the truth of
// record for them), compute nodes, claims and fixed IPs. Nothing outside the
// compute cell reads it; the API cell's copy is kept by messages.
package celldb

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

// Migrations is a compute cell's schema.
var Migrations = []db.Migration{
	{Version: 1, Name: "instances, compute nodes, claims, fixed ips", SQL: `
CREATE TABLE instances (
	uuid TEXT PRIMARY KEY,
	name TEXT NOT NULL,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	image_ref TEXT NOT NULL,
	flavor TEXT NOT NULL,
	key_name TEXT NOT NULL DEFAULT '',
	user_data TEXT NOT NULL DEFAULT '',
	metadata TEXT NOT NULL DEFAULT '{}',
	availability_zone TEXT NOT NULL DEFAULT '',
	reservation_id TEXT NOT NULL DEFAULT '',
	launch_index INTEGER NOT NULL DEFAULT 0,
	build TEXT NOT NULL DEFAULT '',
	host TEXT NOT NULL DEFAULT '',
	node TEXT NOT NULL DEFAULT '',
	vm_state TEXT NOT NULL,
	task_state TEXT NOT NULL DEFAULT '',
	power_state INTEGER NOT NULL DEFAULT 0,
	version {{bigint}} NOT NULL,
	fault TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	launched_at {{bigint}} NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	deleted_at {{bigint}} NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_task ON instances (task_state, deleted);
CREATE INDEX instances_updated ON instances (updated_at);
CREATE INDEX instances_host ON instances (host);
CREATE TABLE compute_nodes (
	host TEXT PRIMARY KEY,
	availability_zone TEXT NOT NULL DEFAULT 'nova',
	hypervisor_type TEXT NOT NULL DEFAULT 'fake',
	enabled INTEGER NOT NULL DEFAULT 1,
	vcpus INTEGER NOT NULL,
	ram_mb {{bigint}} NOT NULL,
	disk_gb {{bigint}} NOT NULL,
	used_vcpus INTEGER NOT NULL DEFAULT 0,
	used_ram_mb {{bigint}} NOT NULL DEFAULT 0,
	used_disk_gb {{bigint}} NOT NULL DEFAULT 0,
	cpu_ratio DOUBLE PRECISION NOT NULL DEFAULT 16,
	ram_ratio DOUBLE PRECISION NOT NULL DEFAULT 1.5,
	disk_ratio DOUBLE PRECISION NOT NULL DEFAULT 1,
	instances INTEGER NOT NULL DEFAULT 0,
	heartbeat_at {{bigint}} NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL
);
CREATE TABLE claims (
	instance_uuid TEXT PRIMARY KEY,
	host TEXT NOT NULL,
	vcpus INTEGER NOT NULL,
	ram_mb {{bigint}} NOT NULL,
	disk_gb {{bigint}} NOT NULL,
	created_at {{bigint}} NOT NULL
);
CREATE TABLE fixed_ips (
	address_int {{bigint}} PRIMARY KEY,
	address TEXT NOT NULL,
	network TEXT NOT NULL,
	instance_uuid TEXT UNIQUE,
	mac TEXT NOT NULL DEFAULT '',
	updated_at {{bigint}} NOT NULL
)`},
	{Version: 2, Name: "server actions and their records", SQL: `
ALTER TABLE instances ADD COLUMN action TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN action_params TEXT NOT NULL DEFAULT '';
ALTER TABLE instances ADD COLUMN action_request_id TEXT NOT NULL DEFAULT '';
CREATE INDEX instances_action ON instances (action, deleted);
CREATE TABLE instance_actions (
	id {{serial}},
	instance_uuid TEXT NOT NULL,
	action TEXT NOT NULL,
	request_id TEXT NOT NULL,
	user_id TEXT NOT NULL DEFAULT '',
	project_id TEXT NOT NULL DEFAULT '',
	message TEXT NOT NULL DEFAULT '',
	start_time {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL
);
CREATE INDEX instance_actions_instance ON instance_actions (instance_uuid, start_time);
CREATE TABLE instance_action_events (
	id {{serial}},
	action_id {{bigint}} NOT NULL,
	event TEXT NOT NULL,
	host TEXT NOT NULL DEFAULT '',
	result TEXT NOT NULL DEFAULT '',
	traceback TEXT NOT NULL DEFAULT '',
	start_time {{bigint}} NOT NULL,
	finish_time {{bigint}} NOT NULL DEFAULT 0
);
CREATE INDEX instance_action_events_action ON instance_action_events (action_id);
CREATE TABLE migrations (
	id {{serial}},
	instance_uuid TEXT NOT NULL,
	migration_type TEXT NOT NULL,
	source_host TEXT NOT NULL,
	dest_host TEXT NOT NULL DEFAULT '',
	old_flavor TEXT NOT NULL,
	new_flavor TEXT NOT NULL,
	old_vm_state TEXT NOT NULL,
	status TEXT NOT NULL,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL
);
CREATE INDEX migrations_instance ON migrations (instance_uuid, status)`},
	{Version: 3, Name: "services, hypervisor uuids, usage audit task log", SQL: `
CREATE TABLE services (
	id {{serial}},
	uuid TEXT NOT NULL UNIQUE,
	host TEXT NOT NULL,
	binary_name TEXT NOT NULL,
	topic TEXT NOT NULL,
	disabled INTEGER NOT NULL DEFAULT 0,
	disabled_reason TEXT NOT NULL DEFAULT '',
	forced_down INTEGER NOT NULL DEFAULT 0,
	heartbeat_at {{bigint}} NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL DEFAULT 0,
	UNIQUE (host, binary_name)
);
ALTER TABLE compute_nodes ADD COLUMN uuid TEXT NOT NULL DEFAULT '';
CREATE TABLE task_log (
	id {{serial}},
	task_name TEXT NOT NULL,
	state TEXT NOT NULL,
	host TEXT NOT NULL,
	period_beginning {{bigint}} NOT NULL,
	period_ending {{bigint}} NOT NULL,
	message TEXT NOT NULL DEFAULT '',
	task_items INTEGER NOT NULL DEFAULT 0,
	errors INTEGER NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	UNIQUE (task_name, host, period_beginning, period_ending)
)`},
	// The shelved instances waiting for their offload (see ShelvedBefore),
	// by when they were shelved; no other instance is in it, so that it
	// costs nothing to the rest.
	{Version: 4, Name: "shelved instances", SQL: `
CREATE INDEX instances_shelved ON instances (updated_at) WHERE vm_state = 'shelved' AND deleted = 0`},
	{Version: 5, Name: "deletes that came before their builds", SQL: `
CREATE TABLE early_deletes (
	uuid TEXT PRIMARY KEY,
	request_id TEXT NOT NULL,
	created_at {{bigint}} NOT NULL
);
CREATE INDEX early_deletes_created ON early_deletes (created_at)`},
	// Address blocks (package network): the blocks of each network's
	// subnets the API cell leased to this cell, every usable address of
	// them as a row of fixed_ips (free while it has no instance and no
	// port, in a block; written on demand since migration 8), the addresses the API cell handed out itself
	// (in_block 0: never free, forgotten once no instance has them), and the
	// lease requests sent up.
	// The fixed IPs of the static share of earlier releases stay with their
	// instances (subnet "", in_block 0) and go when their instance does.
	{Version: 6, Name: "address blocks leased from the API cell", SQL: `
CREATE TABLE address_blocks (
	subnet_id TEXT NOT NULL,
	first_int {{bigint}} NOT NULL,
	last_int {{bigint}} NOT NULL,
	cidr TEXT NOT NULL,
	network_id TEXT NOT NULL,
	network TEXT NOT NULL,
	usable TEXT NOT NULL,
	usable_count INTEGER NOT NULL,
	leased_at {{bigint}} NOT NULL,
	returned INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (subnet_id, first_int)
);
CREATE TABLE cell_fixed_ips (
	subnet_id TEXT NOT NULL,
	address_int {{bigint}} NOT NULL,
	address TEXT NOT NULL,
	network_id TEXT NOT NULL DEFAULT '',
	network TEXT NOT NULL,
	in_block INTEGER NOT NULL DEFAULT 0,
	instance_uuid TEXT,
	nic INTEGER NOT NULL DEFAULT 0,
	port_id TEXT NOT NULL DEFAULT '',
	api_port INTEGER NOT NULL DEFAULT 0,
	mac TEXT NOT NULL DEFAULT '',
	updated_at {{bigint}} NOT NULL,
	PRIMARY KEY (subnet_id, address_int)
);
INSERT INTO cell_fixed_ips (subnet_id, address_int, address, network, instance_uuid, mac, updated_at)
	SELECT '', address_int, address, network, instance_uuid, mac, updated_at FROM fixed_ips WHERE instance_uuid IS NOT NULL;
DROP TABLE fixed_ips;
ALTER TABLE cell_fixed_ips RENAME TO fixed_ips;
CREATE INDEX fixed_ips_instance ON fixed_ips (instance_uuid);
CREATE INDEX fixed_ips_free_name ON fixed_ips (network, address_int) WHERE instance_uuid IS NULL AND port_id = '' AND in_block = 1;
CREATE INDEX fixed_ips_free_id ON fixed_ips (network_id, address_int) WHERE instance_uuid IS NULL AND port_id = '' AND in_block = 1;
CREATE INDEX fixed_ips_port ON fixed_ips (port_id) WHERE port_id <> '';
CREATE TABLE lease_requests (
	network TEXT PRIMARY KEY,
	requested_at {{bigint}} NOT NULL,
	answered_at {{bigint}} NOT NULL DEFAULT 0,
	is_full INTEGER NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT ''
)`},
	// Security groups (package network's handlers write them, the compute
	// agents' firewall reads them): the groups this cell holds, asked for
	// (revision 0) or come from the API cell, with their rules as JSON
	// ([]wire.SecurityGroupRule) and the sequence of their members; the
	// members (a port's address in the group); and two generations the
	// compute agents poll: rules_gen rises with every change of a group's
	// rules or of what a port of this cell is in (a held group new or
	// dropped, a port_update, an interface attached or detached),
	// members_gen with every change of a member set alone.
	{Version: 7, Name: "security groups held by the cell", SQL: `
CREATE TABLE sg_groups (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL DEFAULT '',
	revision {{bigint}} NOT NULL DEFAULT 0,
	member_seq {{bigint}} NOT NULL DEFAULT 0,
	stateful INTEGER NOT NULL DEFAULT 1,
	rules TEXT NOT NULL DEFAULT '[]',
	asked_at {{bigint}} NOT NULL DEFAULT 0,
	updated_at {{bigint}} NOT NULL DEFAULT 0
);
CREATE TABLE sg_members (
	group_id TEXT NOT NULL,
	port_id TEXT NOT NULL,
	address TEXT NOT NULL,
	PRIMARY KEY (group_id, port_id, address)
);
CREATE TABLE sg_state (
	id INTEGER PRIMARY KEY,
	rules_gen {{bigint}} NOT NULL,
	members_gen {{bigint}} NOT NULL
);
INSERT INTO sg_state (id, rules_gen, members_gen) VALUES (1, 0, 0)`},
	// Address blocks filled on demand (package network): a block leased
	// from now on gets no rows up front; an allocation that finds no free
	// row writes the block's next address above its highest row (the
	// block's top), and a block is marked filled once every usable
	// address of it has its row. The blocks of earlier releases have all
	// their rows already: filled.
	{Version: 8, Name: "address blocks filled on demand", SQL: `
ALTER TABLE address_blocks ADD COLUMN filled INTEGER NOT NULL DEFAULT 0;
UPDATE address_blocks SET filled = 1;
CREATE INDEX address_blocks_open_name ON address_blocks (network, first_int) WHERE filled = 0 AND returned = 0;
CREATE INDEX address_blocks_open_id ON address_blocks (network_id, first_int) WHERE filled = 0 AND returned = 0`},
	// Host aggregates held by the cell (aggregates.go): the API cell's
	// aggregates that have a host of this cell, with those hosts only, as
	// the last host_aggregates snapshot gave them (host_aggregates_state:
	// its version and the default zone). Each compute node keeps the
	// zone and the allocation ratios its aggregates give it
	// (availability_zone, and agg_*_ratio, -1 for none), recomputed
	// whenever a snapshot is applied or the node registers.
	{Version: 9, Name: "host aggregates held by the cell", SQL: `
CREATE TABLE host_aggregates (
	id {{bigint}} PRIMARY KEY,
	uuid TEXT NOT NULL,
	name TEXT NOT NULL,
	metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE host_aggregate_hosts (
	host TEXT NOT NULL,
	aggregate_id {{bigint}} NOT NULL,
	PRIMARY KEY (host, aggregate_id)
);
CREATE TABLE host_aggregates_state (
	id INTEGER PRIMARY KEY,
	version {{bigint}} NOT NULL,
	default_zone TEXT NOT NULL
);
INSERT INTO host_aggregates_state (id, version, default_zone) VALUES (1, 0, 'nova');
ALTER TABLE compute_nodes ADD COLUMN agg_cpu_ratio DOUBLE PRECISION NOT NULL DEFAULT -1;
ALTER TABLE compute_nodes ADD COLUMN agg_ram_ratio DOUBLE PRECISION NOT NULL DEFAULT -1;
ALTER TABLE compute_nodes ADD COLUMN agg_disk_ratio DOUBLE PRECISION NOT NULL DEFAULT -1;
UPDATE compute_nodes SET availability_zone = 'nova'`},
	// Images to pre-cache (Compute API 2.81, imagecache.go): a row per host
	// and image a cache_images message asked for, until the host's compute
	// agent has cached it.
	{Version: 10, Name: "images to pre-cache on hosts", SQL: `
CREATE TABLE image_cache_requests (
	host TEXT NOT NULL,
	image_id TEXT NOT NULL,
	aggregate_id {{bigint}} NOT NULL DEFAULT 0,
	requested_at {{bigint}} NOT NULL,
	PRIMARY KEY (host, image_id)
)`},
	// A group's member_epoch rises when the root resends its member set at
	// the sequence the cell holds, having found the two differ (a resync):
	// the compute agents reload a set whose sequence or epoch moved.
	{Version: 11, Name: "security group member resyncs", SQL: `
ALTER TABLE sg_groups ADD COLUMN member_epoch {{bigint}} NOT NULL DEFAULT 0`},
	// Volumes and their snapshots (package volume, volumes.go): the truth
	// of their status and size. A row's pending action (volumes.action,
	// volume_snapshots.pending) is the work still to do on the backend;
	// request_id is the request of the last action accepted (the
	// compare-and-swap key of its end, and how a repeat is known). A
	// deleted row is kept for heal.
	{Version: 12, Name: "volumes and volume snapshots", SQL: `
CREATE TABLE volumes (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	size_gb INTEGER NOT NULL,
	status TEXT NOT NULL,
	version {{bigint}} NOT NULL,
	type_id TEXT NOT NULL DEFAULT '',
	type_name TEXT NOT NULL DEFAULT '',
	availability_zone TEXT NOT NULL DEFAULT '',
	image_id TEXT NOT NULL DEFAULT '',
	image_size {{bigint}} NOT NULL DEFAULT 0,
	snapshot_id TEXT NOT NULL DEFAULT '',
	source_volid TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL DEFAULT '',
	action_params TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	fault TEXT NOT NULL DEFAULT '',
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX volumes_pending ON volumes (updated_at) WHERE action <> '';
CREATE INDEX volumes_updated ON volumes (updated_at, id);
CREATE INDEX volumes_snapshot_source ON volumes (snapshot_id) WHERE snapshot_id <> '';
CREATE INDEX volumes_volume_source ON volumes (source_volid) WHERE source_volid <> '';
CREATE TABLE volume_snapshots (
	id TEXT PRIMARY KEY,
	volume_id TEXT NOT NULL,
	size_gb INTEGER NOT NULL,
	status TEXT NOT NULL,
	version {{bigint}} NOT NULL,
	progress TEXT NOT NULL DEFAULT '0%',
	pending TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	fault TEXT NOT NULL DEFAULT '',
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX volume_snapshots_volume ON volume_snapshots (volume_id, deleted);
CREATE INDEX volume_snapshots_pending ON volume_snapshots (updated_at) WHERE pending <> '';
CREATE INDEX volume_snapshots_updated ON volume_snapshots (updated_at, id)`},
	// Volume attachments (attachments.go): an instance's block device
	// mappings (Nova's BDMs, one row per device; the compute side's) and
	// the volumes' attachments (Cinder's; the volume manager's), changed
	// together in one transaction. An attachment's pending (attach,
	// detach) is the host's work still to do, request_id the request that
	// asked for it. Rows that go are marked deleted and kept: a repeated
	// attach finds its attachment id, and a device name is free again.
	{Version: 13, Name: "block device mappings and volume attachments", SQL: `
CREATE TABLE block_device_mappings (
	uuid TEXT PRIMARY KEY,
	instance_uuid TEXT NOT NULL,
	volume_id TEXT NOT NULL DEFAULT '',
	attachment_id TEXT NOT NULL DEFAULT '',
	device_name TEXT NOT NULL DEFAULT '',
	boot_index INTEGER NOT NULL DEFAULT -1,
	source_type TEXT NOT NULL,
	destination_type TEXT NOT NULL,
	delete_on_termination INTEGER NOT NULL DEFAULT 0,
	tag TEXT NOT NULL DEFAULT '',
	volume_size INTEGER NOT NULL DEFAULT 0,
	volume_type TEXT NOT NULL DEFAULT '',
	image_id TEXT NOT NULL DEFAULT '',
	snapshot_id TEXT NOT NULL DEFAULT '',
	created_at {{bigint}} NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX bdms_instance ON block_device_mappings (instance_uuid, deleted);
CREATE INDEX bdms_attachment ON block_device_mappings (attachment_id) WHERE attachment_id <> '';
CREATE UNIQUE INDEX bdms_device ON block_device_mappings (instance_uuid, device_name) WHERE deleted = 0 AND device_name <> '';
CREATE TABLE volume_attachments (
	id TEXT PRIMARY KEY,
	volume_id TEXT NOT NULL,
	instance_uuid TEXT NOT NULL,
	attach_status TEXT NOT NULL,
	mode TEXT NOT NULL DEFAULT 'rw',
	mountpoint TEXT NOT NULL DEFAULT '',
	pending TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	attached_at {{bigint}} NOT NULL DEFAULT 0,
	detached_at {{bigint}} NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX volume_attachments_volume ON volume_attachments (volume_id, deleted);
CREATE INDEX volume_attachments_instance ON volume_attachments (instance_uuid, deleted);
CREATE INDEX volume_attachments_pending ON volume_attachments (volume_id) WHERE pending <> ''`},
	// The backing of an attachment (attachments.go): the path a
	// hypervisor opens the volume by, recorded by the volume manager when
	// it accepts the attach, so that the compute agents attach the
	// instance's volumes again on the host it runs on after a move
	// (resize, migrate, revert, unshelve) or a restart's restore.
	{Version: 14, Name: "volume attachment backing", SQL: `
ALTER TABLE volume_attachments ADD COLUMN backing TEXT NOT NULL DEFAULT ''`},
}

// VM states, task states and power states, with Nova's values.
const (
	VMBuilding = "building"
	VMActive   = "active"
	VMError    = "error"
	VMDeleted  = "deleted"

	TaskScheduling = "scheduling"
	TaskNetworking = "networking"
	TaskSpawning   = "spawning"
	TaskDeleting   = "deleting"
	// TaskBlockDeviceMapping: the instance, placed, waits for the volumes
	// its build makes (Nova's block_device_mapping).
	TaskBlockDeviceMapping = "block_device_mapping"

	PowerNoState  = 0
	PowerRunning  = 1
	PowerShutdown = 4
)

// ErrNotFound is returned for an instance the cell does not have.
var ErrNotFound = notfound.New("instance not found in this cell")

// ErrGone is returned when work on an instance stops because the instance
// is being deleted.
var ErrGone = wire.ErrGone

// Instance is a compute cell's record of an instance.
type Instance struct {
	wire.InstanceSpec
	Flavor     wire.Flavor
	Build      BuildContext
	Host       string
	Node       string
	VMState    string
	TaskState  string
	PowerState int
	Version    int64
	Fault      *wire.Fault
	RequestID  string
	LaunchedAt time.Time
	UpdatedAt  time.Time
	Deleted    bool
	// Action is the pending server action (see PendingAction), "" for none.
	Action string
}

// BuildContext is what a cell needs to retry or hand back a build.
type BuildContext struct {
	Scheduler   string              `json:"scheduler"`
	Attempts    int                 `json:"attempts"`
	Tried       []string            `json:"tried,omitempty"`
	Hints       map[string][]string `json:"hints,omitempty"`
	ImageProps  map[string]string   `json:"image_properties,omitempty"`
	IgnoreHosts []string            `json:"ignore_hosts,omitempty"`
	TargetCell  string              `json:"target_cell,omitempty"`
	NoNetwork   bool                `json:"no_network,omitempty"`
	// NICs are the instance's own network interfaces (its spec's NICs,
	// kept here with the rest of what its build asked for).
	NICs []wire.NIC `json:"nics,omitempty"`
	// SecurityGroups are the server's groups (wire.InstanceSpec's) of an
	// instance built with no NICs: they are enforced on the interface the
	// cell makes on its default network (see Enforced).
	SecurityGroups []string `json:"security_groups,omitempty"`
	SameCell       []string `json:"same_cell,omitempty"`
	DifferentCell  []string `json:"different_cell,omitempty"`
	// Group is the server group the instance joined (see GroupHosts).
	Group *wire.GroupPlacement `json:"group,omitempty"`
	// ForcedHost and ForcedNode are the host and node the build names
	// (wire.BuildInstances'): no filters, no retry on another host.
	ForcedHost string `json:"forced_host,omitempty"`
	ForcedNode string `json:"forced_node,omitempty"`
	// RequestedHost and RequestedNode are the host and node the build
	// requests (wire.BuildInstances'): the filters run on that host alone.
	RequestedHost string `json:"requested_host,omitempty"`
	RequestedNode string `json:"requested_node,omitempty"`
	// BlockDevices are the instance's volume mappings (its spec's, a boot
	// from volume; see bfv.go).
	BlockDevices []wire.BlockDevice `json:"block_devices,omitempty"`
}

// Forced reports whether the build names its host or node.
func (b *BuildContext) Forced() bool { return b.ForcedHost != "" || b.ForcedNode != "" }

// Enforced are the NICs whose security groups the cell enforces: the
// instance's own, or for an instance built with no NICs whose server has
// groups, the one interface the cell made, with those groups at port
// revision 1 (a port_update of its port is newer).
func (b *BuildContext) Enforced() []wire.NIC {
	if len(b.NICs) > 0 || len(b.SecurityGroups) == 0 || b.NoNetwork {
		return b.NICs
	}
	return []wire.NIC{{SecurityGroups: b.SecurityGroups, PortRevision: 1}}
}

const instanceCols = `uuid, name, project_id, user_id, image_ref, flavor, key_name, user_data, metadata, availability_zone,
	reservation_id, launch_index, build, host, node, vm_state, task_state, power_state, version, fault, request_id,
	launched_at, created_at, updated_at, deleted`

// selectCols are the columns every read scans.
const selectCols = instanceCols + `, action`

// Insert adds new instances being built, at their Version (at least 1).
func Insert(ctx context.Context, tx *db.Tx, insts []Instance, now time.Time) error {
	return insert(ctx, tx, insts, now, nil)
}

// FirstAction is the action an instance starts with, recorded by
// InsertStarting: Action under the instance's request, by its user and
// project, begun at its creation, with the start of its first event
// (Event, on Host) at At.
type FirstAction struct {
	Action, Event, Host string
	At                  time.Time
}

// InsertStarting is Insert that also records each instance's first action
// (as StartActionWithEvent would): on PostgreSQL in the statement that
// inserts the instance.
func InsertStarting(ctx context.Context, tx *db.Tx, insts []Instance, now time.Time, first FirstAction) error {
	return insert(ctx, tx, insts, now, &first)
}

func insert(ctx context.Context, tx *db.Tx, insts []Instance, now time.Time, first *FirstAction) error {
	for _, in := range insts {
		in.Version = max(in.Version, 1)
		flavor, _ := json.Marshal(in.Flavor)
		meta, _ := json.Marshal(in.Metadata)
		build, _ := json.Marshal(in.Build)
		q := `INSERT INTO instances (` + instanceCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`
		args := []any{in.UUID, in.Name, in.ProjectID, in.UserID, in.ImageRef, string(flavor), in.KeyName, in.UserData, string(meta),
			in.AvailabilityZone, in.ReservationID, in.LaunchIndex, string(build), in.Host, in.Node, in.VMState, in.TaskState,
			in.PowerState, in.Version, "", in.RequestID, int64(0), db.Micros(in.CreatedAt), db.Micros(now)}
		if first != nil && tx.Dialect == db.Postgres {
			// The action takes the instance's row from the insert, and
			// the event the action's id: one statement.
			q = `WITH i AS (` + q + ` RETURNING uuid, request_id, user_id, project_id, created_at),
				a AS (INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id, message, start_time, updated_at)
					SELECT uuid, CAST(? AS TEXT), request_id, user_id, project_id, '', created_at, CAST(? AS BIGINT) FROM i RETURNING id)
				INSERT INTO instance_action_events (action_id, event, host, start_time)
					SELECT id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) FROM a`
			at := db.Micros(first.At)
			args = append(args, first.Action, at, first.Event, first.Host, at)
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			if db.IsUniqueViolation(err) {
				return fmt.Errorf("instance %s is already in this cell: %w", in.UUID, wire.ErrConflict)
			}
			return fmt.Errorf("insert instance %s: %w", in.UUID, err)
		}
		if first != nil && tx.Dialect != db.Postgres {
			if err := StartActionWithEvent(ctx, tx, wire.ActionRecord{Action: first.Action, UUID: in.UUID, RequestID: in.RequestID,
				UserID: in.UserID, ProjectID: in.ProjectID, StartTime: in.CreatedAt}, first.Event, first.Host, first.At); err != nil {
				return err
			}
		}
	}
	return nil
}

func scanInstance(r db.Scanner) (*Instance, error) {
	var in Instance
	var flavor, meta, build, fault string
	var launched, created, updated int64
	var deleted int
	err := r.Scan(&in.UUID, &in.Name, &in.ProjectID, &in.UserID, &in.ImageRef, &flavor, &in.KeyName, &in.UserData, &meta,
		&in.AvailabilityZone, &in.ReservationID, &in.LaunchIndex, &build, &in.Host, &in.Node, &in.VMState, &in.TaskState,
		&in.PowerState, &in.Version, &fault, &in.RequestID, &launched, &created, &updated, &deleted, &in.Action)
	if err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(flavor), &in.Flavor)
	_ = json.Unmarshal([]byte(meta), &in.Metadata)
	_ = json.Unmarshal([]byte(build), &in.Build)
	in.NICs = in.Build.NICs
	in.BlockDevices = in.Build.BlockDevices
	if fault != "" {
		in.Fault = &wire.Fault{}
		_ = json.Unmarshal([]byte(fault), in.Fault)
	}
	in.LaunchedAt = db.FromMicros(launched)
	in.CreatedAt = db.FromMicros(created)
	in.UpdatedAt = db.FromMicros(updated)
	in.Deleted = deleted != 0
	return &in, nil
}

// Querier is a transaction or the database.
type Querier = db.Querier

// Get reads one instance (deleted ones too).
func Get(ctx context.Context, q Querier, uuid string) (*Instance, error) {
	in, err := scanInstance(q.QueryRow(ctx, `SELECT `+selectCols+` FROM instances WHERE uuid = ?`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, uuid)
	}
	return in, err
}

// ListByTask returns live instances in a task state, oldest first.
func ListByTask(ctx context.Context, q Querier, task string, limit int) ([]*Instance, error) {
	return list(ctx, q, `SELECT `+selectCols+` FROM instances WHERE task_state = ? AND deleted = 0 ORDER BY created_at, launch_index LIMIT ?`, task, limit)
}

// Deleting is an instance being deleted and the request id of the delete
// (of its latest "delete" action; "" when it has none).
type Deleting struct {
	*Instance
	DeleteRequestID string
}

// ListDeleting returns live instances being deleted, oldest first, with
// the request ids of their deletes, in one query.
func ListDeleting(ctx context.Context, q Querier, limit int) ([]Deleting, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (Deleting, error) {
		var d Deleting
		var rid sql.NullString
		in, err := scanInstance(extraScanner{r, []any{&rid}})
		d.Instance, d.DeleteRequestID = in, rid.String
		return d, err
	}, `SELECT `+selectCols+`, (SELECT request_id FROM instance_actions a WHERE a.instance_uuid = instances.uuid AND a.action = 'delete'
		ORDER BY a.id DESC LIMIT 1) FROM instances WHERE task_state = ? AND deleted = 0 ORDER BY created_at, launch_index LIMIT ?`, TaskDeleting, limit)
}

// extraScanner scans a row's columns into the destinations asked for,
// then its last ones into extra.
type extraScanner struct {
	r     db.Scanner
	extra []any
}

func (s extraScanner) Scan(dest ...any) error { return s.r.Scan(append(dest, s.extra...)...) }

// ListChangedAfter returns a page of the instances (deleted ones too) in
// order of their last change, then UUID: up to limit that come after the
// instance changed at at with UUID uuid. The first page of those changed
// at or after t is ListChangedAfter(t, ""); the next starts after the last
// instance of the page.
func ListChangedAfter(ctx context.Context, q Querier, at time.Time, uuid string, limit int) ([]*Instance, error) {
	return list(ctx, q, `SELECT `+selectCols+` FROM instances WHERE updated_at >= ? AND (updated_at > ? OR uuid > ?)
		ORDER BY updated_at, uuid LIMIT ?`, db.Micros(at), db.Micros(at), uuid, limit)
}

func list(ctx context.Context, q Querier, query string, args ...any) ([]*Instance, error) {
	return db.Collect(ctx, q, scanInstance, query, args...)
}

// Change is a set of fields to change on an instance; nil leaves a field.
type Change struct {
	Host       *string
	VMState    *string
	TaskState  *string
	PowerState *int
	Fault      *wire.Fault
	LaunchedAt *time.Time
	Build      *BuildContext
	// AvailabilityZone is set from the host's zone when the instance asked for none.
	AvailabilityZone *string
	// Flavor and ImageRef change on resize and rebuild.
	Flavor   *wire.Flavor
	ImageRef *string
	Deleted  bool
	// Action sets the pending server action (see PendingAction); a zero
	// PendingAction clears it.
	Action *PendingAction
	// EndAction ends an action of the instance with the change (as
	// FinishAction, after it): on PostgreSQL, UpdateState does both in one
	// statement.
	EndAction *ActionEnd
}

// Update applies a change, bumps the instance's version, and returns the
// instance as it now is. expectTask, when not nil, must match the current
// task state (a compare-and-swap); otherwise wire.ErrConflict is returned.
// It is one statement: the columns changed, and the row back as updated.
func Update(ctx context.Context, tx *db.Tx, uuid string, expectTask *string, c Change, now time.Time) (*Instance, error) {
	where, whereArgs := taskIs(expectTask)
	in, err := update(ctx, tx, uuid, where, whereArgs, c, now, true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, conflict(ctx, tx, uuid, expectTask)
	}
	return in, err
}

// Set is Update for a caller that needs the change made but not the
// instance back: the statement returns no row to decode.
func Set(ctx context.Context, tx *db.Tx, uuid string, expectTask *string, c Change, now time.Time) error {
	where, whereArgs := taskIs(expectTask)
	_, err := update(ctx, tx, uuid, where, whereArgs, c, now, false)
	if errors.Is(err, sql.ErrNoRows) {
		return conflict(ctx, tx, uuid, expectTask)
	}
	return err
}

// taskIs is update's condition for an expected task state (none for nil).
func taskIs(expectTask *string) (string, []any) {
	if expectTask == nil {
		return "", nil
	}
	return ` AND ` + taskGuard, []any{*expectTask}
}

// taskGuard checks an instance's task state on the row its primary key
// finds. Written as a plain task_state = ?, PostgreSQL's generic plan for
// an update by uuid could take the instances_task index instead, as the
// two cost alike when a task state looks rare, and then read every
// instance in that task state to find the one (hundreds of rows read per
// statement while a cell is busy building); an expression that no index
// covers leaves the primary key the only way in.
const taskGuard = `task_state || '' = ?`

// conflict says why an update found no row: the instance is not there
// (ErrNotFound), or not in the task state expected (wire.ErrConflict).
func conflict(ctx context.Context, tx *db.Tx, uuid string, expectTask *string) error {
	cur, err := Get(ctx, tx, uuid)
	if err != nil {
		return err
	}
	want := ""
	if expectTask != nil {
		want = *expectTask
	}
	return fmt.Errorf("instance %s is in task state %q, not %q: %w", uuid, cur.TaskState, want, wire.ErrConflict)
}

// UpdateClaimedQuery is Update for a live instance (neither deleted nor
// being deleted) that holds a claim on host, in one statement, for a
// caller that runs it with others (db.GroupQuery); UpdateClaimedFrom
// reads its answer: the instance as updated, or nil and no error when the
// instance is not such a one (and nothing changed).
func UpdateClaimedQuery(uuid, host string, c Change, now time.Time) db.Query {
	q, args := updateStatement(uuid, ` AND deleted = 0 AND task_state <> ? AND EXISTS (SELECT 1 FROM claims WHERE instance_uuid = ? AND host = ?)`,
		[]any{TaskDeleting, uuid, host}, c, now)
	return db.Query{SQL: q + ` RETURNING ` + selectCols, Args: args}
}

// UpdateClaimedFrom reads the answer a of UpdateClaimedQuery with the
// same instance and change (and ends the change's action, if any, in tx).
func UpdateClaimedFrom(ctx context.Context, tx *db.Tx, uuid string, c Change, a db.Answer) (*Instance, error) {
	in, err := scanInstance(a)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("update instance %s: %w", uuid, err)
	}
	return in, endAction(ctx, tx, uuid, c)
}

// update applies c to the instance if it meets where (a condition after
// "WHERE uuid = ?"), and returns it as updated when returning is set:
// sql.ErrNoRows when it does not meet the condition.
func update(ctx context.Context, tx *db.Tx, uuid, where string, whereArgs []any, c Change, now time.Time, returning bool) (*Instance, error) {
	q, args := updateStatement(uuid, where, whereArgs, c, now)
	var in *Instance
	if returning {
		var err error
		if in, err = scanInstance(tx.QueryRow(ctx, q+` RETURNING `+selectCols, args...)); err != nil {
			if !errors.Is(err, sql.ErrNoRows) {
				err = fmt.Errorf("update instance %s: %w", uuid, err)
			}
			return nil, err
		}
	} else {
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("update instance %s: %w", uuid, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			return nil, sql.ErrNoRows
		}
	}
	return in, endAction(ctx, tx, uuid, c)
}

// endAction ends the action c ends, if any, after the instance's row was
// changed by a statement of its own.
func endAction(ctx context.Context, tx *db.Tx, uuid string, c Change) error {
	if e := c.EndAction; e != nil {
		return FinishAction(ctx, tx, uuid, e.RequestID, e.Result, e.Traceback, e.Host, e.At)
	}
	return nil
}

// UpdateState is Update that also returns the state to send up (State):
// on PostgreSQL in one statement, which reads the instance's addresses
// with the row it writes.
func UpdateState(ctx context.Context, tx *db.Tx, cell, uuid string, expectTask *string, c Change, now time.Time) (*Instance, wire.InstanceState, error) {
	a := tx.QueryAll(ctx, []db.Query{UpdateStateQuery(tx.Dialect, uuid, expectTask, c, now)})[0]
	return UpdateStateFrom(ctx, tx, cell, uuid, expectTask, c, a)
}

// UpdateStateQuery is UpdateState's first statement on the engine
// dialect (on PostgreSQL its only one), for a caller that runs it with
// others (db.GroupQuery); UpdateStateFrom goes on from its answer.
func UpdateStateQuery(dialect db.Dialect, uuid string, expectTask *string, c Change, now time.Time) db.Query {
	where, whereArgs := taskIs(expectTask)
	q, args := updateStatement(uuid, where, whereArgs, c, now)
	if dialect != db.Postgres {
		return db.Query{SQL: q + ` RETURNING ` + selectCols, Args: args}
	}
	// An action the change ends is ended in the same statement, if the
	// row was updated.
	ends := ""
	if e := c.EndAction; e != nil {
		ends = `, ` + endActionCTEs(` AND EXISTS (SELECT 1 FROM u)`)
		args = append(args, e.args(uuid)...)
	}
	// The addresses are read in the statement's snapshot, with the
	// version the row had in it (seen): when the update waited for a
	// transaction that changed the row meanwhile (seen is not the version
	// it updated), they are read again after it, as State would.
	return db.Query{SQL: `WITH u AS (` + q + ` RETURNING ` + selectCols + `)` + ends + `
		SELECT u.*, f.network, f.address, f.mac, f.network_id, f.subnet_id, f.port_id,
			(SELECT i.version FROM instances i WHERE i.uuid = u.uuid)
		FROM u LEFT JOIN fixed_ips f ON f.instance_uuid = u.uuid ORDER BY f.nic, f.address_int`, Args: args}
}

// UpdateStateFrom is UpdateState from the answer a of its first
// statement (UpdateStateQuery, with the same instance, task state and
// change).
func UpdateStateFrom(ctx context.Context, tx *db.Tx, cell, uuid string, expectTask *string, c Change, a db.Answer) (*Instance, wire.InstanceState, error) {
	if tx.Dialect != db.Postgres {
		in, err := scanInstance(a)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, wire.InstanceState{}, conflict(ctx, tx, uuid, expectTask)
		}
		if err != nil {
			return nil, wire.InstanceState{}, fmt.Errorf("update instance %s: %w", uuid, err)
		}
		if err := endAction(ctx, tx, uuid, c); err != nil {
			return nil, wire.InstanceState{}, err
		}
		st, err := State(ctx, tx, cell, in)
		return in, st, err
	}
	var in *Instance
	var addrs []wire.Address
	var seen sql.NullInt64
	err := a.Each(func(r db.Scanner) error {
		var network, addr, mac, networkID, subnetID, portID sql.NullString
		row, err := scanInstance(scanWith{r, []any{&network, &addr, &mac, &networkID, &subnetID, &portID, &seen}})
		if err != nil {
			return err
		}
		if in == nil {
			in = row
		}
		if network.Valid {
			addrs = append(addrs, wire.Address{Version: 4, Network: network.String, Addr: addr.String, MAC: mac.String,
				NetworkID: networkID.String, SubnetID: subnetID.String, PortID: portID.String})
		}
		return nil
	})
	if err != nil {
		return nil, wire.InstanceState{}, fmt.Errorf("update instance %s: %w", uuid, err)
	}
	if in == nil {
		return nil, wire.InstanceState{}, conflict(ctx, tx, uuid, expectTask)
	}
	st := state(cell, in)
	if in.Deleted {
		return in, st, nil
	}
	if !seen.Valid || seen.Int64+1 != in.Version {
		if addrs, err = Addresses(ctx, tx, uuid); err != nil {
			return nil, wire.InstanceState{}, err
		}
	}
	st.Addresses = addrs
	return in, st, nil
}

// scanWith scans a row's first columns into what Scan is given and the
// rest into extra.
type scanWith struct {
	r     db.Scanner
	extra []any
}

func (s scanWith) Scan(dest ...any) error { return s.r.Scan(append(dest, s.extra...)...) }

// updateStatement is the UPDATE that applies c to the instance if it meets
// where (a condition after "WHERE uuid = ?"), with its arguments.
func updateStatement(uuid, where string, whereArgs []any, c Change, now time.Time) (string, []any) {
	var set []string
	var args []any
	add := func(col string, v any) {
		set = append(set, col+" = ?")
		args = append(args, v)
	}
	asJSON := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	if c.Host != nil {
		add("host", *c.Host)
		add("node", *c.Host)
	}
	if c.VMState != nil {
		add("vm_state", *c.VMState)
	}
	if c.TaskState != nil {
		add("task_state", *c.TaskState)
	}
	if c.PowerState != nil {
		add("power_state", *c.PowerState)
	}
	if c.Fault != nil {
		add("fault", asJSON(c.Fault))
	}
	if c.LaunchedAt != nil {
		add("launched_at", db.Micros(*c.LaunchedAt))
	}
	if c.Build != nil {
		add("build", asJSON(*c.Build))
	}
	if c.AvailabilityZone != nil {
		add("availability_zone", *c.AvailabilityZone)
	}
	if c.Flavor != nil {
		add("flavor", asJSON(*c.Flavor))
	}
	if c.ImageRef != nil {
		add("image_ref", *c.ImageRef)
	}
	if c.Action != nil {
		add("action", c.Action.Action)
		add("action_params", string(c.Action.Params))
		add("action_request_id", c.Action.RequestID)
	}
	if c.Deleted {
		add("deleted", 1)
		add("deleted_at", db.Micros(now))
	}
	add("updated_at", db.Micros(now))
	q := `UPDATE instances SET ` + strings.Join(set, ", ") + `, version = version + 1 WHERE uuid = ?` + where
	return q, append(append(args, uuid), whereArgs...)
}

// Purge removes outright the instances of uuids that are live and in task
// state task (a build handed back to the parent), and returns those it
// removed: one deleted or being deleted meanwhile, or gone already, stays
// as it is.
func Purge(ctx context.Context, tx *db.Tx, uuids []string, task string) ([]string, error) {
	var purged []string
	for _, u := range uuids {
		res, err := tx.Exec(ctx, `DELETE FROM instances WHERE uuid = ? AND `+taskGuard+` AND deleted = 0`, u, task)
		if err != nil {
			return nil, fmt.Errorf("purge instance %s: %w", u, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 1 {
			purged = append(purged, u)
		}
	}
	return purged, nil
}

// State turns an instance into what travels up to the API cell.
func State(ctx context.Context, q Querier, cell string, in *Instance) (wire.InstanceState, error) {
	st := state(cell, in)
	if in.Deleted {
		return st, nil
	}
	addrs, err := Addresses(ctx, q, in.UUID)
	if err != nil {
		return st, err
	}
	st.Addresses = addrs
	return st, nil
}

// States is State for many instances, with their addresses read in one
// query (the heal sends hundreds at a time).
func States(ctx context.Context, q Querier, cell string, insts []*Instance) ([]wire.InstanceState, error) {
	out := make([]wire.InstanceState, len(insts))
	var live []any
	at := make(map[string]int, len(insts))
	for i, in := range insts {
		out[i] = state(cell, in)
		if !in.Deleted {
			live = append(live, in.UUID)
			at[in.UUID] = i
		}
	}
	if len(live) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT instance_uuid, network, address, mac, network_id, subnet_id, port_id FROM fixed_ips WHERE instance_uuid IN (?`+
		strings.Repeat(", ?", len(live)-1)+`) ORDER BY instance_uuid, nic, address_int`, live...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var u string
		a := wire.Address{Version: 4}
		if err := rows.Scan(&u, &a.Network, &a.Addr, &a.MAC, &a.NetworkID, &a.SubnetID, &a.PortID); err != nil {
			return nil, err
		}
		if i, ok := at[u]; ok {
			out[i].Addresses = append(out[i].Addresses, a)
		}
	}
	return out, rows.Err()
}

// state is what travels up of an instance, its addresses aside.
func state(cell string, in *Instance) wire.InstanceState {
	flavor := in.Flavor
	return wire.InstanceState{
		Flavor: &flavor, ImageRef: in.ImageRef,
		UUID: in.UUID, Cell: cell, Version: in.Version, Host: in.Host, Node: in.Node,
		VMState: in.VMState, TaskState: in.TaskState, PowerState: in.PowerState, Fault: in.Fault, AvailabilityZone: in.AvailabilityZone,
		LaunchedAt: in.LaunchedAt, Deleted: in.Deleted, UpdatedAt: in.UpdatedAt,
	}
}

// Addresses lists an instance's fixed IPs.
func Addresses(ctx context.Context, q Querier, uuid string) ([]wire.Address, error) {
	rows, err := q.Query(ctx, `SELECT network, address, mac, network_id, subnet_id, port_id FROM fixed_ips WHERE instance_uuid = ? ORDER BY nic, address_int`, uuid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wire.Address
	for rows.Next() {
		a := wire.Address{Version: 4}
		if err := rows.Scan(&a.Network, &a.Addr, &a.MAC, &a.NetworkID, &a.SubnetID, &a.PortID); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// CountInstances counts live instances.
func CountInstances(ctx context.Context, q Querier) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE deleted = 0`).Scan(&n)
	return n, err
}
