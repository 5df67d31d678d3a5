package compute

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyCaller
	keyPathProject
)

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, keyRequestID, id)
}

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(keyRequestID).(string)
	return s
}

// Caller is who is calling.
type Caller struct {
	UserID    string
	ProjectID string
	// Admin is the policy rule context_is_admin: what Nova calls an
	// administrator context (it sees every project's servers, for one).
	Admin bool
	creds policy.Credentials
}

func caller(ctx context.Context) Caller {
	c, _ := ctx.Value(keyCaller).(Caller)
	return c
}

// public serves a version document without authentication, as Nova's
// version pipeline does for GET /v2.1 (and GET /), under microversion
// negotiation.
func (h *base) public(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, verr := negotiate(r.Header)
		if verr != nil {
			writeFault(w, verr.status, verr.msg)
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
		who, err := h.cfg.Auth.Authenticate(r.Context(), authn.Token(r))
		if errors.Is(err, authn.ErrUnauthorized) || (err == nil && who.ProjectID == "") {
			writeFault(w, http.StatusUnauthorized, "The request you have made requires authentication.")
			return
		}
		if err != nil {
			h.log.Error("authenticating a request", "request_id", requestID(r.Context()), "err", err)
			writeFault(w, http.StatusServiceUnavailable, "The identity service could not validate the token; try again later.")
			return
		}
		if pid, _ := r.Context().Value(keyPathProject).(string); pid != "" && pid != who.ProjectID {
			writeFault(w, http.StatusBadRequest, fmt.Sprintf("Malformed request URL: URL's project_id '%s' doesn't match Context's project_id '%s'", pid, who.ProjectID))
			return
		}
		v, verr := negotiate(r.Header)
		if verr != nil {
			writeFault(w, verr.status, verr.msg)
			return
		}
		setVersionHeaders(w, v)
		creds := who.Credentials()
		c := Caller{UserID: who.UserID, ProjectID: who.ProjectID, creds: creds,
			Admin: h.cfg.Policy.Allowed("context_is_admin", creds, policy.Target{"project_id": who.ProjectID, "user_id": who.UserID})}
		ctx := context.WithValue(r.Context(), keyCaller, c)
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
	c := caller(ctx)
	t := policy.Target{"project_id": c.ProjectID, "user_id": c.UserID}
	for k, v := range target {
		t[k] = v
	}
	if !h.cfg.Policy.Allowed(rule, c.creds, t) {
		return forbidden(rule)
	}
	return nil
}

// can reports whether the caller passes a rule on their own project.
func (h *base) can(ctx context.Context, rule string) bool { return h.authorize(ctx, rule, nil) == nil }
