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
	// Host is the API cell's host, where os-services shows its
	// cinder-scheduler.
	Host string
	// Cells gathers from the cells below (os-services); nil lists the
	// scheduler alone.
	Cells Gatherer
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
	// Calls reaches the volumes' cells for the attachments API's writes
	// (nil: they are not served); DownCells says which cells are down
	// (nil: none).
	Calls     Caller
	DownCells DownCells
	Zones     func(ctx context.Context) []string
	Now       func() time.Time
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
	if cfg.DB == nil || cfg.Types == nil || cfg.Quotas == nil || cfg.TypeUsage == nil || cfg.QuotaUsage == nil {
		return nil, errors.New("volume api: a database, the volume types and quotas and their usage are required")
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
	types := &typesHandler{base: b}
	return []room{
		&versionsHandler{base: b},
		types,
		&typeSpecsHandler{types: types},
		&typeAccessHandler{types: types},
		&quotaClassesHandler{base: b},
		&limitsHandler{base: b},
		&zonesHandler{base: b},
		&quotasHandler{base: b},
		&servicesHandler{base: b},
		&volumesHandler{base: b},
		&volumeActionsHandler{base: b},
		&volumeMetadataHandler{base: b},
		&snapshotsHandler{base: b},
		&attachmentsHandler{base: b},
	}
}

// ServeHTTP hands the request to the kit (request id, panic recovery in
// Cinder's shape, access log) and then to the routes.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// Rules are the Block Storage API's policy defaults, Cinder's for the
// resources served (its newest defaults, with Nova's personas: a system
// reader is an admin here): anyone reads the types and the zones, the
// project's readers see the user-visible extra specs and their usage in
// the limits, only admins manage types, their extra specs, access and
// quotas.
var Rules = append([]policy.Rule{
	{Name: ruleTypeGet, Check: policy.Anyone, Description: "Get one specific volume type."},
	{Name: ruleTypeGetAll, Check: policy.Anyone, Description: "List volume types."},
	{Name: ruleTypeCreate, Check: policy.Admin, Description: "Create volume type."},
	{Name: ruleTypeUpdate, Check: policy.Admin, Description: "Update volume type."},
	{Name: ruleTypeDelete, Check: policy.Admin, Description: "Delete volume type."},
	{Name: ruleTypeExtraSpecs, Check: policy.ProjectReaderOrAdmin, Description: "Include the volume type's extra_specs attribute in the volume type list or show requests."},
	{Name: ruleTypeQoSSpecsID, Check: policy.Admin, Description: "Include the volume type's QoS specifications ID attribute in the volume type list or show requests."},
	{Name: ruleSpecsIndex, Check: policy.ProjectReaderOrAdmin, Description: "List type extra specs."},
	{Name: ruleSpecsShow, Check: policy.ProjectReaderOrAdmin, Description: "Show one specified type extra specs."},
	{Name: ruleSpecsCreate, Check: policy.Admin, Description: "Create type extra specs."},
	{Name: ruleSpecsUpdate, Check: policy.Admin, Description: "Update type extra specs."},
	{Name: ruleSpecsDelete, Check: policy.Admin, Description: "Delete type extra specs."},
	{Name: ruleSpecsReadSensitive, Check: policy.Admin, Description: "Include extra_specs fields that may reveal sensitive information about the deployment that should not be exposed to end users in various volume-type responses that show extra_specs."},
	{Name: ruleTypeAccess, Check: policy.ProjectMemberOrAdmin, Description: "Volume type access related APIs: the os-volume-type-access:is_public attribute of the types."},
	{Name: ruleTypeAccessList, Check: policy.Admin, Description: "List private volume type access detail, that is, list the projects that have access to this volume type."},
	{Name: ruleTypeAccessAdd, Check: policy.Admin, Description: "Add volume type access for project."},
	{Name: ruleTypeAccessRemove, Check: policy.Admin, Description: "Remove volume type access for project."},
	{Name: ruleUsedLimits, Check: policy.ProjectReaderOrAdmin, Description: "Show limits with used limit attributes."},
	{Name: ruleZoneList, Check: policy.Anyone, Description: "List availability zones."},
	{Name: ruleQuotasShow, Check: policy.ProjectReaderOrAdmin, Description: "Show project quota (including usage and default)."},
	{Name: ruleQuotasUpdate, Check: policy.Admin, Description: "Update project quota."},
	{Name: ruleQuotasDelete, Check: policy.Admin, Description: "Delete project quota."},
	{Name: ruleQuotaClassGet, Check: policy.Admin, Description: "Show project quota class."},
	{Name: ruleQuotaClassUpdate, Check: policy.Admin, Description: "Update project quota class."},
	{Name: ruleServicesIndex, Check: policy.Admin, Description: "List all services."},
	{Name: ruleAttCreate, Check: policy.ProjectMemberOrAdmin, Description: "Create attachment."},
	{Name: ruleAttUpdate, Check: policy.ProjectMemberOrAdmin, Description: "Update attachment."},
	{Name: ruleAttDelete, Check: policy.ProjectMemberOrAdmin, Description: "Delete attachment."},
	{Name: ruleAttComplete, Check: policy.ProjectMemberOrAdmin, Description: "Mark a volume attachment process as completed (in-use)"},
}, volumeRules...)

const (
	ruleTypeGet            = "volume_extension:type_get"
	ruleTypeGetAll         = "volume_extension:type_get_all"
	ruleTypeCreate         = "volume_extension:type_create"
	ruleTypeUpdate         = "volume_extension:type_update"
	ruleTypeDelete         = "volume_extension:type_delete"
	ruleTypeExtraSpecs     = "volume_extension:access_types_extra_specs"
	ruleTypeQoSSpecsID     = "volume_extension:access_types_qos_specs_id"
	ruleSpecsIndex         = "volume_extension:types_extra_specs:index"
	ruleSpecsShow          = "volume_extension:types_extra_specs:show"
	ruleSpecsCreate        = "volume_extension:types_extra_specs:create"
	ruleSpecsUpdate        = "volume_extension:types_extra_specs:update"
	ruleSpecsDelete        = "volume_extension:types_extra_specs:delete"
	ruleSpecsReadSensitive = "volume_extension:types_extra_specs:read_sensitive"
	ruleTypeAccess         = "volume_extension:volume_type_access"
	ruleTypeAccessList     = "volume_extension:volume_type_access:get_all_for_type"
	ruleTypeAccessAdd      = "volume_extension:volume_type_access:addProjectAccess"
	ruleTypeAccessRemove   = "volume_extension:volume_type_access:removeProjectAccess"
	ruleUsedLimits         = "limits_extension:used_limits"
	ruleZoneList           = "volume_extension:availability_zone_list"
	ruleQuotasShow         = "volume_extension:quotas:show"
	ruleQuotasUpdate       = "volume_extension:quotas:update"
	ruleQuotasDelete       = "volume_extension:quotas:delete"
	ruleQuotaClassGet      = "volume_extension:quota_classes:get"
	ruleQuotaClassUpdate   = "volume_extension:quota_classes:update"
	ruleServicesIndex      = "volume_extension:services:index"
)
