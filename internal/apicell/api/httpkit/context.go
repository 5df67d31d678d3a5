package httpkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// ctxKey is the one set of context keys of the HTTP APIs.
type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyCaller
)

// WithRequestID returns ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, keyRequestID, id)
}

// RequestID is the request id ctx carries ("" for none).
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(keyRequestID).(string)
	return s
}

// Caller is who is calling: the token's principal, and whether the policy
// rule context_is_admin holds for it (what Nova calls an administrator
// context).
type Caller struct {
	authn.Principal
	Admin bool
}

// WithCaller returns ctx carrying the caller.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, keyCaller, c)
}

// CallerFrom is the caller ctx carries (the zero Caller for none).
func CallerFrom(ctx context.Context) Caller {
	c, _ := ctx.Value(keyCaller).(Caller)
	return c
}

// ErrIdentityUnavailable is an authenticator that could not say whether a
// token is valid (the identity service failed or did not answer).
var ErrIdentityUnavailable = errors.New("the identity service could not validate the token")

// Authenticate finds the caller of r from its X-Auth-Token. A missing,
// bad or unscoped token is an error that matches authn.ErrUnauthorized;
// any other failure of auth is logged and matches ErrIdentityUnavailable.
// The caller's Admin is pol's context_is_admin on its own project.
func (k *Kit) Authenticate(r *http.Request, auth authn.Authenticator, pol *policy.Enforcer) (Caller, error) {
	who, err := auth.Authenticate(r.Context(), authn.Token(r))
	if errors.Is(err, authn.ErrUnauthorized) || (err == nil && who.ProjectID == "") {
		return Caller{}, authn.ErrUnauthorized
	}
	if err != nil {
		k.log.Error("authenticating a request", "request_id", RequestID(r.Context()), "err", err)
		return Caller{}, fmt.Errorf("%w: %w", ErrIdentityUnavailable, err)
	}
	admin := pol.Allowed("context_is_admin", who.Credentials(), policy.Target{"project_id": who.ProjectID, "user_id": who.UserID})
	return Caller{Principal: who, Admin: admin}, nil
}

// RuleFor is the read rule for a GET or HEAD and the write rule for any
// other method: the policy of an API that has one rule of each kind (Image,
// Networking).
func RuleFor(r *http.Request, read, write string) string {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return read
	}
	return write
}

// Allowed reports whether pol allows rule for the caller on its own project.
func (c Caller) Allowed(pol *policy.Enforcer, rule string) bool {
	return pol.Allowed(rule, c.Credentials(), policy.Target{"project_id": c.ProjectID, "user_id": c.UserID})
}

// Origin is the scheme and host the client used ("https://cloud.example"),
// the scheme taken from X-Forwarded-Proto when a proxy in front says it:
// the start of every link an API writes.
func Origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}
