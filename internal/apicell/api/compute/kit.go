package compute

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// The Compute API is a set of rooms, one per resource: a handler type in
// its own file (servers.go, flavors.go, os_hosts.go, ...) that registers
// its routes in register. Adding a resource means adding a room and
// listing it in rooms (api.go); the first path segments its patterns
// register are resources, not project ids, by that alone (router.handle),
// and each policy rule it names must be in Rules (policies.go; a test
// checks). The scaffolding every API of the API cell
// shares (request id, access log, panic recovery, the caller, JSON
// writing, errors to faults through a table) is httpkit's: API.ServeHTTP
// is kit.Wrap of its router, rooms write with httpkit.WriteJSON and read
// httpkit.RequestID and httpkit.CallerFrom. The rooms share only base, the
// Compute API's own machinery of the kit_*.go files:
//
//   - kit_auth.go: authentication (kit.Authenticate), the project id in the
//     path, policy (auth, authorize), the lock on a server (checkLocked)
//   - kit_version.go: microversion negotiation
//   - kit_request.go: body and query validation (readObject, checkQuery)
//   - kit_pyrepr.go: values in messages as Nova (Python) prints them
//   - kit_paging.go: limit, marker and the next links
//   - kit_errors.go: the one table from errors to statuses (errorTable),
//     the fault shape (computeFault) and the refusals rooms return (bad,
//     notFound, conflict, ...); fail is kit.Fail
//   - kit_cells.go: calls to the cells (gather, callCell), cell-qualified
//     ids and the cells that are down (downSet)
//   - kit_quota.go: the quota checks of the rooms that create records
//     (quotaChecker)

// base is the machinery every room holds: the configuration, the logger
// and the kit, with authentication, policy, failing a request and calling the
// cells as its methods. It holds no resource's logic.
type base struct {
	cfg Config
	log *slog.Logger
	kit *httpkit.Kit
	// zones are the zones the cells below report, read at most once a
	// second (servers_create_az.go).
	zones *zoneCache
}

// room is one Compute API resource.
type room interface {
	register(rt *router)
}

// router is what a room registers its routes on.
type router struct {
	mux  *http.ServeMux
	base *base
	// versions is the room of the version documents, which the API's
	// route also answers for the discovery paths.
	versions *versionsHandler
	// actions are the server actions (POST /servers/{id}/action) that
	// rooms other than actionsHandler carry out, by body key.
	actions map[string]serverActionFunc
	// resources are the first path segments under /v2.1 of the patterns
	// registered through handle, and reservedResources: any other segment
	// there is a project id (splitProject).
	resources map[string]bool
	// rules are the policy rules the patterns registered through handle
	// name, by pattern ("" for none).
	rules map[string]string
}

// reservedResources are first path segments under /v2.1 that Nova gives a
// resource and that no room serves yet: they are never project ids.
// Remove one when its room lands (the room's patterns then add it).
var reservedResources = []string{
	"images", "extensions", "os-instance-usage-audit-log",
	"os-migrations",
	// Served by volumesProxyHandler when the Block Storage API is there.
	"os-volumes", "os-snapshots",
}

// newRouter is a router on mux with the reserved resources and no route.
func newRouter(mux *http.ServeMux, b *base) *router {
	rt := &router{mux: mux, base: b, actions: map[string]serverActionFunc{},
		resources: map[string]bool{}, rules: map[string]string{}}
	for _, seg := range reservedResources {
		rt.resources[seg] = true
	}
	return rt
}

// handle routes pattern to h behind authentication, microversion
// negotiation and the policy rule (none for "": h checks its own).
func (rt *router) handle(pattern, rule string, h http.HandlerFunc) {
	rt.mux.HandleFunc(pattern, rt.base.auth(rule, h))
	if seg := firstSegment(pattern); seg != "" {
		rt.resources[seg] = true
	}
	rt.rules[pattern] = rule
}

// firstSegment is the first path segment under /v2.1 of a route pattern
// ("GET /v2.1/os-hosts/{host}" has "os-hosts"), "" for none or a wildcard.
func firstSegment(pattern string) string {
	if _, p, ok := strings.Cut(pattern, " "); ok {
		pattern = p
	}
	rest, ok := strings.CutPrefix(pattern, "/v2.1/")
	if !ok {
		return ""
	}
	seg, _, _ := strings.Cut(rest, "/")
	if strings.HasPrefix(seg, "{") {
		return ""
	}
	return seg
}

// action registers the server action named by body key.
func (rt *router) action(key string, do serverActionFunc) {
	if _, dup := rt.actions[key]; dup {
		panic("compute api: server action " + key + " registered twice")
	}
	rt.actions[key] = do
}
