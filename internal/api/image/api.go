package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/imagedb"

	"github.com/cellcloud/cellcloud/internal/api/authn"
	"github.com/cellcloud/cellcloud/internal/policy"
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
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	store *imagedb.Store
	files *fileStore
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
	a := &API{
		cfg:   cfg,
		log:   log,
		mux:   http.NewServeMux(),
		store: &imagedb.Store{Now: cfg.Now},
		files: files,
	}
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

// ServeHTTP sets the request id, recovers from panics, negotiates the
// version from the URL as Glance does (/versions gets the versions
// document, and so does, with 300 Multiple Choices, any path whose first
// segment names no version) and logs each request.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := "req-" + uuid.NewString()
	w.Header().Set("X-Openstack-Request-Id", rid)
	ctx := context.WithValue(r.Context(), keyRequestID, rid)
	r = r.WithContext(context.WithValue(ctx, keyPrefix, mountPrefix(r)))
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	defer func() {
		if p := recover(); p != nil {
			a.log.Error("panic serving a request", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, &apiError{status: http.StatusInternalServerError, msg: "Internal server error"})
			}
		}
		a.log.Info("request", "request_id", rid, "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"dur", time.Since(start).Round(time.Microsecond))
	}()
	seg, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	switch {
	case seg == "versions":
		a.versions(http.StatusOK)(rec, r)
		return
	case urlVersions[seg]:
		if seg != "v2" {
			r.URL.Path = "/v2/" + rest
			r.URL.RawPath = ""
		}
	default:
		a.versions(http.StatusMultipleChoices)(rec, r)
		return
	}
	if _, pattern := a.mux.Handler(r); pattern == "" {
		if allow := a.allowed(r); len(allow) > 0 {
			rec.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(rec, errorf(http.StatusMethodNotAllowed, "The method %s is not allowed for this resource.", r.Method))
			return
		}
		writeError(rec, errorf(http.StatusNotFound, "The resource could not be found."))
		return
	}
	a.mux.ServeHTTP(rec, r)
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

type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type ctxKey int

const (
	keyRequestID ctxKey = iota
	keyCaller
	keyPrefix
)

func requestID(ctx context.Context) string {
	s, _ := ctx.Value(keyRequestID).(string)
	return s
}

// principal is who is calling.
type principal struct {
	UserID, ProjectID string
	Admin             bool
}

func caller(ctx context.Context) principal {
	c, _ := ctx.Value(keyCaller).(principal)
	return c
}

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
		who, err := a.cfg.Auth.Authenticate(r.Context(), authn.Token(r))
		if errors.Is(err, authn.ErrUnauthorized) || (err == nil && who.ProjectID == "") {
			writeError(w, errorf(http.StatusUnauthorized, "This server could not verify that you are authorized to access the document you requested."))
			return
		}
		if err != nil {
			a.log.Error("authenticating a request", "request_id", requestID(r.Context()), "err", err)
			writeError(w, errorf(http.StatusServiceUnavailable, "The identity service could not validate the token; try again later."))
			return
		}
		rule := "image:write"
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			rule = "image:read"
		}
		creds, target := who.Credentials(), policy.Target{"project_id": who.ProjectID, "user_id": who.UserID}
		if !a.cfg.Policy.Allowed(rule, creds, target) {
			writeError(w, errorf(http.StatusForbidden, "You are not authorized to complete %s action.", rule))
			return
		}
		c := principal{UserID: who.UserID, ProjectID: who.ProjectID, Admin: a.cfg.Policy.Allowed("context_is_admin", creds, target)}
		h(w, r.WithContext(context.WithValue(r.Context(), keyCaller, c)))
	}
}

// apiError is an error answered with a status and message (a webob HTTP
// exception in Glance).
type apiError struct {
	status int
	msg    string
	header http.Header
}

func (e *apiError) Error() string { return e.msg }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, msg: fmt.Sprintf(format, args...)}
}

// writeError writes Glance's JSON error shape (webob's):
// {"message": "...", "code": "404 Not Found", "title": "Not Found"}.
func writeError(w http.ResponseWriter, e *apiError) {
	for k, vs := range e.header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	title := http.StatusText(e.status)
	writeJSON(w, e.status, map[string]any{"message": e.msg, "code": fmt.Sprintf("%d %s", e.status, title), "title": title})
}

// fail answers err: an *apiError as it says, anything else as a 500 that
// is logged.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae)
		return
	}
	a.log.Error("request failed", "request_id", requestID(r.Context()), "err", err)
	writeError(w, errorf(http.StatusInternalServerError, "Internal server error"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

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
