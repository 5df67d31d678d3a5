package image

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// DefaultMaxImageSize bounds an upload: Glance's image_size_cap (1 TiB).
const DefaultMaxImageSize int64 = 1 << 40

// Config configures the Image API.
type Config struct {
	// DB is the API cell's database. New runs the "image" migrations on it.
	DB *db.DB
	// StoreDir is the directory that holds image data, one file per image.
	// It is created if missing. It belongs to one API process.
	StoreDir string
	// Cell is the API cell's path, for logs (optional).
	Cell   string
	Logger *slog.Logger
	// MaxImageSize bounds an upload in bytes; 0 means DefaultMaxImageSize.
	MaxImageSize int64
	// StorageQuota, when positive, is the bytes of image data one
	// project's images may hold together (Glance's user_storage_quota);
	// 0 is no quota.
	StorageQuota int64
	// CountQuota, when positive, is how many images one project may own
	// (Glance's image_count_total limit); 0 is no quota.
	CountQuota int64
	// DataTimeout, when positive, is how long an upload or a download of
	// image data may take: it replaces the HTTP server's read and write
	// deadlines of those requests (which are short for the other routes)
	// once the caller may upload or download.
	DataTimeout time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Auth validates the callers' tokens; Policy holds Rules.
	Auth   authn.Authenticator
	Policy *policy.Enforcer
}

// API is the Image API handler: the router that the rooms (kit.go)
// register their routes on, behind the shared kit (httpkit); and the
// image store the node seeds and a snapshot fills (seed.go, snapshot.go).
type API struct {
	b   *base
	mux *http.ServeMux
	// handler is mux behind the kit's scaffolding.
	handler http.Handler
	// versions answers the versions document, which no route names.
	versions *versionsHandler
}

// startTimeout bounds the recovery New runs.
const startTimeout = 60 * time.Second

// New validates cfg (whose DB has imagedb's migrations), prepares the file store
// and recovers from a previous process's unfinished uploads: images left
// saving go back to queued, and data files no active image owns (partial
// uploads, data of images deleted just before a stop) are removed.
func New(cfg Config) (*API, error) {
	if cfg.DB == nil || cfg.StoreDir == "" || cfg.Auth == nil || cfg.Policy == nil {
		return nil, errors.New("image api: database, store directory, authenticator and policy are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxImageSize <= 0 {
		cfg.MaxImageSize = DefaultMaxImageSize
	}
	files, err := newFileStore(cfg.StoreDir)
	if err != nil {
		return nil, fmt.Errorf("image api: %w", err)
	}
	log := cfg.Logger.With("role", "api", "api", "image")
	if cfg.Cell != "" {
		log = log.With("cell", cfg.Cell)
	}
	kit, err := httpkit.New(httpkit.Config{
		Logger:   log,
		Shape:    glanceFault,
		Internal: httpkit.Fault{Status: http.StatusInternalServerError, Message: "Internal server error"},
		Table:    errorTable,
	})
	if err != nil {
		return nil, fmt.Errorf("image api: %w", err)
	}
	b := &base{cfg: cfg, log: log, kit: kit, store: &imagedb.Store{Now: cfg.Now}, files: files}
	a := &API{b: b, mux: http.NewServeMux(), versions: &versionsHandler{base: b}}
	a.handler = kit.Wrap(http.HandlerFunc(a.route))
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := a.recoverStore(ctx); err != nil {
		return nil, fmt.Errorf("image api: recover: %w", err)
	}
	rt := &router{mux: a.mux, base: b}
	for _, rm := range rooms(b, a.versions) {
		rm.register(rt)
	}
	return a, nil
}

// rooms are the Image API's resources, wired to the few others each uses.
func rooms(b *base, versions *versionsHandler) []room {
	images := &imagesHandler{base: b}
	return []room{
		versions,
		images,
		&tagsHandler{base: b, images: images},
		&dataHandler{base: b, images: images},
		&schemasHandler{base: b},
	}
}

// urlVersions are the version segments a URL may start with (Glance's
// version negotiation): each means the v2 API.
var urlVersions = map[string]bool{"v2": true, "v2.0": true, "v2.1": true, "v2.2": true, "v2.3": true, "v2.4": true,
	"v2.5": true, "v2.6": true, "v2.7": true}

// ServeHTTP hands the request to the kit (request id, panic recovery in
// Glance's shape, access log) and then to route.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// route negotiates the version from the URL as Glance does (/versions gets
// the versions document, and so does, with 300 Multiple Choices, any path
// whose first segment names no version) and serves the request.
func (a *API) route(w http.ResponseWriter, r *http.Request) {
	r = r.WithContext(context.WithValue(r.Context(), keyPrefix, mountPrefix(r)))
	seg, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case seg == "versions":
		a.versions.versions(http.StatusOK)(w, r)
		return
	case urlVersions[seg]:
		if seg != "v2" {
			r.URL.Path = "/v2/" + rest
			r.URL.RawPath = ""
		}
	default:
		a.versions.versions(http.StatusMultipleChoices)(w, r)
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		if allow := a.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			a.b.writeError(w, errorf(http.StatusMethodNotAllowed, "The method %s is not allowed for this resource.", r.Method))
			return
		}
		a.b.writeError(w, errorf(http.StatusNotFound, "The resource could not be found."))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// allowed lists the methods the path answers to.
func (a *API) allowed(r *http.Request) []string {
	var out []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := a.mux.Handler(r2); p != "" {
			out = append(out, m)
		}
	}
	return out
}

// Rules are the Image API's policy defaults: readers read, members write,
// on their own project's images (Glance's finer rules are not split out).
var Rules = []policy.Rule{
	{Name: "image:read", Check: policy.ProjectReaderOrAdmin, Description: "Any GET of the Image API."},
	{Name: "image:write", Check: policy.ProjectMemberOrAdmin, Description: "Any other request of the Image API."},
}
