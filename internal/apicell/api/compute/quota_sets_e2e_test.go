package compute

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestQuotaSetsAPI drives os-quota-sets, os-quota-class-sets and /limits
// with gophercloud: show, detail with usage, update (refused below usage
// unless forced, refused when negative, leaving nothing changed), delete
// back to the defaults, class sets feeding the defaults, members kept out.
func TestQuotaSetsAPI(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		srv := quotaAPI(t, d, quota.Defaults{Instances: 10, Cores: 20, RAM: quota.Unlimited})
		admin := gopherClient(srv.URL, "admin:admin")
		demo := gopherClient(srv.URL, "demo:demo")

		for range 2 {
			if _, err := servers.Create(ctx, demo, servers.CreateOpts{Name: "u", FlavorRef: "1", ImageRef: image.CirrosID, Networks: "none"}, nil).Extract(); err != nil {
				t.Fatal(err)
			}
		}

		qs, err := quotasets.Get(ctx, admin, "demo").Extract()
		if err != nil {
			t.Fatal(err)
		}
		if qs.ID != "demo" || qs.Instances != 10 || qs.Cores != 20 || qs.RAM != -1 || qs.KeyPairs != 100 || qs.MetadataItems != 128 {
			t.Errorf("demo's quota set: %+v", qs)
		}
		det, err := quotasets.GetDetail(ctx, admin, "demo").Extract()
		if err != nil {
			t.Fatal(err)
		}
		if det.Instances.InUse != 2 || det.Instances.Limit != 10 || det.Cores.InUse != 2 {
			t.Errorf("demo's detail: instances %+v cores %+v, want 2 in use", det.Instances, det.Cores)
		}

		// Below usage: refused with Nova's message, nothing changed.
		three := 3
		one := 1
		_, err = quotasets.Update(ctx, admin, "demo", quotasets.UpdateOpts{Instances: &one, Cores: &three}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) ||
			!strings.Contains(err.Error(), "Quota limit 1 for instances must be greater than or equal to already used and reserved 2.") {
			t.Errorf("instances below usage: %v", err)
		}
		if qs, _ := quotasets.Get(ctx, admin, "demo").Extract(); qs == nil || qs.Instances != 10 || qs.Cores != 20 {
			t.Errorf("a refused update changed the quota set: %+v", qs)
		}
		// Negative: refused by the schema.
		minus := -5
		if _, err := quotasets.Update(ctx, admin, "demo", quotasets.UpdateOpts{Instances: &minus}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) ||
			!strings.Contains(err.Error(), "-5 is less than the minimum of -1") {
			t.Errorf("negative instances: %v", err)
		}
		// A member may not set quotas.
		if _, err := quotasets.Update(ctx, demo, "demo", quotasets.UpdateOpts{Instances: &three}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("a member updates its quota: %v, want 403", err)
		}
		// Forced below usage: accepted; new creates are refused.
		qs, err = quotasets.Update(ctx, admin, "demo", quotasets.UpdateOpts{Instances: &one, Force: true}).Extract()
		if err != nil || qs.Instances != 1 {
			t.Fatalf("forced update: %+v %v", qs, err)
		}
		if _, err := servers.Create(ctx, demo, servers.CreateOpts{Name: "x", FlavorRef: "1", ImageRef: image.CirrosID, Networks: "none"}, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("create over a forced quota: %v, want 403", err)
		}
		// The member sees its own limits and usage at /limits.
		lim, err := limits.Get(ctx, demo, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if lim.Absolute.MaxTotalInstances != 1 || lim.Absolute.TotalInstancesUsed != 2 || lim.Absolute.TotalCoresUsed != 2 || lim.Absolute.MaxTotalCores != 20 {
			t.Errorf("demo's /limits: %+v", lim.Absolute)
		}
		// Delete: back to the defaults.
		if err := quotasets.Delete(ctx, admin, "demo").Err; err != nil {
			t.Fatal(err)
		}
		if qs, _ := quotasets.Get(ctx, admin, "demo").Extract(); qs == nil || qs.Instances != 10 {
			t.Errorf("after delete: %+v", qs)
		}

		// The default class feeds every project's defaults.
		r := send(t, srv.URL, "PUT", "/v2.1/os-quota-class-sets/default", "admin:admin", `{"quota_class_set": {"instances": 7}}`, "2.60")
		if r.status != http.StatusOK || r.m["quota_class_set"].(map[string]any)["instances"] != float64(7) {
			t.Fatalf("class update: %d %v", r.status, r.m)
		}
		if qs, _ := quotasets.Get(ctx, admin, "other").Extract(); qs == nil || qs.Instances != 7 {
			t.Errorf("a project's default after the class update: %+v", qs)
		}
		if r := send(t, srv.URL, "GET", "/v2.1/os-quota-class-sets/default", "demo:demo", "", "2.60"); r.status != http.StatusForbidden {
			t.Errorf("a member shows the class: %d", r.status)
		}
		if r := send(t, srv.URL, "PUT", "/v2.1/os-quota-class-sets/default", "admin:admin", `{"quota_class_set": {"bogus": 1}}`, "2.60"); r.status != http.StatusBadRequest ||
			!strings.Contains(r.body, "'bogus' was unexpected") {
			t.Errorf("unknown class key: %d %s", r.status, r.body)
		}
	})
}

// keysCase is a document whose keys depend on the microversion: at
// version, the object top (or /limits' absolute limits when top is "")
// has the keys has and not the keys hasNot.
type keysCase struct {
	path, top, version string
	has, hasNot        []string
}

// TestQuotaKeysByMicroversion: the keys of quota sets and class sets
// follow Nova's microversions (network quotas go at 2.36, injected files
// at 2.57; class sets gain the server group keys and lose the network ones
// at 2.50). /limits' keys are checked in limits_e2e_test.go.
func TestQuotaKeysByMicroversion(t *testing.T) {
	srv := quotaAPI(t, dbtest.Open(t, "sqlite"), quota.Defaults{})
	checkKeysByVersion(t, srv.URL, []keysCase{
		{"/v2.1/os-quota-sets/demo", "quota_set", "2.1", []string{"floating_ips", "injected_files", "server_groups"}, nil},
		{"/v2.1/os-quota-sets/demo", "quota_set", "2.36", []string{"injected_files", "server_groups"}, []string{"floating_ips", "fixed_ips", "security_groups"}},
		{"/v2.1/os-quota-sets/demo", "quota_set", "2.57", []string{"server_groups"}, []string{"floating_ips", "injected_files"}},
		{"/v2.1/os-quota-class-sets/default", "quota_class_set", "2.1", []string{"floating_ips"}, []string{"server_groups"}},
		{"/v2.1/os-quota-class-sets/default", "quota_class_set", "2.50", []string{"server_groups", "server_group_members"}, []string{"floating_ips"}},
	})
}

// checkKeysByVersion checks each case's document as an admin.
func checkKeysByVersion(t *testing.T, base string, cases []keysCase) {
	t.Helper()
	for _, c := range cases {
		r := send(t, base, "GET", c.path, "admin:admin", "", c.version)
		if r.status != http.StatusOK {
			t.Fatalf("%s at %s: %d %s", c.path, c.version, r.status, r.body)
		}
		var got map[string]any
		if c.top != "" {
			got, _ = r.m[c.top].(map[string]any)
		} else {
			got, _ = r.m["limits"].(map[string]any)["absolute"].(map[string]any)
		}
		for _, k := range c.has {
			if _, ok := got[k]; !ok {
				t.Errorf("%s at %s lacks %s: %v", c.path, c.version, k, got)
			}
		}
		for _, k := range c.hasNot {
			if _, ok := got[k]; ok {
				t.Errorf("%s at %s has %s", c.path, c.version, k)
			}
		}
	}
}

type sent struct {
	status int
	body   string
	m      map[string]any
}

// send is a raw request to an httptest Compute API, for the cases
// gophercloud has no call for.
func send(t *testing.T, base, method, path, token, body, version string) sent {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("X-OpenStack-Nova-API-Version", version)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := sent{status: resp.StatusCode, body: string(b)}
	_ = json.Unmarshal(b, &out.m)
	return out
}
