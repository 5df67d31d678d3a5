package compute_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestUnknownQueryParameters275: from 2.75 the query schemas Nova made
// strict refuse a parameter they do not name; at 2.74 it is dropped.
func TestUnknownQueryParameters275(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	const refused = "Additional properties are not allowed ('foo' was unexpected)"
	for _, c := range []struct {
		method, path, token string
		body                any
		ok                  int
	}{
		{http.MethodGet, "/v2.1/servers", demo, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/servers/detail", demo, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/flavors", demo, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/flavors/detail", demo, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/os-keypairs", demo, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/limits", demo, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/os-quota-sets/demo", demo, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/os-quota-sets/demo/detail", demo, nil, http.StatusOK},
		{http.MethodPut, "/v2.1/os-quota-sets/demo", admin, map[string]any{"quota_set": map[string]any{"cores": 30}}, http.StatusOK},
		{http.MethodDelete, "/v2.1/os-quota-sets/demo", admin, nil, http.StatusAccepted},
		{http.MethodGet, "/v2.1/os-server-groups", demo, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/os-services", admin, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/os-simple-tenant-usage", admin, nil, http.StatusOK},
		{http.MethodGet, "/v2.1/os-simple-tenant-usage/demo", demo, nil, http.StatusOK},
	} {
		path := c.path + "?foo=1"
		faultHas(t, tr.Do(t, c.method, path, c.token, c.body, atVersion("2.75")...), http.StatusBadRequest, refused)
		if r := tr.Do(t, c.method, path, c.token, c.body, atVersion("2.74")...); r.Status != c.ok {
			t.Errorf("%s %s at 2.74: %s; want %d", c.method, path, r, c.ok)
		}
	}
	// What the schemas name is still accepted.
	for _, c := range []struct{ path, token string }{
		{"/v2.1/limits?tenant_id=other", admin},
		{"/v2.1/os-quota-sets/demo?user_id=demo", admin},
		{"/v2.1/os-quota-sets/demo/detail?user_id=demo", admin},
		{"/v2.1/os-services?host=nowhere&binary=nova-compute", admin},
		{"/v2.1/os-simple-tenant-usage?start=2020-01-01T00:00:00&end=2020-02-01T00:00:00&detailed=1&limit=5", admin},
		{"/v2.1/os-simple-tenant-usage/demo?start=2020-01-01T00:00:00&limit=5", demo},
	} {
		if r := tr.Do(t, http.MethodGet, c.path, c.token, nil, atVersion("2.75")...); r.Status != http.StatusOK {
			t.Errorf("GET %s at 2.75: %s", c.path, r)
		}
	}
	// detailed belongs to the list of usages alone.
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/os-simple-tenant-usage/demo?detailed=1", demo, nil, atVersion("2.75")...),
		http.StatusBadRequest, "Additional properties are not allowed ('detailed' was unexpected)")
}

// TestViews275: from 2.75 update and rebuild answer every field show has
// (rebuild: but the extended user_data, with user_data and adminPass), a
// flavor's swap is 0 rather than "", and a hypervisor asked with its
// servers has servers even when it has none.
func TestViews275(t *testing.T) {
	t.Parallel()
	tr := operatorTree(t)
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "viewed", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")

	keys := func(v map[string]any) []string { return sortedKeys(v) }
	rename := func(mv string) map[string]any {
		t.Helper()
		return serverOf(t, tr.Do(t, http.MethodPut, "/v2.1/servers/"+id, demo, map[string]any{"server": map[string]any{"name": "viewed"}},
			atVersion(mv)...), http.StatusOK)
	}
	rebuild := func(mv string) map[string]any {
		t.Helper()
		v := serverOf(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, map[string]any{"rebuild": map[string]any{"imageRef": imageID}},
			atVersion(mv)...), http.StatusAccepted)
		waitStatus(t, sc, id, "ACTIVE")
		return v
	}
	show := serverAt(t, tr, demo, id, "2.75")
	for _, k := range []string{"OS-EXT-STS:vm_state", "OS-EXT-AZ:availability_zone", "key_name", "config_drive", "OS-SRV-USG:launched_at",
		"security_groups", "os-extended-volumes:volumes_attached", "server_groups", "locked_reason"} {
		if _, ok := show[k]; !ok {
			t.Fatalf("show at 2.75 lacks %s: %v", k, keys(show))
		}
	}
	if got := rename("2.75"); !slices.Equal(keys(got), keys(show)) {
		t.Errorf("update at 2.75 has %v; show has %v", keys(got), keys(show))
	}
	if got := rename("2.74"); hasField(got, "OS-EXT-STS:vm_state") || hasField(got, "key_name") || hasField(got, "security_groups") {
		t.Errorf("update at 2.74 has the extended fields: %v", keys(got))
	}
	wantRebuild := append(keys(show), "adminPass", "user_data")
	slices.Sort(wantRebuild)
	if got := rebuild("2.75"); !slices.Equal(keys(got), wantRebuild) {
		t.Errorf("rebuild at 2.75 has %v; want %v", keys(got), wantRebuild)
	}
	if got := rebuild("2.74"); hasField(got, "OS-EXT-STS:vm_state") || hasField(got, "OS-EXT-AZ:availability_zone") {
		t.Errorf("rebuild at 2.74 has the extended fields: %v", keys(got))
	}

	// Flavor 1 has no swap.
	if f := getFlavorMap(t, tr, demo, "1", atVersion("2.75")...); f["swap"] != 0.0 {
		t.Errorf("flavor swap at 2.75 = %#v; want 0", f["swap"])
	}
	if f := getFlavorMap(t, tr, demo, "1", atVersion("2.74")...); f["swap"] != "" {
		t.Errorf("flavor swap at 2.74 = %#v; want \"\"", f["swap"])
	}

	// The hypervisors: three of the four hosts run nothing.
	hypervisors := func(mv, query string) []map[string]any {
		t.Helper()
		r := tr.Do(t, http.MethodGet, "/v2.1/os-hypervisors"+query, admin, nil, atVersion(mv)...)
		if r.Status != http.StatusOK {
			t.Fatalf("hypervisors%s at %s: %s", query, mv, r)
		}
		var out struct {
			Hypervisors []map[string]any `json:"hypervisors"`
		}
		r.JSON(t, &out)
		if len(out.Hypervisors) != 4 {
			t.Fatalf("hypervisors%s at %s: %d, want 4", query, mv, len(out.Hypervisors))
		}
		return out.Hypervisors
	}
	count := func(hs []map[string]any) (with, empty int) {
		for _, h := range hs {
			if ss, ok := h["servers"]; ok {
				with++
				if len(asList(ss)) == 0 {
					empty++
				}
			}
		}
		return with, empty
	}
	if with, empty := count(hypervisors("2.75", "?with_servers=true")); with != 4 || empty != 3 {
		t.Errorf("with servers at 2.75: %d have servers, %d of them empty; want 4 and 3", with, empty)
	}
	if with, empty := count(hypervisors("2.74", "?with_servers=true")); with != 1 || empty != 0 {
		t.Errorf("with servers at 2.74: %d have servers, %d of them empty; want 1 and 0", with, empty)
	}
	if with, _ := count(hypervisors("2.75", "/detail")); with != 0 {
		t.Errorf("without with_servers at 2.75: %d have servers", with)
	}
	var hyp string
	for _, h := range hypervisors("2.75", "?with_servers=true") {
		if len(asList(h["servers"])) == 0 {
			hyp = h["id"].(string)
		}
	}
	r := tr.Do(t, http.MethodGet, "/v2.1/os-hypervisors/"+hyp+"?with_servers=1", admin, nil, atVersion("2.75")...)
	var one struct {
		Hypervisor map[string]any `json:"hypervisor"`
	}
	r.JSON(t, &one)
	if ss, ok := one.Hypervisor["servers"]; !ok || len(asList(ss)) != 0 {
		t.Errorf("show of a hypervisor without servers at 2.75: servers %v (%v)", ss, ok)
	}
	r = tr.Do(t, http.MethodGet, "/v2.1/os-hypervisors/"+hyp+"?with_servers=1", admin, nil, atVersion("2.74")...)
	one.Hypervisor = nil
	r.JSON(t, &one)
	if _, ok := one.Hypervisor["servers"]; ok {
		t.Errorf("show of a hypervisor without servers at 2.74 has servers")
	}
}
