package compute

import (
	"encoding/json"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// lockHandler is the lock and unlock server actions.
type lockHandler struct {
	*base
	servers *serversHandler
}

func (h *lockHandler) register(rt *router) {
	rt.action("lock", h.lockServer)
	rt.action("unlock", h.unlockServer)
}

// lockServer is the lock action. Up to 2.72 its value is not looked at
// (Nova's schema is {}); the lock is the API cell's alone. A lock by the
// owner's project is "owner"; by anyone else (an admin) "admin". The owner
// locking a server it already locked changes nothing, as in Nova; an admin
// locking takes the lock over.
func (h *lockHandler) lockServer(w http.ResponseWriter, r *http.Request, in *apidb.Instance, _ json.RawMessage) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.GetForUpdate(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if cur.Deleted {
			return notFound("Instance %s could not be found.", in.UUID)
		}
		owner := cur.ProjectID == c.ProjectID
		if cur.Locked && owner {
			return nil
		}
		by := apidb.LockedByAdmin
		if owner {
			by = apidb.LockedByOwner
		}
		return apidb.SetLock(ctx, tx, cur.UUID, by, h.cfg.Now())
	})
	if err != nil {
		h.fail(w, r, gone(in.UUID, err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// unlockServer is the unlock action. A lock taken by the other side (an
// admin's, for the owner) needs os_compute_api:os-lock-server:unlock:
// unlock_override, which is an admin's.
func (h *lockHandler) unlockServer(w http.ResponseWriter, r *http.Request, in *apidb.Instance, _ json.RawMessage) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.GetForUpdate(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if cur.Deleted {
			return notFound("Instance %s could not be found.", in.UUID)
		}
		expected := apidb.LockedByAdmin
		if cur.ProjectID == c.ProjectID {
			expected = apidb.LockedByOwner
		}
		if cur.LockedBy != "" && cur.LockedBy != expected && !h.can(ctx, "os_compute_api:os-lock-server:unlock:unlock_override") {
			return forbidden("os_compute_api:os-lock-server:unlock:unlock_override")
		}
		return apidb.SetLock(ctx, tx, cur.UUID, "", h.cfg.Now())
	})
	if err != nil {
		h.fail(w, r, gone(in.UUID, err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
