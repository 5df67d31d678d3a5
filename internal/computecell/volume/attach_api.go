package volume

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The Block Storage API's attachments (Cinder's v3 attachments API,
// attachment_write): attachments made by a consumer other than the
// Compute API. They are rows of volume_attachments with no block device
// mapping and no host work: the consumer connects the volume itself with
// the connection_info it is given (celldb.ConnectionInfo). Their statuses
// are Cinder's volume API's and db's:
//
//   - create (attachment_create, _attachment_reserve): the volume must be
//     available (or, multiattach, in-use), else be in-use or reserved
//     with an attachment of the same instance (Cinder's override for a
//     migrating server); the attachment is reserved with mode "null" (or
//     the mode asked, or ro for a read-only volume), the volume reserved
//     (unless overridden). With a connector, the update follows.
//   - update (attachment_update, the manager's volume_attached with
//     mark_attached False): the attachment attaching with its mountpoint
//     (the connector's, "na" by default) and mode (the one set at create,
//     else the connector's, else rw), the volume attaching.
//   - complete: the attachment attached, the volume in-use.
//   - delete (volume_detached): the attachment detached and gone, the
//     volume's status from those left (attached > attaching > detaching >
//     reserved; none: available), save an upload's.

const (
	attachReserved = "reserved"
	statusReserved = "reserved"
	// modeNull is Cinder's attach mode of an attachment created with no
	// mode (the connector's decides at the update).
	modeNull = "null"
	// noMountpoint is Cinder's mountpoint of a connector that names none.
	noMountpoint = "na"
)

// AttachmentWrite is the call handler of attachment_write: one
// transaction of its own, then the volume's new state answered.
func (m *Manager) AttachmentWrite(ctx context.Context, env *wire.Envelope) (any, error) {
	var req wire.AttachmentWrite
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return nil, wire.Errorf(wire.CodeBadMessage, "attachment_write: %v", err)
	}
	if req.AttachmentID == "" || req.VolumeID == "" {
		return nil, wire.Errorf(wire.CodeBadMessage, "attachment_write needs an attachment and a volume")
	}
	var connector map[string]any
	if len(req.Connector) > 0 && string(req.Connector) != "null" {
		if err := json.Unmarshal(req.Connector, &connector); err != nil {
			return nil, wire.Errorf(wire.CodeBadMessage, "attachment_write: the connector: %v", err)
		}
	}
	log := m.log.With("request_id", env.RequestID, "volume", req.VolumeID, "attachment", req.AttachmentID, "op", req.Op)
	var st wire.VolumeState
	changed := false
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		changed = false
		v, err := celldb.GetVolumeForUpdate(ctx, tx, req.VolumeID)
		switch {
		case errors.Is(err, celldb.ErrVolumeNotFound) || err == nil && v.Deleted:
			return wire.Errorf(wire.CodeNotFound, "volume %s is not in cell %s", req.VolumeID, m.cfg.Cell)
		case err != nil:
			return err
		}
		w := &attachmentWrite{m: m, tx: tx, req: &req, v: v, connector: connector, now: m.cfg.Now(), requestID: env.RequestID}
		switch req.Op {
		case wire.AttachmentCreate:
			err = w.create(ctx)
		case wire.AttachmentUpdate:
			err = w.update(ctx)
		case wire.AttachmentComplete:
			err = w.complete(ctx)
		case wire.AttachmentDelete:
			err = w.delete(ctx)
		default:
			return wire.Errorf(wire.CodeBadMessage, "attachment_write: unknown op %q", req.Op)
		}
		if err != nil {
			return err
		}
		changed = w.changed
		v = w.v
		if changed {
			if v, err = celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{Status: w.status}, w.now); err != nil {
				return err
			}
		}
		st = v.State(m.cfg.Cell)
		states, err := celldb.AttachmentStates(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		st.Attachments = states[v.ID]
		if !changed {
			return nil
		}
		return m.send(ctx, tx, env.RequestID, &wire.VolumeUpdate{Volumes: []wire.VolumeState{st}})
	})
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			log.Info("attachment write refused by the cell", "err", we)
			return nil, we
		}
		return nil, err
	}
	if changed {
		log.Info("attachment written", "status", st.Status, "version", st.Version)
	} else {
		log.Info("attachment_write repeated: nothing changed", "status", st.Status)
	}
	return wire.AttachmentWritten{Volume: st}, nil
}

// attachmentWrite is one attachment_write in its transaction. changed
// says whether it wrote (the volume's version then rises, with status
// when set).
type attachmentWrite struct {
	m         *Manager
	tx        *db.Tx
	req       *wire.AttachmentWrite
	v         *celldb.Volume
	connector map[string]any
	now       time.Time
	requestID string
	changed   bool
	status    *string
}

// invalidVolume is Cinder's InvalidVolume (400): the message is its
// reason.
func invalidVolume(format string, args ...any) error {
	return wire.Errorf(wire.CodeInvalid, format, args...)
}

// create is attachment_create.
func (w *attachmentWrite) create(ctx context.Context) error {
	req, v := w.req, w.v
	if a, err := celldb.GetAttachment(ctx, w.tx, req.AttachmentID); err == nil {
		if a.VolumeID != req.VolumeID {
			return wire.Errorf(wire.CodeBadMessage, "attachment_write: attachment %s is of volume %s", a.ID, a.VolumeID)
		}
		return nil // a repeat: answered as it is
	} else if !errors.Is(err, celldb.ErrAttachmentNotFound) {
		return err
	}
	if strings.Contains(v.Status, "error") {
		return invalidVolume("Volume attachments can not be created if the volume is in an error state. The Volume %s currently has a status of: %s ",
			v.ID, v.Status)
	}
	atts, err := celldb.VolumeAttachments(ctx, w.tx, v.ID)
	if err != nil {
		return err
	}
	expected := []string{statusAvailable, "downloading"}
	if req.Multiattach {
		expected = []string{statusAvailable, statusInUse, "downloading"}
	}
	reserve := slices.Contains(expected, v.Status) && v.Action == ""
	if !reserve {
		// Cinder's override: the same instance may reserve a volume in
		// use or reserved by it (a server moving between hosts).
		override := req.InstanceUUID != "" && (v.Status == statusInUse || v.Status == statusReserved) &&
			slices.ContainsFunc(atts, func(a *celldb.VolumeAttachment) bool { return a.InstanceUUID == req.InstanceUUID })
		if !override {
			return invalidVolume("Volume %s status must be %s to reserve, but the current status is %s.",
				v.ID, strings.Join(expected, " or "), v.Status)
		}
	}
	mode := modeNull
	switch {
	case req.ReadOnly:
		mode = "ro"
	case req.Mode != "":
		mode = req.Mode
	}
	backing, err := w.m.backing(v.ID)
	if err != nil {
		return err
	}
	if err := celldb.InsertAttachment(ctx, w.tx, &celldb.VolumeAttachment{ID: req.AttachmentID, VolumeID: v.ID,
		InstanceUUID: req.InstanceUUID, Status: attachReserved, Mode: mode, RequestID: w.requestID, Backing: backing}); err != nil {
		return err
	}
	w.changed = true
	if reserve {
		w.status = ptr(statusReserved)
	}
	if w.connector != nil {
		a, err := celldb.GetAttachment(ctx, w.tx, req.AttachmentID)
		if err != nil {
			return err
		}
		return w.connect(ctx, a)
	}
	return nil
}

// attachmentOf reads the live attachment of the request, of its volume:
// not_found else, or a conflict for one the Compute API made.
func (w *attachmentWrite) attachmentOf(ctx context.Context) (*celldb.VolumeAttachment, error) {
	a, err := celldb.GetAttachment(ctx, w.tx, w.req.AttachmentID)
	switch {
	case errors.Is(err, celldb.ErrAttachmentNotFound) || err == nil && a.VolumeID != w.v.ID:
		return nil, wire.Errorf(wire.CodeNotFound, "attachment %s of volume %s is not in cell %s", w.req.AttachmentID, w.v.ID, w.m.cfg.Cell)
	case err != nil:
		return nil, err
	}
	if a.Deleted {
		return a, nil
	}
	// An attachment the Compute API made has its block device mapping
	// and its host work here: only os-volume_attachments may change it.
	if _, err := celldb.BDMOfAttachment(ctx, w.tx, a.ID); err == nil {
		return nil, wire.Errorf(wire.CodeConflict, "%s%s", wire.AttachmentOfInstance, a.InstanceUUID)
	} else if !errors.Is(err, celldb.ErrAttachmentNotFound) {
		return nil, err
	}
	return a, nil
}

// update is attachment_update.
func (w *attachmentWrite) update(ctx context.Context) error {
	a, err := w.attachmentOf(ctx)
	if err != nil {
		return err
	}
	if a.Deleted {
		return wire.Errorf(wire.CodeNotFound, "attachment %s is deleted", a.ID)
	}
	if w.connector == nil {
		return wire.Errorf(wire.CodeBadMessage, "attachment_write: an update needs a connector")
	}
	v := w.v
	if strings.Contains(v.Status, "error") {
		return wire.Errorf(wire.CodeConflict, "Volume attachments can not be updated if the volume is in an error state. The Volume %s currently has a status of: %s ",
			v.ID, v.Status)
	}
	atts, err := celldb.VolumeAttachments(ctx, w.tx, v.ID)
	if err != nil {
		return err
	}
	if len(atts) > 1 && !w.req.Multiattach {
		// Cinder's check for racing connections: a volume that is not
		// multiattach with more than one attachment takes no connection
		// once one of them has one.
		if slices.ContainsFunc(atts, func(x *celldb.VolumeAttachment) bool { return x.Mountpoint != "" }) {
			return wire.Errorf(wire.CodeConflict, "duplicate connectors detected on volume %s", v.ID)
		}
	}
	return w.connect(ctx, a)
}

// connect is the volume manager's attachment_update: the attachment
// attaching with its mountpoint and mode, the volume attaching. The same
// connection again writes nothing.
func (w *attachmentWrite) connect(ctx context.Context, a *celldb.VolumeAttachment) error {
	mode, _ := w.connector["mode"].(string)
	if mode == "" {
		mode = "rw"
	}
	if a.Mode != modeNull {
		mode = a.Mode
	}
	mountpoint, _ := w.connector["mountpoint"].(string)
	if mountpoint == "" {
		mountpoint = noMountpoint
	}
	if a.Status == attachAttaching && a.Mode == mode && a.Mountpoint == mountpoint && w.v.Status == statusAttaching {
		return nil
	}
	if _, err := celldb.UpdateAttachment(ctx, w.tx, a.ID, nil, "", celldb.AttachmentChange{Status: ptr(attachAttaching),
		Mode: &mode, Mountpoint: &mountpoint, AttachedAt: &w.now}); err != nil {
		return err
	}
	w.changed, w.status = true, ptr(statusAttaching)
	return nil
}

// complete is os-complete: the attachment attached, the volume in-use.
func (w *attachmentWrite) complete(ctx context.Context) error {
	a, err := w.attachmentOf(ctx)
	if err != nil {
		return err
	}
	if a.Deleted {
		return wire.Errorf(wire.CodeNotFound, "attachment %s is deleted", a.ID)
	}
	if a.Status == attachAttached && w.v.Status == statusInUse {
		return nil
	}
	if a.Status != attachAttached {
		if _, err := celldb.UpdateAttachment(ctx, w.tx, a.ID, nil, "", celldb.AttachmentChange{Status: ptr(attachAttached)}); err != nil {
			return err
		}
	}
	w.changed, w.status = true, ptr(statusInUse)
	return nil
}

// delete is attachment_delete: the attachment goes, the volume takes
// its status from the attachments left. One deleted already is a repeat.
func (w *attachmentWrite) delete(ctx context.Context) error {
	a, err := w.attachmentOf(ctx)
	if err != nil || a.Deleted {
		return err
	}
	if _, err := celldb.UpdateAttachment(ctx, w.tx, a.ID, nil, "", celldb.AttachmentChange{Status: ptr(attachDetached),
		DetachedAt: &w.now, Deleted: true}); err != nil {
		return err
	}
	rest, err := celldb.VolumeAttachments(ctx, w.tx, w.v.ID)
	if err != nil {
		return err
	}
	w.changed = true
	// Cinder keeps an upload's status when the last attachment goes (the
	// upload sets it back).
	if len(rest) > 0 || w.v.Status != statusUploading {
		w.status = ptr(statusOf(rest))
	}
	return nil
}
