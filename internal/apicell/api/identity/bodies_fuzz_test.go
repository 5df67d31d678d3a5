package identity_test

// Fuzz targets for the request bodies of the Identity API: the auth body
// of POST /v3/auth/tokens, and the creates and updates of users, projects
// and roles. Served by the handler on a fresh SQLite store, without a
// network. The property: no body makes the API panic or answer 500, and a
// refusal is Keystone's error body naming its own status.
//
// Run one briefly: go test -run '^$' -fuzz '^FuzzAuthBody$' -fuzztime 10s ./internal/apicell/api/identity

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/identity"
	idstore "github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// fuzzIdentity is the Identity API on a fresh store with the admin and
// demo accounts, and an admin token.
type fuzzIdentity struct {
	api   *identity.API
	admin string
	n     int
}

func newFuzzIdentity(f *testing.F) *fuzzIdentity {
	f.Helper()
	ctx := context.Background()
	d := dbtest.Open(f, "sqlite")
	if err := d.Migrate(ctx, idstore.MigrationSet, idstore.Migrations); err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st, err := idstore.New(ctx, d, idstore.Options{TokenTTL: 24 * time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	if err := st.Bootstrap(ctx,
		idstore.Account{User: "admin", Password: "pw-admin", Project: "admin", Role: idstore.RoleAdmin},
		idstore.Account{User: "demo", Password: "pw-demo", Project: "demo", Role: idstore.RoleMember}); err != nil {
		f.Fatal(err)
	}
	pol, err := policy.New(identity.Rules, "")
	if err != nil {
		f.Fatal(err)
	}
	api, err := identity.New(identity.Config{Cell: "/", Store: st, Policy: pol, Logger: slog.New(slog.DiscardHandler), Catalog: []identity.Endpoint{
		{Type: "compute", Name: "nova", URL: func(base string) string { return base + "/compute/v2.1" }}}})
	if err != nil {
		f.Fatal(err)
	}
	_, admin, err := st.Issue(ctx, idstore.AuthRequest{
		Password: &idstore.PasswordMethod{UserName: "admin", DomainName: "Default", Password: "pw-admin"},
		Scope:    idstore.Scope{ProjectName: "admin", DomainID: idstore.DefaultDomainID}})
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzIdentity{api: api, admin: admin}
}

// send serves one request and checks the property.
func (z *fuzzIdentity) send(t *testing.T, method, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://cloud.test"+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if token != "" {
		r.Header.Set("X-Auth-Token", token)
	}
	w := httptest.NewRecorder()
	z.api.ServeHTTP(w, r)
	if w.Code >= 500 {
		t.Fatalf("%s %s with %q: %d %s", method, path, body, w.Code, w.Body)
	}
	if w.Code >= 400 {
		var e struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Title   string `json:"title"`
			} `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != w.Code || e.Error.Message == "" || e.Error.Title == "" {
			t.Fatalf("%s %s with %q: %d is not Keystone's error: %s", method, path, body, w.Code, w.Body)
		}
	}
	return w
}

// FuzzAuthBody: POST /v3/auth/tokens with any body. A token issued is one
// the API then validates.
func FuzzAuthBody(f *testing.F) {
	pw := func(user, scope string) string {
		return `{"auth": {"identity": {"methods": ["password"], "password": {"user": ` + user + `}}` + scope + `}}`
	}
	for _, s := range []string{
		pw(`{"name": "demo", "domain": {"name": "Default"}, "password": "pw-demo"}`, `, "scope": {"project": {"name": "demo", "domain": {"id": "default"}}}`),
		pw(`{"name": "demo", "domain": {"id": "default"}, "password": "pw-demo"}`, ``),
		pw(`{"name": "demo", "domain": {"name": "Default"}, "password": "wrong"}`, ``),
		pw(`{"name": "demo", "password": "pw-demo"}`, `, "scope": "unscoped"`),
		pw(`{"name": "demo", "domain": {"name": "Default"}, "password": "pw-demo"}`, `, "scope": "everything"`),
		pw(`{"name": "demo", "domain": {"name": "Default"}, "password": "pw-demo"}`, `, "scope": {"project": {}}`),
		pw(`{"name": "demo", "domain": {"name": "Default"}, "password": "pw-demo"}`, `, "scope": {"domain": {"id": "default"}}`),
		pw(`{"name": "demo", "domain": {"name": "Default"}, "password": "pw-demo"}`, `, "scope": {"system": {"all": true}}`),
		pw(`{"name": "demo", "domain": {"name": "Default"}, "password": "pw-demo"}`, `, "scope": {"project": {"id": 1}}`),
		pw(`{"id": "nobody", "password": "x"}`, ``), pw(`{"name": "demo"}`, ``), pw(`null`, ``),
		`{"auth": {"identity": {"methods": ["token"], "token": {"id": "nope"}}, "scope": "unscoped"}}`,
		`{"auth": {"identity": {"methods": ["token"], "token": {}}}}`,
		`{"auth": {"identity": {"methods": ["password", "token"], "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "pw-demo"}}, "token": {"id": "x"}}}}`,
		`{"auth": {"identity": {"methods": ["totp"]}}}`, `{"auth": {"identity": {"methods": []}}}`, `{"auth": {"identity": {}}}`, `{"auth": {}}`,
		`{"auth": [`, `{"auth": "x"}`, `{"auth": null}`, `{}`, `[]`, `null`, ``,
	} {
		f.Add(s)
	}
	z := newFuzzIdentity(f)
	f.Fuzz(func(t *testing.T, body string) {
		w := z.send(t, http.MethodPost, "/v3/auth/tokens", "", body)
		if w.Code != http.StatusCreated {
			return
		}
		tok := w.Header().Get("X-Subject-Token")
		if tok == "" {
			t.Fatalf("%q: a token issued without X-Subject-Token: %s", body, w.Body)
		}
		r := httptest.NewRequest(http.MethodGet, "http://cloud.test/v3/auth/tokens", nil)
		r.Header.Set("X-Auth-Token", z.admin)
		r.Header.Set("X-Subject-Token", tok)
		v := httptest.NewRecorder()
		z.api.ServeHTTP(v, r)
		if v.Code != http.StatusOK {
			t.Fatalf("%q: the token issued does not validate: %d %s", body, v.Code, v.Body)
		}
	})
}

// FuzzIdentityBodies: the creates and updates of users, projects and
// roles, by an admin, each update on an object of its own.
func FuzzIdentityBodies(f *testing.F) {
	seeds := map[string][]string{
		"user": {`{"user": {"name": "u", "password": "p", "email": "e@x", "description": "d", "enabled": false, "default_project_id": "x"}}`,
			`{"user": {"name": "u", "domain_id": "default"}}`, `{"user": {"name": "u", "domain_id": "nope"}}`, `{"user": {"name": ""}}`,
			`{"user": {"name": 1}}`, `{"user": {"enabled": "yes"}}`, `{"user": {}}`, `{"user": null}`, `{"users": {}}`},
		"project": {`{"project": {"name": "p", "description": "d", "enabled": true}}`, `{"project": {"name": "p", "domain_id": "default", "parent_id": "default"}}`,
			`{"project": {"name": "p", "parent_id": "other"}}`, `{"project": {"name": "p", "is_domain": true}}`, `{"project": {"name": "p", "domain_id": "nope"}}`,
			`{"project": {"name": ""}}`, `{"project": {"enabled": 1}}`, `{"project": {}}`, `{"project": null}`},
		"role": {`{"role": {"name": "r", "description": "d"}}`, `{"role": {"name": "r", "domain_id": "default"}}`, `{"role": {"name": "admin"}}`,
			`{"role": {"name": ""}}`, `{"role": {"name": []}}`, `{"role": {}}`, `{"role": null}`},
	}
	ops := []string{"create user", "update user", "create project", "update project", "create role"}
	for i, op := range ops {
		for _, s := range append(seeds[strings.Fields(op)[1]], `{}`, `null`, `[]`, ``, `{"x"`) {
			f.Add(uint8(i), s)
		}
	}
	z := newFuzzIdentity(f)
	// created makes an object of a new name through the API (a name an
	// input took is a 409: the next one is tried) and returns its id.
	created := func(t *testing.T, path, key string) string {
		for {
			z.n++
			w := z.send(t, http.MethodPost, path, z.admin, fmt.Sprintf(`{%q: {"name": "fuzz-%d"}}`, key, z.n))
			if w.Code == http.StatusConflict {
				continue
			}
			var out map[string]struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &out); w.Code != http.StatusCreated || err != nil || out[key].ID == "" {
				t.Fatalf("create %s: %d %s", key, w.Code, w.Body)
			}
			return out[key].ID
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body string) {
		switch ops[int(op)%len(ops)] {
		case "create user":
			z.send(t, http.MethodPost, "/v3/users", z.admin, body)
		case "update user":
			id := created(t, "/v3/users", "user")
			z.send(t, http.MethodPatch, "/v3/users/"+id, z.admin, body)
		case "create project":
			z.send(t, http.MethodPost, "/v3/projects", z.admin, body)
		case "update project":
			id := created(t, "/v3/projects", "project")
			z.send(t, http.MethodPatch, "/v3/projects/"+id, z.admin, body)
		case "create role":
			z.send(t, http.MethodPost, "/v3/roles", z.admin, body)
		}
	})
}
