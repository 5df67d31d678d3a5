package apicopy

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// VolumeUpdate is the cast handler of volume_update: the owning cells'
// states of volumes and snapshots, applied to the copy by version
// (voldb.Apply). A heal resend of what the copy holds changes nothing and
// costs one statement per state; a late or repeated state is ignored, so
// a redelivery after a crash is harmless.
func (h *Handlers) VolumeUpdate(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var u wire.VolumeUpdate
	if err := json.Unmarshal(env.Payload, &u); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "volume_update: %v", err)
	}
	applied, err := voldb.Apply(ctx, tx, u.Volumes, u.Snapshots, h.Now())
	if err != nil {
		return err
	}
	for i, a := range applied {
		if !a.Changed {
			continue
		}
		if i < len(u.Volumes) {
			st := u.Volumes[i]
			if st.Fault != "" {
				h.Logger.Warn("volume operation failed in its cell", "request_id", env.RequestID, "volume", st.ID,
					"from", st.Cell, "status", st.Status, "fault", st.Fault)
			}
			if st.Cell == "" && st.Status == voldb.StatusError {
				h.Logger.Warn("volume found no cell", "request_id", env.RequestID, "volume", st.ID)
			}
			continue
		}
		st := u.Snapshots[i-len(u.Volumes)]
		if st.Fault != "" {
			h.Logger.Warn("snapshot operation failed in its cell", "request_id", env.RequestID, "snapshot", st.ID,
				"from", st.Cell, "status", st.Status, "fault", st.Fault)
		}
	}
	return nil
}

// giveBackVolumes gives back what a build's create took of the volumes
// when no cell took the build: each existing volume it reserved is
// available again (the copy's status, its version unchanged: no cell has
// seen the reservation), and each new volume's copy, which no cell made,
// is deleted, its quota freed with it. A volume a cell has since taken
// is left alone: its status is no longer reserved, or its copy has a
// cell. Applied again (a redelivered build error), it changes nothing.
func (h *Handlers) giveBackVolumes(ctx context.Context, tx *db.Tx, b *wire.BuildInstances, now time.Time) error {
	for _, spec := range b.Instances {
		for _, bd := range spec.BlockDevices {
			if bd.VolumeID == "" {
				continue
			}
			if bd.New {
				gone, err := voldb.Destroy(ctx, tx, bd.VolumeID, now)
				if err != nil {
					return err
				}
				if gone {
					h.Logger.Info("deleted the copy of a volume of a build that found no cell", "instance", spec.UUID, "volume", bd.VolumeID)
				}
				continue
			}
			back, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: bd.VolumeID, From: []string{"reserved"}, To: voldb.StatusAvailable, Now: now})
			if err != nil {
				return err
			}
			if back {
				h.Logger.Info("gave back a volume reserved by a build that found no cell", "instance", spec.UUID, "volume", bd.VolumeID)
			}
		}
	}
	return nil
}
