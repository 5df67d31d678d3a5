// Package voldb is the API cell's copy of the volumes and snapshots of the
// Block Storage API (migration set "volume"). The owning compute cell holds
// the truth of a volume's status and size; the copy holds everything
// Cinder shows and what only the API changes (name, description, metadata,
// bootable, type, zone, sources, owner). The cell's states reach the copy
// through Apply, by version (docs: /work/wt/VOLUMES-CONTRACT.md): a newer
// version wins, a deletion from the copy's cell wins and is final, unknown
// ids are ignored, the first state names the copy's cell.
//
// The API changes a status itself only through SetStatus and
// SetSnapshotStatus, Cinder's conditional updates: from allowed statuses
// to a transitional one, without changing the version, so that the cell's
// next state replaces it.
//
// Quota usage (Usage) is counted from the rows that are not deleted, in
// the transaction that creates, under the project's quota lock (LockQuota).
package voldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// MigrationSet is the name the node registers Migrations under.
const MigrationSet = "volume"

// Migrations is the schema of the volumes and their metadata (1), of
// the snapshots and theirs (1), and of the mirror of the volumes'
// attachments (2). Metadata are side tables, so that a list
// filters by metadata in SQL. The quota lock is apidb's (quota_locks), so
// the database also needs apidb's migrations.
var Migrations = []db.Migration{
	{Version: 1, Name: "volumes and snapshots", SQL: `
CREATE TABLE volumes (
	id TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	size_gb INTEGER NOT NULL,
	status TEXT NOT NULL,
	attach_status TEXT NOT NULL DEFAULT 'detached',
	bootable INTEGER NOT NULL DEFAULT 0,
	readonly TEXT NOT NULL DEFAULT '',
	volume_type_id TEXT NOT NULL DEFAULT '',
	volume_type_name TEXT NOT NULL DEFAULT '',
	availability_zone TEXT NOT NULL DEFAULT '',
	cell_path TEXT NOT NULL DEFAULT '',
	version {{bigint}} NOT NULL DEFAULT 0,
	snapshot_id TEXT NOT NULL DEFAULT '',
	source_volid TEXT NOT NULL DEFAULT '',
	image_id TEXT NOT NULL DEFAULT '',
	volume_image_metadata TEXT NOT NULL DEFAULT '',
	multiattach INTEGER NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0,
	deleted_at {{bigint}} NOT NULL DEFAULT 0
);
CREATE INDEX volumes_project ON volumes (project_id, deleted);
CREATE INDEX volumes_type ON volumes (volume_type_id, deleted);
CREATE TABLE volume_metadata (
	volume_id TEXT NOT NULL REFERENCES volumes (id),
	meta_key TEXT NOT NULL,
	meta_value TEXT NOT NULL,
	PRIMARY KEY (volume_id, meta_key)
);
CREATE TABLE volume_snapshots (
	id TEXT PRIMARY KEY,
	volume_id TEXT NOT NULL REFERENCES volumes (id),
	project_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	name TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	size_gb INTEGER NOT NULL,
	status TEXT NOT NULL,
	progress TEXT NOT NULL DEFAULT '0%',
	cell_path TEXT NOT NULL DEFAULT '',
	version {{bigint}} NOT NULL DEFAULT 0,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0,
	deleted_at {{bigint}} NOT NULL DEFAULT 0
);
CREATE INDEX volume_snapshots_volume ON volume_snapshots (volume_id, deleted);
CREATE INDEX volume_snapshots_project ON volume_snapshots (project_id, deleted);
CREATE TABLE snapshot_metadata (
	snapshot_id TEXT NOT NULL REFERENCES volume_snapshots (id),
	meta_key TEXT NOT NULL,
	meta_value TEXT NOT NULL,
	PRIMARY KEY (snapshot_id, meta_key)
)`},
	{Version: 2, Name: "volume attachments", SQL: `
CREATE TABLE volume_attachments (
	id TEXT PRIMARY KEY,
	volume_id TEXT NOT NULL REFERENCES volumes (id),
	instance_uuid TEXT NOT NULL,
	attach_status TEXT NOT NULL,
	device TEXT NOT NULL DEFAULT '',
	mode TEXT NOT NULL DEFAULT 'rw',
	bdm_uuid TEXT NOT NULL DEFAULT '',
	tag TEXT NOT NULL DEFAULT '',
	delete_on_termination INTEGER NOT NULL DEFAULT 0,
	boot_index INTEGER NOT NULL DEFAULT -1,
	attached_at {{bigint}} NOT NULL DEFAULT 0
);
CREATE INDEX volume_attachments_volume ON volume_attachments (volume_id);
CREATE INDEX volume_attachments_instance ON volume_attachments (instance_uuid)`},
	// The connection_info of an attachment of the Block Storage API's
	// attachments (3.27), as its cell sends it ('': none).
	{Version: 3, Name: "volume attachment connection info", SQL: `
ALTER TABLE volume_attachments ADD COLUMN connection_info TEXT NOT NULL DEFAULT ''`},
}

// Errors.
var (
	// ErrNotFound is a volume that is not there (or deleted).
	ErrNotFound = notfound.New("volume not found")
	// ErrSnapshotNotFound is a snapshot that is not there (or deleted).
	ErrSnapshotNotFound = notfound.New("snapshot not found")
	// ErrMarkerNotFound is a list marker that names no row of the list.
	ErrMarkerNotFound = notfound.New("marker not found")
	// ErrSortKey is a sort key the list does not sort by.
	ErrSortKey = errors.New("invalid sort key")
)

// Volume statuses (Cinder's) that the API sets or checks.
const (
	StatusCreating       = "creating"
	StatusAvailable      = "available"
	StatusInUse          = "in-use"
	StatusError          = "error"
	StatusDeleting       = "deleting"
	StatusErrorDeleting  = "error_deleting"
	StatusExtending      = "extending"
	StatusErrorExtending = "error_extending"
	StatusErrorRestoring = "error_restoring"
	StatusErrorManaging  = "error_managing"
	StatusUploading      = "uploading"
	StatusDetaching      = "detaching"
	StatusMaintenance    = "maintenance"
	// StatusDeleted is the status of a deleted row (never shown).
	StatusDeleted = "deleted"
)

// Volume is the API cell's copy of a volume.
type Volume struct {
	ID, ProjectID, UserID string
	Name, Description     string
	SizeGB                int
	Status                string
	// AttachStatus is Cinder's attach_status, from the attachments
	// (detached: none).
	AttachStatus string
	Bootable     bool
	// ReadOnly is the admin metadata "readonly" ("True", "False"; "":
	// never set), shown in the metadata as Cinder shows it.
	ReadOnly         string
	TypeID, TypeName string
	AvailabilityZone string
	// Cell is the owning cell's path ("": none yet, or none found).
	Cell    string
	Version int64
	// The sources (at most one is set).
	SnapshotID, SourceVolID, ImageID string
	Metadata                         map[string]string
	// ImageMetadata is Cinder's volume_image_metadata (nil: none).
	ImageMetadata map[string]string
	Multiattach   bool
	// Attachments are the mirror of its attachments (read by Get and
	// the lists; nil: none).
	Attachments []*Attachment
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Deleted     bool
	DeletedAt   time.Time
}

// Snapshot is the API cell's copy of a snapshot.
type Snapshot struct {
	ID, VolumeID, ProjectID, UserID string
	Name, Description               string
	SizeGB                          int
	Status                          string
	Progress                        string
	Cell                            string
	Version                         int64
	Metadata                        map[string]string
	CreatedAt, UpdatedAt            time.Time
	Deleted                         bool
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

const volumeColumns = `v.id, v.project_id, v.user_id, v.name, v.description, v.size_gb, v.status, v.attach_status,
	v.bootable, v.readonly, v.volume_type_id, v.volume_type_name, v.availability_zone, v.cell_path, v.version,
	v.snapshot_id, v.source_volid, v.image_id, v.volume_image_metadata, v.multiattach, v.created_at, v.updated_at,
	v.deleted, v.deleted_at`

func scanVolume(s db.Scanner) (*Volume, error) {
	var v Volume
	var bootable, multi, deleted int
	var imeta string
	var created, updated, deletedAt int64
	if err := s.Scan(&v.ID, &v.ProjectID, &v.UserID, &v.Name, &v.Description, &v.SizeGB, &v.Status, &v.AttachStatus,
		&bootable, &v.ReadOnly, &v.TypeID, &v.TypeName, &v.AvailabilityZone, &v.Cell, &v.Version,
		&v.SnapshotID, &v.SourceVolID, &v.ImageID, &imeta, &multi, &created, &updated, &deleted, &deletedAt); err != nil {
		return nil, err
	}
	v.Bootable, v.Multiattach, v.Deleted = bootable != 0, multi != 0, deleted != 0
	v.CreatedAt, v.UpdatedAt, v.DeletedAt = db.FromMicros(created), db.FromMicros(updated), db.FromMicros(deletedAt)
	if imeta != "" {
		if err := json.Unmarshal([]byte(imeta), &v.ImageMetadata); err != nil {
			return nil, fmt.Errorf("volume %s: image metadata: %w", v.ID, err)
		}
	}
	v.Metadata = map[string]string{}
	return &v, nil
}

const snapshotColumns = `s.id, s.volume_id, s.project_id, s.user_id, s.name, s.description, s.size_gb, s.status,
	s.progress, s.cell_path, s.version, s.created_at, s.updated_at, s.deleted`

func scanSnapshot(sc db.Scanner) (*Snapshot, error) {
	var s Snapshot
	var created, updated int64
	var deleted int
	if err := sc.Scan(&s.ID, &s.VolumeID, &s.ProjectID, &s.UserID, &s.Name, &s.Description, &s.SizeGB, &s.Status,
		&s.Progress, &s.Cell, &s.Version, &created, &updated, &deleted); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt, s.Deleted = db.FromMicros(created), db.FromMicros(updated), deleted != 0
	s.Metadata = map[string]string{}
	return &s, nil
}

// Create writes a new volume's copy in tx: version 0, as v says (its
// Status is normally creating and its Cell "").
func Create(ctx context.Context, tx *db.Tx, v *Volume) error {
	var imeta string
	if v.ImageMetadata != nil {
		b, err := json.Marshal(v.ImageMetadata)
		if err != nil {
			return fmt.Errorf("create volume %s: %w", v.ID, err)
		}
		imeta = string(b)
	}
	attach := v.AttachStatus
	if attach == "" {
		attach = "detached"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO volumes (id, project_id, user_id, name, description, size_gb, status, attach_status,
		bootable, readonly, volume_type_id, volume_type_name, availability_zone, cell_path, version, snapshot_id, source_volid,
		image_id, volume_image_metadata, multiattach, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		v.ID, v.ProjectID, v.UserID, v.Name, v.Description, v.SizeGB, v.Status, attach, b2i(v.Bootable), v.ReadOnly,
		v.TypeID, v.TypeName, v.AvailabilityZone, v.Cell, v.Version, v.SnapshotID, v.SourceVolID, v.ImageID, imeta,
		b2i(v.Multiattach), db.Micros(v.CreatedAt), db.Micros(v.UpdatedAt)); err != nil {
		return fmt.Errorf("create volume %s: %w", v.ID, err)
	}
	return setMetadata(ctx, tx, "volume_metadata", "volume_id", v.ID, v.Metadata, true)
}

// CreateSnapshot writes a new snapshot's copy in tx.
func CreateSnapshot(ctx context.Context, tx *db.Tx, s *Snapshot) error {
	progress := s.Progress
	if progress == "" {
		progress = "0%"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO volume_snapshots (id, volume_id, project_id, user_id, name, description, size_gb,
		status, progress, cell_path, version, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.VolumeID, s.ProjectID, s.UserID, s.Name, s.Description, s.SizeGB, s.Status, progress, s.Cell, s.Version,
		db.Micros(s.CreatedAt), db.Micros(s.UpdatedAt)); err != nil {
		return fmt.Errorf("create snapshot %s: %w", s.ID, err)
	}
	return setMetadata(ctx, tx, "snapshot_metadata", "snapshot_id", s.ID, s.Metadata, true)
}

// Get reads a volume that is not deleted (ErrNotFound otherwise).
func Get(ctx context.Context, q db.Querier, id string) (*Volume, error) {
	v, err := scanVolume(q.QueryRow(ctx, `SELECT `+volumeColumns+` FROM volumes v WHERE v.id = ? AND v.deleted = 0`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", id, err)
	}
	if err := loadVolumeMetadata(ctx, q, []*Volume{v}); err != nil {
		return nil, err
	}
	return v, nil
}

// GetAny reads a volume, deleted or not (for tests and the apply path).
func GetAny(ctx context.Context, q db.Querier, id string) (*Volume, error) {
	v, err := scanVolume(q.QueryRow(ctx, `SELECT `+volumeColumns+` FROM volumes v WHERE v.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", id, err)
	}
	return v, nil
}

// GetSnapshot reads a snapshot that is not deleted (ErrSnapshotNotFound
// otherwise).
func GetSnapshot(ctx context.Context, q db.Querier, id string) (*Snapshot, error) {
	s, err := scanSnapshot(q.QueryRow(ctx, `SELECT `+snapshotColumns+` FROM volume_snapshots s WHERE s.id = ? AND s.deleted = 0`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrSnapshotNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if err := loadSnapshotMetadata(ctx, q, []*Snapshot{s}); err != nil {
		return nil, err
	}
	return s, nil
}

// GetSnapshotAny reads a snapshot, deleted or not.
func GetSnapshotAny(ctx context.Context, q db.Querier, id string) (*Snapshot, error) {
	s, err := scanSnapshot(q.QueryRow(ctx, `SELECT `+snapshotColumns+` FROM volume_snapshots s WHERE s.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrSnapshotNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return s, nil
}

// loadVolumeMetadata fills the metadata and the attachments of vs, in
// one query each.
func loadVolumeMetadata(ctx context.Context, q db.Querier, vs []*Volume) error {
	if len(vs) == 0 {
		return nil
	}
	byID := make(map[string]*Volume, len(vs))
	for _, v := range vs {
		byID[v.ID] = v
	}
	atts, err := VolumeAttachments(ctx, q, slices.Collect(maps.Keys(byID)))
	if err != nil {
		return err
	}
	for id, as := range atts {
		if v := byID[id]; v != nil {
			v.Attachments = as
		}
	}
	return loadMetadata(ctx, q, "volume_metadata", "volume_id", slices.Collect(maps.Keys(byID)), func(id, k, val string) {
		if v := byID[id]; v != nil {
			v.Metadata[k] = val
		}
	})
}

func loadSnapshotMetadata(ctx context.Context, q db.Querier, ss []*Snapshot) error {
	if len(ss) == 0 {
		return nil
	}
	byID := make(map[string]*Snapshot, len(ss))
	for _, s := range ss {
		byID[s.ID] = s
	}
	return loadMetadata(ctx, q, "snapshot_metadata", "snapshot_id", slices.Collect(maps.Keys(byID)), func(id, k, val string) {
		if s := byID[id]; s != nil {
			s.Metadata[k] = val
		}
	})
}

func loadMetadata(ctx context.Context, q db.Querier, table, idCol string, ids []string, put func(id, k, v string)) error {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := q.Query(ctx, `SELECT `+idCol+`, meta_key, meta_value FROM `+table+` WHERE `+idCol+` IN (`+placeholders(len(ids))+`)`, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		put(id, k, v)
	}
	return rows.Err()
}

// setMetadata writes md for id: replacing all (replace) or merging.
func setMetadata(ctx context.Context, tx *db.Tx, table, idCol, id string, md map[string]string, replace bool) error {
	if replace {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+idCol+` = ?`, id); err != nil {
			return fmt.Errorf("%s of %s: %w", table, id, err)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+idCol+`, meta_key, meta_value) VALUES (?, ?, ?)
			ON CONFLICT (`+idCol+`, meta_key) DO UPDATE SET meta_value = excluded.meta_value`, id, k, md[k]); err != nil {
			return fmt.Errorf("%s of %s: %w", table, id, err)
		}
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// LockQuota serialises the volume quota checks of a project until tx
// ends (apidb's quota lock, on a key of its own).
func LockQuota(ctx context.Context, tx *db.Tx, project string) error {
	return apidb.LockQuota(ctx, tx, "volume:"+project)
}
