// Package compute serves the OpenStack Compute API v2.1 at the API cell. It
// validates, checks who is calling, writes the API cell's copy, and hands
// work to the cells service through the cell's outbox; it never talks to a
// compute cell's database or hosts.
package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/api/authn"
	"github.com/cellcloud/cellcloud/internal/api/jsonenc"
	"github.com/cellcloud/cellcloud/internal/api/route"
	"github.com/cellcloud/cellcloud/internal/auditperiod"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/policy"
	"github.com/cellcloud/cellcloud/internal/quota"
	"github.com/cellcloud/cellcloud/internal/wire"
)

// Sender sends a durable message from the API cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// CellCaller makes a call to a cell and waits for its answer.
type CellCaller interface {
	Call(ctx context.Context, target, method, requestID string, payload, out any) error
	// Gather asks every cell below the API cell, and says which did not
	// answer before the deadline.
	Gather(ctx context.Context, method, requestID string, payload any) (results []wire.Result, missing []string, err error)
}

// Config configures the API.
type Config struct {
	// Cell is the API cell's path.
	Cell   string
	DB     *db.DB
	Sender Sender
	// Caller reaches the cells for reads the API cell's copy cannot answer
	// (console output, instance actions).
	Caller CellCaller
	Logger *slog.Logger
	// Auth validates the callers' tokens.
	Auth authn.Authenticator
	// Policy decides what each caller may do (Rules, overridable by a
	// policy file).
	Policy *policy.Enforcer
	// DownCells lists the cells below that are down (stopped reporting);
	// nil means none is ever down.
	DownCells func(ctx context.Context) ([]string, error)
	// AuditPeriod is the usage audit's period (default month); the
	// compute cells must use the same.
	AuditPeriod string
	// Quota gives the default limits (nova.conf [quota]).
	Quota quota.Defaults
	Now   func() time.Time
}

// API is the Compute API handler.
type API struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New builds the handler.
func New(cfg Config) (*API, error) {
	if cfg.DB == nil || cfg.Sender == nil || cfg.Caller == nil || cfg.Cell == "" || cfg.Auth == nil || cfg.Policy == nil {
		return nil, errors.New("compute api: cell, database, sender, caller, authenticator and policy are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Quota = cfg.Quota.WithNovaDefaults()
	if cfg.AuditPeriod == "" {
		cfg.AuditPeriod = auditperiod.Default
	}
	if err := auditperiod.Validate(cfg.AuditPeriod); err != nil {
		return nil, fmt.Errorf("compute api: %w", err)
	}
	if err := cfg.Quota.Validate(); err != nil {
		return nil, fmt.Errorf("compute api: %w", err)
	}
	a := &API{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "api"), mux: http.NewServeMux()}
	a.routes()
	return a, nil
}

func (a *API) routes() {
	a.mux.HandleFunc("GET /{$}", a.versions)
	// The v2.1 document is under microversion control, and a project id in
	// its path must be the caller's, as in Nova (GET / is neither).
	a.mux.HandleFunc("GET /v2.1", a.public(a.version))
	a.mux.HandleFunc("GET /v2.1/{$}", a.auth("", a.version))
	// Every resource also answers with a project id in the path, as Nova
	// does; ServeHTTP takes it out before routing.
	a.mux.HandleFunc("POST /v2.1/servers", a.auth("os_compute_api:servers:create", a.createServer))
	a.mux.HandleFunc("GET /v2.1/servers", a.auth("os_compute_api:servers:index", a.listServers(false)))
	a.mux.HandleFunc("GET /v2.1/servers/detail", a.auth("os_compute_api:servers:detail", a.listServers(true)))
	a.mux.HandleFunc("GET /v2.1/servers/{id}", a.auth("os_compute_api:servers:show", a.showServer))
	a.mux.HandleFunc("DELETE /v2.1/servers/{id}", a.auth("os_compute_api:servers:delete", a.deleteServer))
	a.serverActionRoutes()
	a.mux.HandleFunc("GET /v2.1/flavors", a.auth("", a.listFlavors(false)))
	a.mux.HandleFunc("GET /v2.1/flavors/detail", a.auth("", a.listFlavors(true)))
	a.mux.HandleFunc("GET /v2.1/flavors/{id}", a.auth("", a.showFlavor))
	a.keypairAndFlavorRoutes()
	a.serverGroupRoutes()
	a.quotaRoutes()
	a.hypervisorRoutes()
	a.serviceRoutes()
	a.hostRoutes()
	a.tenantUsageRoutes()
	a.usageAuditRoutes()
	a.cellRoutes()
}

// resources are the first path segments under /v2.1 that name a resource;
// any other segment there is a project id.
var resources = map[string]bool{
	"servers": true, "flavors": true, "images": true, "limits": true, "extensions": true, "os-keypairs": true,
	"os-hypervisors": true, "os-services": true, "os-hosts": true, "os-quota-sets": true, "os-availability-zone": true,
	"os-aggregates": true, "os-server-groups": true, "os-simple-tenant-usage": true, "os-instance-usage-audit-log": true, "os-instance_usage_audit_log": true,
	"os-cells": true, "os-migrations": true, "os-security-groups": true, "os-volumes": true, "os-quota-class-sets": true,
}

// splitProject takes a project id out of "/v2.1/{project_id}/...".
func splitProject(p string) (path, project string) {
	rest, ok := strings.CutPrefix(p, "/v2.1/")
	if !ok {
		return p, ""
	}
	seg, tail, _ := strings.Cut(rest, "/")
	if seg == "" || resources[seg] {
		return p, ""
	}
	return "/v2.1/" + tail, seg
}

// ServeHTTP sets the request id, recovers from panics (a 500 with a fault,
// never a dropped connection), and logs each request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := "req-" + uuid.NewString()
	w.Header().Set("X-Openstack-Request-Id", rid)
	w.Header().Set("X-Compute-Request-Id", rid)
	ctx := withRequestID(r.Context(), rid)
	r = r.WithContext(ctx)
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: 200}
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic serving a request", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
			writeFault(rec, http.StatusInternalServerError, "Unexpected API Error. Please report this at the cellcloud issue tracker.")
		}
		a.log.Info("request", "request_id", rid, "method", r.Method, "path", r.URL.Path, "status", rec.status, "dur", time.Since(start).Round(time.Microsecond))
	}()
	if !strings.HasPrefix(r.URL.Path, "/v2.1") && r.URL.Path != "/" {
		writeFault(rec, http.StatusNotFound, "The resource could not be found.")
		return
	}
	if p, project := splitProject(r.URL.Path); project != "" {
		r.URL.Path = p
		r.URL.RawPath = ""
		r = r.WithContext(context.WithValue(r.Context(), keyPathProject, project))
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		// Tell "no such route" from "wrong method" as Nova does.
		writeFault(rec, route.Status(a.mux, r), "The resource could not be found.")
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
func (a *API) public(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, verr := negotiate(r.Header)
		if verr != nil {
			writeFault(w, verr.status, verr.msg)
			return
		}
		setVersionHeaders(w, v)
		h(w, r.WithContext(context.WithValue(r.Context(), keyVersion, v)))
	}
}

// auth authenticates the caller from the X-Auth-Token, checks a project id
// in the path, negotiates the microversion, and checks the route's policy
// rule (none for "": the handler checks its own) on the caller's project.
func (a *API) auth(rule string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, err := a.cfg.Auth.Authenticate(r.Context(), authn.Token(r))
		if errors.Is(err, authn.ErrUnauthorized) || (err == nil && who.ProjectID == "") {
			writeFault(w, http.StatusUnauthorized, "The request you have made requires authentication.")
			return
		}
		if err != nil {
			a.log.Error("authenticating a request", "request_id", requestID(r.Context()), "err", err)
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
			Admin: a.cfg.Policy.Allowed("context_is_admin", creds, policy.Target{"project_id": who.ProjectID, "user_id": who.UserID})}
		ctx := context.WithValue(r.Context(), keyCaller, c)
		ctx = context.WithValue(ctx, keyVersion, v)
		if rule != "" {
			if err := a.authorize(ctx, rule, nil); err != nil {
				a.fail(w, r, err)
				return
			}
		}
		h(w, r.WithContext(ctx))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = jsonenc.Encode(w, v)
}

// faultNames are the Compute API's fault keys by status (Nova's
// wsgi.Fault._fault_names; any other status, 406 included, is a
// computeFault).
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	500: "computeFault", 501: "notImplemented", 503: "serviceUnavailable",
}

// writeFault writes the Compute API's error shape:
// {"itemNotFound": {"code": 404, "message": "..."}}.
func writeFault(w http.ResponseWriter, status int, msg string) {
	name, ok := faultNames[status]
	if !ok {
		name = "computeFault"
	}
	writeJSON(w, status, map[string]any{name: map[string]any{"code": status, "message": msg}})
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
