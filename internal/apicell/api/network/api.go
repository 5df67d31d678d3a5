package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/api/route"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// Config configures the API.
type Config struct {
	// Cell is the API cell's path (for logs).
	Cell string
	// DB is the API cell's database, migrated with apidb's set "api" and
	// netdb's set "netapi".
	DB     *db.DB
	Logger *slog.Logger
	// Auth validates the callers' tokens; Policy holds Rules.
	Auth   authn.Authenticator
	Policy *policy.Enforcer
	Now    func() time.Time
}

// API is the Networking API handler.
type API struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	kit     *httpkit.Kit
	handler http.Handler
}

// New builds the handler.
func New(cfg Config) (*API, error) {
	if cfg.DB == nil || cfg.Auth == nil || cfg.Policy == nil {
		return nil, errors.New("network api: a database, an authenticator and a policy are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "api", "api", "network"), mux: http.NewServeMux()}
	kit, err := httpkit.New(httpkit.Config{
		Logger:   a.log,
		Shape:    neutronFault,
		Internal: httpkit.Fault{Status: http.StatusInternalServerError, Type: "HTTPInternalServerError", Message: internalError},
		Table:    errorTable,
	})
	if err != nil {
		return nil, fmt.Errorf("network api: %w", err)
	}
	a.kit = kit
	a.handler = kit.Wrap(http.HandlerFunc(a.route))
	a.routes()
	return a, nil
}

func (a *API) routes() {
	a.mux.HandleFunc("GET /{$}", a.versions)
	a.mux.HandleFunc("GET /v2.0", a.auth(a.resources))
	a.mux.HandleFunc("GET /v2.0/{$}", a.auth(a.resources))
	a.mux.HandleFunc("GET /v2.0/extensions", a.auth(a.listExtensions))
	a.mux.HandleFunc("GET /v2.0/extensions/{alias}", a.auth(a.showExtension))

	a.mux.HandleFunc("GET /v2.0/networks", a.auth(a.listNetworks))
	a.mux.HandleFunc("POST /v2.0/networks", a.auth(a.createNetwork))
	a.mux.HandleFunc("GET /v2.0/networks/{id}", a.auth(a.showNetwork))
	a.mux.HandleFunc("PUT /v2.0/networks/{id}", a.auth(a.updateNetwork))
	a.mux.HandleFunc("DELETE /v2.0/networks/{id}", a.auth(a.deleteNetwork))

	a.mux.HandleFunc("GET /v2.0/subnets", a.auth(a.listSubnets))
	a.mux.HandleFunc("POST /v2.0/subnets", a.auth(a.createSubnet))
	a.mux.HandleFunc("GET /v2.0/subnets/{id}", a.auth(a.showSubnet))
	a.mux.HandleFunc("PUT /v2.0/subnets/{id}", a.auth(a.updateSubnet))
	a.mux.HandleFunc("DELETE /v2.0/subnets/{id}", a.auth(a.deleteSubnet))

	a.mux.HandleFunc("GET /v2.0/quotas/{project}", a.auth(a.showQuota))
	a.mux.HandleFunc("GET /v2.0/quotas/{project}/details", a.auth(a.showQuota))

	a.mux.HandleFunc("GET /v2.0/ports", a.auth(a.listPorts))
	a.mux.HandleFunc("POST /v2.0/ports", a.auth(a.createPort))
	a.mux.HandleFunc("GET /v2.0/ports/{id}", a.auth(a.showPort))
	a.mux.HandleFunc("PUT /v2.0/ports/{id}", a.auth(a.updatePort))
	a.mux.HandleFunc("DELETE /v2.0/ports/{id}", a.auth(a.deletePort))
}

// ServeHTTP hands the request to the kit (request id, panic recovery in
// Neutron's shape, access log) and then to route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// route answers what matches no route in Neutron's way and serves the
// rest.
func (a *API) route(w http.ResponseWriter, r *http.Request) {
	// The mount point (http.StripPrefix) may leave an empty path; old
	// clients add ".json" to resource paths, which Neutron accepts.
	if r.URL.Path == "" {
		r.URL.Path = "/"
	}
	if p, ok := strings.CutSuffix(r.URL.Path, ".json"); ok && strings.HasPrefix(p, "/v2.0/") {
		r.URL.Path = p
	}
	r.URL.RawPath = ""
	if _, pattern := a.mux.Handler(r); pattern == "" {
		if route.Status(a.mux, r) == http.StatusMethodNotAllowed {
			writeError(w, http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "The server could not comply with the request since it is either malformed or otherwise incorrect.")
			return
		}
		writeError(w, http.StatusNotFound, "HTTPNotFound", "The resource could not be found.")
		return
	}
	a.mux.ServeHTTP(w, r)
}

// Rules are the Networking API's policy defaults: readers read, members
// write, on their own project's resources (Neutron's finer rules are not
// split out).
var Rules = []policy.Rule{
	{Name: "network:read", Check: policy.ProjectReaderOrAdmin, Description: "Any GET of the Networking API."},
	{Name: "network:write", Check: policy.ProjectMemberOrAdmin, Description: "Any other request of the Networking API."},
}

// auth authenticates the caller from the X-Auth-Token and checks the read
// or write rule.
func (a *API) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := a.kit.Authenticate(r, a.cfg.Auth, a.cfg.Policy)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rule := httpkit.RuleFor(r, "network:read", "network:write")
		if !c.Allowed(a.cfg.Policy, rule) {
			writeError(w, http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("(rule:%s) is disallowed by policy", rule))
			return
		}
		h(w, r.WithContext(httpkit.WithCaller(r.Context(), c)))
	}
}

const internalError = "Request Failed: internal server error while processing your request."

// neutronFault writes Neutron's error shape:
// {"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}.
func neutronFault(w http.ResponseWriter, f *httpkit.Fault) {
	httpkit.WriteJSON(w, f.Status, map[string]any{"NeutronError": map[string]any{"type": f.Type, "message": f.Message, "detail": ""}})
}

// writeError writes Neutron's error shape.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	neutronFault(w, fault(status, typ, msg))
}

// fault is a refusal decided here: a status and Neutron's fault type.
func fault(status int, typ, msg string) *httpkit.Fault {
	return &httpkit.Fault{Status: status, Type: typ, Message: msg}
}

func badRequest(format string, args ...any) error {
	return fault(http.StatusBadRequest, "HTTPBadRequest", fmt.Sprintf(format, args...))
}

// badAttr is a failed conversion or validation of attribute attr.
func badAttr(typ, attr, reason string) error {
	return fault(http.StatusBadRequest, typ, fmt.Sprintf("Invalid input for %s. Reason: %s.", attr, reason))
}

func forbidden(action string) error {
	return fault(http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("rule:%s is disallowed by policy", action))
}

// errorTable is the Networking API's errors as data: the authentication
// failures, then netdb's kinds of failure, each answered with the fault
// type and message its *netdb.Error names.
var errorTable = httpkit.Table{
	{Err: authn.ErrUnauthorized, Status: http.StatusUnauthorized, Type: "HTTPUnauthorized", Message: "The request you have made requires authentication."},
	{Err: httpkit.ErrIdentityUnavailable, Status: http.StatusServiceUnavailable, Type: "HTTPServiceUnavailable", Message: "The identity service could not validate the token; try again later."},
	{Err: netdb.ErrNotFound, Status: http.StatusNotFound, Detail: netdbDetail},
	{Err: netdb.ErrInUse, Status: http.StatusConflict, Detail: netdbDetail},
	{Err: netdb.ErrConflict, Status: http.StatusConflict, Detail: netdbDetail},
	{Err: netdb.ErrInvalid, Status: http.StatusBadRequest, Detail: netdbDetail},
}

// netdbDetail is the fault type and message a *netdb.Error names; a kind
// that no *netdb.Error carries is no fault of netdb's.
func netdbDetail(err error) (typ, msg string, ok bool) {
	var ne *netdb.Error
	if !errors.As(err, &ne) {
		return "", "", false
	}
	return ne.Code, ne.Message, true
}

// fail answers with err: the one place where errors become faults.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) { a.kit.Fail(w, r, err) }

// baseURL is the scheme, host and mount prefix the client used, e.g.
// "http://host/networking".
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	return scheme + "://" + r.Host + mountPrefix(r)
}

// mountPrefix is what http.StripPrefix took off the path: the request
// line's path less the path the handler sees.
func mountPrefix(r *http.Request) string {
	if r.RequestURI == "" {
		return ""
	}
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return ""
	}
	orig := u.Path
	// ServeHTTP may have dropped a ".json" suffix or turned "" into "/".
	orig = strings.TrimSuffix(orig, ".json")
	p := r.URL.Path
	if p == "/" && !strings.HasSuffix(orig, "/") {
		return orig
	}
	if prefix, ok := strings.CutSuffix(orig, p); ok {
		return prefix
	}
	return ""
}

// decodeBody reads the body of a create or update of resource: an object
// with the resource's key holding an object. Bulk requests (the plural
// key) are refused.
func decodeBody(w http.ResponseWriter, r *http.Request, resource string) (map[string]json.RawMessage, error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&top); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fault(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "Request is too large.")
		}
		if errors.Is(err, io.EOF) {
			return nil, badRequest("Resource body required")
		}
		return nil, badRequest("Body contains invalid data")
	}
	if dec.More() {
		return nil, badRequest("Body contains invalid data")
	}
	if len(top) == 0 {
		return nil, badRequest("Resource body required")
	}
	if _, ok := top[resource+"s"]; ok {
		return nil, badRequest("Bulk operation not supported")
	}
	raw, ok := top[resource]
	if !ok || string(raw) == "null" {
		return nil, badRequest("Unable to find '%s' in request body", resource)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, badRequest("Object '%s' contains invalid data", resource)
	}
	if body == nil {
		body = map[string]json.RawMessage{}
	}
	return body, nil
}
