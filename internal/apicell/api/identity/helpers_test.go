package identity_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/identity"
	idstore "github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// fixture is the Identity API on a fresh SQLite store with the admin and
// demo accounts, served without a network.
type fixture struct {
	t     *testing.T
	api   *identity.API
	store *idstore.Store
	// admin and demo are project-scoped tokens.
	admin, demo string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, idstore.Options{TokenTTL: time.Hour})
}

// newFixtureWith is newFixture with a store opened with o.
func newFixtureWith(t *testing.T, o idstore.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	d := dbtest.Open(t, "sqlite")
	if err := d.Migrate(ctx, idstore.MigrationSet, idstore.Migrations); err != nil {
		t.Fatal(err)
	}
	st, err := idstore.New(ctx, d, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bootstrap(ctx,
		idstore.Account{User: "admin", Password: "pw-admin", Project: "admin", Role: idstore.RoleAdmin},
		idstore.Account{User: "demo", Password: "pw-demo", Project: "demo", Role: idstore.RoleMember}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.New(identity.Rules, "")
	if err != nil {
		t.Fatal(err)
	}
	api, err := identity.New(identity.Config{Cell: "/", Store: st, Policy: pol, Logger: slog.New(slog.DiscardHandler), Catalog: []identity.Endpoint{
		{Type: "identity", Name: "keystone", URL: func(base string) string { return base + "/identity" }},
		{Type: "compute", Name: "nova", URL: func(base string) string { return base + "/compute/v2.1" }},
	}})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, api: api, store: st}
	f.admin = f.token("admin", "pw-admin", "admin")
	f.demo = f.token("demo", "pw-demo", "demo")
	return f
}

// token issues a project-scoped token through the store.
func (f *fixture) token(user, password, project string) string {
	f.t.Helper()
	_, secret, err := f.store.Issue(context.Background(), idstore.AuthRequest{
		Password: &idstore.PasswordMethod{UserName: user, DomainName: "Default", Password: password},
		Scope:    idstore.Scope{ProjectName: project, DomainID: idstore.DefaultDomainID}})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret
}

// answer is what a test compares of a response: everything but the
// request id.
type answer struct {
	status int
	header http.Header
	body   string
}

// do serves one request; headers are name, value pairs.
func (f *fixture) do(method, path, token, body string, headers ...string) answer {
	f.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://cloud.test"+path, rd)
	if token != "" {
		r.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	f.api.ServeHTTP(w, r)
	h := w.Result().Header.Clone()
	h.Del("X-Openstack-Request-Id")
	return answer{status: w.Code, header: h, body: w.Body.String()}
}

// fault is a case of an error answer: its request and the exact status,
// body and WWW-Authenticate header it must get.
type fault struct {
	name                      string
	method, path, token, body string
	headers                   []string
	status                    int
	want                      string // the body, byte for byte
	wwwAuthenticate           bool
}

// check serves each case and compares it byte for byte.
func (f *fixture) check(cases []fault) {
	f.t.Helper()
	for _, c := range cases {
		got := f.do(c.method, c.path, c.token, c.body, c.headers...)
		if got.status != c.status || got.body != c.want {
			f.t.Errorf("%s: %s %s: %d %q, want %d %q", c.name, c.method, c.path, got.status, got.body, c.status, c.want)
		}
		wa := got.header.Get("WWW-Authenticate")
		if c.wwwAuthenticate && wa != `Keystone uri="identity"` || !c.wwwAuthenticate && wa != "" {
			f.t.Errorf("%s: WWW-Authenticate %q (want one: %v)", c.name, wa, c.wwwAuthenticate)
		}
		if ct := got.header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s: Content-Type %q", c.name, ct)
		}
		if v := got.header.Get("Vary"); v != "X-Auth-Token" {
			f.t.Errorf("%s: Vary %q", c.name, v)
		}
	}
}

// keystoneError is Keystone's error body as the API writes it.
func keystoneError(code int, title, msg string) string {
	m, _ := json.Marshal(msg)
	return `{"error":{"code":` + strconv.Itoa(code) + `,"message":` + string(m) + `,"title":"` + title + `"}}` + "\n"
}

func (f *fixture) projectID(name string) string {
	f.t.Helper()
	ps, err := f.store.ListProjects(context.Background(), idstore.ProjectFilter{Name: name})
	if err != nil || len(ps) != 1 {
		f.t.Fatalf("project %s: %v %v", name, ps, err)
	}
	return ps[0].ID
}

func (f *fixture) userID(name string) string {
	f.t.Helper()
	us, err := f.store.ListUsers(context.Background(), idstore.UserFilter{Name: name})
	if err != nil || len(us) != 1 {
		f.t.Fatalf("user %s: %v %v", name, us, err)
	}
	return us[0].ID
}

func (f *fixture) roleID(name string) string {
	f.t.Helper()
	rs, err := f.store.ListRoles(context.Background(), name)
	if err != nil || len(rs) != 1 {
		f.t.Fatalf("role %s: %v %v", name, rs, err)
	}
	return rs[0].ID
}

// unscoped issues an unscoped token through the store.
func (f *fixture) unscoped(user, password string) string {
	f.t.Helper()
	_, secret, err := f.store.Issue(context.Background(), idstore.AuthRequest{
		Password: &idstore.PasswordMethod{UserName: user, DomainName: "Default", Password: password},
		Scope:    idstore.Scope{Unscoped: true}})
	if err != nil {
		f.t.Fatal(err)
	}
	return secret
}

// json decodes the answer's body, failing the test unless its status is
// want.
func (a answer) json(t *testing.T, want int) map[string]any {
	t.Helper()
	if a.status != want {
		t.Fatalf("status %d, want %d: %s", a.status, want, a.body)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(a.body), &v); err != nil {
		t.Fatalf("body %q: %v", a.body, err)
	}
	return v
}

// obj is a JSON object's member that is an object.
func obj(v map[string]any, key string) map[string]any {
	m, _ := v[key].(map[string]any)
	return m
}

// list is a JSON object's member that is a list.
func list(v map[string]any, key string) []any {
	l, _ := v[key].([]any)
	return l
}
