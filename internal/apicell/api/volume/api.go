package volume

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// Config configures the API.
type Config struct {
	// Cell is the API cell's path (for logs).
	Cell   string
	Logger *slog.Logger
	// Auth validates the callers' tokens; Policy holds Rules.
	Auth   authn.Authenticator
	Policy *policy.Enforcer
	// StorageZone is the one storage availability zone listed (Cinder's
	// storage_availability_zone; default "nova").
	StorageZone string
	// Host is the API cell's host, where os-services shows its
	// cinder-scheduler.
	Host string
	// Cells gathers from the cells below (os-services); nil lists the
	// scheduler alone.
	Cells Gatherer
}

// API is the Block Storage API handler: the router that the rooms
// (kit.go) register their routes on, behind the shared kit (httpkit).
type API struct {
	handler http.Handler
}

// New builds the handler.
func New(cfg Config) (*API, error) {
	if cfg.Auth == nil || cfg.Policy == nil {
		return nil, errors.New("volume api: an authenticator and a policy are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.StorageZone == "" {
		cfg.StorageZone = "nova"
	}
	b := &base{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "api", "api", "volume")}
	kit, err := httpkit.New(httpkit.Config{
		Logger: b.log,
		// Cinder answers the request id in both.
		RequestIDHeaders: []string{"X-Openstack-Request-Id", "X-Compute-Request-Id"},
		Shape:            cinderFault,
		Internal:         httpkit.Fault{Status: http.StatusInternalServerError, Message: internalError},
		Table:            errorTable,
	})
	if err != nil {
		return nil, fmt.Errorf("volume api: %w", err)
	}
	b.kit = kit
	mux := http.NewServeMux()
	rt := &router{mux: mux, base: b}
	for _, rm := range rooms(b) {
		rm.register(rt)
	}
	// What no route matches is Cinder's 404 (its router knows no other
	// answer), in the fault shape.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		b.fail(w, r, notFound("The resource could not be found."))
	})
	return &API{handler: kit.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The mount point (http.StripPrefix) may leave an empty path.
		if r.URL.Path == "" {
			r.URL.Path = "/"
		}
		r.URL.RawPath = ""
		mux.ServeHTTP(w, r)
	}))}, nil
}

// rooms are the Block Storage API's resources.
func rooms(b *base) []room {
	return []room{
		&versionsHandler{base: b},
		&typesHandler{base: b},
		&limitsHandler{base: b},
		&zonesHandler{base: b},
		&quotasHandler{base: b},
		&servicesHandler{base: b},
	}
}

// ServeHTTP hands the request to the kit (request id, panic recovery in
// Cinder's shape, access log) and then to the routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Rules are the Block Storage API's policy defaults, Cinder's for the
// resources served: anyone reads the types and the zones, only admins see
// a type's extra specs and QoS specs id, and the project's readers see
// its usage in the limits.
var Rules = []policy.Rule{
	{Name: ruleTypeGet, Check: policy.Anyone, Description: "Get one specific volume type."},
	{Name: ruleTypeGetAll, Check: policy.Anyone, Description: "List volume types."},
	{Name: ruleTypeExtraSpecs, Check: policy.Admin, Description: "Include the volume type's extra_specs attribute in the volume type list or show requests."},
	{Name: ruleTypeQoSSpecsID, Check: policy.Admin, Description: "Include the volume type's QoS specifications ID attribute in the volume type list or show requests."},
	{Name: ruleUsedLimits, Check: policy.ProjectReaderOrAdmin, Description: "Show limits with used limit attributes."},
	{Name: ruleZoneList, Check: policy.Anyone, Description: "List availability zones."},
	{Name: ruleQuotasShow, Check: policy.ProjectReaderOrAdmin, Description: "Show project quota (including usage and default)."},
	{Name: ruleServicesIndex, Check: policy.Admin, Description: "List all services."},
}

const (
	ruleTypeGet        = "volume_extension:type_get"
	ruleTypeGetAll     = "volume_extension:type_get_all"
	ruleTypeExtraSpecs = "volume_extension:access_types_extra_specs"
	ruleTypeQoSSpecsID = "volume_extension:access_types_qos_specs_id"
	ruleUsedLimits     = "limits_extension:used_limits"
	ruleZoneList       = "volume_extension:availability_zone_list"
	ruleQuotasShow     = "volume_extension:quotas:show"
	ruleServicesIndex  = "volume_extension:services:index"
)
