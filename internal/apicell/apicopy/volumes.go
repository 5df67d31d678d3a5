package apicopy

import (
	"context"
	"encoding/json"

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
