package compute

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// resetState is os-resetState, allowed from any state. Nova sets the state
// before it answers 202, so a read right after shows it: the instance's
// cell resets it at once (a call, not a queued action) and answers its new
// state, which is applied to the API cell's copy in version order like any
// update, so no older update still on its way can undo it. An instance no
// cell holds (its build found none) is reset in the copy alone. A cell
// that is down answers 503 and nothing changes.
func (h *actionsHandler) resetState(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	var p wire.ResetState
	if err := strictDecode(arg, &p); err != nil || (p.State != vmstate.Active && p.State != vmstate.Error) {
		h.fail(w, r, bad("Invalid input for field/attribute state. Value: %s. '%s' is not one of ['active', 'error']", p.State, p.State))
		return
	}
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	cur, err := apidb.Get(ctx, h.cfg.DB, in.UUID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if cur.Cell == "" {
		err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			return apidb.ResetUnplaced(ctx, tx, cur.UUID, p.State, h.cfg.Now())
		})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	params, _ := json.Marshal(p)
	req := &wire.InstanceAction{UUID: cur.UUID, Action: "reset_state", Params: params, UserID: c.UserID, ProjectID: c.ProjectID}
	var st wire.InstanceState
	err = h.callInstanceCell(r, cur, wire.MethodResetState, req, &st)
	if errors.Is(err, wire.ErrUnknownMethod) {
		// A cell of an older release: the reset is queued as an action,
		// and shows once the cell has done it.
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			return h.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodInstanceAction, httpkit.RequestID(ctx), req)
		})
		if err != nil {
			h.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if err != nil {
		h.fail(w, r, notFoundAs(err, "Instance %s could not be found.", cur.UUID))
		return
	}
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		a, err := apidb.ApplyUpdate(ctx, tx, st, h.cfg.Now())
		if err != nil || a.DropImage == "" {
			return err
		}
		// A reset to active in the middle of an unshelve ends it: its
		// shelved image goes (its data file at the image store's next
		// start).
		return dropImageRecord(ctx, tx, a.DropImage)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
