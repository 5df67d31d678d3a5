package celldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Volumes and volume snapshots (migration 12): the compute cell's truth of
// each volume's and snapshot's status and size; package volume keeps them.
// The row is the work queue: a pending action (Volume.Action, or
// VolumeSnapshot.Pending) is backend work accepted and not yet done. Every
// change increments the row's version; a deleted row stays (Deleted) so
// that heal can resend the deletion.

// ErrVolumeNotFound is returned for a volume the cell does not have.
var ErrVolumeNotFound = notfound.New("volume not found in this cell")

// ErrVolumeSnapshotNotFound is returned for a snapshot the cell does not
// have.
var ErrVolumeSnapshotNotFound = notfound.New("volume snapshot not found in this cell")

// Volume is a volume's row.
type Volume struct {
	ID               string
	ProjectID        string
	UserID           string
	SizeGB           int
	Status           string
	Version          int64
	TypeID           string
	TypeName         string
	AvailabilityZone string
	// The source, at most one: an image (its size in bytes), a snapshot
	// or a volume of this cell.
	ImageID     string
	ImageSize   int64
	SnapshotID  string
	SourceVolID string
	// Action is the pending action ("" none), with its parameters (JSON)
	// and the request that asked for it. RequestID stays when the action
	// ends: it is the request of the last action accepted.
	Action       string
	ActionParams json.RawMessage
	RequestID    string
	Fault        string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Deleted      bool
}

// State is the volume as volume_update carries it, owned by cell.
func (v *Volume) State(cell string) wire.VolumeState {
	return wire.VolumeState{ID: v.ID, Cell: cell, Version: v.Version, Status: v.Status, SizeGB: v.SizeGB,
		Fault: v.Fault, Deleted: v.Deleted, UpdatedAt: v.UpdatedAt}
}

// VolumeSnapshot is a snapshot's row.
type VolumeSnapshot struct {
	ID       string
	VolumeID string
	SizeGB   int
	Status   string
	Version  int64
	Progress string
	// Pending is the pending operation ("create", "delete"; "" none) and
	// RequestID the request of the last one accepted.
	Pending   string
	RequestID string
	Fault     string
	CreatedAt time.Time
	UpdatedAt time.Time
	Deleted   bool
}

// State is the snapshot as volume_update carries it, owned by cell.
func (s *VolumeSnapshot) State(cell string) wire.SnapshotState {
	return wire.SnapshotState{ID: s.ID, VolumeID: s.VolumeID, Cell: cell, Version: s.Version, Status: s.Status,
		Progress: s.Progress, SizeGB: s.SizeGB, Fault: s.Fault, Deleted: s.Deleted, UpdatedAt: s.UpdatedAt}
}

const volumeCols = `id, project_id, user_id, size_gb, status, version, type_id, type_name, availability_zone,
	image_id, image_size, snapshot_id, source_volid, action, action_params, request_id, fault,
	created_at, updated_at, deleted`

func scanVolume(s db.Scanner) (*Volume, error) {
	var v Volume
	var params string
	var created, updated int64
	var deleted int
	err := s.Scan(&v.ID, &v.ProjectID, &v.UserID, &v.SizeGB, &v.Status, &v.Version, &v.TypeID, &v.TypeName,
		&v.AvailabilityZone, &v.ImageID, &v.ImageSize, &v.SnapshotID, &v.SourceVolID, &v.Action, &params,
		&v.RequestID, &v.Fault, &created, &updated, &deleted)
	if err != nil {
		return nil, err
	}
	if params != "" {
		v.ActionParams = json.RawMessage(params)
	}
	v.CreatedAt, v.UpdatedAt, v.Deleted = db.FromMicros(created), db.FromMicros(updated), deleted != 0
	return &v, nil
}

const snapshotCols = `id, volume_id, size_gb, status, version, progress, pending, request_id, fault,
	created_at, updated_at, deleted`

func scanSnapshot(s db.Scanner) (*VolumeSnapshot, error) {
	var v VolumeSnapshot
	var created, updated int64
	var deleted int
	err := s.Scan(&v.ID, &v.VolumeID, &v.SizeGB, &v.Status, &v.Version, &v.Progress, &v.Pending, &v.RequestID,
		&v.Fault, &created, &updated, &deleted)
	if err != nil {
		return nil, err
	}
	v.CreatedAt, v.UpdatedAt, v.Deleted = db.FromMicros(created), db.FromMicros(updated), deleted != 0
	return &v, nil
}

// InsertVolume adds v (its Version, Status and pending action as given;
// UpdatedAt is CreatedAt when zero). It reports false, changing nothing,
// when the cell has a volume with that id already (deleted or not).
func InsertVolume(ctx context.Context, tx *db.Tx, v *Volume) (bool, error) {
	updated := v.UpdatedAt
	if updated.IsZero() {
		updated = v.CreatedAt
	}
	res, err := tx.Exec(ctx, `INSERT INTO volumes (`+volumeCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		v.ID, v.ProjectID, v.UserID, v.SizeGB, v.Status, v.Version, v.TypeID, v.TypeName, v.AvailabilityZone,
		v.ImageID, v.ImageSize, v.SnapshotID, v.SourceVolID, v.Action, string(v.ActionParams), v.RequestID, v.Fault,
		db.Micros(v.CreatedAt), db.Micros(updated), boolInt(v.Deleted))
	if err != nil {
		return false, fmt.Errorf("insert volume %s: %w", v.ID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// GetVolume reads a volume, deleted or not (ErrVolumeNotFound if the cell
// never had it).
func GetVolume(ctx context.Context, q Querier, id string) (*Volume, error) {
	v, err := scanVolume(q.QueryRow(ctx, `SELECT `+volumeCols+` FROM volumes WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrVolumeNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get volume %s: %w", id, err)
	}
	return v, nil
}

// VolumePending is a pending action to set on a volume.
type VolumePending struct {
	Action    string
	Params    json.RawMessage
	RequestID string
}

// VolumeChange is a change to a volume; nil leaves a field.
type VolumeChange struct {
	Status *string
	SizeGB *int
	Fault  *string
	// Pending sets the pending action; ClearPending clears it (keeping
	// the request id of the last action).
	Pending      *VolumePending
	ClearPending bool
	// RequestID, without Pending, records the request of an action
	// refused, so that its repeat is known.
	RequestID *string
	Deleted   bool
}

// VolumeExpect is what a compare-and-swap update expects of the row.
type VolumeExpect struct {
	// Action and RequestID: the pending action the update ends.
	Action    string
	RequestID string
}

// UpdateVolume applies c, increments the version, sets updated_at, and
// returns the row as it now is. With expect, the row must still have that
// pending action of that request, else wire.ErrConflict; a volume the cell
// does not have is ErrVolumeNotFound.
func UpdateVolume(ctx context.Context, tx *db.Tx, id string, expect *VolumeExpect, c VolumeChange, now time.Time) (*Volume, error) {
	var set []string
	var args []any
	add := func(col string, v any) {
		set = append(set, col+" = ?")
		args = append(args, v)
	}
	if c.Status != nil {
		add("status", *c.Status)
	}
	if c.SizeGB != nil {
		add("size_gb", *c.SizeGB)
	}
	if c.Fault != nil {
		add("fault", *c.Fault)
	}
	switch {
	case c.Pending != nil:
		add("action", c.Pending.Action)
		add("action_params", string(c.Pending.Params))
		add("request_id", c.Pending.RequestID)
	case c.ClearPending:
		add("action", "")
		add("action_params", "")
	case c.RequestID != nil:
		add("request_id", *c.RequestID)
	}
	if c.Deleted {
		add("deleted", 1)
	}
	add("updated_at", db.Micros(now))
	q := `UPDATE volumes SET ` + strings.Join(set, ", ") + `, version = version + 1 WHERE id = ?`
	args = append(args, id)
	if expect != nil {
		q += ` AND action = ? AND request_id = ?`
		args = append(args, expect.Action, expect.RequestID)
	}
	v, err := scanVolume(tx.QueryRow(ctx, q+` RETURNING `+volumeCols, args...))
	if errors.Is(err, sql.ErrNoRows) {
		cur, gerr := GetVolume(ctx, tx, id)
		if gerr != nil || expect == nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("volume %s has pending action %q of request %q, not %q of %q: %w",
			id, cur.Action, cur.RequestID, expect.Action, expect.RequestID, wire.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("update volume %s: %w", id, err)
	}
	return v, nil
}

// InsertVolumeSnapshot adds s. It reports false, changing nothing, when
// the cell has a snapshot with that id already.
func InsertVolumeSnapshot(ctx context.Context, tx *db.Tx, s *VolumeSnapshot) (bool, error) {
	updated := s.UpdatedAt
	if updated.IsZero() {
		updated = s.CreatedAt
	}
	res, err := tx.Exec(ctx, `INSERT INTO volume_snapshots (`+snapshotCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		s.ID, s.VolumeID, s.SizeGB, s.Status, s.Version, s.Progress, s.Pending, s.RequestID, s.Fault,
		db.Micros(s.CreatedAt), db.Micros(updated), boolInt(s.Deleted))
	if err != nil {
		return false, fmt.Errorf("insert volume snapshot %s: %w", s.ID, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// GetVolumeSnapshot reads a snapshot, deleted or not
// (ErrVolumeSnapshotNotFound if the cell never had it).
func GetVolumeSnapshot(ctx context.Context, q Querier, id string) (*VolumeSnapshot, error) {
	s, err := scanSnapshot(q.QueryRow(ctx, `SELECT `+snapshotCols+` FROM volume_snapshots WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrVolumeSnapshotNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get volume snapshot %s: %w", id, err)
	}
	return s, nil
}

// SnapshotChange is a change to a snapshot; nil leaves a field.
type SnapshotChange struct {
	Status   *string
	SizeGB   *int
	Progress *string
	Fault    *string
	// Pending sets the pending operation and its request; ClearPending
	// clears it (keeping the request id).
	Pending      *string
	RequestID    string
	ClearPending bool
	Deleted      bool
}

// UpdateVolumeSnapshot applies c, increments the version, sets
// updated_at, and returns the row as it now is. With expectPending, the
// row must still have that pending operation of expectRequest, else
// wire.ErrConflict.
func UpdateVolumeSnapshot(ctx context.Context, tx *db.Tx, id string, expectPending *string, expectRequest string, c SnapshotChange, now time.Time) (*VolumeSnapshot, error) {
	var set []string
	var args []any
	add := func(col string, v any) {
		set = append(set, col+" = ?")
		args = append(args, v)
	}
	if c.Status != nil {
		add("status", *c.Status)
	}
	if c.SizeGB != nil {
		add("size_gb", *c.SizeGB)
	}
	if c.Progress != nil {
		add("progress", *c.Progress)
	}
	if c.Fault != nil {
		add("fault", *c.Fault)
	}
	switch {
	case c.Pending != nil:
		add("pending", *c.Pending)
		add("request_id", c.RequestID)
	case c.ClearPending:
		add("pending", "")
	}
	if c.Deleted {
		add("deleted", 1)
	}
	add("updated_at", db.Micros(now))
	q := `UPDATE volume_snapshots SET ` + strings.Join(set, ", ") + `, version = version + 1 WHERE id = ?`
	args = append(args, id)
	if expectPending != nil {
		q += ` AND pending = ? AND request_id = ?`
		args = append(args, *expectPending, expectRequest)
	}
	s, err := scanSnapshot(tx.QueryRow(ctx, q+` RETURNING `+snapshotCols, args...))
	if errors.Is(err, sql.ErrNoRows) {
		cur, gerr := GetVolumeSnapshot(ctx, tx, id)
		if gerr != nil || expectPending == nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("volume snapshot %s has pending %q of request %q, not %q of %q: %w",
			id, cur.Pending, cur.RequestID, *expectPending, expectRequest, wire.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("update volume snapshot %s: %w", id, err)
	}
	return s, nil
}

// SnapshotsOfVolume lists the snapshots of a volume that are not deleted,
// oldest first.
func SnapshotsOfVolume(ctx context.Context, q Querier, volumeID string) ([]*VolumeSnapshot, error) {
	return db.Collect(ctx, q, scanSnapshot, `SELECT `+snapshotCols+` FROM volume_snapshots
		WHERE volume_id = ? AND deleted = 0 ORDER BY created_at, id`, volumeID)
}

// PendingSnapshots lists the snapshots of a volume with a pending
// operation, oldest change first.
func PendingSnapshots(ctx context.Context, q Querier, volumeID string) ([]*VolumeSnapshot, error) {
	return db.Collect(ctx, q, scanSnapshot, `SELECT `+snapshotCols+` FROM volume_snapshots
		WHERE volume_id = ? AND pending <> '' ORDER BY updated_at, id`, volumeID)
}

// VolumesWithPendingWork lists up to limit ids of volumes that have a
// pending action, a snapshot with a pending operation (the longest waiting
// first) or an attachment with host work pending.
func VolumesWithPendingWork(ctx context.Context, q Querier, limit int) ([]string, error) {
	scanID := func(s db.Scanner) (string, error) {
		var id string
		var at int64
		err := s.Scan(&id, &at)
		return id, err
	}
	vols, err := db.Collect(ctx, q, scanID, `SELECT id, updated_at FROM volumes WHERE action <> '' AND action <> '`+ActionMoveOut+`'
		ORDER BY updated_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("volumes with pending work: %w", err)
	}
	snaps, err := db.Collect(ctx, q, scanID, `SELECT volume_id, updated_at FROM volume_snapshots WHERE pending <> ''
		ORDER BY updated_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("volumes with pending work: %w", err)
	}
	atts, err := db.Collect(ctx, q, func(s db.Scanner) (string, error) {
		var id string
		err := s.Scan(&id)
		return id, err
	}, `SELECT DISTINCT volume_id FROM volume_attachments WHERE pending <> '' ORDER BY volume_id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("volumes with pending work: %w", err)
	}
	seen := make(map[string]bool, len(vols)+len(snaps)+len(atts))
	var out []string
	for _, id := range slices.Concat(vols, snaps, atts) {
		if !seen[id] && len(out) < limit {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// PendingCreatesFrom counts the volumes whose pending creation reads
// snapshot snapshotID (snapshot) or volume id (volume): the source must
// stay until they are made.
func PendingCreatesFrom(ctx context.Context, q Querier, snapshotID, volumeID string) (int, error) {
	var n int
	var err error
	if snapshotID != "" {
		err = q.QueryRow(ctx, `SELECT COUNT(*) FROM volumes WHERE snapshot_id = ? AND action = 'create'`, snapshotID).Scan(&n)
	} else {
		err = q.QueryRow(ctx, `SELECT COUNT(*) FROM volumes WHERE source_volid = ? AND action = 'create'`, volumeID).Scan(&n)
	}
	if err != nil {
		return 0, fmt.Errorf("pending creates from a source: %w", err)
	}
	return n, nil
}

// VolumesChangedAfter lists up to limit volumes (deleted too) changed at
// or after at, in (updated_at, id) order, starting after (at, afterID):
// the pages of heal.
func VolumesChangedAfter(ctx context.Context, q Querier, at time.Time, afterID string, limit int) ([]*Volume, error) {
	return db.Collect(ctx, q, scanVolume, `SELECT `+volumeCols+` FROM volumes
		WHERE updated_at >= ? AND (updated_at > ? OR id > ?) ORDER BY updated_at, id LIMIT ?`,
		db.Micros(at), db.Micros(at), afterID, limit)
}

// SnapshotsChangedAfter is VolumesChangedAfter for snapshots.
func SnapshotsChangedAfter(ctx context.Context, q Querier, at time.Time, afterID string, limit int) ([]*VolumeSnapshot, error) {
	return db.Collect(ctx, q, scanSnapshot, `SELECT `+snapshotCols+` FROM volume_snapshots
		WHERE updated_at >= ? AND (updated_at > ? OR id > ?) ORDER BY updated_at, id LIMIT ?`,
		db.Micros(at), db.Micros(at), afterID, limit)
}

// ProvisionedVolumeGB is the sum of the sizes of the volumes and snapshots
// not deleted, those still being made included: what the cell has
// promised, whether or not the backend holds it yet.
func ProvisionedVolumeGB(ctx context.Context, q Querier) (int64, error) {
	var vols, snaps int64
	if err := q.QueryRow(ctx, `SELECT COALESCE(SUM(size_gb), 0) FROM volumes WHERE deleted = 0`).Scan(&vols); err != nil {
		return 0, fmt.Errorf("provisioned volume GiB: %w", err)
	}
	if err := q.QueryRow(ctx, `SELECT COALESCE(SUM(size_gb), 0) FROM volume_snapshots WHERE deleted = 0`).Scan(&snaps); err != nil {
		return 0, fmt.Errorf("provisioned volume GiB: %w", err)
	}
	return vols + snaps, nil
}
