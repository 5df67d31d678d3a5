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

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/jsonenc"
	"github.com/cellcloud/cellcloud/internal/apicell/api/route"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/auditperiod"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
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

// API is the Compute API handler: the router that the rooms (kit.go)
// register their routes on.
type API struct {
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
	b := &base{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "api")}
	a := &API{log: b.log, mux: http.NewServeMux()}
	rt := &router{mux: a.mux, base: b, actions: map[string]serverActionFunc{}}
	for _, rm := range rooms(b, rt.actions) {
		rm.register(rt)
	}
	return a, nil
}

// rooms are the Compute API's resources, wired to the few others each
// uses.
func rooms(b *base, serverActions map[string]serverActionFunc) []room {
	quota := &quotaChecker{defaults: b.cfg.Quota}
	groups := &serverGroupsHandler{base: b, quota: quota}
	servers := &serversHandler{base: b, quota: quota, groups: groups}
	actions := &actionsHandler{base: b, servers: servers, byKey: serverActions}
	flavors := &flavorsHandler{base: b}
	services := &servicesHandler{base: b}
	return []room{
		&versionsHandler{base: b},
		servers,
		actions,
		&movesHandler{base: b, servers: servers, actions: actions, quota: quota},
		&lockHandler{base: b, servers: servers},
		&serverUpdateHandler{base: b, servers: servers},
		&metadataHandler{base: b, servers: servers, quota: quota},
		&tagsHandler{base: b, servers: servers},
		&ipsHandler{base: b, servers: servers},
		&instanceActionsHandler{base: b, servers: servers},
		flavors,
		&flavorAccessHandler{base: b, flavors: flavors},
		&extraSpecsHandler{base: b, flavors: flavors},
		&keypairsHandler{base: b, quota: quota},
		groups,
		&quotaSetsHandler{base: b, quota: quota},
		&limitsHandler{base: b, quota: quota},
		&hypervisorsHandler{base: b},
		services,
		&hostsHandler{base: b, services: services},
		&zonesHandler{base: b, services: services},
		&tenantUsageHandler{base: b},
		&usageAuditHandler{base: b},
		&cellsHandler{base: b},
	}
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

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = jsonenc.Encode(w, v)
}
