package volume_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	identityapi "github.com/cellcloud/cellcloud/internal/apicell/api/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
)

// env is the Block Storage API at /volume beside the Identity API at
// /identity (a local store with the admin and demo accounts), served as
// the API cell serves them, with the catalog the node registers.
type env struct {
	t   *testing.T
	srv *httptest.Server
	st  *identity.Store
	// admin and demo are project-scoped tokens; adminProject and
	// demoProject their projects' ids.
	admin, demo               string
	adminProject, demoProject string
	// d is the API cell's database, types the volume types and quotas in
	// it, and usage the fake volume usage the API reads.
	d     *db.DB
	types *voltypes.Store
	usage *fakeUsage
}

// fakeUsage stands for voldb: what each project uses and which types
// volumes have.
type fakeUsage struct {
	mu     sync.Mutex
	used   map[string]map[string]int64
	inUse  map[string]bool
	failed error
}

func (f *fakeUsage) set(project string, used map[string]int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.used[project] = used
}

func (f *fakeUsage) use(typeID string, used bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inUse[typeID] = used
}

func (f *fakeUsage) Usage(_ context.Context, _ db.Querier, project string) (map[string]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.used[project]), f.failed
}

func (f *fakeUsage) TypeInUse(_ context.Context, _ db.Querier, typeID string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inUse[typeID], f.failed
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	d := dbtest.Open(t, "sqlite")
	if err := d.Migrate(ctx, identity.MigrationSet, identity.Migrations); err != nil {
		t.Fatal(err)
	}
	st, err := identity.New(ctx, d, identity.Options{TokenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bootstrap(ctx,
		identity.Account{User: "admin", Password: "pw-admin", Project: "admin", Role: identity.RoleAdmin},
		identity.Account{User: "demo", Password: "pw-demo", Project: "demo", Role: identity.RoleMember}); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, identityapi.Rules, volume.Rules), nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	at := func(path string) func(string) string { return func(base string) string { return base + path } }
	ids, err := identityapi.New(identityapi.Config{Cell: "/", Store: st, Policy: pol, Logger: log, Catalog: []identityapi.Endpoint{
		{Type: "identity", Name: "keystone", URL: at("/identity")},
		{Type: "block-storage", Name: "cinder", URL: at("/volume/v3/" + identityapi.ProjectIDTemplate)},
		{Type: "volumev3", Name: "cinderv3", URL: at("/volume/v3/" + identityapi.ProjectIDTemplate)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, voltypes.MigrationSet, voltypes.Migrations); err != nil {
		t.Fatal(err)
	}
	types, err := voltypes.New(voltypes.Config{})
	if err != nil {
		t.Fatal(err)
	}
	usage := &fakeUsage{used: map[string]map[string]int64{}, inUse: map[string]bool{}}
	vols, err := volume.New(volume.Config{Cell: "/", Logger: log, Auth: authn.Local{Store: st}, Policy: pol,
		DB: d, Types: types, Quotas: types, TypeUsage: usage, QuotaUsage: usage})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/identity/", http.StripPrefix("/identity", ids))
	mux.Handle("/volume/", http.StripPrefix("/volume", vols))
	mux.Handle("/volume", http.StripPrefix("/volume", vols))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, st: st, d: d, types: types, usage: usage}
	e.admin, e.adminProject = e.token("admin", "pw-admin", "admin")
	e.demo, e.demoProject = e.token("demo", "pw-demo", "demo")
	return e
}

// token issues a project-scoped token through the store.
func (e *env) token(user, password, project string) (secret, projectID string) {
	e.t.Helper()
	tok, secret, err := e.st.Issue(context.Background(), identity.AuthRequest{
		Password: &identity.PasswordMethod{UserName: user, DomainName: "Default", Password: password},
		Scope:    identity.Scope{ProjectName: project, DomainID: identity.DefaultDomainID}})
	if err != nil {
		e.t.Fatal(err)
	}
	return secret, tok.Project.ID
}

// client is a gophercloud Block Storage v3 client found as a user's
// client finds it: a password authentication at the Identity API, then
// the catalog's block-storage endpoint.
func (e *env) client(user, password, project string) *gophercloud.ServiceClient {
	e.t.Helper()
	ctx := context.Background()
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: e.srv.URL + "/identity/v3",
		Username: user, Password: password, DomainName: "Default", TenantName: project})
	if err != nil {
		e.t.Fatalf("authenticate: %v", err)
	}
	c, err := openstack.NewBlockStorageV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		e.t.Fatalf("block storage endpoint: %v", err)
	}
	return c
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request to the server; headers are name, value pairs.
func (e *env) do(method, path, token string, headers ...string) *response {
	e.t.Helper()
	return e.send(method, path, token, "", headers...)
}

// send sends a request with a JSON body ("" for none).
func (e *env) send(method, path, token, body string, headers ...string) *response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if !slices.Contains(headers, "Content-Type") {
			headers = append([]string{"Content-Type", "application/json"}, headers...)
		}
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// json decodes the body of an answer that must have status.
func (r *response) json(t *testing.T, status int) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
	return v
}

// fault checks that the answer is Cinder's fault {name: {code, message}}
// with status and returns the message.
func (r *response) fault(t *testing.T, status int, name string) string {
	t.Helper()
	v := r.json(t, status)
	f, ok := v[name].(map[string]any)
	if !ok || len(v) != 1 || f["code"] != float64(status) {
		t.Fatalf("fault %s: %s", name, r.body)
	}
	msg, _ := f["message"].(string)
	return msg
}
