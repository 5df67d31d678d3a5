package compute

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// Deferred delete, as Nova's with reclaim_instance_interval set: a delete
// of a server that has run (it has a host, it was launched, no task runs)
// is a soft delete — its cell stops it and it shows SOFT_DELETED —, the
// restore action brings it back, forceDelete deletes it for good at once,
// and the reclaim deletes it for good once the interval has passed. A
// server that cannot be soft-deleted is deleted for good, as in Nova.

// deferredDeleteHandler is the restore and forceDelete actions.
type deferredDeleteHandler struct {
	*base
	servers *serversHandler
	actions *actionsHandler
}

func (h *deferredDeleteHandler) register(rt *router) {
	rt.action("restore", h.restore)
	rt.action("forceDelete", h.forceDelete)
}

// softDeletable reports whether a delete of cur may be a soft delete.
func softDeletable(cur *apidb.Instance) bool {
	return cur.Cell != "" && cur.Host != "" && !cur.LaunchedAt.IsZero() &&
		vmstate.Actions["soft_delete"].Check(cur.UUID, cur.VMState, cur.TaskState) == nil
}

// softDelete starts the soft delete of cur in tx: its task state, and the
// action for its cell, as every server action.
func softDelete(ctx context.Context, tx *db.Tx, s Sender, cur *apidb.Instance, now time.Time) error {
	spec := vmstate.Actions["soft_delete"]
	if err := apidb.SetTaskState(ctx, tx, cur.UUID, spec.Task, now); err != nil {
		return err
	}
	c := httpkit.CallerFrom(ctx)
	return s.Send(ctx, tx, cur.Cell, wire.MethodInstanceAction, httpkit.RequestID(ctx), &wire.InstanceAction{
		UUID: cur.UUID, Action: "soft_delete", UserID: c.UserID, ProjectID: c.ProjectID})
}

// restore is the restore action: a SOFT_DELETED server, with no task,
// starts again (409 otherwise, with Nova's message). Its value may be
// anything (Nova's schema: {}).
func (h *deferredDeleteHandler) restore(w http.ResponseWriter, r *http.Request, in *apidb.Instance, _ json.RawMessage) {
	h.actions.startAction(w, r, in, "restore", nil, nil)
}

// forceDelete is the forceDelete action: the server is deleted for good,
// whatever its state (a locked one is a 409 to non-admins). 202.
func (h *deferredDeleteHandler) forceDelete(w http.ResponseWriter, r *http.Request, in *apidb.Instance, _ json.RawMessage) {
	ctx := r.Context()
	err := h.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if err := checkLocked(ctx, cur); err != nil {
			return err
		}
		return apicopy.Delete(ctx, tx, h.cfg.Sender, cur, httpkit.RequestID(ctx), h.cfg.Now())
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
