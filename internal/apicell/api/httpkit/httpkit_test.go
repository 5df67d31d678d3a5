package httpkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// computeShape is the Compute API's fault body, as a sample shape.
func computeShape(w http.ResponseWriter, f *httpkit.Fault) {
	name := map[int]string{404: "itemNotFound", 409: "conflictingRequest", 500: "computeFault"}[f.Status]
	httpkit.WriteJSON(w, f.Status, map[string]any{name: map[string]any{"code": f.Status, "message": f.Message}})
}

// newKit is a kit in the Compute API's shape that logs as JSON to buf.
func newKit(t *testing.T, buf *bytes.Buffer, table httpkit.Table) *httpkit.Kit {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(buf, nil)).With("cell", "api")
	k, err := httpkit.New(httpkit.Config{
		Logger:           log,
		RequestIDHeaders: []string{"X-Openstack-Request-Id", "X-Compute-Request-Id"},
		Shape:            computeShape,
		Internal:         httpkit.Fault{Status: http.StatusInternalServerError, Message: "Unexpected API Error."},
		Table:            table,
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// logLines are the JSON log records in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewRequiresShapeAndInternal(t *testing.T) {
	if _, err := httpkit.New(httpkit.Config{Internal: httpkit.Fault{Status: 500}}); err == nil {
		t.Error("a kit without a shape was accepted")
	}
	if _, err := httpkit.New(httpkit.Config{Shape: computeShape}); err == nil {
		t.Error("a kit without an internal fault was accepted")
	}
}

func TestRequestIDEchoedAndLogged(t *testing.T) {
	var buf bytes.Buffer
	k := newKit(t, &buf, nil)
	var seen string
	h := k.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = httpkit.RequestID(r.Context())
		w.WriteHeader(http.StatusAccepted)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v2.1/servers", nil))

	rid := rec.Header().Get("X-Openstack-Request-Id")
	if !regexp.MustCompile(`^req-[0-9a-f-]{36}$`).MatchString(rid) {
		t.Fatalf("request id %q", rid)
	}
	if got := rec.Header().Get("X-Compute-Request-Id"); got != rid {
		t.Errorf("X-Compute-Request-Id %q, want %q", got, rid)
	}
	if seen != rid {
		t.Errorf("the handler saw request id %q, the client %q", seen, rid)
	}
	lines := logLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("want one access line, got %v", lines)
	}
	l := lines[0]
	if l["msg"] != "request" || l["request_id"] != rid || l["cell"] != "api" || l["method"] != "POST" ||
		l["path"] != "/v2.1/servers" || l["status"] != float64(http.StatusAccepted) {
		t.Errorf("access line %v", l)
	}

	// Another request gets another id; the default header is Nova's and
	// Neutron's X-Openstack-Request-Id alone.
	k2, err := httpkit.New(httpkit.Config{Shape: computeShape, Internal: httpkit.Fault{Status: 500}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rec2 := httptest.NewRecorder()
	k2.Wrap(http.NotFoundHandler()).ServeHTTP(rec2, httptest.NewRequest("GET", "/", nil))
	if got := rec2.Header().Get("X-Openstack-Request-Id"); got == "" || got == rid {
		t.Errorf("second request id %q (first %q)", got, rid)
	}
	if got := rec2.Header().Get("X-Compute-Request-Id"); got != "" {
		t.Errorf("unconfigured header set: %q", got)
	}
}

func TestPanicIsA500InTheAPIShapeWithTheStackLogged(t *testing.T) {
	var buf bytes.Buffer
	k := newKit(t, &buf, nil)
	h := k.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panicInHandler()
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v2.1/servers/x", nil))

	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	want := `{"computeFault":{"code":500,"message":"Unexpected API Error."}}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body %q, want %q", rec.Body.String(), want)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	rid := rec.Header().Get("X-Openstack-Request-Id")
	lines := logLines(t, &buf)
	if len(lines) != 2 {
		t.Fatalf("want a panic line and an access line, got %v", lines)
	}
	p := lines[0]
	stack, _ := p["stack"].(string)
	if p["msg"] != "panic serving a request" || p["level"] != "ERROR" || p["request_id"] != rid || p["cell"] != "api" ||
		p["panic"] != "boom" || !strings.Contains(stack, "panicInHandler") {
		t.Errorf("panic line %v", p)
	}
	if a := lines[1]; a["msg"] != "request" || a["status"] != float64(500) || a["request_id"] != rid {
		t.Errorf("access line %v", a)
	}
}

func panicInHandler() { panic("boom") }

func TestPanicAfterTheAnswerBeganAddsNothing(t *testing.T) {
	var buf bytes.Buffer
	k := newKit(t, &buf, nil)
	h := k.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		panic("late")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "partial" {
		t.Errorf("got %d %q", rec.Code, rec.Body.String())
	}
	lines := logLines(t, &buf)
	if len(lines) != 2 || lines[1]["status"] != float64(200) {
		t.Errorf("log %v", lines)
	}
}

func TestCallerInContext(t *testing.T) {
	ctx := context.Background()
	if c := httpkit.CallerFrom(ctx); c.UserID != "" || c.Admin {
		t.Errorf("caller of an empty context: %+v", c)
	}
	c := httpkit.Caller{Principal: authn.Principal{UserID: "u", ProjectID: "p"}, Admin: true}
	got := httpkit.CallerFrom(httpkit.WithCaller(httpkit.WithRequestID(ctx, "req-1"), c))
	if got.UserID != "u" || got.ProjectID != "p" || !got.Admin {
		t.Errorf("caller %+v", got)
	}
	if httpkit.RequestID(ctx) != "" {
		t.Error("request id of an empty context")
	}
}

type fakeAuth struct {
	p   authn.Principal
	err error
}

func (f fakeAuth) Authenticate(context.Context, string) (authn.Principal, error) { return f.p, f.err }

func TestAuthenticate(t *testing.T) {
	pol, err := policy.NewFromRules(policy.Base, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	k := newKit(t, &buf, nil)
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(httpkit.WithRequestID(r.Context(), "req-a"))

	member := authn.Principal{UserID: "u", ProjectID: "p", Roles: []string{"member", "reader"}}
	c, err := k.Authenticate(r, fakeAuth{p: member}, pol)
	if err != nil || c.UserID != "u" || c.ProjectID != "p" || c.Admin {
		t.Errorf("member: %+v, %v", c, err)
	}
	admin := authn.Principal{UserID: "a", ProjectID: "p", Roles: []string{"admin"}}
	if c, err := k.Authenticate(r, fakeAuth{p: admin}, pol); err != nil || !c.Admin {
		t.Errorf("admin: %+v, %v", c, err)
	}
	for _, a := range []fakeAuth{{err: fmt.Errorf("cache: %w", authn.ErrUnauthorized)}, {p: authn.Principal{UserID: "u"}}} {
		if _, err := k.Authenticate(r, a, pol); !errors.Is(err, authn.ErrUnauthorized) {
			t.Errorf("%+v: %v, want unauthorized", a, err)
		}
	}
	if buf.Len() != 0 {
		t.Errorf("an unauthorized token was logged: %s", buf.String())
	}
	_, err = k.Authenticate(r, fakeAuth{err: errors.New("keystone: connection refused")}, pol)
	if !errors.Is(err, httpkit.ErrIdentityUnavailable) || errors.Is(err, authn.ErrUnauthorized) {
		t.Errorf("failing authenticator: %v", err)
	}
	if l := logLines(t, &buf); len(l) != 1 || l[0]["request_id"] != "req-a" || !strings.Contains(fmt.Sprint(l[0]["err"]), "connection refused") {
		t.Errorf("log %v", l)
	}
}

func TestRuleForAndAllowed(t *testing.T) {
	rules := append(slices.Clone(policy.Base), policy.Rule{Name: "thing:read", Check: policy.ProjectReaderOrAdmin},
		policy.Rule{Name: "thing:write", Check: policy.ProjectMemberOrAdmin})
	pol, err := policy.NewFromRules(rules, nil)
	if err != nil {
		t.Fatal(err)
	}
	for method, want := range map[string]string{"GET": "thing:read", "HEAD": "thing:read", "POST": "thing:write", "PUT": "thing:write",
		"PATCH": "thing:write", "DELETE": "thing:write"} {
		if got := httpkit.RuleFor(httptest.NewRequest(method, "/", nil), "thing:read", "thing:write"); got != want {
			t.Errorf("%s: rule %q, want %q", method, got, want)
		}
	}
	reader := httpkit.Caller{Principal: authn.Principal{UserID: "u", ProjectID: "p", Roles: []string{"reader"}}}
	member := httpkit.Caller{Principal: authn.Principal{UserID: "u", ProjectID: "p", Roles: []string{"member", "reader"}}}
	if !reader.Allowed(pol, "thing:read") || reader.Allowed(pol, "thing:write") {
		t.Errorf("a reader may read and not write")
	}
	if !member.Allowed(pol, "thing:read") || !member.Allowed(pol, "thing:write") {
		t.Errorf("a member may read and write")
	}
}

// netdbDetail reads a netdb error's Neutron type and message, as the
// Networking API's table does.
func netdbDetail(err error) (string, string, bool) {
	var ne *netdb.Error
	if !errors.As(err, &ne) {
		return "", "", false
	}
	return ne.Code, ne.Message, true
}

func TestTable(t *testing.T) {
	table := httpkit.Table{
		{Err: authn.ErrUnauthorized, Status: 401, Type: "HTTPUnauthorized", Message: "The request you have made requires authentication."},
		{Err: netdb.ErrInUse, Status: 409, Detail: netdbDetail},
		{Err: notfound.Err, Status: 404},
		{Err: wire.ErrConflict, Status: 409},
		{Err: wire.ErrTimeout, Status: 503, Message: "The cell did not answer."},
		{Err: identity.ErrConflict, Status: 409},
		// Never reached for a conflict: the wire row above wins.
		{Err: wire.ErrConflict, Status: 400},
	}
	inUse := &netdb.Error{Kind: netdb.ErrInUse, Code: "NetworkInUse", Message: "Unable to complete operation on network n."}
	for _, c := range []struct {
		name string
		err  error
		want *httpkit.Fault
	}{
		{"sentinel with fixed message", authn.ErrUnauthorized, &httpkit.Fault{Status: 401, Type: "HTTPUnauthorized", Message: "The request you have made requires authentication."}},
		{"wrapped sentinel", fmt.Errorf("authenticating: %w", authn.ErrUnauthorized), &httpkit.Fault{Status: 401, Type: "HTTPUnauthorized", Message: "The request you have made requires authentication."}},
		{"detail from the error", fmt.Errorf("delete: %w", inUse), &httpkit.Fault{Status: 409, Type: "NetworkInUse", Message: inUse.Message}},
		{"apidb not found", fmt.Errorf("get flavor: %w", apidb.ErrNotFound), &httpkit.Fault{Status: 404, Message: "not found"}},
		{"imagedb not found", imagedb.ErrNotFound, &httpkit.Fault{Status: 404, Message: "image not found"}},
		{"netdb not found: the matched error's text", fmt.Errorf("x: %w", &netdb.Error{Kind: netdb.ErrNotFound, Code: "NetworkNotFound", Message: "Network n could not be found."}),
			&httpkit.Fault{Status: 404, Message: "not found"}},
		{"identity not found: the typed error's text", fmt.Errorf("show: %w", &identity.NotFoundError{Kind: "project", ID: "p1"}), &httpkit.Fault{Status: 404, Message: "Could not find project: p1."}},
		{"wire not found: its message without the code", fmt.Errorf("call: %w", wire.Errorf(wire.CodeNotFound, "Compute host h could not be found.")), &httpkit.Fault{Status: 404, Message: "Compute host h could not be found."}},
		{"wire conflict, first row wins", wire.Errorf(wire.CodeConflict, "Instance is locked."), &httpkit.Fault{Status: 409, Message: "Instance is locked."}},
		{"wire timeout with fixed message", fmt.Errorf("call: %w", wire.ErrTimeout), &httpkit.Fault{Status: 503, Message: "The cell did not answer."}},
		{"joined errors", errors.Join(errors.New("first"), &identity.ConflictError{Kind: "user", Detail: "Duplicate entry"}), &httpkit.Fault{Status: 409, Message: "Conflict occurred attempting to store user - Duplicate entry."}},
	} {
		got, ok := table.Lookup(c.err)
		if !ok {
			t.Errorf("%s: no row matched %v", c.name, c.err)
			continue
		}
		if got.Status != c.want.Status || got.Type != c.want.Type || got.Message != c.want.Message {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
	for _, err := range []error{
		errors.New("disk full"),
		netdb.ErrInUse, // a kind with no *netdb.Error: its row's Detail declines
		wire.Errorf(wire.CodeInternal, "boom"),
		identity.ErrTokenNotFound,
	} {
		if f, ok := table.Lookup(err); ok {
			t.Errorf("%v matched %+v", err, f)
		}
	}
}

func TestFail(t *testing.T) {
	var buf bytes.Buffer
	k := newKit(t, &buf, httpkit.Table{{Err: notfound.Err, Status: 404}})
	serve := func(err error) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/", nil)
		k.Fail(rec, r.WithContext(httpkit.WithRequestID(r.Context(), "req-f")), err)
		return rec
	}

	// A *Fault in the chain wins over the table, with its headers.
	f := httpkit.Errorf(http.StatusConflict, "Flavor %s already exists.", "m1")
	f.Header = http.Header{"Allow": {"GET"}}
	rec := serve(fmt.Errorf("x: %w", errors.Join(f, apidb.ErrNotFound)))
	if rec.Code != 409 || rec.Body.String() != `{"conflictingRequest":{"code":409,"message":"Flavor m1 already exists."}}`+"\n" || rec.Header().Get("Allow") != "GET" {
		t.Errorf("fault: %d %q %v", rec.Code, rec.Body.String(), rec.Header())
	}
	rec = serve(fmt.Errorf("load: %w", apidb.ErrNotFound))
	if rec.Code != 404 || rec.Body.String() != `{"itemNotFound":{"code":404,"message":"not found"}}`+"\n" {
		t.Errorf("table: %d %q", rec.Code, rec.Body.String())
	}
	if buf.Len() != 0 {
		t.Errorf("a mapped error was logged: %s", buf.String())
	}
	rec = serve(errors.New("disk full"))
	if rec.Code != 500 || rec.Body.String() != `{"computeFault":{"code":500,"message":"Unexpected API Error."}}`+"\n" {
		t.Errorf("unmapped: %d %q", rec.Code, rec.Body.String())
	}
	if l := logLines(t, &buf); len(l) != 1 || l[0]["msg"] != "request failed" || l[0]["request_id"] != "req-f" || l[0]["err"] != "disk full" {
		t.Errorf("log %v", l)
	}
}

// sample is a view as the APIs build them, with what encoding/json treats
// specially: HTML characters, U+2028, invalid UTF-8, floats, nil slices
// and maps, structs, times and json.RawMessage.
func sample() any {
	type link struct {
		Rel  string `json:"rel"`
		Href string `json:"href,omitempty"`
	}
	return map[string]any{
		"server": map[string]any{
			"id":        "3f1c<a>&b",
			"name":      "line\u2028sep\x00\"quoted\"\\",
			"bad":       "\xff\xfe",
			"progress":  int64(42),
			"ram":       2048,
			"ratio":     1.5,
			"big":       1e21,
			"max":       math.MaxFloat64,
			"locked":    false,
			"fault":     nil,
			"tags":      []string{"a", "<b>"},
			"none":      []string(nil),
			"meta":      map[string]string{"z": "1", "a": "&"},
			"addresses": map[string][]map[string]any{"net": {{"addr": "10.0.0.2", "version": 4}}},
			"links":     []link{{Rel: "self", Href: "http://h/v2.1/servers/x"}},
			"created":   time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC),
			"raw":       json.RawMessage(`{"b":1,"a":2}`),
			"list":      []any{1, "two", nil, []map[string]string{{"k": "v"}}},
		},
	}
}

func TestWriteJSONIsEncodingJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	httpkit.WriteJSON(rec, http.StatusCreated, sample())
	var want bytes.Buffer
	if err := json.NewEncoder(&want).Encode(sample()); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("status %d, headers %v", rec.Code, rec.Header())
	}
	if !bytes.Equal(rec.Body.Bytes(), want.Bytes()) {
		t.Errorf("WriteJSON:\n%s\nencoding/json:\n%s", rec.Body.Bytes(), want.Bytes())
	}
}

func TestWriteMarshalIsJSONMarshal(t *testing.T) {
	rec := httptest.NewRecorder()
	httpkit.WriteMarshal(rec, http.StatusOK, sample())
	want, err := json.Marshal(sample())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("WriteMarshal:\n%s\njson.Marshal:\n%s", rec.Body.Bytes(), want)
	}
	// A value encoding/json refuses is a plain 500, nothing of it written.
	rec = httptest.NewRecorder()
	httpkit.WriteMarshal(rec, http.StatusOK, map[string]any{"x": math.NaN()})
	if rec.Code != http.StatusInternalServerError || strings.Contains(rec.Body.String(), `"x"`) {
		t.Errorf("NaN: %d %q", rec.Code, rec.Body.String())
	}
}

func TestOrigin(t *testing.T) {
	r := httptest.NewRequest("GET", "http://cloud.example:8774/v2.1/servers", nil)
	if got := httpkit.Origin(r); got != "http://cloud.example:8774" {
		t.Errorf("plain: %q", got)
	}
	r.Header.Set("X-Forwarded-Proto", "https")
	if got := httpkit.Origin(r); got != "https://cloud.example:8774" {
		t.Errorf("behind a TLS proxy: %q", got)
	}
	r.Header.Set("X-Forwarded-Proto", "gopher")
	if got := httpkit.Origin(r); got != "http://cloud.example:8774" {
		t.Errorf("an unknown forwarded scheme is ignored: %q", got)
	}
}
