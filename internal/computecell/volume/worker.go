package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// pollLimit bounds the volumes a round of the work loop reads.
const pollLimit = 1000

// maxStepsPerTurn bounds the operations one worker does on a volume before
// it hands the volume back to the loop (which takes it again at once).
const maxStepsPerTurn = 16

// poll is a round of the work loop: the host work of the attachments
// of builds now active is asked for (build.go), then a worker for each
// volume with pending work (its own action, one of its snapshots', one
// of its attachments').
func (m *Manager) poll(ctx context.Context) {
	m.startBootAttachments(ctx)
	ids, err := celldb.VolumesWithPendingWork(ctx, m.cfg.DB, pollLimit)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("reading pending volume work", "err", err)
		}
		return
	}
	for _, id := range ids {
		if !m.pool.Take(id) {
			continue
		}
		if !m.pool.Go(ctx, id, func(ctx context.Context) bool { return m.work(ctx, id) }) {
			return
		}
	}
}

// work does the pending operations of a volume and its snapshots, one at
// a time: the snapshots' first (oldest first), then the volume's own. It
// reports progress when it stopped with work left, so that the loop looks
// again at once; an error stops it until the next poll.
func (m *Manager) work(ctx context.Context, id string) bool {
	for range maxStepsPerTurn {
		did, err := m.step(ctx, id)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("volume work", "volume", id, "err", err)
			}
			return false
		}
		if !did {
			return false
		}
	}
	return true
}

// step does the next pending operation of a volume, if any: its
// snapshots', then its attachments' host work, then its own action.
func (m *Manager) step(ctx context.Context, id string) (bool, error) {
	v, err := celldb.GetVolume(ctx, m.cfg.DB, id)
	if err != nil {
		return false, err
	}
	if v.Action == pendingImport {
		// A volume moving in: its bytes before its attachment's host work.
		return m.stepImport(ctx, v)
	}
	snaps, err := celldb.PendingSnapshots(ctx, m.cfg.DB, id)
	if err != nil {
		return false, err
	}
	if len(snaps) > 0 {
		return true, m.runSnapshot(ctx, v, snaps[0])
	}
	atts, err := celldb.PendingAttachments(ctx, m.cfg.DB, id)
	if err != nil {
		return false, err
	}
	if len(atts) > 0 {
		return true, m.runAttachment(ctx, v, atts[0])
	}
	if v.Action != "" {
		return true, m.runVolume(ctx, v)
	}
	return false, nil
}

// outcome is how a volume's pending action ended.
type outcome struct {
	status string
	// fromAttachments: the status is what the volume's attachments make
	// it when the outcome is recorded (statusOf).
	fromAttachments bool
	sizeGB          *int
	fault           string
	// imageMetadata (a re-image's end) is sent up with the state.
	imageMetadata map[string]string
}

// runVolume does a volume's pending action on the backend, outside any
// transaction, then records its outcome.
func (m *Manager) runVolume(ctx context.Context, v *celldb.Volume) error {
	var a wire.VolumeAction
	if len(v.ActionParams) > 0 {
		if err := json.Unmarshal(v.ActionParams, &a); err != nil {
			return fmt.Errorf("volume %s: parameters of %s: %w", v.ID, v.Action, err)
		}
	}
	log := m.log.With("request_id", v.RequestID, "volume", v.ID, "action", v.Action)
	log.Info("volume action started")
	var out outcome
	switch v.Action {
	case pendingCreate:
		out = outcome{status: statusAvailable}
		if err := m.create(ctx, v); err != nil {
			out = outcome{status: statusError, fault: err.Error()}
		}
	case wire.VolumeExtend:
		// The volume goes back to what its attachments make it: available,
		// or in-use when extended attached (available if its last
		// attachment went meanwhile: an instance deleted).
		out = outcome{fromAttachments: true, sizeGB: &a.SizeGB}
		if err := m.cfg.Backend.Extend(ctx, v.ID, a.SizeGB); err != nil {
			out = outcome{status: statusErrorExtending, fault: err.Error()}
		}
	case wire.VolumeUploadImage:
		// Cinder puts the volume back as it was, whatever the upload's end.
		out = outcome{status: statusAvailable}
		if err := m.upload(ctx, v, a.ImageID, log); err != nil {
			out.fault = err.Error()
		}
	case wire.VolumeDelete:
		return m.deleteVolume(ctx, v, a, log)
	case pendingReimage:
		return m.reimage(ctx, v, log)
	default:
		out = outcome{status: statusError, fault: fmt.Sprintf("unknown volume action %q", v.Action)}
	}
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the action stays pending
	}
	return m.finishVolume(ctx, v, out, false, log)
}

// finishVolume records the end of v's pending action in one transaction:
// the row must still have that action pending (compare-and-swap on its
// request), takes the outcome and a new version, and is sent up.
func (m *Manager) finishVolume(ctx context.Context, v *celldb.Volume, out outcome, deleted bool, log *slog.Logger) error {
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if out.fromAttachments {
			atts, err := celldb.VolumeAttachments(ctx, tx, v.ID)
			if err != nil {
				return err
			}
			out.status = statusOf(atts)
		}
		nv, err := celldb.UpdateVolume(ctx, tx, v.ID, &celldb.VolumeExpect{Action: v.Action, RequestID: v.RequestID},
			celldb.VolumeChange{Status: &out.status, SizeGB: out.sizeGB, Fault: &out.fault, ClearPending: true, Deleted: deleted}, m.cfg.Now())
		if err != nil {
			return err
		}
		if v.Action == pendingCreate || deleted {
			m.roomChanged(tx)
		}
		if out.imageMetadata != nil {
			return m.sendVolumeWith(ctx, tx, v.RequestID, nv, func(st *wire.VolumeState) { st.ImageMetadata = out.imageMetadata })
		}
		return m.sendVolume(ctx, tx, v.RequestID, nv)
	})
	if err != nil {
		return fmt.Errorf("recording the end of %s of volume %s: %w", v.Action, v.ID, err)
	}
	if out.fault != "" {
		log.Warn("volume action failed", "status", out.status, "fault", out.fault)
	} else {
		log.Info("volume action done", "status", out.status)
	}
	return nil
}

// create makes the volume's bytes from its source. A volume the backend
// has already was made before a crash kept its end from being recorded.
func (m *Manager) create(ctx context.Context, v *celldb.Volume) error {
	var err error
	switch {
	case v.ImageID != "":
		r := &imageReader{ctx: ctx, images: m.cfg.Images, imageID: v.ImageID, size: v.ImageSize}
		err = m.cfg.Backend.CreateFromImage(ctx, v.ID, v.SizeGB, r, v.ImageSize)
	case v.SnapshotID != "":
		err = m.cfg.Backend.CreateFromSnapshot(ctx, v.SnapshotID, v.ID, v.SizeGB)
	case v.SourceVolID != "":
		err = m.cfg.Backend.Clone(ctx, v.SourceVolID, v.ID, v.SizeGB)
	default:
		err = m.cfg.Backend.Create(ctx, v.ID, v.SizeGB)
	}
	if errors.Is(err, backend.ErrExists) {
		return nil
	}
	return err
}

// deleteVolume deletes a volume's bytes, after its snapshots' with
// Cascade, recording each snapshot's deletion as it goes. A volume or
// snapshot the backend does not have was deleted already.
func (m *Manager) deleteVolume(ctx context.Context, v *celldb.Volume, a wire.VolumeAction, log *slog.Logger) error {
	if a.Cascade {
		snaps, err := celldb.SnapshotsOfVolume(ctx, m.cfg.DB, v.ID)
		if err != nil {
			return err
		}
		for _, s := range snaps {
			derr := m.cfg.Backend.DeleteSnapshot(ctx, s.ID)
			if errors.Is(derr, backend.ErrNotFound) {
				derr = nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err := m.finishCascadedSnapshot(ctx, v, s, derr); err != nil {
				return err
			}
			if derr != nil {
				log.Warn("cascaded snapshot delete failed", "snapshot", s.ID, "err", derr)
				return m.finishVolume(ctx, v, outcome{status: statusErrorDeleting,
					fault: fmt.Sprintf("deleting snapshot %s: %v", s.ID, derr)}, false, log)
			}
		}
	}
	err := m.cfg.Backend.Delete(ctx, v.ID)
	if errors.Is(err, backend.ErrNotFound) {
		err = nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return m.finishVolume(ctx, v, outcome{status: statusErrorDeleting, fault: err.Error()}, false, log)
	}
	return m.finishVolume(ctx, v, outcome{status: statusDeleted}, true, log)
}

// finishCascadedSnapshot records the end of a snapshot's deletion done for
// its volume's cascade delete, which must still be pending.
func (m *Manager) finishCascadedSnapshot(ctx context.Context, v *celldb.Volume, s *celldb.VolumeSnapshot, derr error) error {
	c := celldb.SnapshotChange{Status: ptr(statusDeleted), Progress: ptr(progress(statusDeleted)), Fault: ptr(""),
		ClearPending: true, Deleted: true}
	if derr != nil {
		status := statusErrorDeleting
		if errors.Is(derr, backend.ErrBusy) {
			status = statusAvailable
		}
		c = celldb.SnapshotChange{Status: &status, Progress: ptr(progress(status)), Fault: ptr(derr.Error()), ClearPending: true}
	}
	return m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := celldb.GetVolume(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		if cur.Action != v.Action || cur.RequestID != v.RequestID {
			return fmt.Errorf("volume %s is no longer being deleted by request %s: %w", v.ID, v.RequestID, wire.ErrConflict)
		}
		ns, err := celldb.UpdateVolumeSnapshot(ctx, tx, s.ID, nil, "", c, m.cfg.Now())
		if err != nil {
			return err
		}
		if derr == nil {
			m.roomChanged(tx)
		}
		return m.sendSnapshot(ctx, tx, v.RequestID, ns)
	})
}

// runSnapshot does a snapshot's pending operation on the backend, outside
// any transaction, then records its outcome in one transaction, with a
// compare-and-swap on the pending operation's request.
func (m *Manager) runSnapshot(ctx context.Context, v *celldb.Volume, s *celldb.VolumeSnapshot) error {
	log := m.log.With("request_id", s.RequestID, "volume", v.ID, "snapshot", s.ID, "action", "snapshot_"+s.Pending)
	log.Info("snapshot operation started")
	var c celldb.SnapshotChange
	var opErr error
	switch s.Pending {
	case pendingCreate:
		opErr = m.cfg.Backend.Snapshot(ctx, v.ID, s.ID)
		if errors.Is(opErr, backend.ErrExists) {
			opErr = nil // made before a crash kept its end from being recorded
		}
		c = celldb.SnapshotChange{Status: ptr(statusAvailable), Progress: ptr(progress(statusAvailable)), SizeGB: &v.SizeGB}
		if opErr != nil {
			c = celldb.SnapshotChange{Status: ptr(statusError), Progress: ptr(progress(statusError))}
		}
	case pendingDelete:
		opErr = m.cfg.Backend.DeleteSnapshot(ctx, s.ID)
		if errors.Is(opErr, backend.ErrNotFound) {
			opErr = nil // deleted before a crash kept its end from being recorded
		}
		c = celldb.SnapshotChange{Status: ptr(statusDeleted), Progress: ptr(progress(statusDeleted)), Deleted: true}
		switch {
		case errors.Is(opErr, backend.ErrBusy):
			// Cinder's SnapshotIsBusy: the snapshot stays, available.
			c = celldb.SnapshotChange{Status: ptr(statusAvailable), Progress: ptr(progress(statusAvailable))}
		case opErr != nil:
			c = celldb.SnapshotChange{Status: ptr(statusErrorDeleting), Progress: ptr(progress(statusErrorDeleting))}
		}
	default:
		opErr = fmt.Errorf("unknown snapshot operation %q", s.Pending)
		c = celldb.SnapshotChange{Status: ptr(statusError), Progress: ptr(progress(statusError))}
	}
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the operation stays pending
	}
	fault := ""
	if opErr != nil {
		fault = opErr.Error()
	}
	c.Fault, c.ClearPending = &fault, true
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		ns, err := celldb.UpdateVolumeSnapshot(ctx, tx, s.ID, &s.Pending, s.RequestID, c, m.cfg.Now())
		if err != nil {
			return err
		}
		m.roomChanged(tx)
		return m.sendSnapshot(ctx, tx, s.RequestID, ns)
	})
	if err != nil {
		return fmt.Errorf("recording the end of snapshot %s of snapshot %s: %w", s.Pending, s.ID, err)
	}
	if opErr != nil {
		log.Warn("snapshot operation failed", "status", *c.Status, "fault", fault)
	} else {
		log.Info("snapshot operation done", "status", *c.Status)
	}
	return nil
}
