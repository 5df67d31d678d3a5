package volume_test

import (
	"context"
	"maps"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
)

// TestQuotaSets: a project reads its quota set, with and without usage,
// and the defaults: Cinder's default quotas, with what the volumes use;
// a member reading another project's is a 403, an admin reads any.
func TestQuotaSets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.usage.set(e.demoProject, map[string]int64{"volumes": 2, "gigabytes": 30})
	c := e.client("demo", "pw-demo", "demo")
	q, err := quotasets.Get(ctx, c, e.demoProject).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if q.ID != e.demoProject || q.Volumes != 10 || q.Snapshots != 10 || q.Gigabytes != 1000 || q.Backups != 10 || q.PerVolumeGigabytes != -1 || q.Groups != 10 {
		t.Errorf("quota set %+v", q)
	}
	u, err := quotasets.GetUsage(ctx, c, e.demoProject).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if u.Volumes.Limit != 10 || u.Volumes.InUse != 2 || u.Gigabytes.InUse != 30 || u.Gigabytes.Limit != 1000 || u.Snapshots.InUse != 0 {
		t.Errorf("quota usage %+v", u)
	}
	raw := e.do("GET", "/volume/v3/"+e.demoProject+"/os-quota-sets/"+e.demoProject+"?usage=true", e.demo).json(t, 200)["quota_set"].(map[string]any)
	if v := raw["volumes___DEFAULT__"].(map[string]any); len(v) != 3 || v["limit"] != float64(-1) || v["reserved"] != float64(0) {
		t.Errorf("a type's usage %v", v)
	}
	d, err := quotasets.GetDefaults(ctx, c, e.demoProject).Extract()
	if err != nil || d.Volumes != 10 || d.ID != e.demoProject {
		t.Errorf("defaults %+v, %v", d, err)
	}
	if _, err := quotasets.Get(ctx, c, e.adminProject).Extract(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Errorf("a member reading another project's quotas: %v, want a 403", err)
	}
	admin := e.client("admin", "pw-admin", "admin")
	if q, err := quotasets.Get(ctx, admin, e.demoProject).Extract(); err != nil || q.Volumes != 10 {
		t.Errorf("an admin reading demo's quotas: %+v, %v", q, err)
	}
	e.do("GET", "/volume/v3/"+e.demoProject+"/os-quota-sets/"+e.demoProject+"?usage=maybe", e.demo).json(t, 400)
}

// TestQuotaSetUpdateWithGophercloud: an admin sets a project's limits
// (a type's too), which its limits and defaults then show; a delete
// brings the defaults back, and a repeat of it is a 200 again.
func TestQuotaSetUpdateWithGophercloud(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client("admin", "pw-admin", "admin")
	five, hundred := 5, 100
	q, err := quotasets.Update(ctx, admin, e.demoProject, quotasets.UpdateOpts{Volumes: &five, Gigabytes: &hundred,
		Extra: map[string]any{"snapshots___DEFAULT__": 3}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if q.Volumes != 5 || q.Gigabytes != 100 || q.Snapshots != 10 || q.Extra["snapshots___DEFAULT__"] != float64(3) {
		t.Fatalf("updated %+v", q)
	}
	demo := e.client("demo", "pw-demo", "demo")
	if got, err := quotasets.Get(ctx, demo, e.demoProject).Extract(); err != nil || got.Volumes != 5 {
		t.Fatalf("demo's own view %+v, %v", got, err)
	}
	if d, err := quotasets.GetDefaults(ctx, demo, e.demoProject).Extract(); err != nil || d.Volumes != 10 {
		t.Fatalf("defaults after a set %+v, %v", d, err)
	}
	for range 2 {
		if err := quotasets.Delete(ctx, admin, e.demoProject).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := quotasets.Get(ctx, demo, e.demoProject).Extract(); err != nil || got.Volumes != 10 || got.Gigabytes != 1000 {
		t.Fatalf("after the delete %+v, %v", got, err)
	}
	if err := quotasets.Delete(ctx, demo, e.demoProject).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("a member's delete: %v", err)
	}
}

// TestQuotaSetUpdateAnswers: PUT's Cinder validation and texts; a
// refusal changes no limit. A limit below what the project uses is
// refused where the project has a limit of its own for it (Cinder checks
// only those), never for -1 or per_volume_gigabytes.
func TestQuotaSetUpdateAnswers(t *testing.T) {
	e := newEnv(t)
	path := "/volume/v3/" + e.adminProject + "/os-quota-sets/" + e.demoProject
	if r := e.send("PUT", path, e.admin, `{"quota_set": {"volumes": 8, "id": "ignored", "tenant_id": "ignored"}}`); r.status != 200 {
		t.Fatalf("set volumes: %d %s", r.status, r.body)
	}
	e.usage.set(e.demoProject, map[string]int64{"volumes": 6, "gigabytes": 500, "snapshots": 4})
	limits := func() map[string]int64 {
		l, err := e.types.Limits(context.Background(), e.d, e.demoProject)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	want := limits()
	for _, tc := range []struct {
		name, token, body string
		status            int
		message           string
	}{
		{name: "not an integer", token: e.admin, body: `{"quota_set": {"volumes": "many"}}`, status: 400, message: "volumes must be an integer"},
		{name: "a float", token: e.admin, body: `{"quota_set": {"volumes": 1.5}}`, status: 400, message: "volumes must be an integer"},
		{name: "a bool", token: e.admin, body: `{"quota_set": {"volumes": true}}`, status: 400, message: "volumes must be an integer"},
		{name: "below -1", token: e.admin, body: `{"quota_set": {"volumes": -2}}`, status: 400, message: "volumes must be >= -1"},
		{name: "too big", token: e.admin, body: `{"quota_set": {"volumes": 2147483648}}`, status: 400, message: "volumes must be <= 2147483647"},
		{name: "bad keys", token: e.admin, body: `{"quota_set": {"cores": 1, "volumes": 9, "force": true}}`, status: 400,
			message: "Invalid input received: Bad key(s) in quota set: cores, force"},
		{name: "bad value before bad key", token: e.admin, body: `{"quota_set": {"cores": 1, "volumes": "x"}}`, status: 400,
			message: "volumes must be an integer"},
		{name: "empty set", token: e.admin, body: `{"quota_set": {}}`, status: 400,
			message: "Invalid input for field/attribute quota_set. Value: {}. {} does not have enough properties"},
		{name: "no set", token: e.admin, body: `{"quotas": {}}`, status: 400, message: "'quota_set' is a required property"},
		{name: "below usage", token: e.admin, body: `{"quota_set": {"gigabytes": 1000, "volumes": 5}}`, status: 400,
			message: "Quota volumes limit must be equal or greater than existing resources. Current usage is 6 and the requested limit is 5."},
		{name: "member", token: e.demo, body: `{"quota_set": {"volumes": 9}}`, status: 403,
			message: "Policy doesn't allow volume_extension:quotas:update to be performed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := path
			if tc.token == e.demo {
				p = "/volume/v3/" + e.demoProject + "/os-quota-sets/" + e.demoProject
			}
			name := map[int]string{400: "badRequest", 403: "forbidden"}[tc.status]
			if msg := e.send("PUT", p, tc.token, tc.body).fault(t, tc.status, name); msg != tc.message {
				t.Errorf("message %q\nwant    %q", msg, tc.message)
			}
			if got := limits(); !maps.Equal(got, want) {
				t.Errorf("limits after a refusal %v, want %v", got, want)
			}
		})
	}
	// No limit of its own for snapshots: Cinder does not check it.
	// Unlimited and per_volume_gigabytes are never checked.
	got := e.send("PUT", path, e.admin, `{"quota_set": {"snapshots": 1, "volumes": "-1", "per_volume_gigabytes": 0}}`).json(t, 200)["quota_set"].(map[string]any)
	if got["snapshots"] != float64(1) || got["volumes"] != float64(-1) || got["per_volume_gigabytes"] != float64(0) || got["gigabytes"] != float64(1000) {
		t.Fatalf("set %v", got)
	}
	if _, ok := got["id"]; ok {
		t.Errorf("PUT's answer has an id: %v", got)
	}
}

// TestQuotaClassSets: admins read and set the default quota class, whose
// limits are every project's defaults; Cinder's texts for bad keys and
// values; members are refused.
func TestQuotaClassSets(t *testing.T) {
	e := newEnv(t)
	path := "/volume/v3/" + e.adminProject + "/os-quota-class-sets/default"
	got := e.do("GET", path, e.admin).json(t, 200)["quota_class_set"].(map[string]any)
	if got["id"] != "default" || got["volumes"] != float64(10) || got["gigabytes___DEFAULT__"] != float64(-1) {
		t.Fatalf("default class %v", got)
	}
	set := e.send("PUT", path, e.admin, `{"quota_class_set": {"volumes": 20, "snapshots": "15"}}`).json(t, 200)["quota_class_set"].(map[string]any)
	if set["volumes"] != float64(20) || set["snapshots"] != float64(15) {
		t.Fatalf("set class %v", set)
	}
	if _, ok := set["id"]; ok {
		t.Errorf("PUT's answer has an id: %v", set)
	}
	if d := e.do("GET", "/volume/v3/"+e.demoProject+"/os-quota-sets/"+e.demoProject+"/defaults", e.demo).json(t, 200)["quota_set"].(map[string]any); d["volumes"] != float64(20) {
		t.Fatalf("defaults after the class set %v", d)
	}
	for _, tc := range []struct {
		name, method, token, body string
		status                    int
		message                   string
	}{
		{name: "bad key", method: "PUT", token: e.admin, body: `{"quota_class_set": {"cores": 1}}`, status: 400,
			message: "Invalid input received: Bad key(s) in quota class set: cores"},
		{name: "below -1", method: "PUT", token: e.admin, body: `{"quota_class_set": {"volumes": -2}}`, status: 400,
			message: "Invalid input for field/attribute volumes. Value: -2. -2 is less than the minimum of -1"},
		{name: "a negative string", method: "PUT", token: e.admin, body: `{"quota_class_set": {"volumes": "-1"}}`, status: 400,
			message: "Invalid input for field/attribute volumes. Value: -1. '-1' does not match '^[0-9]*$'"},
		{name: "a float", method: "PUT", token: e.admin, body: `{"quota_class_set": {"volumes": 1.5}}`, status: 400,
			message: "Invalid input for field/attribute volumes. Value: 1.5. 1.5 is not of type 'integer', 'string'"},
		{name: "member reads", method: "GET", token: e.demo, status: 403,
			message: "Policy doesn't allow volume_extension:quota_classes:get to be performed."},
		{name: "member sets", method: "PUT", token: e.demo, body: `{"quota_class_set": {"volumes": 1}}`, status: 403,
			message: "Policy doesn't allow volume_extension:quota_classes:update to be performed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := path
			if tc.token == e.demo {
				p = "/volume/v3/" + e.demoProject + "/os-quota-class-sets/default"
			}
			name := map[int]string{400: "badRequest", 403: "forbidden"}[tc.status]
			if msg := e.send(tc.method, p, tc.token, tc.body).fault(t, tc.status, name); msg != tc.message {
				t.Errorf("message %q\nwant    %q", msg, tc.message)
			}
			if d, _ := e.types.Defaults(context.Background(), e.d); d["volumes"] != 20 || d["snapshots"] != 15 {
				t.Errorf("defaults after a refusal %v", d)
			}
		})
	}
}
