package compute

import (
	"context"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// ctxKey are the Compute API's own context keys: the request id and the
// caller are httpkit's (httpkit.RequestID, httpkit.CallerFrom).
type ctxKey int

const (
	keyPathProject ctxKey = iota
	keyVersion
)

// public serves a version document without authentication, as Nova's
// version pipeline does for GET /v2.1 (and GET /), under microversion
// negotiation.
func (h *base) public(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, verr := negotiate(r.Header)
		if verr != nil {
			h.fail(w, r, verr)
			return
		}
		setVersionHeaders(w, v)
		next(w, r.WithContext(context.WithValue(r.Context(), keyVersion, v)))
	}
}

// auth authenticates the caller from the X-Auth-Token, checks a project id
// in the path, negotiates the microversion, and checks the route's policy
// rule (none for "": the handler checks its own) on the caller's project.
func (h *base) auth(rule string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := h.kit.Authenticate(r, h.cfg.Auth, h.cfg.Policy)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		if pid, _ := r.Context().Value(keyPathProject).(string); pid != "" && pid != c.ProjectID {
			h.fail(w, r, bad("Malformed request URL: URL's project_id '%s' doesn't match Context's project_id '%s'", pid, c.ProjectID))
			return
		}
		v, verr := negotiate(r.Header)
		if verr != nil {
			h.fail(w, r, verr)
			return
		}
		setVersionHeaders(w, v)
		ctx := httpkit.WithCaller(r.Context(), c)
		ctx = context.WithValue(ctx, keyVersion, v)
		if rule != "" {
			if err := h.authorize(ctx, rule, nil); err != nil {
				h.fail(w, r, err)
				return
			}
		}
		next(w, r.WithContext(ctx))
	}
}

// authorize checks a rule for the caller against a target: the caller's
// own project and user, overridden by target's entries (the server's
// project, a key pair's user). A refusal is Nova's 403.
func (h *base) authorize(ctx context.Context, rule string, target policy.Target) error {
	c := httpkit.CallerFrom(ctx)
	t := policy.Target{"project_id": c.ProjectID, "user_id": c.UserID}
	for k, v := range target {
		t[k] = v
	}
	if !h.cfg.Policy.Allowed(rule, c.Credentials(), t) {
		return forbidden(rule)
	}
	return nil
}

// can reports whether the caller passes a rule on their own project.
func (h *base) can(ctx context.Context, rule string) bool { return h.authorize(ctx, rule, nil) == nil }

// checkLocked refuses a change to a locked server unless the caller is an
// admin (Nova's check_instance_lock and InstanceIsLocked).
func checkLocked(ctx context.Context, in *apidb.Instance) error {
	if (in.Locked || in.LockedBy != "") && !httpkit.CallerFrom(ctx).Admin {
		return conflict("Instance %s is locked", in.UUID)
	}
	return nil
}
