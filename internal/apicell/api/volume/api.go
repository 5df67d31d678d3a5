package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db"
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

	// DB is the API cell's database.
	DB *db.DB
	// Types are the volume types and Quotas the volume quota limits
	// (both package voltypes); TypeUsage and QuotaUsage say what the
	// volumes use of them (package voldb).
	Types      TypeManager
	Quotas     QuotaManager
	TypeUsage  TypeUsage
	QuotaUsage QuotaUsage

	// The volumes and snapshots are served when DB, Types and Sender are
	// set (voldb's and apidb's migrations in DB). Sender is the outbox
	// their messages go through; Images the image store (nil: no volume
	// from or to an image); Zones the storage zones the cells report
	// besides StorageZone (nil: none); Now the clock (default time.Now).
	// Without Quotas there are no limits.
	Sender Sender
	Images Images
	Zones  func(ctx context.Context) []string
	Now    func() time.Time
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
	if cfg.Now == nil {
		cfg.Now = time.Now
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
		&volumesHandler{base: b},
		&volumeActionsHandler{base: b},
		&volumeMetadataHandler{base: b},
		&snapshotsHandler{base: b},
	}
}

// ServeHTTP hands the request to the kit (request id, panic recovery in
// Cinder's shape, access log) and then to the routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Rules are the Block Storage API's policy defaults, Cinder's for the
// resources served: anyone reads the types and the zones, only admins see
// a type's extra specs and QoS specs id, and the project's readers see
// its usage in the limits.
var Rules = append([]policy.Rule{
	{Name: ruleTypeGet, Check: policy.Anyone, Description: "Get one specific volume type."},
	{Name: ruleTypeGetAll, Check: policy.Anyone, Description: "List volume types."},
	{Name: ruleTypeExtraSpecs, Check: policy.Admin, Description: "Include the volume type's extra_specs attribute in the volume type list or show requests."},
	{Name: ruleTypeQoSSpecsID, Check: policy.Admin, Description: "Include the volume type's QoS specifications ID attribute in the volume type list or show requests."},
	{Name: ruleUsedLimits, Check: policy.ProjectReaderOrAdmin, Description: "Show limits with used limit attributes."},
	{Name: ruleZoneList, Check: policy.Anyone, Description: "List availability zones."},
	{Name: ruleQuotasShow, Check: policy.ProjectReaderOrAdmin, Description: "Show project quota (including usage and default)."},
}, volumeRules...)

const (
	ruleTypeGet        = "volume_extension:type_get"
	ruleTypeGetAll     = "volume_extension:type_get_all"
	ruleTypeExtraSpecs = "volume_extension:access_types_extra_specs"
	ruleTypeQoSSpecsID = "volume_extension:access_types_qos_specs_id"
	ruleUsedLimits     = "limits_extension:used_limits"
	ruleZoneList       = "volume_extension:availability_zone_list"
	ruleQuotasShow     = "volume_extension:quotas:show"
)
