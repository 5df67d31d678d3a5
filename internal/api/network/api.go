package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/netdb"

	"github.com/cellcloud/cellcloud/internal/api/authn"
	"github.com/cellcloud/cellcloud/internal/api/jsonenc"
	"github.com/cellcloud/cellcloud/internal/api/route"
	"github.com/cellcloud/cellcloud/internal/policy"
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
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
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

// ServeHTTP sets the request id, recovers from panics (a 500 in Neutron's
// shape, never a dropped connection), and logs each request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := "req-" + uuid.NewString()
	w.Header().Set("X-Openstack-Request-Id", rid)
	r = r.WithContext(context.WithValue(r.Context(), keyRequestID, rid))
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic serving a request", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
			writeError(rec, http.StatusInternalServerError, "HTTPInternalServerError", internalError)
		}
		a.log.Info("request", "request_id", rid, "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"dur", time.Since(start).Round(time.Microsecond))
	}()
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
			writeError(rec, http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "The server could not comply with the request since it is either malformed or otherwise incorrect.")
			return
		}
		writeError(rec, http.StatusNotFound, "HTTPNotFound", "The resource could not be found.")
		return
	}
	a.mux.ServeHTTP(rec, r)
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyCaller
)

// Caller is who is calling.
type Caller struct {
	UserID    string
	ProjectID string
	Admin     bool
}

func caller(ctx context.Context) Caller {
	c, _ := ctx.Value(keyCaller).(Caller)
	return c
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
		who, err := a.cfg.Auth.Authenticate(r.Context(), authn.Token(r))
		if errors.Is(err, authn.ErrUnauthorized) || (err == nil && who.ProjectID == "") {
			writeError(w, http.StatusUnauthorized, "HTTPUnauthorized", "The request you have made requires authentication.")
			return
		}
		if err != nil {
			a.log.Error("authenticating a request", "request_id", r.Context().Value(keyRequestID), "err", err)
			writeError(w, http.StatusServiceUnavailable, "HTTPServiceUnavailable", "The identity service could not validate the token; try again later.")
			return
		}
		rule := "network:write"
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			rule = "network:read"
		}
		creds, target := who.Credentials(), policy.Target{"project_id": who.ProjectID, "user_id": who.UserID}
		if !a.cfg.Policy.Allowed(rule, creds, target) {
			writeError(w, http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("(rule:%s) is disallowed by policy", rule))
			return
		}
		c := Caller{UserID: who.UserID, ProjectID: who.ProjectID, Admin: a.cfg.Policy.Allowed("context_is_admin", creds, target)}
		h(w, r.WithContext(context.WithValue(r.Context(), keyCaller, c)))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = jsonenc.Encode(w, v)
}

const internalError = "Request Failed: internal server error while processing your request."

// writeError writes Neutron's error shape.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": ""}})
}

// apiError is a refusal decided here: a status and Neutron's fault type.
type apiError struct {
	status int
	typ    string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, "HTTPBadRequest", fmt.Sprintf(format, args...)}
}

// badAttr is a failed conversion or validation of attribute attr.
func badAttr(typ, attr, reason string) error {
	return &apiError{http.StatusBadRequest, typ, fmt.Sprintf("Invalid input for %s. Reason: %s.", attr, reason)}
}

func forbidden(action string) error {
	return &apiError{http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("rule:%s is disallowed by policy", action)}
}

// kindStatus maps netdb's kinds of failure to HTTP statuses.
var kindStatus = []struct {
	kind   error
	status int
}{
	{netdb.ErrNotFound, http.StatusNotFound},
	{netdb.ErrInUse, http.StatusConflict},
	{netdb.ErrConflict, http.StatusConflict},
	{netdb.ErrInvalid, http.StatusBadRequest},
}

// fail answers with err: the one place where errors become faults.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae.status, ae.typ, ae.msg)
		return
	}
	var ne *netdb.Error
	if errors.As(err, &ne) {
		for _, k := range kindStatus {
			if errors.Is(ne.Kind, k.kind) {
				writeError(w, k.status, ne.Code, ne.Message)
				return
			}
		}
	}
	a.log.Error("request failed", "request_id", r.Context().Value(keyRequestID), "err", err)
	writeError(w, http.StatusInternalServerError, "HTTPInternalServerError", internalError)
}

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
			return nil, &apiError{http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "Request is too large."}
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
