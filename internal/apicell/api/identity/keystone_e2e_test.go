package identity_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestKeystoneMode runs one tree as the identity service (auth local) and
// a second tree with --auth keystone pointed at the first one's Identity
// v3, as an operator would point cellcloud at an existing cloud's
// Keystone. Tokens issued by the first are honoured by the second, with
// their project and roles; a revoked token stops working once the short
// cache lets it go; an unknown token is 401; and a Keystone that is down
// gives 503, not 500.
func TestKeystoneMode(t *testing.T) {
	ks := testtree.Start(t, testtree.Options{Auth: "local", Cells: 1, HostsPerCell: 1})
	tr := testtree.Start(t, testtree.Options{Auth: "keystone", KeystoneURL: ks.OpenRC["admin"].AuthURL,
		TokenCacheTTL: 300 * time.Millisecond, Cells: 1, HostsPerCell: 2})
	ctx := context.Background()
	if tr.OpenRC != nil {
		t.Errorf("keystone mode wrote openrc files: %v", tr.OpenRC)
	}

	// compute is the second tree's Compute API, with a token of the first.
	compute := func(pc *gophercloud.ProviderClient) *gophercloud.ServiceClient {
		return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: tr.APIURL() + "/", ResourceBase: tr.APIURL() + "/"}
	}
	demo := login(t, ks, "demo", ks.OpenRC["demo"].Password, "demo")
	admin := login(t, ks, "admin", ks.OpenRC["admin"].Password, "admin")
	demoTok, err := tokens.Get(ctx, identityOf(t, demo), demo.Token()).ExtractProject()
	if err != nil {
		t.Fatal(err)
	}

	s, err := servers.Create(ctx, compute(demo), servers.CreateOpts{Name: "via-keystone", FlavorRef: "1", ImageRef: image.CirrosID}, nil).Extract()
	if err != nil {
		t.Fatalf("create with a Keystone token: %v", err)
	}
	testpoll.Eventually(t, 30*time.Second, "server ACTIVE", func() (bool, string) {
		got, err := servers.Get(ctx, compute(demo), s.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		return got.Status == "ACTIVE", got.Status
	})
	got, err := servers.Get(ctx, compute(demo), s.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got.TenantID != demoTok.ID {
		t.Errorf("server's tenant_id %q, want the Keystone project %q", got.TenantID, demoTok.ID)
	}

	// The admin role from Keystone is an admin here: it lists every
	// project's servers; demo's member role does not.
	pages, err := servers.List(compute(admin), servers.ListOpts{AllTenants: true}).AllPages(ctx)
	if err != nil {
		t.Fatalf("admin all_tenants: %v", err)
	}
	if all, _ := servers.ExtractServers(pages); len(all) != 1 || all[0].ID != s.ID {
		t.Errorf("admin all_tenants lists %v, want demo's server", all)
	}
	if r := tr.Do(t, "GET", "/v2.1/servers?all_tenants=1", demo.Token(), nil); r.Status != http.StatusForbidden {
		t.Errorf("demo all_tenants: %d %s, want 403", r.Status, r.Body)
	}
	if r := tr.Do(t, "GET", "/v2.1/servers", "not-a-keystone-token", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("unknown token: %d %s, want 401", r.Status, r.Body)
	}

	// Revoked in Keystone: refused here once the cache lets the token go.
	if err := tokens.Revoke(ctx, identityOf(t, admin), demo.Token()).Err; err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 10*time.Second, "revoked token refused", func() (bool, string) {
		r, err := tr.Send("GET", "/v2.1/servers", demo.Token(), nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusUnauthorized, http.StatusText(r.Status)
	})

	// Keystone down: 503 with Nova's fault shape, never 500.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ks.Shutdown(sctx)
	r := tr.Do(t, "GET", "/v2.1/servers", "a-token-never-seen", nil)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), "identity service") {
		t.Errorf("Keystone down: %d %s, want 503", r.Status, r.Body)
	}
}
