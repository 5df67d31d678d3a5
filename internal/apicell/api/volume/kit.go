package volume

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
)

// The Block Storage API is a set of rooms, one per resource: a handler
// type in its own file (versions.go, types.go, limits.go, zones.go) that
// registers its routes in register. Adding a resource means adding a room
// and listing it in rooms (api.go). The rooms share only base: the
// configuration, the kit (request ids, the one error table, Cinder's fault
// body) and the gate every /v3 route goes through (router.handle).

// base is the machinery every room holds. It holds no resource's logic.
type base struct {
	cfg Config
	log *slog.Logger
	kit *httpkit.Kit
}

// room is one Block Storage API resource.
type room interface {
	register(rt *router)
}

// router is what a room registers its routes on.
type router struct {
	mux  *http.ServeMux
	base *base
}

// handle routes pattern (which names {project_id}) to h behind Cinder's
// gate, in its order: authentication (keystonemiddleware's, before
// anything of Cinder's), the microversion, the project of the path
// against the token's, then rule ("" for a route whose handler checks its
// rules itself).
func (rt *router) handle(pattern, rule string, h http.HandlerFunc) {
	b := rt.base
	rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, err := b.kit.Authenticate(r, b.cfg.Auth, b.cfg.Policy)
		if err != nil {
			b.fail(w, r, err)
			return
		}
		ctx := httpkit.WithCaller(r.Context(), c)
		v, ok := b.negotiate(w, r)
		if !ok {
			return
		}
		if pid := r.PathValue("project_id"); pid != c.ProjectID {
			b.fail(w, r, fault(http.StatusBadRequest, "Malformed request url"))
			return
		}
		if rule != "" && !c.Allowed(b.cfg.Policy, rule) {
			b.fail(w, r, forbidden(rule))
			return
		}
		h(w, r.WithContext(withVersion(ctx, v)))
	})
}

// open routes pattern to h with no authentication (the version
// documents); versioned says whether it is under /v3, where the
// microversion is negotiated.
func (rt *router) open(pattern string, versioned bool, h http.HandlerFunc) {
	b := rt.base
	rt.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if versioned {
			v, ok := b.negotiate(w, r)
			if !ok {
				return
			}
			r = r.WithContext(withVersion(r.Context(), v))
		}
		h(w, r)
	})
}

// negotiate sets the answer's version headers for r's microversion, or
// answers the 400 or 406 of a version it cannot serve. Vary is on both:
// the answer depends on the header either way.
func (b *base) negotiate(w http.ResponseWriter, r *http.Request) (version, bool) {
	w.Header().Set("Vary", versionHeader)
	v, err := negotiate(r.Header)
	if err != nil {
		b.fail(w, r, err)
		return version{}, false
	}
	w.Header().Set(versionHeader, "volume "+v.String())
	return v, true
}

// faultNames are the keys of Cinder's fault body by status
// (cinder/api/openstack/wsgi.py Fault); any other status is a
// computeFault.
var faultNames = map[int]string{
	http.StatusBadRequest:            "badRequest",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "itemNotFound",
	http.StatusMethodNotAllowed:      "badMethod",
	http.StatusConflict:              "conflictingRequest",
	http.StatusRequestEntityTooLarge: "overLimit",
	http.StatusUnsupportedMediaType:  "badMediaType",
	http.StatusNotImplemented:        "notImplemented",
	http.StatusServiceUnavailable:    "serviceUnavailable",
}

// cinderFault writes Cinder's fault body: {"<name>": {"code", "message"}}.
func cinderFault(w http.ResponseWriter, f *httpkit.Fault) {
	name, ok := faultNames[f.Status]
	if !ok {
		name = "computeFault"
	}
	httpkit.WriteJSON(w, f.Status, map[string]any{name: map[string]any{"code": f.Status, "message": f.Message}})
}

// fault is a refusal decided here.
func fault(status int, msg string) *httpkit.Fault {
	return &httpkit.Fault{Status: status, Message: msg}
}

// forbidden is Cinder's PolicyNotAuthorized.
func forbidden(rule string) error {
	return fault(http.StatusForbidden, fmt.Sprintf("Policy doesn't allow %s to be performed.", rule))
}

func notFound(format string, args ...any) error {
	return fault(http.StatusNotFound, fmt.Sprintf(format, args...))
}

const internalError = "The server has either erred or is incapable of performing the requested operation."

// errorTable is the Block Storage API's errors as data.
var errorTable = httpkit.Table{
	{Err: authn.ErrUnauthorized, Status: http.StatusUnauthorized, Message: "The request you have made requires authentication."},
	{Err: httpkit.ErrIdentityUnavailable, Status: http.StatusServiceUnavailable, Message: "The identity service could not validate the token; try again later."},
}

// fail answers with err: the one place where errors become faults.
func (b *base) fail(w http.ResponseWriter, r *http.Request, err error) { b.kit.Fail(w, r, err) }

// baseURL is the scheme, host and mount prefix the client used, e.g.
// "http://host/volume".
func baseURL(r *http.Request) string {
	return httpkit.Origin(r) + mountPrefix(r)
}

// mountPrefix is what http.StripPrefix took off the path: the request
// line's path less the path the handler sees.
func mountPrefix(r *http.Request) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if r.RequestURI == "" || err != nil {
		return ""
	}
	if r.URL.Path == "/" && !strings.HasSuffix(u.Path, "/") {
		return u.Path
	}
	prefix, _ := strings.CutSuffix(u.Path, r.URL.Path)
	if prefix == u.Path {
		return ""
	}
	return prefix
}
