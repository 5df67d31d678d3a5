package identity_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// login signs in with gophercloud's password auth through the catalog.
func login(t *testing.T, tr *testtree.Tree, user, password, project string) *gophercloud.ProviderClient {
	t.Helper()
	pc, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: tr.OpenRC["admin"].AuthURL, Username: user, Password: password, DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return pc
}

func computeOf(t *testing.T, pc *gophercloud.ProviderClient) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIdentityPolicyAndIsolation drives the API cell's Identity v3 with
// gophercloud: an admin makes a project, a user and grants (member and
// reader); a member of another project gets 404 for a server on every
// server route; a reader reads but cannot write; a revoked token is 401.
func TestIdentityPolicyAndIsolation(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Auth: "local", Cells: 1, HostsPerCell: 2})
	ctx := context.Background()
	admin := login(t, tr, "admin", tr.OpenRC["admin"].Password, "admin")
	ident, err := openstack.NewIdentityV3(admin, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := projects.Create(ctx, ident, projects.CreateOpts{Name: "p2"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := projects.Create(ctx, ident, projects.CreateOpts{Name: "p2"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("a second project p2: %v, want 409", err)
	}
	demoProject, err := projects.List(ident, projects.ListOpts{Name: "demo"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dps, _ := projects.ExtractProjects(demoProject)
	if len(dps) != 1 {
		t.Fatalf("projects named demo: %v", dps)
	}
	grant := func(user, project, role string) {
		t.Helper()
		rs, err := roles.List(ident, roles.ListOpts{Name: role}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := roles.ExtractRoles(rs)
		if len(r) != 1 {
			t.Fatalf("role %s: %v", role, r)
		}
		if err := roles.Assign(ctx, ident, r[0].ID, roles.AssignOpts{UserID: user, ProjectID: project}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(name, project, role string) {
		t.Helper()
		u, err := users.Create(ctx, ident, users.CreateOpts{Name: name, Password: "pw-" + name, DomainID: "default"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		grant(u.ID, project, role)
	}
	mk("mallory", p2.ID, "member")
	mk("rita", dps[0].ID, "reader")

	demo := login(t, tr, "demo", tr.OpenRC["demo"].Password, "demo")
	s, err := servers.Create(ctx, computeOf(t, demo), servers.CreateOpts{Name: "mine", FlavorRef: "1", ImageRef: image.CirrosID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 30*time.Second, "server ACTIVE", func() (bool, string) {
		got, err := servers.Get(ctx, computeOf(t, demo), s.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		return got.Status == "ACTIVE", got.Status
	})

	// Isolation: every server route, as a member of another project.
	mallory := login(t, tr, "mallory", "pw-mallory", "p2")
	tok := mallory.Token()
	id := s.ID
	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/v2.1/servers/" + id, nil},
		{"PUT", "/v2.1/servers/" + id, map[string]any{"server": map[string]any{"name": "x"}}},
		{"DELETE", "/v2.1/servers/" + id, nil},
		{"GET", "/v2.1/servers/" + id + "/ips", nil},
		{"GET", "/v2.1/servers/" + id + "/ips/private", nil},
		{"GET", "/v2.1/servers/" + id + "/metadata", nil},
		{"POST", "/v2.1/servers/" + id + "/metadata", map[string]any{"metadata": map[string]any{"a": "b"}}},
		{"PUT", "/v2.1/servers/" + id + "/metadata", map[string]any{"metadata": map[string]any{"a": "b"}}},
		{"GET", "/v2.1/servers/" + id + "/metadata/a", nil},
		{"PUT", "/v2.1/servers/" + id + "/metadata/a", map[string]any{"meta": map[string]any{"a": "b"}}},
		{"DELETE", "/v2.1/servers/" + id + "/metadata/a", nil},
		{"GET", "/v2.1/servers/" + id + "/tags", nil},
		{"PUT", "/v2.1/servers/" + id + "/tags", map[string]any{"tags": []string{"a"}}},
		{"DELETE", "/v2.1/servers/" + id + "/tags", nil},
		{"GET", "/v2.1/servers/" + id + "/tags/a", nil},
		{"PUT", "/v2.1/servers/" + id + "/tags/a", nil},
		{"DELETE", "/v2.1/servers/" + id + "/tags/a", nil},
		{"GET", "/v2.1/servers/" + id + "/os-instance-actions", nil},
		{"GET", "/v2.1/servers/" + id + "/os-instance-actions/req-x", nil},
	}
	for _, act := range []string{`{"os-stop": null}`, `{"os-start": null}`, `{"reboot": {"type": "SOFT"}}`, `{"pause": null}`, `{"suspend": null}`,
		`{"rescue": null}`, `{"resize": {"flavorRef": "2"}}`, `{"confirmResize": null}`, `{"shelve": null}`, `{"lock": null}`,
		`{"createImage": {"name": "x"}}`, `{"os-getConsoleOutput": {}}`, `{"rebuild": {"imageRef": "` + image.CirrosID + `"}}`} {
		routes = append(routes, struct {
			method, path string
			body         any
		}{"POST", "/v2.1/servers/" + id + "/action", act})
	}
	for _, rt := range routes {
		r := tr.Do(t, rt.method, rt.path, tok, rt.body, "X-OpenStack-Nova-API-Version", "2.60")
		if r.Status != http.StatusNotFound {
			t.Errorf("%s %s %v as another project's member: %d %s, want 404", rt.method, rt.path, rt.body, r.Status, r.Body)
		}
	}
	// The project's other resources: its server group, its user's key
	// pair, its private image; another project's quota set; and a token
	// used on a URL that names another project.
	dtok := demo.Token()
	sg := tr.Do(t, "POST", "/v2.1/os-server-groups", dtok, map[string]any{"server_group": map[string]any{"name": "g", "policies": []string{"anti-affinity"}}})
	kp := tr.Do(t, "POST", "/v2.1/os-keypairs", dtok, map[string]any{"keypair": map[string]any{"name": "demo-key"}})
	img := tr.Do(t, "POST", "/image/v2/images", dtok, map[string]any{"name": "demo-private", "visibility": "private", "disk_format": "raw", "container_format": "bare"})
	if sg.Status != http.StatusOK || kp.Status != http.StatusOK || img.Status != http.StatusCreated {
		t.Fatalf("demo's group, key pair, image: %d %s; %d %s; %d %s", sg.Status, sg.Body, kp.Status, kp.Body, img.Status, img.Body)
	}
	sgID := sg.Map(t)["server_group"].(map[string]any)["id"].(string)
	imgID := img.Map(t)["id"].(string)
	for _, rt := range []struct{ method, path string }{
		{"GET", "/v2.1/os-server-groups/" + sgID}, {"DELETE", "/v2.1/os-server-groups/" + sgID},
		{"GET", "/v2.1/os-keypairs/demo-key"}, {"DELETE", "/v2.1/os-keypairs/demo-key"},
		{"GET", "/image/v2/images/" + imgID}, {"DELETE", "/image/v2/images/" + imgID},
	} {
		if r := tr.Do(t, rt.method, rt.path, tok, nil); r.Status != http.StatusNotFound {
			t.Errorf("%s %s as another project's member: %d %s, want 404", rt.method, rt.path, r.Status, r.Body)
		}
	}
	if r := tr.Do(t, "GET", "/v2.1/os-quota-sets/"+dps[0].ID, tok, nil); r.Status != http.StatusForbidden {
		t.Errorf("another project's quota set: %d %s, want 403", r.Status, r.Body)
	}
	if r := tr.Do(t, "GET", "/v2.1/"+dps[0].ID+"/servers", tok, nil); r.Status != http.StatusBadRequest ||
		!strings.Contains(string(r.Body), "doesn't match Context's project_id") {
		t.Errorf("a token on another project's URL: %d %s, want 400", r.Status, r.Body)
	}
	for _, path := range []string{"/v2.1/os-server-groups/" + sgID, "/v2.1/os-keypairs/demo-key", "/image/v2/images/" + imgID} {
		if r := tr.Do(t, "GET", path, dtok, nil); r.Status != http.StatusOK {
			t.Errorf("GET %s by its owner after the other project's attempts: %d", path, r.Status)
		}
	}
	list, err := servers.List(computeOf(t, mallory), nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ss, _ := servers.ExtractServers(list); len(ss) != 0 {
		t.Errorf("another project's member lists %d servers", len(ss))
	}
	if r := tr.Do(t, "GET", "/v2.1/servers?all_tenants=1", tok, nil); r.Status != http.StatusForbidden {
		t.Errorf("all_tenants as a member: %d, want 403", r.Status)
	}

	// The reader of demo reads, and may not write.
	rita := login(t, tr, "rita", "pw-rita", "demo")
	if _, err := servers.Get(ctx, computeOf(t, rita), id).Extract(); err != nil {
		t.Errorf("reader show: %v", err)
	}
	if r := tr.Do(t, "POST", "/v2.1/servers/"+id+"/action", rita.Token(), `{"os-stop": null}`); r.Status != http.StatusForbidden ||
		!strings.Contains(string(r.Body), "os_compute_api:servers:stop") {
		t.Errorf("reader stop: %d %s, want 403 naming the rule", r.Status, r.Body)
	}
	// Every read route answers the reader; every write route is 403 and
	// changes nothing.
	for _, path := range []string{"/v2.1/servers/" + id, "/v2.1/servers/" + id + "/ips", "/v2.1/servers/" + id + "/ips/private",
		"/v2.1/servers/" + id + "/metadata", "/v2.1/servers/" + id + "/tags", "/v2.1/servers/" + id + "/os-instance-actions",
		"/v2.1/servers", "/v2.1/servers/detail", "/v2.1/limits", "/v2.1/flavors/detail", "/v2.1/os-server-groups"} {
		if r := tr.Do(t, "GET", path, rita.Token(), nil, "X-OpenStack-Nova-API-Version", "2.60"); r.Status != http.StatusOK {
			t.Errorf("GET %s as a reader: %d %s, want 200", path, r.Status, r.Body)
		}
	}
	for _, rt := range routes {
		if rt.method == "GET" {
			continue
		}
		r := tr.Do(t, rt.method, rt.path, rita.Token(), rt.body, "X-OpenStack-Nova-API-Version", "2.60")
		if r.Status != http.StatusForbidden {
			t.Errorf("%s %s %v as a reader: %d %s, want 403", rt.method, rt.path, rt.body, r.Status, r.Body)
		}
	}
	if got, err := servers.Get(ctx, computeOf(t, demo), id).Extract(); err != nil || got.Status != "ACTIVE" || got.Name != "mine" {
		t.Errorf("after the reader's refused writes: %v %v", got, err)
	}
	if _, err := servers.Create(ctx, computeOf(t, rita), servers.CreateOpts{Name: "r", FlavorRef: "1", ImageRef: image.CirrosID}, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("reader create: %v, want 403", err)
	}
	// A member may not manage identities.
	if _, err := projects.Create(ctx, identityOf(t, demo), projects.CreateOpts{Name: "x"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("member creates a project: %v, want 403", err)
	}

	// Revocation: the token is refused at once, by Identity and Compute.
	if err := tokens.Revoke(ctx, ident, tok).Err; err != nil {
		t.Fatal(err)
	}
	if r := tr.Do(t, "GET", "/v2.1/servers", tok, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("revoked token on Compute: %d, want 401", r.Status)
	}
	if ok, err := tokens.Validate(ctx, ident, tok); ok || err != nil {
		t.Errorf("a revoked token validates (%v, %v)", ok, err)
	}
	// Bad input: a wrong password and a malformed body are refused cleanly.
	r := tr.Do(t, "POST", "/identity/v3/auth/tokens", "", map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"password"},
		"password": map[string]any{"user": map[string]any{"name": "demo", "domain": map[string]any{"id": "default"}, "password": "wrong"}}}}})
	if r.Status != http.StatusUnauthorized || !strings.Contains(string(r.Body), `"title":"Unauthorized"`) {
		t.Errorf("wrong password: %d %s", r.Status, r.Body)
	}
	if r := tr.Do(t, "POST", "/identity/v3/auth/tokens", "", `{"auth": [`); r.Status != http.StatusBadRequest {
		t.Errorf("malformed body: %d %s", r.Status, r.Body)
	}
	if r := tr.Do(t, "GET", "/v2.1/servers", "not-a-token", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("unknown token: %d", r.Status)
	}
}

func identityOf(t *testing.T, pc *gophercloud.ProviderClient) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPolicyFileOverride: a policy file makes listing servers in detail
// admin-only; the plain list keeps its default.
func TestPolicyFileOverride(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte("\"os_compute_api:servers:detail\": \"rule:context_is_admin\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := testtree.Start(t, testtree.Options{Auth: "local", Cells: 1, HostsPerCell: 1, PolicyFile: file})
	demo := login(t, tr, "demo", tr.OpenRC["demo"].Password, "demo")
	_, err := servers.List(computeOf(t, demo), nil).AllPages(context.Background())
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) || !strings.Contains(err.Error(), "Policy doesn't allow os_compute_api:servers:detail to be performed.") {
		t.Errorf("demo lists servers under the override: %v, want 403", err)
	}
	admin := login(t, tr, "admin", tr.OpenRC["admin"].Password, "admin")
	if _, err := servers.List(computeOf(t, admin), nil).AllPages(context.Background()); err != nil {
		t.Errorf("admin lists servers: %v", err)
	}
	if r := tr.Do(t, "GET", "/v2.1/servers", demo.Token(), nil); r.Status != http.StatusOK {
		t.Errorf("demo's plain list (default rule): %d %s", r.Status, r.Body)
	}
}
