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

// Block device mappings and volume attachments (migration 13). A server
// attaches only volumes of its own cell, so the cell holds both sides of
// an attachment: the instance's block device mapping (Nova's BDM: which
// device of the guest is which volume) and the volume's attachment
// (Cinder's: which instance the volume is attached to, and how far). The
// volume manager (package volume) writes both in one transaction. A row
// that goes is marked deleted and kept.

// ErrAttachmentNotFound is returned for an attachment the cell does not
// have.
var ErrAttachmentNotFound = notfound.New("volume attachment not found in this cell")

// BDM is a block device mapping of an instance.
type BDM struct {
	UUID         string
	InstanceUUID string
	VolumeID     string
	AttachmentID string
	// DeviceName is the device in the guest (/dev/vdb).
	DeviceName string
	// BootIndex is the boot order (-1: not a boot device; 0 the root).
	BootIndex           int
	SourceType          string
	DestinationType     string
	DeleteOnTermination bool
	Tag                 string
	VolumeSize          int
	VolumeType          string
	ImageID             string
	SnapshotID          string
	CreatedAt           time.Time
	Deleted             bool
}

// VolumeAttachment is a volume's attachment to an instance.
type VolumeAttachment struct {
	ID           string
	VolumeID     string
	InstanceUUID string
	// Status is Cinder's attach_status: reserved, attaching, attached,
	// detaching (and detached once deleted).
	Status     string
	Mode       string
	Mountpoint string
	// Pending is the host's work still to do (attach, detach; "" none),
	// asked for by request RequestID.
	Pending    string
	RequestID  string
	AttachedAt time.Time
	DetachedAt time.Time
	Deleted    bool
	// Backing is the volume's backing as a hypervisor opens it (the
	// backend's file; migration 14), recorded when the attach is
	// accepted, so that the compute agents attach the volume again where
	// the instance runs after a move or a restart ("": not known yet).
	Backing string
}

const bdmCols = `uuid, instance_uuid, volume_id, attachment_id, device_name, boot_index, source_type, destination_type,
	delete_on_termination, tag, volume_size, volume_type, image_id, snapshot_id, created_at, deleted`

func scanBDM(s db.Scanner) (*BDM, error) {
	var b BDM
	var dot, deleted int
	var created int64
	err := s.Scan(&b.UUID, &b.InstanceUUID, &b.VolumeID, &b.AttachmentID, &b.DeviceName, &b.BootIndex, &b.SourceType,
		&b.DestinationType, &dot, &b.Tag, &b.VolumeSize, &b.VolumeType, &b.ImageID, &b.SnapshotID, &created, &deleted)
	if err != nil {
		return nil, err
	}
	b.DeleteOnTermination, b.Deleted, b.CreatedAt = dot != 0, deleted != 0, db.FromMicros(created)
	return &b, nil
}

const attachmentCols = `id, volume_id, instance_uuid, attach_status, mode, mountpoint, pending, request_id,
	attached_at, detached_at, deleted, backing`

func scanAttachment(s db.Scanner) (*VolumeAttachment, error) {
	var a VolumeAttachment
	var attached, detached int64
	var deleted int
	err := s.Scan(&a.ID, &a.VolumeID, &a.InstanceUUID, &a.Status, &a.Mode, &a.Mountpoint, &a.Pending, &a.RequestID,
		&attached, &detached, &deleted, &a.Backing)
	if err != nil {
		return nil, err
	}
	a.AttachedAt, a.DetachedAt, a.Deleted = db.FromMicros(attached), db.FromMicros(detached), deleted != 0
	return &a, nil
}

// InsertBDM adds a block device mapping. A live mapping of the instance
// with the same device name is a unique violation.
func InsertBDM(ctx context.Context, tx *db.Tx, b *BDM) error {
	_, err := tx.Exec(ctx, `INSERT INTO block_device_mappings (`+bdmCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.UUID, b.InstanceUUID, b.VolumeID, b.AttachmentID, b.DeviceName, b.BootIndex, b.SourceType, b.DestinationType,
		boolInt(b.DeleteOnTermination), b.Tag, b.VolumeSize, b.VolumeType, b.ImageID, b.SnapshotID, db.Micros(b.CreatedAt),
		boolInt(b.Deleted))
	if err != nil {
		return fmt.Errorf("insert block device mapping %s of %s: %w", b.UUID, b.InstanceUUID, err)
	}
	return nil
}

// InstanceBDMs lists an instance's live block device mappings, by boot
// index then device name.
func InstanceBDMs(ctx context.Context, q Querier, instanceUUID string) ([]*BDM, error) {
	return db.Collect(ctx, q, scanBDM, `SELECT `+bdmCols+` FROM block_device_mappings
		WHERE instance_uuid = ? AND deleted = 0 ORDER BY boot_index, device_name, uuid`, instanceUUID)
}

// BDMOfAttachment reads the live block device mapping of an attachment
// (ErrAttachmentNotFound when there is none).
func BDMOfAttachment(ctx context.Context, q Querier, attachmentID string) (*BDM, error) {
	b, err := scanBDM(q.QueryRow(ctx, `SELECT `+bdmCols+` FROM block_device_mappings
		WHERE attachment_id = ? AND deleted = 0`, attachmentID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: the block device mapping of %s", ErrAttachmentNotFound, attachmentID)
	}
	if err != nil {
		return nil, fmt.Errorf("block device mapping of attachment %s: %w", attachmentID, err)
	}
	return b, nil
}

// SetBDMDeleteOnTermination sets delete_on_termination of the live
// mapping of an attachment and reports whether it changed
// (ErrAttachmentNotFound when the attachment has no live mapping).
func SetBDMDeleteOnTermination(ctx context.Context, tx *db.Tx, attachmentID string, dot bool) (bool, error) {
	b, err := BDMOfAttachment(ctx, tx, attachmentID)
	if err != nil {
		return false, err
	}
	if b.DeleteOnTermination == dot {
		return false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE block_device_mappings SET delete_on_termination = ? WHERE uuid = ?`,
		boolInt(dot), b.UUID); err != nil {
		return false, fmt.Errorf("set delete_on_termination of block device mapping %s: %w", b.UUID, err)
	}
	return true, nil
}

// DeleteBDMsOfAttachment marks the mappings of an attachment deleted.
func DeleteBDMsOfAttachment(ctx context.Context, tx *db.Tx, attachmentID string) error {
	if _, err := tx.Exec(ctx, `UPDATE block_device_mappings SET deleted = 1 WHERE attachment_id = ? AND deleted = 0`,
		attachmentID); err != nil {
		return fmt.Errorf("delete the block device mappings of attachment %s: %w", attachmentID, err)
	}
	return nil
}

// InsertAttachment adds a volume attachment.
func InsertAttachment(ctx context.Context, tx *db.Tx, a *VolumeAttachment) error {
	_, err := tx.Exec(ctx, `INSERT INTO volume_attachments (`+attachmentCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.VolumeID, a.InstanceUUID, a.Status, a.Mode, a.Mountpoint, a.Pending, a.RequestID,
		db.Micros(a.AttachedAt), db.Micros(a.DetachedAt), boolInt(a.Deleted), a.Backing)
	if err != nil {
		return fmt.Errorf("insert volume attachment %s: %w", a.ID, err)
	}
	return nil
}

// GetAttachment reads an attachment, deleted or not.
func GetAttachment(ctx context.Context, q Querier, id string) (*VolumeAttachment, error) {
	a, err := scanAttachment(q.QueryRow(ctx, `SELECT `+attachmentCols+` FROM volume_attachments WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrAttachmentNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get volume attachment %s: %w", id, err)
	}
	return a, nil
}

// VolumeAttachments lists a volume's live attachments, oldest first.
func VolumeAttachments(ctx context.Context, q Querier, volumeID string) ([]*VolumeAttachment, error) {
	return db.Collect(ctx, q, scanAttachment, `SELECT `+attachmentCols+` FROM volume_attachments
		WHERE volume_id = ? AND deleted = 0 ORDER BY id`, volumeID)
}

// InstanceAttachments lists the live attachments of an instance's
// volumes.
func InstanceAttachments(ctx context.Context, q Querier, instanceUUID string) ([]*VolumeAttachment, error) {
	return db.Collect(ctx, q, scanAttachment, `SELECT `+attachmentCols+` FROM volume_attachments
		WHERE instance_uuid = ? AND deleted = 0 ORDER BY volume_id, id`, instanceUUID)
}

// hasBDM is the condition (over volume_attachments, unaliased or as a)
// that an attachment has a live block device mapping: one the Compute
// API made, whose host work the cell does. The Block Storage API's
// attachments (attachment_write) have none: their consumer connects
// itself, and no hypervisor of the cell holds them.
const hasBDM = `EXISTS (SELECT 1 FROM block_device_mappings b WHERE b.attachment_id = volume_attachments.id AND b.deleted = 0)`

// HostAttachments lists the live attachments of an instance that its
// hypervisor holds (attached, or detaching with the detach still to do),
// by device: those a move or a restart attaches again where the
// instance runs (not the Block Storage API's, hasBDM).
func HostAttachments(ctx context.Context, q Querier, instanceUUID string) ([]*VolumeAttachment, error) {
	return db.Collect(ctx, q, scanAttachment, `SELECT `+attachmentCols+` FROM volume_attachments
		WHERE instance_uuid = ? AND deleted = 0 AND attach_status IN ('attached', 'detaching') AND `+hasBDM+`
		ORDER BY mountpoint, id`, instanceUUID)
}

// AttachmentsWithoutBacking lists up to limit live attachments whose
// backing is not recorded (made before migration 14).
func AttachmentsWithoutBacking(ctx context.Context, q Querier, limit int) ([]*VolumeAttachment, error) {
	return db.Collect(ctx, q, scanAttachment, `SELECT `+attachmentCols+` FROM volume_attachments
		WHERE deleted = 0 AND backing = '' ORDER BY id LIMIT ?`, limit)
}

// PendingAttachments lists a volume's attachments with host work to do.
func PendingAttachments(ctx context.Context, q Querier, volumeID string) ([]*VolumeAttachment, error) {
	return db.Collect(ctx, q, scanAttachment, `SELECT `+attachmentCols+` FROM volume_attachments
		WHERE volume_id = ? AND pending <> '' ORDER BY id`, volumeID)
}

// AttachmentChange is a change to an attachment; nil leaves a field.
type AttachmentChange struct {
	Status *string
	// Pending sets the pending work and its request; ClearPending clears
	// it (keeping the request id).
	Pending      *string
	RequestID    string
	ClearPending bool
	AttachedAt   *time.Time
	DetachedAt   *time.Time
	Deleted      bool
	// Backing sets the attachment's backing (nil leaves it).
	Backing *string
	// Mode and Mountpoint set the attach mode and the mountpoint.
	Mode       *string
	Mountpoint *string
}

// UpdateAttachment applies c to a live attachment and returns it as it
// now is. With expectPending, the attachment must still have that pending
// work of request expectRequest, else wire.ErrConflict (also for one that
// is deleted).
func UpdateAttachment(ctx context.Context, tx *db.Tx, id string, expectPending *string, expectRequest string, c AttachmentChange) (*VolumeAttachment, error) {
	var set []string
	var args []any
	add := func(col string, v any) {
		set = append(set, col+" = ?")
		args = append(args, v)
	}
	if c.Status != nil {
		add("attach_status", *c.Status)
	}
	switch {
	case c.Pending != nil:
		add("pending", *c.Pending)
		add("request_id", c.RequestID)
	case c.ClearPending:
		add("pending", "")
	}
	if c.AttachedAt != nil {
		add("attached_at", db.Micros(*c.AttachedAt))
	}
	if c.DetachedAt != nil {
		add("detached_at", db.Micros(*c.DetachedAt))
	}
	if c.Deleted {
		add("deleted", 1)
	}
	if c.Backing != nil {
		add("backing", *c.Backing)
	}
	if c.Mode != nil {
		add("mode", *c.Mode)
	}
	if c.Mountpoint != nil {
		add("mountpoint", *c.Mountpoint)
	}
	if len(set) == 0 {
		return GetAttachment(ctx, tx, id)
	}
	q := `UPDATE volume_attachments SET ` + strings.Join(set, ", ") + ` WHERE id = ? AND deleted = 0`
	args = append(args, id)
	if expectPending != nil {
		q += ` AND pending = ? AND request_id = ?`
		args = append(args, *expectPending, expectRequest)
	}
	a, err := scanAttachment(tx.QueryRow(ctx, q+` RETURNING `+attachmentCols, args...))
	if errors.Is(err, sql.ErrNoRows) {
		cur, gerr := GetAttachment(ctx, tx, id)
		if gerr != nil {
			return nil, gerr
		}
		return nil, fmt.Errorf("volume attachment %s (deleted %v) has pending %q of request %q, not %q of %q: %w",
			id, cur.Deleted, cur.Pending, cur.RequestID, deref(expectPending), expectRequest, wire.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("update volume attachment %s: %w", id, err)
	}
	return a, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// AttachmentStates returns the live attachments of each of the volumes as
// volume_update carries them (with their block device mappings), by
// volume id; a volume with none has no entry.
func AttachmentStates(ctx context.Context, q Querier, volumeIDs ...string) (map[string][]wire.AttachmentState, error) {
	out := map[string][]wire.AttachmentState{}
	if len(volumeIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(volumeIDs))
	for i, id := range volumeIDs {
		args[i] = id
	}
	type row struct {
		volumeID string
		s        wire.AttachmentState
	}
	rows, err := db.Collect(ctx, q, func(r db.Scanner) (row, error) {
		var x row
		var attached int64
		var bdm, tag sql.NullString
		var dot, boot sql.NullInt64
		var backing string
		err := r.Scan(&x.volumeID, &x.s.ID, &x.s.InstanceUUID, &x.s.Status, &x.s.Device, &x.s.Mode, &attached,
			&bdm, &tag, &dot, &boot, &backing)
		x.s.BDMUUID, x.s.Tag, x.s.DeleteOnTermination = bdm.String, tag.String, dot.Int64 != 0
		x.s.BootIndex = -1
		if boot.Valid {
			x.s.BootIndex = int(boot.Int64)
		}
		if !bdm.Valid {
			// One of the Block Storage API's: connected (a mountpoint
			// recorded) or not yet ({} as Cinder's reserve leaves it).
			x.s.ConnectionInfo = json.RawMessage(`{}`)
			if x.s.Device != "" {
				x.s.ConnectionInfo = ConnectionInfo(x.s.ID, backing, x.s.Mode)
			}
		}
		x.s.AttachedAt = db.FromMicros(attached)
		return x, err
	}, `SELECT a.volume_id, a.id, a.instance_uuid, a.attach_status, a.mountpoint, a.mode, a.attached_at,
		b.uuid, b.tag, b.delete_on_termination, b.boot_index, a.backing
		FROM volume_attachments a LEFT JOIN block_device_mappings b ON b.attachment_id = a.id AND b.deleted = 0
		WHERE a.deleted = 0 AND a.volume_id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(volumeIDs)), ", ")+`)
		ORDER BY a.volume_id, a.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("attachments of volumes: %w", err)
	}
	for _, x := range rows {
		out[x.volumeID] = append(out[x.volumeID], x.s)
	}
	return out, nil
}

// GetForUpdate reads an instance (deleted ones too) and, on PostgreSQL,
// locks its row until tx ends (a SQLite transaction here holds the write
// lock from its start), so that two attaches to it cannot take the same
// device name.
func GetForUpdate(ctx context.Context, tx *db.Tx, uuid string) (*Instance, error) {
	q := `SELECT ` + selectCols + ` FROM instances WHERE uuid = ?`
	if tx.Dialect == db.Postgres {
		q += " FOR UPDATE"
	}
	in, err := scanInstance(tx.QueryRow(ctx, q, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, uuid)
	}
	return in, err
}

// GetVolumeForUpdate reads a volume (deleted or not) and, on PostgreSQL,
// locks its row until tx ends, so that two attaches of it cannot both
// find it available.
func GetVolumeForUpdate(ctx context.Context, tx *db.Tx, id string) (*Volume, error) {
	q := `SELECT ` + volumeCols + ` FROM volumes WHERE id = ?`
	if tx.Dialect == db.Postgres {
		q += " FOR UPDATE"
	}
	v, err := scanVolume(tx.QueryRow(ctx, q, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrVolumeNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("get volume %s: %w", id, err)
	}
	return v, nil
}
