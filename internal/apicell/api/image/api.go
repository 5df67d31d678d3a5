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
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Auth validates the callers' tokens; Policy holds Rules.
	Auth   authn.Authenticator
	Policy *policy.Enforcer
}

// API is the Image API handler.
type API struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	kit *httpkit.Kit
	// handler is mux behind the kit's scaffolding.
	handler http.Handler
	store   *imagedb.Store
	files   *fileStore
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
	a := &API{
		cfg:   cfg,
		log:   log,
		mux:   http.NewServeMux(),
		kit:   kit,
		store: &imagedb.Store{Now: cfg.Now},
		files: files,
	}
	a.handler = kit.Wrap(http.HandlerFunc(a.route))
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := a.recoverStore(ctx); err != nil {
		return nil, fmt.Errorf("image api: recover: %w", err)
	}
	a.routes()
	return a, nil
}

func (a *API) routes() {
	a.mux.HandleFunc("GET /v2/images", a.auth(a.listImages))
	a.mux.HandleFunc("POST /v2/images", a.auth(a.createImage))
	a.mux.HandleFunc("GET /v2/images/{id}", a.auth(a.showImage))
	a.mux.HandleFunc("PATCH /v2/images/{id}", a.auth(a.updateImage))
	a.mux.HandleFunc("DELETE /v2/images/{id}", a.auth(a.deleteImage))
	a.mux.HandleFunc("PUT /v2/images/{id}/file", a.auth(a.uploadData))
	a.mux.HandleFunc("GET /v2/images/{id}/file", a.auth(a.downloadData))
	a.mux.HandleFunc("PUT /v2/images/{id}/tags/{tag}", a.auth(a.addTag))
	a.mux.HandleFunc("DELETE /v2/images/{id}/tags/{tag}", a.auth(a.deleteTag))
	a.mux.HandleFunc("GET /v2/schemas/image", a.auth(a.imageSchema))
	a.mux.HandleFunc("GET /v2/schemas/images", a.auth(a.imagesSchema))
	a.mux.HandleFunc("GET /v2/info/import", a.auth(a.importInfo))
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
		a.versions(http.StatusOK)(w, r)
		return
	case urlVersions[seg]:
		if seg != "v2" {
			r.URL.Path = "/v2/" + rest
			r.URL.RawPath = ""
		}
	default:
		a.versions(http.StatusMultipleChoices)(w, r)
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		if allow := a.allowed(r); len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			a.writeError(w, errorf(http.StatusMethodNotAllowed, "The method %s is not allowed for this resource.", r.Method))
			return
		}
		a.writeError(w, errorf(http.StatusNotFound, "The resource could not be found."))
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

// ctxKey is the type of the Image API's own context key: the mount
// prefix (see baseURL). The request id and the caller are httpkit's.
type ctxKey int

const keyPrefix ctxKey = 0

// Rules are the Image API's policy defaults: readers read, members write,
// on their own project's images (Glance's finer rules are not split out).
var Rules = []policy.Rule{
	{Name: "image:read", Check: policy.ProjectReaderOrAdmin, Description: "Any GET of the Image API."},
	{Name: "image:write", Check: policy.ProjectMemberOrAdmin, Description: "Any other request of the Image API."},
}

// auth authenticates the caller from the X-Auth-Token and checks the
// read or write rule.
func (a *API) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := a.kit.Authenticate(r, a.cfg.Auth, a.cfg.Policy)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		rule := httpkit.RuleFor(r, "image:read", "image:write")
		if !c.Allowed(a.cfg.Policy, rule) {
			a.writeError(w, errorf(http.StatusForbidden, "You are not authorized to complete %s action.", rule))
			return
		}
		h(w, r.WithContext(httpkit.WithCaller(r.Context(), c)))
	}
}

func errorf(status int, format string, args ...any) *httpkit.Fault {
	return httpkit.Errorf(status, format, args...)
}

// errorTable is the Image API's errors as data: the authentication
// failures (the handlers turn the store's errors into faults themselves,
// since Glance's messages name the image).
var errorTable = httpkit.Table{
	{Err: authn.ErrUnauthorized, Status: http.StatusUnauthorized, Message: "This server could not verify that you are authorized to access the document you requested."},
	{Err: httpkit.ErrIdentityUnavailable, Status: http.StatusServiceUnavailable, Message: "The identity service could not validate the token; try again later."},
}

// glanceFault writes Glance's JSON error shape (webob's):
// {"message": "...", "code": "404 Not Found", "title": "Not Found"}.
func glanceFault(w http.ResponseWriter, e *httpkit.Fault) {
	title := http.StatusText(e.Status)
	httpkit.WriteMarshal(w, e.Status, map[string]any{"message": e.Message, "code": fmt.Sprintf("%d %s", e.Status, title), "title": title})
}

// writeError writes e with its headers in Glance's shape.
func (a *API) writeError(w http.ResponseWriter, e *httpkit.Fault) { a.kit.Write(w, e) }

// fail answers err: a *httpkit.Fault as it says, anything else as a 500
// that is logged.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) { a.kit.Fail(w, r, err) }

// baseURL is the scheme, host and mount prefix the client used: the part
// of the request URI before the path this handler sees (http.StripPrefix
// keeps RequestURI whole).
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	prefix, _ := r.Context().Value(keyPrefix).(string)
	return scheme + "://" + r.Host + prefix
}

// mountPrefix is what a StripPrefix in front of the handler took away.
func mountPrefix(r *http.Request) string {
	orig, _, _ := strings.Cut(r.RequestURI, "?")
	if strings.HasPrefix(orig, "http://") || strings.HasPrefix(orig, "https://") {
		return ""
	}
	for _, p := range []string{r.URL.EscapedPath(), r.URL.Path} {
		if p != "" && p != "/" && strings.HasSuffix(orig, p) {
			return strings.TrimSuffix(orig, p)
		}
	}
	if r.URL.Path == "/" || r.URL.Path == "" {
		return strings.TrimSuffix(orig, "/")
	}
	return ""
}
