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
	"github.com/cellcloud/cellcloud/internal/wire"
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
}

// ErrNotFound is returned for a missing instance or flavor.
var ErrNotFound = errors.New("not found")

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
}

const cols = `uuid, name, project_id, user_id, image_ref, flavor_id, flavor, key_name, user_data, metadata, availability_zone,
	reservation_id, launch_index, cell_path, host, node, vm_state, task_state, power_state, version, addresses, fault,
	delete_requested, request_id, launched_at, created_at, updated_at, deleted_at, deleted`

// Querier is a transaction or the database.
type Querier = db.Querier

func scan(r db.Scanner) (*Instance, error) {
	var in Instance
	var flavor, meta, addrs, fault string
	var delReq, deleted int
	var launched, created, updated, deletedAt int64
	err := r.Scan(&in.UUID, &in.Name, &in.ProjectID, &in.UserID, &in.ImageRef, &in.FlavorID, &flavor, &in.KeyName, &in.UserData,
		&meta, &in.AvailabilityZone, &in.ReservationID, &in.LaunchIndex, &in.Cell, &in.Host, &in.Node, &in.VMState, &in.TaskState,
		&in.PowerState, &in.Version, &addrs, &fault, &delReq, &in.RequestID, &launched, &created, &updated, &deletedAt, &deleted)
	if err != nil {
		return nil, err
	}
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
		flavor, _ := json.Marshal(in.Flavor)
		meta, _ := json.Marshal(in.Metadata)
		if in.Metadata == nil {
			meta = []byte("{}")
		}
		now := db.Micros(in.CreatedAt)
		_, err := tx.Exec(ctx, `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor_id, flavor, key_name, user_data,
			metadata, availability_zone, reservation_id, launch_index, vm_state, task_state, request_id, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.UUID, in.Name, in.ProjectID, in.UserID, in.ImageRef, in.FlavorID, string(flavor), in.KeyName, in.UserData,
			string(meta), in.AvailabilityZone, in.ReservationID, in.LaunchIndex, in.VMState, in.TaskState, in.RequestID, now, now)
		if err != nil {
			return fmt.Errorf("create instance %s: %w", in.UUID, err)
		}
	}
	return nil
}

// Get reads one instance, deleted or not.
func Get(ctx context.Context, q Querier, uuid string) (*Instance, error) {
	in, err := scan(q.QueryRow(ctx, `SELECT `+cols+` FROM instances WHERE uuid = ?`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("instance %s: %w", uuid, ErrNotFound)
	}
	return in, err
}

// ListOptions filters and pages a list. Results are newest first.
type ListOptions struct {
	// ProjectID limits to one project; empty means all projects.
	ProjectID string
	// Limit is the page size (0: no limit).
	Limit int
	// Marker is the last instance of the previous page.
	Marker string
	// IncludeDeleted lists deleted instances too.
	IncludeDeleted bool
}

// List returns instances newest first.
func List(ctx context.Context, q Querier, o ListOptions) ([]*Instance, error) {
	var where []string
	var args []any
	if !o.IncludeDeleted {
		where = append(where, "deleted = 0")
	}
	if o.ProjectID != "" {
		where = append(where, "project_id = ?")
		args = append(args, o.ProjectID)
	}
	if o.Marker != "" {
		m, err := Get(ctx, q, o.Marker)
		if err != nil {
			return nil, fmt.Errorf("marker %s: %w", o.Marker, ErrNotFound)
		}
		where = append(where, "(created_at < ? OR (created_at = ? AND uuid < ?))")
		cm := db.Micros(m.CreatedAt)
		args = append(args, cm, cm, m.UUID)
	}
	query := `SELECT ` + cols + ` FROM instances`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY created_at DESC, uuid DESC"
	if o.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, o.Limit)
	}
	return db.Collect(ctx, q, scan, query, args...)
}

// Applied says what applying an update did.
type Applied struct {
	// Changed is false when the update was older than the copy.
	Changed bool
	// Moved is true when the instance's cell changed.
	Moved bool
	// Instance is the copy after the update.
	Instance *Instance
}

// ApplyUpdate applies a cell's state of an instance if it is newer than the
// copy (a deletion, which is final, is always applied). Late and repeated
// updates leave the copy alone.
func ApplyUpdate(ctx context.Context, tx *db.Tx, st wire.InstanceState, now time.Time) (Applied, error) {
	cur, err := Get(ctx, tx, st.UUID)
	if errors.Is(err, ErrNotFound) {
		return Applied{}, nil // never created here (or purged): nothing to update
	}
	if err != nil {
		return Applied{}, err
	}
	if cur.Deleted || (st.Version <= cur.Version && !st.Deleted) {
		return Applied{Instance: cur}, nil
	}
	addrs, _ := json.Marshal(st.Addresses)
	if st.Addresses == nil {
		addrs = []byte("[]")
	}
	fault := ""
	if st.Fault != nil {
		b, _ := json.Marshal(st.Fault)
		fault = string(b)
	}
	deleted, deletedAt := 0, int64(0)
	if st.Deleted {
		deleted, deletedAt = 1, db.Micros(now)
	}
	version := max(st.Version, cur.Version)
	// Resize and rebuild change the flavor and the image.
	flavor, flavorID, image := cur.Flavor, cur.FlavorID, cur.ImageRef
	if st.Flavor != nil {
		flavor, flavorID = *st.Flavor, st.Flavor.ID
	}
	if st.ImageRef != "" {
		image = st.ImageRef
	}
	flavorJSON, _ := json.Marshal(flavor)
	_, err = tx.Exec(ctx, `UPDATE instances SET cell_path = ?, host = ?, node = ?,
		availability_zone = CASE WHEN ? <> '' THEN ? ELSE availability_zone END, flavor = ?, flavor_id = ?, image_ref = ?,
		vm_state = ?, task_state = ?, power_state = ?,
		version = ?, addresses = ?, fault = ?, launched_at = ?, updated_at = ?, deleted = ?, deleted_at = ? WHERE uuid = ?`,
		st.Cell, st.Host, st.Node, st.AvailabilityZone, st.AvailabilityZone, string(flavorJSON), flavorID, image, st.VMState, st.TaskState, st.PowerState, version, string(addrs), fault,
		db.Micros(st.LaunchedAt), db.Micros(now), deleted, deletedAt, st.UUID)
	if err != nil {
		return Applied{}, fmt.Errorf("apply update to %s: %w", st.UUID, err)
	}
	moved := cur.Cell != st.Cell
	cur.Cell, cur.Host, cur.Node, cur.VMState, cur.TaskState, cur.PowerState = st.Cell, st.Host, st.Node, st.VMState, st.TaskState, st.PowerState
	cur.Version, cur.Addresses, cur.Fault, cur.LaunchedAt, cur.UpdatedAt, cur.Deleted = version, st.Addresses, st.Fault, st.LaunchedAt, now, st.Deleted
	cur.Flavor, cur.FlavorID, cur.ImageRef = flavor, flavorID, image
	return Applied{Changed: true, Moved: moved, Instance: cur}, nil
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

// SetError puts an instance that no cell could build in ERROR. No cell
// holds it, so its cell is cleared (a cell that accepted it and handed it
// back no longer has it).
func SetError(ctx context.Context, tx *db.Tx, uuid string, f wire.Fault, now time.Time) error {
	b, _ := json.Marshal(f)
	_, err := tx.Exec(ctx, `UPDATE instances SET vm_state = 'error', task_state = '', cell_path = '', host = '', node = '', fault = ?, updated_at = ? WHERE uuid = ? AND deleted = 0`,
		string(b), db.Micros(now), uuid)
	return err
}
