package compute

import (
	"bytes"
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
// (Nova's schema is {}); from 2.73 it is null or an object with an
// optional locked_reason (lockReason). The lock is the API cell's alone.
// A lock by the owner's project is "owner"; by anyone else (an admin)
// "admin". The owner locking a server it already locked changes nothing
// (its reason neither), as in Nova; an admin locking takes the lock over,
// with its reason if it gives one.
func (h *lockHandler) lockServer(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	var reason string
	if atLeast(r, 73) {
		var err error
		if reason, err = lockReason(arg); err != nil {
			h.fail(w, r, err)
			return
		}
	}
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
		return apidb.SetLock(ctx, tx, cur.UUID, by, reason, h.cfg.Now())
	})
	if err != nil {
		h.fail(w, r, gone(in.UUID, err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// lockReason checks the lock action's value against Nova's lock_v273
// schema (null, or an object whose only property is locked_reason, a
// string of 1 to 255 characters) and returns the reason ("": none). As
// jsonschema does, a property's error comes before an unexpected
// property's.
func lockReason(arg json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(arg))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", bad("Malformed request body")
	}
	if v == nil {
		return "", nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return "", invalid("lock", v, "%s is not of type 'object', 'null'", pyRepr(v))
	}
	raw, has := m["locked_reason"]
	if has {
		if err := checkString("locked_reason", raw, 1, 255); err != nil {
			return "", err
		}
	}
	if err := noOtherKeys(m, "lock", "locked_reason"); err != nil {
		return "", err
	}
	if !has {
		return "", nil
	}
	return raw.(string), nil
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
		return apidb.SetLock(ctx, tx, cur.UUID, "", "", h.cfg.Now())
	})
	if err != nil {
		h.fail(w, r, gone(in.UUID, err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
