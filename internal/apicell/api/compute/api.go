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
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/api/route"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
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

// DownCells says which cells below the API cell are down now.
type DownCells interface {
	Down(ctx context.Context) ([]string, error)
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
	// DownCells says which cells below are down (stopped reporting); nil
	// means none is ever down.
	DownCells DownCells
	// AuditPeriod is the usage audit's period (default month); the
	// compute cells must use the same.
	AuditPeriod string
	// Quota gives the default limits (nova.conf [quota]).
	Quota quota.Defaults
	// NetworkQuota gives the Networking API's default limits, which the
	// os-security-groups proxies (below 2.36) are held to, as Nova's
	// calls to Neutron are.
	NetworkQuota quota.NetworkDefaults
	// ReclaimInterval is Nova's reclaim_instance_interval: above zero, a
	// delete soft-deletes a server that has run, restorable until the
	// reclaim (internal/apicell/reclaim) deletes it for good.
	ReclaimInterval time.Duration
	// DefaultAvailabilityZone is Nova's default_availability_zone: the
	// zone of the hosts in no aggregate that has one (default "nova").
	DefaultAvailabilityZone string
	Now                     func() time.Time
	// Reserver reserves in a cell an address of a block it holds, asked
	// for as a fixed_ip on a boot; nil answers such addresses 503.
	Reserver netdb.AddressReserver
	// VolumeTypes finds the volume types of the volumes a boot from
	// volume makes (nil: only the default type, __DEFAULT__), and
	// VolumeQuotas the project's volume quota limits (nil: none); the
	// node wires package voltypes' store to both.
	VolumeTypes  VolumeTypeStore
	VolumeQuotas VolumeQuotaStore
	// BlockStorage is the Block Storage API's handler (paths /v3/...),
	// which the proxy APIs os-volumes and os-snapshots call in-process as
	// Nova calls Cinder (nil: they are not served).
	BlockStorage http.Handler
}

// API is the Compute API handler: the router that the rooms (kit.go)
// register their routes on, behind the shared kit (httpkit).
type API struct {
	kit     *httpkit.Kit
	mux     *http.ServeMux
	handler http.Handler
	// resources are the first path segments under /v2.1 that name a
	// resource (router.resources); any other is a project id.
	resources map[string]bool
	// versions answers the discovery paths outside the API's routes.
	versions *versionsHandler
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
	if cfg.DefaultAvailabilityZone == "" {
		cfg.DefaultAvailabilityZone = "nova"
	}
	cfg.Quota = cfg.Quota.WithNovaDefaults()
	cfg.NetworkQuota = cfg.NetworkQuota.WithNeutronDefaults()
	if cfg.AuditPeriod == "" {
		cfg.AuditPeriod = auditperiod.Default
	}
	if err := auditperiod.Validate(cfg.AuditPeriod); err != nil {
		return nil, fmt.Errorf("compute api: %w", err)
	}
	if err := cfg.Quota.Validate(); err != nil {
		return nil, fmt.Errorf("compute api: %w", err)
	}
	b := &base{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "api"), zones: &zoneCache{}}
	kit, err := httpkit.New(httpkit.Config{
		Logger:           b.log,
		RequestIDHeaders: []string{"X-Openstack-Request-Id", "X-Compute-Request-Id"},
		Shape:            computeFault,
		Internal:         httpkit.Fault{Status: http.StatusInternalServerError, Message: internalError},
		Table:            errorTable,
	})
	if err != nil {
		return nil, fmt.Errorf("compute api: %w", err)
	}
	b.kit = kit
	a := &API{kit: kit, mux: http.NewServeMux()}
	a.handler = kit.Wrap(http.HandlerFunc(a.route))
	rt := registerRooms(a.mux, b)
	a.resources, a.versions = rt.resources, rt.versions
	return a, nil
}

// registerRooms registers every room's routes on mux.
func registerRooms(mux *http.ServeMux, b *base) *router {
	rt := newRouter(mux, b)
	for _, rm := range rooms(b, rt.actions) {
		rm.register(rt)
	}
	return rt
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
		&deferredDeleteHandler{base: b, servers: servers, actions: actions},
		&shelveHandler{base: b, actions: actions},
		&serverUpdateHandler{base: b, servers: servers},
		&metadataHandler{base: b, servers: servers, quota: quota},
		&tagsHandler{base: b, servers: servers},
		&ipsHandler{base: b, servers: servers},
		&interfacesHandler{base: b, servers: servers},
		&volumeAttachmentsHandler{base: b, servers: servers},
		&volumesProxyHandler{base: b},
		&securityGroupsHandler{base: b, servers: servers},
		&instanceActionsHandler{base: b, servers: servers},
		&firewallHandler{base: b, servers: servers},
		&topologyHandler{base: b, servers: servers},
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
		&aggregatesHandler{base: b},
		&tenantUsageHandler{base: b},
		&usageAuditHandler{base: b},
		&cellsHandler{base: b},
	}
}

// splitProject takes a project id out of "/v2.1/{project_id}/...": a
// first segment that is not one of resources.
func splitProject(p string, resources map[string]bool) (path, project string) {
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

// ServeHTTP hands the request to the kit (request id, panic recovery in
// the Compute API's fault shape, access log) and then to route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// route takes a project id out of the path, answers what matches no route
// as Nova does, and serves the rest.
func (a *API) route(w http.ResponseWriter, r *http.Request) {
	// Nova's URL map: "/" and the bare version roots are its discovery
	// applications (no token, any method); /v2/... is its legacy v2 API,
	// which we do not serve; any other path outside /v2.1 is 300 Multiple
	// Choices.
	switch p := r.URL.Path; {
	case p == "/":
		a.versions.versions(w, r)
		return
	case p == "/v2.1" || p == "/v2.1/":
		a.versions.public(a.versions.version)(w, r)
		return
	case p == "/v2" || p == "/v2/":
		a.versions.legacyVersion(w, r)
		return
	case strings.HasPrefix(p, "/v2/"):
		a.kit.Write(w, fault(http.StatusNotFound, "The resource could not be found."))
		return
	case !strings.HasPrefix(p, "/v2.1/"):
		a.versions.choices(w, r)
		return
	}
	if p, project := splitProject(r.URL.Path, a.resources); project != "" {
		r.URL.Path = p
		r.URL.RawPath = ""
		r = r.WithContext(context.WithValue(r.Context(), keyPathProject, project))
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		// Tell "no such route" from "wrong method" as Nova does.
		a.kit.Write(w, fault(route.Status(a.mux, r), "The resource could not be found."))
		return
	}
	a.mux.ServeHTTP(w, r)
}
