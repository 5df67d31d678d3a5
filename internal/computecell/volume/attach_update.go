package volume

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// UpdateAttachment is the call handler of update_volume_attachment (the
// Compute API's 2.85 PUT, Nova's _update_volume_regular): in one
// transaction of its own it sets delete_on_termination on the instance's
// block device mapping of the volume, raises the volume's version and
// queues volume_update with its attachments, and answers the volume's
// new state for the API cell's copy. A repeat (the flag is already so)
// writes nothing and answers the state as it is. not_found when the
// instance (or its live row), the volume or its attachment to the
// instance is not in the cell. The mapping's state (attaching,
// detaching) does not matter, as in Nova.
func (m *Manager) UpdateAttachment(ctx context.Context, env *wire.Envelope) (any, error) {
	var req wire.UpdateVolumeAttachment
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return nil, wire.Errorf(wire.CodeBadMessage, "update_volume_attachment: %v", err)
	}
	if req.InstanceUUID == "" || req.VolumeID == "" {
		return nil, wire.Errorf(wire.CodeBadMessage, "update_volume_attachment needs an instance and a volume")
	}
	log := m.log.With("request_id", env.RequestID, "instance", req.InstanceUUID, "volume", req.VolumeID)
	var st wire.VolumeState
	changed := false
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		changed = false
		// The instance's row, then the volume's, as the other handlers.
		in, err := celldb.GetForUpdate(ctx, tx, req.InstanceUUID)
		switch {
		case errors.Is(err, celldb.ErrNotFound) || err == nil && in.Deleted:
			return wire.Errorf(wire.CodeNotFound, "instance %s is not in cell %s", req.InstanceUUID, m.cfg.Cell)
		case err != nil:
			return err
		}
		v, err := celldb.GetVolumeForUpdate(ctx, tx, req.VolumeID)
		switch {
		case errors.Is(err, celldb.ErrVolumeNotFound) || err == nil && v.Deleted:
			return wire.Errorf(wire.CodeNotFound, "volume %s is not in cell %s", req.VolumeID, m.cfg.Cell)
		case err != nil:
			return err
		}
		atts, err := celldb.VolumeAttachments(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		// The instance's attachment with a block device mapping (one of
		// the Block Storage API's, with none, may name the instance too).
		found := false
		for _, a := range atts {
			if a.InstanceUUID != in.UUID {
				continue
			}
			changed, err = celldb.SetBDMDeleteOnTermination(ctx, tx, a.ID, req.DeleteOnTermination)
			if errors.Is(err, celldb.ErrAttachmentNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			found = true
			break
		}
		if !found {
			return wire.Errorf(wire.CodeNotFound, "volume %s is not attached to instance %s", v.ID, in.UUID)
		}
		if changed {
			if v, err = celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{}, m.cfg.Now()); err != nil {
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
			log.Info("attachment update refused by the cell", "err", we)
			return nil, we
		}
		return nil, err
	}
	if changed {
		log.Info("attachment's delete_on_termination changed", "delete_on_termination", req.DeleteOnTermination, "version", st.Version)
	} else {
		log.Info("update_volume_attachment repeated: nothing changed", "delete_on_termination", req.DeleteOnTermination)
	}
	return wire.UpdateVolumeAttachmentAnswer{Volume: st}, nil
}
