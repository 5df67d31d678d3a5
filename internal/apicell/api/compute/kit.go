package compute

import (
	"log/slog"
	"net/http"
)

// The Compute API is a set of rooms, one per resource: a handler type in
// its own file (servers.go, flavors.go, os_hosts.go, ...) that registers
// its routes in register. Adding a resource means adding a room and
// listing it in rooms (api.go). The rooms share only base, the machinery of
// the kit_*.go files:
//
//   - kit_auth.go: the caller, authentication, policy (auth, authorize)
//   - kit_version.go: microversion negotiation
//   - kit_request.go: body and query validation (readObject, checkQuery)
//   - kit_pyrepr.go: values in messages as Nova (Python) prints them
//   - kit_paging.go: limit, marker and the next links
//   - kit_errors.go: the one table from errors to statuses, and faults
//   - kit_cells.go: calls to the cells (gather, callCell) and cell-qualified ids

// base is the machinery every room holds: the configuration and the
// logger, with authentication, policy, failing a request and calling the
// cells as its methods. It holds no resource's logic.
type base struct {
	cfg Config
	log *slog.Logger
}

// room is one Compute API resource.
type room interface {
	register(rt *router)
}

// router is what a room registers its routes on.
type router struct {
	mux  *http.ServeMux
	base *base
	// actions are the server actions (POST /servers/{id}/action) that
	// rooms other than actionsHandler carry out, by body key.
	actions map[string]serverActionFunc
}

// handle routes pattern to h behind authentication, microversion
// negotiation and the policy rule (none for "": h checks its own).
func (rt *router) handle(pattern, rule string, h http.HandlerFunc) {
	rt.mux.HandleFunc(pattern, rt.base.auth(rule, h))
}

// action registers the server action named by body key.
func (rt *router) action(key string, do serverActionFunc) {
	if _, dup := rt.actions[key]; dup {
		panic("compute api: server action " + key + " registered twice")
	}
	rt.actions[key] = do
}
