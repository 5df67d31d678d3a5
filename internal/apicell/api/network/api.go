package network

import (
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
	"github.com/cellcloud/cellcloud/internal/db"
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
	// Quota is the default quota of every project (neutron.conf [QUOTAS]);
	// a resource it lacks takes Neutron's default, -1 is unlimited.
	Quota quota.NetworkDefaults
	// Reserver reserves in a cell an address of a block it holds, asked
	// for on a port's create; nil answers such addresses 503.
	Reserver netdb.AddressReserver
	// Sender sends durable messages to the cells: release_addresses for
	// the deleted ports whose addresses cells reserved, revoke_blocks when
	// a subnet whose blocks cells hold is deleted; nil sends none.
	Sender netdb.Sender
}

// API is the Networking API handler: the router that the rooms (kit.go)
// register their routes on, behind the shared kit (httpkit).
type API struct {
	kit     *httpkit.Kit
	mux     *http.ServeMux
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
	if err := cfg.Quota.Validate(); err != nil {
		return nil, fmt.Errorf("network api: %w", err)
	}
	cfg.Quota = cfg.Quota.WithNeutronDefaults()
	b := &base{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "api", "api", "network")}
	kit, err := httpkit.New(httpkit.Config{
		Logger:   b.log,
		Shape:    neutronFault,
		Internal: httpkit.Fault{Status: http.StatusInternalServerError, Type: "HTTPInternalServerError", Message: internalError},
		Table:    errorTable,
	})
	if err != nil {
		return nil, fmt.Errorf("network api: %w", err)
	}
	b.kit = kit
	a := &API{kit: kit, mux: http.NewServeMux()}
	a.handler = kit.Wrap(http.HandlerFunc(a.route))
	rt := &router{mux: a.mux, base: b}
	for _, rm := range rooms(b) {
		rm.register(rt)
	}
	return a, nil
}

// rooms are the Networking API's resources.
func rooms(b *base) []room {
	return []room{
		&versionsHandler{base: b},
		&extensionsHandler{base: b},
		&networksHandler{base: b},
		&subnetsHandler{base: b},
		&portsHandler{base: b},
		&securityGroupsHandler{base: b},
		&securityGroupRulesHandler{base: b},
		&tagsHandler{base: b, t: securityGroupTags(b)},
		&tagsHandler{base: b, t: networkTags(b)},
		&tagsHandler{base: b, t: subnetTags(b)},
		&tagsHandler{base: b, t: portTags(b)},
		&quotasHandler{base: b},
	}
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
// split out), and Neutron's quota rules (neutron/conf/policies/quotas.py),
// checked after those, against the caller's own project as Neutron does.
var Rules = []policy.Rule{
	{Name: "network:read", Check: policy.ProjectReaderOrAdmin, Description: "Any GET of the Networking API."},
	{Name: "network:write", Check: policy.ProjectMemberOrAdmin, Description: "Any other request of the Networking API."},
	{Name: "network:get_quota", Check: policy.ProjectManagerOrAdmin,
		Description: "GET /v2.0/quotas, and another project's quota or defaults (Neutron's get_quota)."},
	{Name: "network:update_quota", Check: policy.Admin, Description: "PUT /v2.0/quotas/{project_id} (Neutron's update_quota)."},
	{Name: "network:delete_quota", Check: policy.Admin, Description: "DELETE /v2.0/quotas/{project_id} (Neutron's delete_quota)."},
}
