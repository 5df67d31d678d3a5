// Package identity serves the Identity API v3 subset that OpenStack clients
// need (the openstack CLI, gophercloud, terraform) from the API cell's own
// identity service: version discovery, tokens (password and token methods,
// project scope), the service catalog, domains, projects, users, roles and
// role assignments. Errors take Keystone's shape:
// {"error": {"code": 404, "message": "...", "title": "Not Found"}}.
package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/api/route"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// Endpoint is one entry of the service catalog.
type Endpoint struct {
	// Type is the service type (compute, identity, image, network), Name
	// the service name (nova, keystone, glance, neutron).
	Type, Name string
	// URL is the endpoint's URL for a request that reached this API at
	// base (scheme and host, e.g. "http://127.0.0.1:8774"), so the catalog
	// names the address the client used.
	URL func(base string) string
}

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

// API is the Identity API handler. Mount it with its prefix stripped.
type API struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	kit     *httpkit.Kit
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
	a := &API{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "api", "api", "identity"), mux: http.NewServeMux()}
	kit, err := httpkit.New(httpkit.Config{
		Logger:   a.log,
		Shape:    keystoneFault,
		Internal: httpkit.Fault{Status: http.StatusInternalServerError, Message: internalError},
		Table:    errorTable,
	})
	if err != nil {
		return nil, fmt.Errorf("identity api: %w", err)
	}
	a.kit = kit
	a.handler = kit.Wrap(http.HandlerFunc(a.route))
	a.routes()
	return a, nil
}

func (a *API) routes() {
	a.mux.HandleFunc("GET /{$}", a.versions)
	a.mux.HandleFunc("GET /v3", a.version)
	a.mux.HandleFunc("GET /v3/{$}", a.version)

	a.mux.HandleFunc("POST /v3/auth/tokens", a.issueToken)
	a.mux.HandleFunc("GET /v3/auth/tokens", a.authed("identity:validate_token", a.validateToken))
	a.mux.HandleFunc("HEAD /v3/auth/tokens", a.authed("identity:check_token", a.checkToken))
	a.mux.HandleFunc("DELETE /v3/auth/tokens", a.authed("identity:revoke_token", a.revokeToken))
	a.mux.HandleFunc("GET /v3/auth/catalog", a.authed("", a.authCatalog))
	a.mux.HandleFunc("GET /v3/auth/projects", a.authed("", a.authProjects))
	a.mux.HandleFunc("GET /v3/auth/domains", a.authed("", a.authDomains))

	a.mux.HandleFunc("GET /v3/domains", a.authed("identity:list_domains", a.listDomains))
	a.mux.HandleFunc("GET /v3/domains/{id}", a.authed("identity:get_domain", a.showDomain))

	a.mux.HandleFunc("GET /v3/projects", a.authed("identity:list_projects", a.listProjects))
	a.mux.HandleFunc("POST /v3/projects", a.authed("identity:create_project", a.createProject))
	a.mux.HandleFunc("GET /v3/projects/{id}", a.authed("identity:get_project", a.showProject))
	a.mux.HandleFunc("PATCH /v3/projects/{id}", a.authed("identity:update_project", a.updateProject))
	a.mux.HandleFunc("DELETE /v3/projects/{id}", a.authed("identity:delete_project", a.deleteProject))

	a.mux.HandleFunc("GET /v3/users", a.authed("identity:list_users", a.listUsers))
	a.mux.HandleFunc("POST /v3/users", a.authed("identity:create_user", a.createUser))
	a.mux.HandleFunc("GET /v3/users/{id}", a.authed("identity:get_user", a.showUser))
	a.mux.HandleFunc("PATCH /v3/users/{id}", a.authed("identity:update_user", a.updateUser))
	a.mux.HandleFunc("DELETE /v3/users/{id}", a.authed("identity:delete_user", a.deleteUser))
	a.mux.HandleFunc("GET /v3/users/{id}/projects", a.authed("identity:list_user_projects", a.userProjects))

	a.mux.HandleFunc("GET /v3/roles", a.authed("identity:list_roles", a.listRoles))
	a.mux.HandleFunc("POST /v3/roles", a.authed("identity:create_role", a.createRole))
	a.mux.HandleFunc("GET /v3/roles/{id}", a.authed("identity:get_role", a.showRole))
	a.mux.HandleFunc("DELETE /v3/roles/{id}", a.authed("identity:delete_role", a.deleteRole))

	a.mux.HandleFunc("GET /v3/projects/{project}/users/{user}/roles", a.authed("identity:list_grants", a.listGrants))
	a.mux.HandleFunc("PUT /v3/projects/{project}/users/{user}/roles/{role}", a.authed("identity:create_grant", a.grant))
	a.mux.HandleFunc("GET /v3/projects/{project}/users/{user}/roles/{role}", a.authed("identity:check_grant", a.checkGrant))
	a.mux.HandleFunc("HEAD /v3/projects/{project}/users/{user}/roles/{role}", a.authed("identity:check_grant", a.checkGrant))
	a.mux.HandleFunc("DELETE /v3/projects/{project}/users/{user}/roles/{role}", a.authed("identity:revoke_grant", a.ungrant))
	a.mux.HandleFunc("GET /v3/role_assignments", a.authed("identity:list_role_assignments", a.listAssignments))

	a.mux.HandleFunc("GET /v3/services", a.authed("identity:list_services", a.listServices))
	a.mux.HandleFunc("GET /v3/endpoints", a.authed("identity:list_endpoints", a.listEndpoints))
	a.mux.HandleFunc("GET /v3/regions", a.authed("identity:list_regions", a.listRegions))
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
		writeError(w, st, msg)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// caller is the principal of the request's token.
func caller(ctx context.Context) authn.Principal { return httpkit.CallerFrom(ctx).Principal }

// authed validates the X-Auth-Token and checks the route's policy rule
// (none for "") against a target of the caller's own project and user;
// handlers that act on another object check it again with its target.
func (a *API) authed(rule string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := a.cfg.Store.Validate(r.Context(), authn.Token(r))
		if err != nil {
			if !errors.Is(err, identity.ErrTokenNotFound) {
				a.fail(w, r, err)
				return
			}
			writeError(w, http.StatusUnauthorized, authn.ErrUnauthorized.Error())
			return
		}
		ctx := httpkit.WithCaller(r.Context(), httpkit.Caller{Principal: authn.FromToken(t)})
		r = r.WithContext(ctx)
		if rule != "" && !a.allowed(ctx, rule, nil) {
			writeError(w, http.StatusForbidden, forbidden(rule))
			return
		}
		h(w, r)
	}
}

// allowed checks a rule with the caller's project and user as the default
// target, overridden by target's entries.
func (a *API) allowed(ctx context.Context, rule string, target policy.Target) bool {
	p := caller(ctx)
	t := policy.Target{"project_id": p.ProjectID, "user_id": p.UserID, "domain_id": p.ProjectDomainID}
	for k, v := range target {
		t[k] = v
	}
	return a.cfg.Policy.Allowed(rule, p.Credentials(), t)
}

func forbidden(rule string) string {
	return fmt.Sprintf("You are not authorized to perform the requested action: %s.", rule)
}

func badRequest(format string, args ...any) error {
	return httpkit.Errorf(http.StatusBadRequest, format, args...)
}

const internalError = "An unexpected error prevented the server from fulfilling your request."

// errorTable is the Identity API's errors as data; each answers with the
// error's own text unless the row names a message.
var errorTable = httpkit.Table{
	{Err: notfound.Err, Status: http.StatusNotFound},
	{Err: identity.ErrConflict, Status: http.StatusConflict},
	{Err: identity.ErrInvalid, Status: http.StatusBadRequest},
	{Err: identity.ErrScope, Status: http.StatusUnauthorized},
	{Err: identity.ErrUnauthorized, Status: http.StatusUnauthorized, Message: identity.ErrUnauthorized.Error()},
	{Err: identity.ErrTokenNotFound, Status: http.StatusUnauthorized, Message: identity.ErrUnauthorized.Error()},
}

// fail maps an error to Keystone's status and shape, in one place.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) { a.kit.Fail(w, r, err) }

// keystoneFault writes Keystone's error shape:
// {"error": {"code": 404, "message": "...", "title": "Not Found"}}, with a
// WWW-Authenticate header on a 401.
func keystoneFault(w http.ResponseWriter, f *httpkit.Fault) {
	if f.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="identity"`)
	}
	httpkit.WriteJSON(w, f.Status, map[string]any{"error": map[string]any{"code": f.Status, "message": f.Message, "title": http.StatusText(f.Status)}})
}

// writeError writes Keystone's error shape.
func writeError(w http.ResponseWriter, status int, msg string) {
	keystoneFault(w, &httpkit.Fault{Status: status, Message: msg})
}

// decode reads a JSON body with one top-level key into v.
func (a *API) decode(w http.ResponseWriter, r *http.Request, key string, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.maxBytes))
	if err != nil {
		return &httpkit.Fault{Status: http.StatusRequestEntityTooLarge, Message: "Request is too large."}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return badRequest("Malformed request body: it is not a JSON object.")
	}
	inner, ok := top[key]
	if !ok {
		return badRequest("Invalid input for field '%s': '%s' is a required property.", key, key)
	}
	if err := json.Unmarshal(inner, v); err != nil {
		return badRequest("Invalid input for field '%s': %s", key, jsonError(err))
	}
	return nil
}

func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("'%s' must be of type %s, not %s.", te.Field, te.Type.String(), te.Value)
	}
	return "the value is not valid JSON."
}

// baseURL is the scheme and host the client used.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// rootURL is this API's root (where GET / lists the versions) as the
// client reached it.
func (a *API) rootURL(r *http.Request) string {
	for _, e := range a.cfg.Catalog {
		if e.Type == "identity" {
			return strings.TrimSuffix(e.URL(baseURL(r)), "/")
		}
	}
	return baseURL(r)
}

func links(self string) map[string]any { return map[string]any{"self": self} }

func (a *API) collectionLinks(r *http.Request) map[string]any {
	self := a.rootURL(r) + r.URL.Path
	if r.URL.RawQuery != "" {
		self += "?" + r.URL.RawQuery
	}
	return map[string]any{"self": self, "previous": nil, "next": nil}
}

// timestamp is Keystone's time format.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
