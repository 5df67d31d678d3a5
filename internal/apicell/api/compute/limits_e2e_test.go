package compute

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestLimits: GET /limits is the caller's project's absolute limits and
// usage, as Nova's: rate is an empty list (v2.1 has no rate limits), the
// limits are the defaults in force, the usage counts the project's own
// servers and server groups only. An admin reads another project's with
// tenant_id; a member may not.
func TestLimits(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		srv := quotaAPI(t, d, quota.Defaults{})
		demo := gopherClient(srv.URL, "demo:demo")
		absolute := func(r sent) map[string]any {
			t.Helper()
			if r.status != http.StatusOK {
				t.Fatalf("GET /limits: %d %s", r.status, r.body)
			}
			lim, _ := r.m["limits"].(map[string]any)
			if rate, ok := lim["rate"].([]any); !ok || len(rate) != 0 {
				t.Errorf("rate: %v, want []", lim["rate"])
			}
			abs, _ := lim["absolute"].(map[string]any)
			return abs
		}

		// Nova's defaults and nothing used; the network quotas are not
		// limited here (-1).
		want := map[string]any{
			"maxTotalInstances": 10.0, "maxTotalCores": 20.0, "maxTotalRAMSize": 51200.0, "maxTotalKeypairs": 100.0,
			"maxServerMeta": 128.0, "maxImageMeta": 128.0, "maxPersonality": 5.0, "maxPersonalitySize": 10240.0,
			"maxServerGroups": 10.0, "maxServerGroupMembers": 10.0,
			"maxTotalFloatingIps": -1.0, "maxSecurityGroups": -1.0, "maxSecurityGroupRules": -1.0,
			"totalInstancesUsed": 0.0, "totalCoresUsed": 0.0, "totalRAMUsed": 0.0, "totalServerGroupsUsed": 0.0,
			"totalFloatingIpsUsed": 0.0, "totalSecurityGroupsUsed": 0.0,
		}
		abs := absolute(send(t, srv.URL, "GET", "/v2.1/limits", "demo:demo", "", "2.1"))
		if len(abs) != len(want) {
			t.Errorf("absolute limits at 2.1: %v, want the keys of %v", abs, want)
		}
		for k, v := range want {
			if abs[k] != v {
				t.Errorf("%s at 2.1 = %v, want %v", k, abs[k], v)
			}
		}

		// demo boots two m1.tiny (512 MB, 1 vCPU) and makes a server group.
		for range 2 {
			if _, err := servers.Create(ctx, demo, servers.CreateOpts{Name: "l", FlavorRef: "1", ImageRef: image.CirrosID, Networks: "none"}, nil).Extract(); err != nil {
				t.Fatal(err)
			}
		}
		if r := send(t, srv.URL, "POST", "/v2.1/os-server-groups", "demo:demo", `{"server_group": {"name": "g", "policies": ["affinity"]}}`, "2.1"); r.status != http.StatusOK {
			t.Fatalf("create a server group: %d %s", r.status, r.body)
		}
		used := map[string]float64{"totalInstancesUsed": 2, "totalCoresUsed": 2, "totalRAMUsed": 1024, "totalServerGroupsUsed": 1}
		abs = absolute(send(t, srv.URL, "GET", "/v2.1/limits", "demo:demo", "", "2.1"))
		for k, v := range used {
			if abs[k] != v {
				t.Errorf("demo's %s = %v, want %v", k, abs[k], v)
			}
		}
		// Another project's usage is its own.
		abs = absolute(send(t, srv.URL, "GET", "/v2.1/limits", "other:other", "", "2.1"))
		for k := range used {
			if abs[k] != 0.0 {
				t.Errorf("other's %s = %v, want 0", k, abs[k])
			}
		}
		// An admin reads demo's with tenant_id; a member may not.
		abs = absolute(send(t, srv.URL, "GET", "/v2.1/limits?tenant_id=demo", "admin:admin", "", "2.1"))
		for k, v := range used {
			if abs[k] != v {
				t.Errorf("demo's %s read by an admin = %v, want %v", k, abs[k], v)
			}
		}
		r := send(t, srv.URL, "GET", "/v2.1/limits?tenant_id=demo", "other:other", "", "2.1")
		if f, _ := r.m["forbidden"].(map[string]any); r.status != http.StatusForbidden ||
			f["message"] != "Policy doesn't allow os_compute_api:limits:other_project to be performed." {
			t.Errorf("a member reads another project's limits: %d %s", r.status, r.body)
		}
	})
}

// TestLimitsKeysByMicroversion: /limits' keys follow Nova's microversions
// (network quotas go at 2.36, image metadata at 2.39, injected files at
// 2.57).
func TestLimitsKeysByMicroversion(t *testing.T) {
	srv := quotaAPI(t, dbtest.Open(t, "sqlite"), quota.Defaults{})
	checkKeysByVersion(t, srv.URL, []keysCase{
		{"/v2.1/limits", "", "2.1", []string{"maxTotalFloatingIps", "maxImageMeta", "maxPersonality", "totalRAMUsed"}, nil},
		{"/v2.1/limits", "", "2.39", []string{"maxServerMeta", "maxPersonality"}, []string{"maxTotalFloatingIps", "maxSecurityGroups", "maxImageMeta"}},
		{"/v2.1/limits", "", "2.57", []string{"maxServerMeta", "maxTotalInstances"}, []string{"maxPersonality", "maxPersonalitySize"}},
	})
	// At 2.57 the keys are exactly Nova's.
	r := send(t, srv.URL, "GET", "/v2.1/limits", "demo:demo", "", "2.57")
	abs, _ := r.m["limits"].(map[string]any)["absolute"].(map[string]any)
	var keys []string
	for k := range abs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"maxServerGroupMembers", "maxServerGroups", "maxServerMeta", "maxTotalCores", "maxTotalInstances", "maxTotalKeypairs",
		"maxTotalRAMSize", "totalCoresUsed", "totalInstancesUsed", "totalRAMUsed", "totalServerGroupsUsed"}; !slices.Equal(keys, want) {
		t.Errorf("/limits' keys at 2.57: %v, want %v", keys, want)
	}
}
