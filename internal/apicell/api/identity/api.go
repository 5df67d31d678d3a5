// Package identity serves the Identity API v3 subset that OpenStack clients
// need (the openstack CLI, gophercloud, terraform) from the API cell's own
// identity service: version discovery, tokens (password and token methods,
// project scope), the service catalog, domains, projects, users, roles and
// role assignments. Errors take Keystone's shape:
// {"error": {"code": 404, "message": "...", "title": "Not Found"}}.
package identity

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/api/route"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// Endpoint is one entry of the service catalog.
type Endpoint struct {
	// Type is the service type (compute, identity, image, network), Name
	// the service name (nova, keystone, glance, neutron).
	Type, Name string
	// URL is the endpoint's URL for a request that reached this API at
	// base (scheme and host, e.g. "http://127.0.0.1:8774"), so the catalog
	// names the address the client used. It may hold ProjectIDTemplate,
	// which a token's catalog replaces with the token's project (the
	// endpoint listings show the template, as Keystone does).
	URL func(base string) string
}

// ProjectIDTemplate is Keystone's substitution of the token's project id
// in an endpoint URL (Cinder's "/v3/$(project_id)s").
const ProjectIDTemplate = "$(project_id)s"

// Config configures the API.
type Config struct {
	Cell   string
	Store  *identity.Store
	Policy *policy.Enforcer
	// Cache is the token cache of the other APIs; revoking a token drops
	// it there at once.
	Cache    *authn.Cache
	Catalog  []Endpoint
	Region   string
	Logger   *slog.Logger
	Now      func() time.Time
	maxBytes int64
}

// API is the Identity API handler: the router that the rooms (kit.go)
// register their routes on, behind the shared kit (httpkit). Mount it with
// its prefix stripped.
type API struct {
	base    *base
	mux     *http.ServeMux
	handler http.Handler
}

// New builds the handler.
func New(cfg Config) (*API, error) {
	if cfg.Store == nil || cfg.Policy == nil {
		return nil, errors.New("identity api: a store and a policy are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Region == "" {
		cfg.Region = "RegionOne"
	}
	cfg.maxBytes = 112 << 10
	b := &base{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "api", "api", "identity")}
	kit, err := httpkit.New(httpkit.Config{
		Logger:   b.log,
		Shape:    keystoneFault,
		Internal: httpkit.Fault{Status: http.StatusInternalServerError, Message: internalError},
		Table:    errorTable,
	})
	if err != nil {
		return nil, fmt.Errorf("identity api: %w", err)
	}
	b.kit = kit
	a := &API{base: b, mux: http.NewServeMux()}
	a.handler = kit.Wrap(http.HandlerFunc(a.route))
	rt := &router{mux: a.mux, base: b}
	for _, rm := range rooms(b) {
		rm.register(rt)
	}
	return a, nil
}

// rooms are the Identity API's resources, wired to the few others each
// uses.
func rooms(b *base) []room {
	catalog := &catalogHandler{base: b}
	domains := &domainsHandler{base: b}
	projects := &projectsHandler{base: b}
	roles := &rolesHandler{base: b}
	return []room{
		&versionsHandler{base: b},
		&tokensHandler{base: b, catalog: catalog},
		catalog,
		domains,
		projects,
		&usersHandler{base: b, projects: projects},
		roles,
		&grantsHandler{base: b, roles: roles},
		&assignmentsHandler{base: b, domains: domains},
	}
}

// ServeHTTP hands the request to the kit (request id, panic recovery in
// Keystone's shape, access log) and then to route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// route answers what matches no route in Keystone's way and serves the
// rest.
func (a *API) route(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Vary", "X-Auth-Token")
	if r.URL.Path == "" {
		r.URL.Path = "/"
	}
	r.URL.RawPath = ""
	if _, pattern := a.mux.Handler(r); pattern == "" {
		st := route.Status(a.mux, r)
		msg := "The resource could not be found."
		if st == http.StatusMethodNotAllowed {
			msg = "The method is not allowed for the requested URL."
		}
		a.base.fail(w, r, &httpkit.Fault{Status: st, Message: msg})
		return
	}
	a.mux.ServeHTTP(w, r)
}
