package identity

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// The Identity API is a set of rooms, one per resource: a handler type in
// its own file (versions.go, tokens.go, catalog.go, domains.go,
// projects.go, users.go, roles.go, grants.go, role_assignments.go) that
// registers its routes in register. Adding a resource means adding a room
// and listing it in rooms (api.go). The scaffolding every API of the API
// cell shares (request id, access log, panic recovery, the caller, JSON
// writing, errors to faults through a table) is httpkit's. The rooms share
// only base, the Identity API's own machinery:
//
//   - kit.go: authentication and the route's policy rule (router.authed),
//     the policy check with a target (allowed)
//   - kit_errors.go: the one table from errors to statuses (errorTable),
//     Keystone's fault shape (keystoneFault) and the refusals rooms return
//     (badRequest, notFound, forbidden); fail is kit.Fail
//   - kit_request.go: the JSON body (decode), boolean filters (boolQuery),
//     the links and URLs of answers, Keystone's timestamps

// base is the machinery every room holds: the configuration, the logger
// and the kit, with authentication, policy, failing a request and reading
// a body as its methods. It holds no resource's logic.
type base struct {
	cfg Config
	log *slog.Logger
	kit *httpkit.Kit
}

// room is one Identity API resource.
type room interface {
	register(rt *router)
}

// router is what a room registers its routes on.
type router struct {
	mux  *http.ServeMux
	base *base
}

// open routes pattern to h with no authentication (version discovery,
// issuing a token).
func (rt *router) open(pattern string, h http.HandlerFunc) {
	rt.mux.HandleFunc(pattern, h)
}

// authed routes pattern to h behind authentication and the policy rule
// (none for "": h checks its own).
func (rt *router) authed(pattern, rule string, h http.HandlerFunc) {
	rt.mux.HandleFunc(pattern, rt.base.authed(rule, h))
}

// caller is the principal of the request's token.
func caller(ctx context.Context) authn.Principal { return httpkit.CallerFrom(ctx).Principal }

// authed validates the X-Auth-Token and checks the route's policy rule
// (none for "") against a target of the caller's own project and user;
// handlers that act on another object check it again with its target.
func (b *base) authed(rule string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := b.cfg.Store.Validate(r.Context(), authn.Token(r))
		if err != nil {
			if errors.Is(err, identity.ErrTokenNotFound) {
				err = authn.ErrUnauthorized
			}
			b.fail(w, r, err)
			return
		}
		ctx := httpkit.WithCaller(r.Context(), httpkit.Caller{Principal: authn.FromToken(t)})
		r = r.WithContext(ctx)
		if err := b.check(ctx, rule, nil); err != nil {
			b.fail(w, r, err)
			return
		}
		h(w, r)
	}
}

// allowed checks a rule with the caller's project and user as the default
// target, overridden by target's entries.
func (b *base) allowed(ctx context.Context, rule string, target policy.Target) bool {
	p := caller(ctx)
	t := policy.Target{"project_id": p.ProjectID, "user_id": p.UserID, "domain_id": p.ProjectDomainID}
	for k, v := range target {
		t[k] = v
	}
	return b.cfg.Policy.Allowed(rule, p.Credentials(), t)
}

// check is allowed as an error: nil, or the 403 that names the rule. The
// rule "" allows everyone.
func (b *base) check(ctx context.Context, rule string, target policy.Target) error {
	if rule == "" || b.allowed(ctx, rule, target) {
		return nil
	}
	return forbidden(rule)
}
