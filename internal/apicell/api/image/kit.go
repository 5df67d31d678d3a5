package image

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
)

// The Image API is a set of rooms, one per resource: a handler type in its
// own file (images.go with list.go and patch.go, tags.go, data.go,
// schema.go, versions.go) that registers its routes in register. Adding a
// resource means adding a room and listing it in rooms (api.go). The
// scaffolding every API of the API cell shares is httpkit's. The rooms
// share only base, the Image API's own machinery: authentication and
// policy (auth), failing a request through the one error table
// (errors.go), the body's reading and checks (validate.go), the links
// (baseURL), and the stores: the image records (imagedb) and the data
// files (files.go).

// base is the machinery every room holds: the configuration, the logger,
// the kit and the two stores. It holds no resource's logic.
type base struct {
	cfg   Config
	log   *slog.Logger
	kit   *httpkit.Kit
	store *imagedb.Store
	files *fileStore
}

// room is one Image API resource.
type room interface {
	register(rt *router)
}

// router is what a room registers its routes on.
type router struct {
	mux  *http.ServeMux
	base *base
}

// handle routes pattern to h behind authentication and the read or write
// rule.
func (rt *router) handle(pattern string, h http.HandlerFunc) {
	rt.mux.HandleFunc(pattern, rt.base.auth(h))
}

// ctxKey is the type of the Image API's own context key: the mount
// prefix (see baseURL). The request id and the caller are httpkit's.
type ctxKey int

const keyPrefix ctxKey = 0

// auth authenticates the caller from the X-Auth-Token and checks the
// read or write rule.
func (b *base) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := b.kit.Authenticate(r, b.cfg.Auth, b.cfg.Policy)
		if err != nil {
			b.fail(w, r, err)
			return
		}
		rule := httpkit.RuleFor(r, "image:read", "image:write")
		if !c.Allowed(b.cfg.Policy, rule) {
			b.writeError(w, errorf(http.StatusForbidden, "You are not authorized to complete %s action.", rule))
			return
		}
		h(w, r.WithContext(httpkit.WithCaller(r.Context(), c)))
	}
}

// writeError writes e with its headers in Glance's shape.
func (b *base) writeError(w http.ResponseWriter, e *httpkit.Fault) { b.kit.Write(w, e) }

// fail answers err: a *httpkit.Fault as it says, an error the table
// (errors.go) maps as it says, anything else as a 500 that is logged.
func (b *base) fail(w http.ResponseWriter, r *http.Request, err error) { b.kit.Fail(w, r, err) }

// baseURL is the scheme, host and mount prefix the client used: the part
// of the request URI before the path this handler sees (http.StripPrefix
// keeps RequestURI whole).
func baseURL(r *http.Request) string {
	prefix, _ := r.Context().Value(keyPrefix).(string)
	return httpkit.Origin(r) + prefix
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
