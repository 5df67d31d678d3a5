package instanceops

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// ResetState is the call handler of reset_state: os-resetState carried out
// at once, in one transaction, answering the instance's new state, which
// the API cell applies (in version order, like any update) before it
// answers the request, as Nova sets the state before its 202. The state is
// also sent up as an instance_update in the same transaction, so the API
// cell's copy follows even if this answer is lost. A second reset to the
// same state changes nothing but the version.
func (o *Ops) ResetState(ctx context.Context, env *wire.Envelope) (any, error) {
	var req wire.InstanceAction
	if err := json.Unmarshal(env.Payload, &req); err != nil || req.UUID == "" {
		return nil, wire.Errorf(wire.CodeBadMessage, "reset_state: needs an instance")
	}
	log := o.log.With("request_id", env.RequestID, "instance", req.UUID, "action", "reset_state")
	var st wire.InstanceState
	err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		in, err := celldb.Get(ctx, tx, req.UUID)
		if errors.Is(err, celldb.ErrNotFound) || (err == nil && in.Deleted) {
			return wire.Errorf(wire.CodeNotFound, "instance %s is not in cell %s", req.UUID, o.cfg.Cell)
		}
		if err != nil {
			return err
		}
		record := wire.ActionRecord{UUID: req.UUID, RequestID: env.RequestID, UserID: req.UserID, ProjectID: req.ProjectID, StartTime: o.cfg.Now()}
		if err := o.resetState(ctx, tx, in, req, record, record.StartTime); err != nil {
			return err
		}
		if in, err = celldb.Get(ctx, tx, req.UUID); err != nil {
			return err
		}
		st, err = celldb.State(ctx, tx, o.cfg.Cell, in)
		return err
	})
	if err != nil {
		return nil, err
	}
	log.Info("instance state reset", "vm_state", st.VMState, "version", st.Version)
	return st, nil
}
