package voldb

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

// The copy mirrors each volume's attachments (table volume_attachments)
// from the owning cell's states: Apply replaces a volume's attachments
// with the state's whenever it applies that state, and removes them with
// a deletion. The API cell never writes them otherwise; the Compute API's
// os-volume_attachments and the servers' volumes_attached, and Cinder's
// volume view and attachments API, read them.

// ErrAttachmentNotFound is an attachment the mirror does not have.
var ErrAttachmentNotFound = notfound.New("volume attachment not found")

// Cinder's attach statuses (of an attachment, and of a volume).
const (
	AttachReserved  = "reserved"
	AttachAttaching = "attaching"
	AttachAttached  = "attached"
	AttachDetaching = "detaching"
	AttachDetached  = "detached"
)

// Attachment is the mirror of one attachment of a volume.
type Attachment struct {
	ID, VolumeID, InstanceUUID string
	// Status is Cinder's attach_status (reserved, attaching, attached,
	// detaching).
	Status string
	// Device is the mountpoint (the device name in the guest).
	Device string
	Mode   string
	// BDMUUID, Tag, DeleteOnTermination and BootIndex are the instance's
	// block device mapping of the volume (BootIndex -1: not a boot
	// device).
	BDMUUID             string
	Tag                 string
	DeleteOnTermination bool
	BootIndex           int
	AttachedAt          time.Time
	// ProjectID is the volume's project.
	ProjectID string
	// ConnectionInfo is the connection of an attachment of the Block
	// Storage API's attachments (nil: none).
	ConnectionInfo json.RawMessage
}

// IsRoot reports whether the attachment is the instance's root device
// (Nova's bdm.is_root: boot index 0).
func (a *Attachment) IsRoot() bool { return a.BootIndex == 0 }

// volumeAttachStatus is the attach_status of a volume with these
// attachments: the "highest" of them, as Cinder's attachment_delete
// leaves it (attached, attaching, detaching, reserved; none: detached).
func volumeAttachStatus(atts []wire.AttachmentState) string {
	best := AttachDetached
	rank := map[string]int{AttachDetached: 0, AttachReserved: 1, AttachDetaching: 2, AttachAttaching: 3, AttachAttached: 4}
	for _, a := range atts {
		if r, ok := rank[a.Status]; ok && r > rank[best] {
			best = a.Status
		}
	}
	return best
}

// replaceAttachments makes the mirror of a volume's attachments atts (a
// deleted volume has none) and sets its attach_status from them.
func replaceAttachments(ctx context.Context, tx *db.Tx, volumeID string, atts []wire.AttachmentState, deleted bool) error {
	if _, err := tx.Exec(ctx, `DELETE FROM volume_attachments WHERE volume_id = ?`, volumeID); err != nil {
		return fmt.Errorf("attachments of volume %s: %w", volumeID, err)
	}
	if deleted {
		atts = nil
	}
	for _, a := range atts {
		mode := a.Mode
		if mode == "" {
			mode = "rw"
		}
		var at int64
		if !a.AttachedAt.IsZero() {
			at = db.Micros(a.AttachedAt)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO volume_attachments (id, volume_id, instance_uuid, attach_status, device, mode,
			bdm_uuid, tag, delete_on_termination, boot_index, attached_at, connection_info) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO NOTHING`,
			a.ID, volumeID, a.InstanceUUID, a.Status, a.Device, mode, a.BDMUUID, a.Tag, b2i(a.DeleteOnTermination),
			a.BootIndex, at, string(a.ConnectionInfo)); err != nil {
			return fmt.Errorf("attachment %s of volume %s: %w", a.ID, volumeID, err)
		}
	}
	if deleted {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE volumes SET attach_status = ? WHERE id = ?`, volumeAttachStatus(atts), volumeID); err != nil {
		return fmt.Errorf("attach status of volume %s: %w", volumeID, err)
	}
	return nil
}

const attachmentColumns = `a.id, a.volume_id, a.instance_uuid, a.attach_status, a.device, a.mode, a.bdm_uuid, a.tag,
	a.delete_on_termination, a.boot_index, a.attached_at, v.project_id, a.connection_info`

// attachmentFrom joins an attachment to its volume (for its project);
// only the attachments of volumes that are not deleted are read.
const attachmentFrom = ` FROM volume_attachments a JOIN volumes v ON v.id = a.volume_id WHERE v.deleted = 0`

func scanAttachment(s db.Scanner) (*Attachment, error) {
	var a Attachment
	var dot int
	var at int64
	var ci string
	if err := s.Scan(&a.ID, &a.VolumeID, &a.InstanceUUID, &a.Status, &a.Device, &a.Mode, &a.BDMUUID, &a.Tag, &dot,
		&a.BootIndex, &at, &a.ProjectID, &ci); err != nil {
		return nil, err
	}
	if ci != "" {
		a.ConnectionInfo = json.RawMessage(ci)
	}
	a.DeleteOnTermination = dot != 0
	if at != 0 {
		a.AttachedAt = db.FromMicros(at)
	}
	return &a, nil
}

// attachmentsWhere reads the attachments matching cond (over the aliases
// a and v), in the order of the instances' boot index then attachment
// time then id.
func attachmentsWhere(ctx context.Context, q db.Querier, cond string, args ...any) ([]*Attachment, error) {
	out, err := db.Collect(ctx, q, scanAttachment, `SELECT `+attachmentColumns+attachmentFrom+` AND `+cond+`
		ORDER BY a.instance_uuid, CASE WHEN a.boot_index < 0 THEN 1 ELSE 0 END, a.boot_index, a.device, a.attached_at, a.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("volume attachments: %w", err)
	}
	return out, nil
}

// VolumeAttachments are the attachments of the volumes ids, by volume id
// (one query: a page of volumes).
func VolumeAttachments(ctx context.Context, q db.Querier, ids []string) (map[string][]*Attachment, error) {
	out := map[string][]*Attachment{}
	if len(ids) == 0 {
		return out, nil
	}
	atts, err := attachmentsWhere(ctx, q, `a.volume_id IN (`+placeholders(len(ids))+`)`, anys(ids)...)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		out[a.VolumeID] = append(out[a.VolumeID], a)
	}
	return out, nil
}

// AttachmentsByInstances are the attachments of the instances uuids, by
// instance (one query: a page of servers), each instance's in the order
// of its devices (the root first). Like InstanceVolumeAttachment it reads
// only the attachments the Compute API made (with a block device
// mapping): one of the Block Storage API's attachments only names its
// consumer, which Nova does not know of.
func AttachmentsByInstances(ctx context.Context, q db.Querier, uuids []string) (map[string][]*Attachment, error) {
	out := map[string][]*Attachment{}
	if len(uuids) == 0 {
		return out, nil
	}
	atts, err := attachmentsWhere(ctx, q, `a.bdm_uuid <> '' AND a.instance_uuid IN (`+placeholders(len(uuids))+`)`, anys(uuids)...)
	if err != nil {
		return nil, err
	}
	for _, a := range atts {
		out[a.InstanceUUID] = append(out[a.InstanceUUID], a)
	}
	return out, nil
}

// InstanceVolumeAttachment is the attachment of volume to instance
// (ErrAttachmentNotFound: none).
func InstanceVolumeAttachment(ctx context.Context, q db.Querier, instance, volume string) (*Attachment, error) {
	atts, err := attachmentsWhere(ctx, q, `a.bdm_uuid <> '' AND a.instance_uuid = ? AND a.volume_id = ?`, instance, volume)
	if err != nil {
		return nil, err
	}
	if len(atts) == 0 {
		return nil, ErrAttachmentNotFound
	}
	return atts[0], nil
}

// GetAttachment reads one attachment by its id (ErrAttachmentNotFound:
// none, or its volume is deleted).
func GetAttachment(ctx context.Context, q db.Querier, id string) (*Attachment, error) {
	a, err := scanAttachment(q.QueryRow(ctx, `SELECT `+attachmentColumns+attachmentFrom+` AND a.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrAttachmentNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("volume attachment %s: %w", id, err)
	}
	return a, nil
}

// AttachmentFilter selects attachments of a list (Cinder's attachments
// API filters). Empty fields select everything.
type AttachmentFilter struct {
	// ProjectID: only the attachments of this project's volumes.
	ProjectID    string
	VolumeID     string
	InstanceUUID string
	// Status is the attach_status (Cinder's "status" and "attach_status"
	// filters both name it).
	Status string
}

// attachmentSortColumns are the keys an attachment list sorts by.
var attachmentSortColumns = map[string]string{
	"id": "a.id", "volume_id": "a.volume_id", "instance_uuid": "a.instance_uuid", "attach_status": "a.attach_status",
	"status": "a.attach_status", "attached_at": "a.attached_at", "attach_time": "a.attached_at",
	"created_at": "a.attached_at", "mountpoint": "a.device", "attach_mode": "a.mode",
}

// ValidAttachmentSortKey reports whether key is an attachment list sort
// key.
func ValidAttachmentSortKey(key string) bool { _, ok := attachmentSortColumns[key]; return ok }

// ListAttachments is a page of the attachments f selects. The default
// order is the attachment time, newest first (Cinder's created_at), then
// id; Marker (an attachment id) must be one of the list
// (ErrMarkerNotFound).
func ListAttachments(ctx context.Context, q db.Querier, f AttachmentFilter, p Page) ([]*Attachment, error) {
	cond, args := "1 = 1", []any{}
	for _, c := range []struct{ col, v string }{{"v.project_id", f.ProjectID}, {"a.volume_id", f.VolumeID},
		{"a.instance_uuid", f.InstanceUUID}, {"a.attach_status", f.Status}} {
		if c.v != "" {
			cond += ` AND ` + c.col + ` = ?`
			args = append(args, c.v)
		}
	}
	sorts := p.Sort
	if len(sorts) == 0 {
		sorts = []Sort{{Key: "created_at", Desc: true}}
	}
	var order []string
	cols := map[string]bool{}
	for _, s := range sorts {
		col, ok := attachmentSortColumns[s.Key]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrSortKey, s.Key)
		}
		if cols[col] {
			continue
		}
		cols[col] = true
		dir := "ASC"
		if s.Desc {
			dir = "DESC"
		}
		order = append(order, col+" "+dir)
	}
	if !cols["a.id"] {
		dir := "ASC"
		if sorts[len(sorts)-1].Desc {
			dir = "DESC"
		}
		order = append(order, "a.id "+dir)
	}
	all, err := db.Collect(ctx, q, scanAttachment, `SELECT `+attachmentColumns+attachmentFrom+` AND `+cond+` ORDER BY `+strings.Join(order, ", "), args...)
	if err != nil {
		return nil, fmt.Errorf("list volume attachments: %w", err)
	}
	// The mirror is small (attachments of live volumes): the marker is
	// found in the ordered list.
	if p.Marker != "" {
		i := -1
		for j, a := range all {
			if a.ID == p.Marker {
				i = j
				break
			}
		}
		if i < 0 {
			return nil, ErrMarkerNotFound
		}
		all = all[i+1:]
	}
	if p.Offset > 0 {
		if p.Offset >= len(all) {
			return nil, nil
		}
		all = all[p.Offset:]
	}
	if p.Limit > 0 && len(all) > p.Limit {
		all = all[:p.Limit]
	}
	return all, nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
