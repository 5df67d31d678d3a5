package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
)

// The Networking API is a set of rooms, one per resource: a handler type
// in its own file (networks.go, subnets.go, ports.go, quotas.go,
// extensions.go, versions.go) that registers its routes in register.
// Adding a resource means adding a room and listing it in rooms (api.go).
// The scaffolding every API of the API cell shares is httpkit's. The rooms
// share only base, the Networking API's own machinery: authentication and
// policy (auth), failing a request through the one error table
// (errorTable, fail), the body's reading (decodeBody, noBody, attrs.go),
// the links (baseURL) and the lists' filters, sorting and paging
// (query.go).

// base is the machinery every room holds: the configuration, the logger
// and the kit. It holds no resource's logic.
type base struct {
	cfg Config
	log *slog.Logger
	kit *httpkit.Kit
}

// room is one Networking API resource.
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

// open routes pattern to h with no authentication (the versions
// document).
func (rt *router) open(pattern string, h http.HandlerFunc) {
	rt.mux.HandleFunc(pattern, h)
}

// auth authenticates the caller from the X-Auth-Token and checks the read
// or write rule.
func (b *base) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := b.kit.Authenticate(r, b.cfg.Auth, b.cfg.Policy)
		if err != nil {
			b.fail(w, r, err)
			return
		}
		rule := httpkit.RuleFor(r, "network:read", "network:write")
		if !c.Allowed(b.cfg.Policy, rule) {
			writeError(w, http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("(rule:%s) is disallowed by policy", rule))
			return
		}
		h(w, r.WithContext(httpkit.WithCaller(r.Context(), c)))
	}
}

const internalError = "Request Failed: internal server error while processing your request."

// neutronFault writes Neutron's error shape:
// {"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}.
func neutronFault(w http.ResponseWriter, f *httpkit.Fault) {
	httpkit.WriteJSON(w, f.Status, map[string]any{"NeutronError": map[string]any{"type": f.Type, "message": f.Message, "detail": ""}})
}

// writeError writes Neutron's error shape.
func writeError(w http.ResponseWriter, status int, typ, msg string) {
	neutronFault(w, fault(status, typ, msg))
}

// fault is a refusal decided here: a status and Neutron's fault type.
func fault(status int, typ, msg string) *httpkit.Fault {
	return &httpkit.Fault{Status: status, Type: typ, Message: msg}
}

func badRequest(format string, args ...any) error {
	return fault(http.StatusBadRequest, "HTTPBadRequest", fmt.Sprintf(format, args...))
}

// badAttr is a failed conversion or validation of attribute attr.
func badAttr(typ, attr, reason string) error {
	return fault(http.StatusBadRequest, typ, fmt.Sprintf("Invalid input for %s. Reason: %s.", attr, reason))
}

func forbidden(action string) error {
	return fault(http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("rule:%s is disallowed by policy", action))
}

// errorTable is the Networking API's errors as data: the authentication
// failures, then netdb's kinds of failure, each answered with the fault
// type and message its *netdb.Error names.
var errorTable = httpkit.Table{
	{Err: authn.ErrUnauthorized, Status: http.StatusUnauthorized, Type: "HTTPUnauthorized", Message: "The request you have made requires authentication."},
	{Err: httpkit.ErrIdentityUnavailable, Status: http.StatusServiceUnavailable, Type: "HTTPServiceUnavailable", Message: "The identity service could not validate the token; try again later."},
	{Err: netdb.ErrNotFound, Status: http.StatusNotFound, Detail: netdbDetail},
	{Err: netdb.ErrInUse, Status: http.StatusConflict, Detail: netdbDetail},
	{Err: netdb.ErrConflict, Status: http.StatusConflict, Detail: netdbDetail},
	{Err: netdb.ErrOverQuota, Status: http.StatusConflict, Detail: netdbDetail},
	{Err: netdb.ErrInvalid, Status: http.StatusBadRequest, Detail: netdbDetail},
	{Err: netdb.ErrPrecondition, Status: http.StatusPreconditionFailed, Detail: netdbDetail},
	{Err: netdb.ErrUnavailable, Status: http.StatusServiceUnavailable, Detail: netdbDetail},
}

// netdbDetail is the fault type and message a *netdb.Error names; a kind
// that no *netdb.Error carries is no fault of netdb's.
func netdbDetail(err error) (typ, msg string, ok bool) {
	var ne *netdb.Error
	if !errors.As(err, &ne) {
		return "", "", false
	}
	return ne.Code, ne.Message, true
}

// fail answers with err: the one place where errors become faults.
func (b *base) fail(w http.ResponseWriter, r *http.Request, err error) { b.kit.Fail(w, r, err) }

// baseURL is the scheme, host and mount prefix the client used, e.g.
// "http://host/networking".
func baseURL(r *http.Request) string {
	return httpkit.Origin(r) + mountPrefix(r)
}

// mountPrefix is what http.StripPrefix took off the path: the request
// line's path less the path the handler sees.
func mountPrefix(r *http.Request) string {
	if r.RequestURI == "" {
		return ""
	}
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return ""
	}
	orig := u.Path
	// ServeHTTP may have dropped a ".json" suffix or turned "" into "/".
	orig = strings.TrimSuffix(orig, ".json")
	p := r.URL.Path
	if p == "/" && !strings.HasSuffix(orig, "/") {
		return orig
	}
	if prefix, ok := strings.CutSuffix(orig, p); ok {
		return prefix
	}
	return ""
}

// decodeBody reads the body of a create or update of resource: an object
// with the resource's key holding an object. Bulk requests (the plural
// key) are refused.
func decodeBody(w http.ResponseWriter, r *http.Request, resource string) (map[string]json.RawMessage, error) {
	bodies, _, err := decodeBodies(w, r, resource, false)
	if err != nil {
		return nil, err
	}
	return bodies[0], nil
}

// decodeBodies is decodeBody for a create that may be a bulk one (when
// bulk is true): {"<resource>s": [{...}, ...]} gives one body per item,
// and isBulk says that the request was one.
func decodeBodies(w http.ResponseWriter, r *http.Request, resource string, bulk bool) (_ []map[string]json.RawMessage, isBulk bool, err error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&top); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, false, fault(http.StatusRequestEntityTooLarge, "HTTPRequestEntityTooLarge", "Request is too large.")
		}
		if errors.Is(err, io.EOF) {
			return nil, false, badRequest("Resource body required")
		}
		return nil, false, badRequest("Body contains invalid data")
	}
	if dec.More() {
		return nil, false, badRequest("Body contains invalid data")
	}
	if len(top) == 0 {
		return nil, false, badRequest("Resource body required")
	}
	if raw, ok := top[resource+"s"]; ok {
		if !bulk {
			return nil, false, badRequest("Bulk operation not supported")
		}
		var items []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, false, badRequest("Object '%ss' contains invalid data", resource)
		}
		if len(items) == 0 {
			return nil, false, badRequest("Resources required")
		}
		for _, it := range items {
			if it == nil {
				return nil, false, badRequest("Object '%ss' contains invalid data", resource)
			}
		}
		return items, true, nil
	}
	raw, ok := top[resource]
	if !ok || string(raw) == "null" {
		return nil, false, badRequest("Unable to find '%s' in request body", resource)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		return nil, false, badRequest("Object '%s' contains invalid data", resource)
	}
	if body == nil {
		body = map[string]json.RawMessage{}
	}
	return []map[string]json.RawMessage{body}, false, nil
}

// ifMatchRevision is the revision an update or delete is constrained to by
// an If-Match "revision_number=N" entity tag (Neutron's revision-if-match),
// nil when none is given. Other entity tags are ignored, as Neutron does.
func ifMatchRevision(r *http.Request) (*int64, error) {
	var rev *int64
	for _, h := range r.Header.Values("If-Match") {
		for _, tag := range entityTags(h) {
			v, ok := strings.CutPrefix(tag, "revision_number=")
			if !ok {
				continue
			}
			if rev != nil {
				return nil, fault(http.StatusBadRequest, "BadRequest", "Bad if-match request: Multiple revision_number etags are not supported.")
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return nil, fault(http.StatusBadRequest, "BadRequest", "Bad if-match request: Revision number etag must be in the format of revision_number=<int>")
			}
			rev = &n
		}
	}
	return rev, nil
}

// entityTags splits an If-Match value as webob does: its quoted tags (weak
// or not), or else the whole value as one tag (gophercloud sends
// revision_number=N unquoted).
func entityTags(h string) []string {
	h = strings.TrimSpace(h)
	if h == "" || h == "*" {
		return nil
	}
	var tags []string
	rest := h
	for {
		i := strings.IndexByte(rest, '"')
		if i < 0 {
			break
		}
		j := strings.IndexByte(rest[i+1:], '"')
		if j < 0 {
			break
		}
		tags = append(tags, rest[i+1:i+1+j])
		rest = rest[i+1+j+1:]
	}
	if len(tags) == 0 {
		return []string{h}
	}
	return tags
}

// noBody refuses a DELETE with a body, as Neutron does.
func noBody(r *http.Request) error {
	var b [1]byte
	if n, _ := io.ReadFull(r.Body, b[:]); n > 0 {
		return badRequest("Request body is not supported in DELETE.")
	}
	return nil
}
