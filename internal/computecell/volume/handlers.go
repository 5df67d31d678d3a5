package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Create is the cast handler of volume_create at this cell: it records the
// volume in status "creating" at version 1 with its creation pending, and
// tells the API cell (which learns the volume's cell from it); the worker
// makes it. A volume made from a snapshot or a volume whose source is not
// in a state to copy is recorded in status "error" at once. A repeat (the
// cell has the volume, deleted or not) changes nothing.
func (m *Manager) Create(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var req wire.VolumeCreate
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "volume_create: %v", err)
	}
	spec := req.Volume
	sources := 0
	for _, s := range []string{spec.ImageID, spec.SnapshotID, spec.SourceVolumeID} {
		if s != "" {
			sources++
		}
	}
	switch {
	case !backend.ValidID(spec.ID):
		return wire.Errorf(wire.CodeBadMessage, "volume_create: invalid volume id %q", spec.ID)
	case spec.SizeGB < 1 || spec.SizeGB > backend.MaxSizeGiB:
		return wire.Errorf(wire.CodeBadMessage, "volume_create: invalid size %d GiB", spec.SizeGB)
	case sources > 1:
		return wire.Errorf(wire.CodeBadMessage, "volume_create: more than one source")
	}
	log := m.log.With("request_id", env.RequestID, "volume", spec.ID)
	if _, err := celldb.GetVolume(ctx, tx, spec.ID); err == nil {
		log.Info("volume_create repeated: the cell has the volume already")
		return nil
	} else if !errors.Is(err, celldb.ErrVolumeNotFound) {
		return err
	}
	now := m.cfg.Now()
	zone := spec.AvailabilityZone
	if zone == "" {
		zone = m.cfg.Zone
	}
	created := spec.CreatedAt
	if created.IsZero() {
		created = now
	}
	v := &celldb.Volume{ID: spec.ID, ProjectID: spec.ProjectID, UserID: spec.UserID, SizeGB: spec.SizeGB,
		Status: statusCreating, Version: 1, TypeID: spec.TypeID, TypeName: spec.TypeName, AvailabilityZone: zone,
		ImageID: spec.ImageID, ImageSize: spec.ImageSize, SnapshotID: spec.SnapshotID, SourceVolID: spec.SourceVolumeID,
		Action: pendingCreate, RequestID: env.RequestID, CreatedAt: created, UpdatedAt: now}
	fault, err := m.checkSource(ctx, tx, spec)
	if err != nil {
		return err
	}
	if fault != "" {
		v.Status, v.Action, v.Fault = statusError, "", fault
		log.Warn("volume cannot be made from its source", "fault", fault)
	}
	if _, err := celldb.InsertVolume(ctx, tx, v); err != nil {
		return err
	}
	if err := m.sendVolume(ctx, tx, env.RequestID, v); err != nil {
		return err
	}
	m.roomChanged(tx)
	if v.Action != "" {
		tx.AfterCommit(m.Wake)
	}
	log.Info("volume creation accepted", "size_gb", v.SizeGB, "status", v.Status)
	return nil
}

// checkSource returns why spec cannot be made from its snapshot or source
// volume ("" when it can, or has neither).
func (m *Manager) checkSource(ctx context.Context, tx *db.Tx, spec wire.VolumeSpec) (string, error) {
	switch {
	case spec.SnapshotID != "":
		s, err := celldb.GetVolumeSnapshot(ctx, tx, spec.SnapshotID)
		switch {
		case errors.Is(err, celldb.ErrVolumeSnapshotNotFound):
			return fmt.Sprintf("Snapshot %s could not be found.", spec.SnapshotID), nil
		case err != nil:
			return "", err
		case s.Deleted:
			return fmt.Sprintf("Snapshot %s could not be found.", spec.SnapshotID), nil
		case s.Status != statusAvailable:
			return "Originating snapshot status must be one of available values", nil
		case spec.SizeGB < s.SizeGB:
			return fmt.Sprintf("Volume size %dGB cannot be smaller than the snapshot size %dGB.", spec.SizeGB, s.SizeGB), nil
		}
	case spec.SourceVolumeID != "":
		src, err := celldb.GetVolume(ctx, tx, spec.SourceVolumeID)
		switch {
		case errors.Is(err, celldb.ErrVolumeNotFound):
			return fmt.Sprintf("Volume %s could not be found.", spec.SourceVolumeID), nil
		case err != nil:
			return "", err
		case src.Deleted:
			return fmt.Sprintf("Volume %s could not be found.", spec.SourceVolumeID), nil
		case src.Action == celldb.ActionMoveOut:
			return fmt.Sprintf("Volume %s is being moved to another cell.", spec.SourceVolumeID), nil
		case src.Status != statusAvailable && src.Status != statusInUse:
			return fmt.Sprintf("Source volume status must be available or in-use, not %s.", src.Status), nil
		case spec.SizeGB < src.SizeGB:
			return fmt.Sprintf("Volume size %dGB cannot be smaller than original volume size %dGB.", spec.SizeGB, src.SizeGB), nil
		}
	}
	return "", nil
}

// Action is the cast handler of volume_action. It checks the action
// against the cell's rows (the truth; the API checked its copy) and
// either accepts it — the volume (or snapshot) takes the action's
// transitional status and the action is left pending on its row for the
// worker — or refuses it, sending the row as it is at a new version so
// that the API cell's copy drops the status it set. Every change is sent
// up in the same transaction. A repeat (an action whose request the row
// has accepted already, a snapshot that exists, a volume deleted) changes
// nothing.
func (m *Manager) Action(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var a wire.VolumeAction
	if err := json.Unmarshal(env.Payload, &a); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "volume_action: %v", err)
	}
	if a.VolumeID == "" {
		return wire.Errorf(wire.CodeBadMessage, "volume_action needs a volume id")
	}
	switch a.Action {
	case wire.VolumeDelete, wire.VolumeExtend, wire.VolumeUploadImage, wire.VolumeResetStatus:
	case wire.SnapshotCreate, wire.SnapshotDelete:
		if !backend.ValidID(a.SnapshotID) {
			return wire.Errorf(wire.CodeBadMessage, "volume_action %s: invalid snapshot id %q", a.Action, a.SnapshotID)
		}
	default:
		return wire.Errorf(wire.CodeBadMessage, "volume_action: unknown action %q", a.Action)
	}
	log := m.log.With("request_id", env.RequestID, "volume", a.VolumeID, "action", a.Action)
	if a.SnapshotID != "" {
		log = log.With("snapshot", a.SnapshotID)
	}
	v, err := celldb.GetVolume(ctx, tx, a.VolumeID)
	if errors.Is(err, celldb.ErrVolumeNotFound) {
		return m.unknownVolume(ctx, tx, env, a, log)
	}
	if err != nil {
		return err
	}
	if v.Action == celldb.ActionMoveOut {
		return m.actionWhileMovingOut(ctx, tx, env, a, log)
	}
	c := &actionCtx{m: m, tx: tx, env: env, a: a, v: v, log: log}
	switch a.Action {
	case wire.VolumeDelete:
		return c.delete(ctx)
	case wire.VolumeExtend:
		return c.extend(ctx)
	case wire.VolumeUploadImage:
		return c.upload(ctx)
	case wire.VolumeResetStatus:
		return c.resetStatus(ctx)
	case wire.SnapshotCreate:
		return c.snapshotCreate(ctx)
	default:
		return c.snapshotDelete(ctx)
	}
}

// unknownVolume answers an action on a volume the cell does not have: a
// delete (of the volume or of a snapshot) with a deletion at version 1, so
// that the API cell's copy does not wait for ever; a snapshot creation
// with the snapshot in error at version 1 (it can then be deleted); any
// other action is dropped.
func (m *Manager) unknownVolume(ctx context.Context, tx *db.Tx, env *wire.Envelope, a wire.VolumeAction, log *slog.Logger) error {
	now := m.cfg.Now()
	switch a.Action {
	case wire.VolumeDelete:
		log.Warn("delete of a volume this cell does not have: answered as deleted")
		return m.send(ctx, tx, env.RequestID, &wire.VolumeUpdate{Volumes: []wire.VolumeState{{
			ID: a.VolumeID, Cell: m.cfg.Cell, Version: 1, Status: statusDeleted, Deleted: true, UpdatedAt: now}}})
	case wire.SnapshotDelete:
		log.Warn("snapshot delete on a volume this cell does not have: answered as deleted")
		return m.send(ctx, tx, env.RequestID, &wire.VolumeUpdate{Snapshots: []wire.SnapshotState{{
			ID: a.SnapshotID, VolumeID: a.VolumeID, Cell: m.cfg.Cell, Version: 1, Status: statusDeleted,
			Progress: progress(statusDeleted), Deleted: true, UpdatedAt: now}}})
	case wire.SnapshotCreate:
		log.Warn("snapshot of a volume this cell does not have: answered in error")
		return m.send(ctx, tx, env.RequestID, &wire.VolumeUpdate{Snapshots: []wire.SnapshotState{{
			ID: a.SnapshotID, VolumeID: a.VolumeID, Cell: m.cfg.Cell, Version: 1, Status: statusError,
			Progress: progress(statusError), Fault: fmt.Sprintf("Volume %s could not be found.", a.VolumeID), UpdatedAt: now}}})
	}
	log.Warn("action on a volume this cell does not have: dropped")
	return nil
}

// actionCtx is one volume_action being checked.
type actionCtx struct {
	m   *Manager
	tx  *db.Tx
	env *wire.Envelope
	a   wire.VolumeAction
	v   *celldb.Volume
	log *slog.Logger
}

// repeat reports whether the row has accepted this request already.
func (c *actionCtx) repeat(rowRequestID string) bool {
	if c.env.RequestID == "" || rowRequestID != c.env.RequestID {
		return false
	}
	c.log.Info("volume_action repeated: accepted already")
	return true
}

// refuse sends the volume as it is at a new version.
func (c *actionCtx) refuse(ctx context.Context, why string) error {
	c.log.Warn("volume action refused by the cell", "why", why, "status", c.v.Status)
	var change celldb.VolumeChange
	if c.v.Action == "" && c.env.RequestID != "" {
		// No action pending (whose request is the key of its end): the
		// refused request is recorded, so that its repeat changes nothing.
		change.RequestID = &c.env.RequestID
	}
	v, err := celldb.UpdateVolume(ctx, c.tx, c.v.ID, nil, change, c.m.cfg.Now())
	if err != nil {
		return err
	}
	return c.m.sendVolume(ctx, c.tx, c.env.RequestID, v)
}

// refuseSnapshot sends the snapshot as it is at a new version.
func (c *actionCtx) refuseSnapshot(ctx context.Context, s *celldb.VolumeSnapshot, why string) error {
	c.log.Warn("snapshot action refused by the cell", "why", why, "status", s.Status)
	s, err := celldb.UpdateVolumeSnapshot(ctx, c.tx, s.ID, nil, "", celldb.SnapshotChange{}, c.m.cfg.Now())
	if err != nil {
		return err
	}
	return c.m.sendSnapshot(ctx, c.tx, c.env.RequestID, s)
}

// accept sets the volume's transitional status and its pending action
// (the action message itself is its parameters), and the snapshots given
// (a cascade delete's) deleting, and sends them.
func (c *actionCtx) accept(ctx context.Context, status string, snaps ...*celldb.VolumeSnapshot) error {
	params, err := json.Marshal(c.a)
	if err != nil {
		return err
	}
	now := c.m.cfg.Now()
	v, err := celldb.UpdateVolume(ctx, c.tx, c.v.ID, nil, celldb.VolumeChange{Status: &status,
		Pending: &celldb.VolumePending{Action: c.a.Action, Params: params, RequestID: c.env.RequestID}}, now)
	if err != nil {
		return err
	}
	var sent []*celldb.VolumeSnapshot
	for _, s := range snaps {
		s, err := celldb.UpdateVolumeSnapshot(ctx, c.tx, s.ID, nil, "", celldb.SnapshotChange{Status: ptr(statusDeleting)}, now)
		if err != nil {
			return err
		}
		sent = append(sent, s)
	}
	if err := c.m.sendVolume(ctx, c.tx, c.env.RequestID, v, sent...); err != nil {
		return err
	}
	c.tx.AfterCommit(c.m.Wake)
	c.log.Info("volume action accepted", "status", status)
	return nil
}

// deletable reports whether a volume may be deleted from status (Cinder's
// volume/api.py delete, without force).
func deletable(status string) bool {
	switch status {
	case statusAvailable, statusError, "error_restoring", statusErrorExtending, "error_managing":
		return true
	}
	return false
}

func (c *actionCtx) delete(ctx context.Context) error {
	v := c.v
	switch {
	case c.repeat(v.RequestID):
		return nil
	case v.Deleted:
		// Already gone: the deletion is sent again as it is, as a heal (a
		// deletion from the copy's cell wins over any version there).
		c.log.Info("delete of a volume deleted already: its deletion sent again")
		return c.m.send(ctx, c.tx, c.env.RequestID, &wire.VolumeUpdate{Heal: true, Volumes: []wire.VolumeState{v.State(c.m.cfg.Cell)}})
	case v.Action == wire.VolumeDelete:
		c.log.Info("delete of a volume being deleted already")
		return nil
	case v.Action != "":
		return c.refuse(ctx, fmt.Sprintf("volume has a pending %s", v.Action))
	case !deletable(v.Status):
		return c.refuse(ctx, "Volume status must be available or error or error_restoring or error_extending or error_managing")
	}
	snaps, err := celldb.SnapshotsOfVolume(ctx, c.tx, v.ID)
	if err != nil {
		return err
	}
	if len(snaps) > 0 && !c.a.Cascade {
		return c.refuse(ctx, fmt.Sprintf("volume has %d snapshots", len(snaps)))
	}
	if n, err := celldb.PendingCreatesFrom(ctx, c.tx, "", v.ID); err != nil || n > 0 {
		if err != nil {
			return err
		}
		return c.refuse(ctx, fmt.Sprintf("%d volumes are being made from it", n))
	}
	for _, s := range snaps {
		if s.Pending == pendingCreate || !slices.Contains([]string{statusAvailable, statusError, statusDeleting}, s.Status) {
			return c.refuse(ctx, fmt.Sprintf("snapshot %s is %s", s.ID, s.Status))
		}
		if n, err := celldb.PendingCreatesFrom(ctx, c.tx, s.ID, ""); err != nil || n > 0 {
			if err != nil {
				return err
			}
			return c.refuse(ctx, fmt.Sprintf("%d volumes are being made from snapshot %s", n, s.ID))
		}
	}
	return c.accept(ctx, statusDeleting, snaps...)
}

func (c *actionCtx) extend(ctx context.Context) error {
	v := c.v
	switch {
	case v.Deleted:
		c.log.Warn("extend of a deleted volume: dropped")
		return nil
	case c.repeat(v.RequestID):
		return nil
	case v.Action != "":
		return c.refuse(ctx, fmt.Sprintf("volume has a pending %s", v.Action))
	case !c.a.Attached && v.Status != statusAvailable:
		return c.refuse(ctx, "Volume status must be 'available' to extend")
	case c.a.Attached && v.Status != statusInUse:
		return c.refuse(ctx, "Volume status must be 'in-use' to extend it attached")
	case c.a.SizeGB <= v.SizeGB || c.a.SizeGB > backend.MaxSizeGiB:
		return c.refuse(ctx, fmt.Sprintf("New size for extend must be greater than current size. (current: %d, extended: %d).", v.SizeGB, c.a.SizeGB))
	}
	if n, err := celldb.PendingCreatesFrom(ctx, c.tx, "", v.ID); err != nil || n > 0 {
		if err != nil {
			return err
		}
		return c.refuse(ctx, fmt.Sprintf("%d volumes are being made from it", n))
	}
	return c.accept(ctx, statusExtending)
}

func (c *actionCtx) upload(ctx context.Context) error {
	v := c.v
	switch {
	case v.Deleted:
		c.log.Warn("upload of a deleted volume: dropped")
		return nil
	case c.repeat(v.RequestID):
		return nil
	case c.a.ImageID == "":
		return wire.Errorf(wire.CodeBadMessage, "volume_action upload_image needs an image id")
	case v.Action != "":
		return c.refuse(ctx, fmt.Sprintf("volume has a pending %s", v.Action))
	case v.Status != statusAvailable:
		return c.refuse(ctx, "Volume status must be available")
	}
	return c.accept(ctx, statusUploading)
}

// resettable reports whether os-reset_status may set a volume's status to
// status (Cinder's admin_actions refuses deleting, error_deleting and
// detaching; in-use needs attachments, which this cell has none of).
func resettable(status string) bool {
	switch status {
	case statusDeleting, statusErrorDeleting, "detaching", statusInUse, statusDeleted:
		return false
	}
	return true
}

func (c *actionCtx) resetStatus(ctx context.Context) error {
	if c.a.Status == "" {
		return wire.Errorf(wire.CodeBadMessage, "volume_action reset_status needs a status")
	}
	now := c.m.cfg.Now()
	if c.a.SnapshotID != "" {
		s, err := celldb.GetVolumeSnapshot(ctx, c.tx, c.a.SnapshotID)
		switch {
		case errors.Is(err, celldb.ErrVolumeSnapshotNotFound):
			c.log.Warn("reset_status of a snapshot this cell does not have: dropped")
			return nil
		case err != nil:
			return err
		case s.Deleted || s.VolumeID != c.v.ID:
			c.log.Warn("reset_status of a deleted snapshot, or one of another volume: dropped")
			return nil
		case s.Status == c.a.Status:
			c.log.Info("reset_status to the snapshot's status: nothing to do")
			return nil
		case c.a.Status == statusDeleted:
			return c.refuseSnapshot(ctx, s, "Cannot reset-state to "+c.a.Status)
		}
		s, err = celldb.UpdateVolumeSnapshot(ctx, c.tx, s.ID, nil, "", celldb.SnapshotChange{Status: &c.a.Status,
			Progress: ptr(progress(c.a.Status))}, now)
		if err != nil {
			return err
		}
		c.log.Info("snapshot status reset", "status", c.a.Status)
		return c.m.sendSnapshot(ctx, c.tx, c.env.RequestID, s)
	}
	switch {
	case c.v.Deleted:
		c.log.Warn("reset_status of a deleted volume: dropped")
		return nil
	case c.repeat(c.v.RequestID):
		return nil
	case c.v.Status == c.a.Status:
		c.log.Info("reset_status to the volume's status: nothing to do")
		return nil
	case !resettable(c.a.Status):
		return c.refuse(ctx, "Cannot reset-state to "+c.a.Status)
	}
	// The status only: an action still pending goes on and sets the
	// status it ends with (Cinder's reset does not stop the manager).
	v, err := celldb.UpdateVolume(ctx, c.tx, c.v.ID, nil, celldb.VolumeChange{Status: &c.a.Status}, now)
	if err != nil {
		return err
	}
	c.log.Info("volume status reset", "status", c.a.Status)
	return c.m.sendVolume(ctx, c.tx, c.env.RequestID, v)
}

func (c *actionCtx) snapshotCreate(ctx context.Context) error {
	if _, err := celldb.GetVolumeSnapshot(ctx, c.tx, c.a.SnapshotID); err == nil {
		c.log.Info("snapshot_create repeated: the cell has the snapshot already")
		return nil
	} else if !errors.Is(err, celldb.ErrVolumeSnapshotNotFound) {
		return err
	}
	now := c.m.cfg.Now()
	created := c.a.CreatedAt
	if created.IsZero() {
		created = now
	}
	s := &celldb.VolumeSnapshot{ID: c.a.SnapshotID, VolumeID: c.v.ID, SizeGB: c.v.SizeGB, Status: statusCreating,
		Version: 1, Progress: progress(statusCreating), Pending: pendingCreate, RequestID: c.env.RequestID,
		CreatedAt: created, UpdatedAt: now}
	var why string
	switch {
	case c.v.Deleted:
		why = fmt.Sprintf("Volume %s could not be found.", c.v.ID)
	case c.a.Force && c.v.Status != statusAvailable && c.v.Status != statusInUse:
		why = fmt.Sprintf("Volume %s status must be available, in-use, but current status is: %s.", c.v.ID, c.v.Status)
	case !c.a.Force && c.v.Status != statusAvailable:
		why = fmt.Sprintf("Volume %s status must be available, but current status is: %s.", c.v.ID, c.v.Status)
	case c.v.Action != "":
		why = fmt.Sprintf("Volume %s has a pending %s.", c.v.ID, c.v.Action)
	}
	if why != "" {
		// The snapshot is made in error: the API cell's copy (creating)
		// takes it, and the user can delete it.
		s.Status, s.Progress, s.Pending, s.Fault = statusError, progress(statusError), "", why
		c.log.Warn("snapshot refused by the cell: recorded in error", "why", why)
	}
	if _, err := celldb.InsertVolumeSnapshot(ctx, c.tx, s); err != nil {
		return err
	}
	if err := c.m.sendSnapshot(ctx, c.tx, c.env.RequestID, s); err != nil {
		return err
	}
	if s.Pending != "" {
		c.m.roomChanged(c.tx)
		c.tx.AfterCommit(c.m.Wake)
		c.log.Info("snapshot creation accepted", "size_gb", s.SizeGB)
	}
	return nil
}

func (c *actionCtx) snapshotDelete(ctx context.Context) error {
	s, err := celldb.GetVolumeSnapshot(ctx, c.tx, c.a.SnapshotID)
	if errors.Is(err, celldb.ErrVolumeSnapshotNotFound) {
		c.log.Warn("delete of a snapshot this cell does not have: answered as deleted")
		return c.m.send(ctx, c.tx, c.env.RequestID, &wire.VolumeUpdate{Snapshots: []wire.SnapshotState{{
			ID: c.a.SnapshotID, VolumeID: c.a.VolumeID, Cell: c.m.cfg.Cell, Version: 1, Status: statusDeleted,
			Progress: progress(statusDeleted), Deleted: true, UpdatedAt: c.m.cfg.Now()}}})
	}
	if err != nil {
		return err
	}
	switch {
	case s.VolumeID != c.v.ID:
		c.log.Warn("snapshot delete names another volume: dropped", "snapshot_volume", s.VolumeID)
		return nil
	case c.repeat(s.RequestID):
		return nil
	case s.Deleted:
		c.log.Info("delete of a snapshot deleted already: its deletion sent again")
		return c.m.send(ctx, c.tx, c.env.RequestID, &wire.VolumeUpdate{Heal: true, Snapshots: []wire.SnapshotState{s.State(c.m.cfg.Cell)}})
	case s.Pending == pendingDelete:
		c.log.Info("delete of a snapshot being deleted already")
		return nil
	case s.Pending != "":
		return c.refuseSnapshot(ctx, s, "snapshot has a pending "+s.Pending)
	case s.Status != statusAvailable && s.Status != statusError:
		return c.refuseSnapshot(ctx, s, "Snapshot status must be available or error")
	}
	if n, err := celldb.PendingCreatesFrom(ctx, c.tx, s.ID, ""); err != nil || n > 0 {
		if err != nil {
			return err
		}
		return c.refuseSnapshot(ctx, s, fmt.Sprintf("%d volumes are being made from it", n))
	}
	s, err = celldb.UpdateVolumeSnapshot(ctx, c.tx, s.ID, nil, "", celldb.SnapshotChange{Status: ptr(statusDeleting),
		Pending: ptr(pendingDelete), RequestID: c.env.RequestID}, c.m.cfg.Now())
	if err != nil {
		return err
	}
	if err := c.m.sendSnapshot(ctx, c.tx, c.env.RequestID, s); err != nil {
		return err
	}
	c.tx.AfterCommit(c.m.Wake)
	c.log.Info("snapshot delete accepted")
	return nil
}
