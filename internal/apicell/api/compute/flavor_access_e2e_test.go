package compute_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestFlavorAccess covers a private flavor's access list: who sees it,
// adding and removing projects, and the refusals.
func TestFlavorAccess(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	ctx := ctxT(t)
	as := tr.Compute(admin)
	f, err := flavors.Create(ctx, as, flavors.CreateOpts{ID: "priv", Name: "private", RAM: 64, VCPUs: 1, Disk: intPtr(1), IsPublic: boolPtr(false)}).Extract()
	if err != nil || f.IsPublic {
		t.Fatalf("create private: %+v, %v", f, err)
	}
	// Nova gives the creating project no access; members do not see it.
	for _, q := range []string{"", "/detail"} {
		if got := listFlavorIDs(t, tr, demo, q); slices.Contains(got, "priv") {
			t.Errorf("a member lists the private flavor (%s): %v", q, got)
		}
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/flavors/priv", demo, nil), 404, "Flavor priv could not be found.")
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/flavors/priv/os-extra_specs", demo, nil), 404, "Flavor priv could not be found.")
	if got := listFlavorIDs(t, tr, admin, ""); slices.Contains(got, "priv") {
		t.Errorf("an admin lists the private flavor without is_public: %v", got)
	}
	if got := listFlavorIDs(t, tr, admin, "?is_public=none"); !slices.Contains(got, "priv") {
		t.Errorf("an admin does not list the private flavor with is_public=none: %v", got)
	}
	if show := getFlavorMap(t, tr, admin, "priv"); show["os-flavor-access:is_public"] != false {
		t.Errorf("admin show %v", show)
	}

	// Give demo access.
	acc, err := flavors.AddAccess(ctx, as, "priv", flavors.AddAccessOpts{Tenant: "demo"}).Extract()
	if err != nil || len(acc) != 1 || acc[0].FlavorID != "priv" || acc[0].TenantID != "demo" {
		t.Fatalf("add access: %+v, %v", acc, err)
	}
	if _, err := flavors.AddAccess(ctx, as, "priv", flavors.AddAccessOpts{Tenant: "zeta"}).Extract(); err != nil {
		t.Fatal(err)
	}
	pages, err := flavors.ListAccesses(as, "priv").AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := flavors.ExtractAccesses(pages)
	if len(list) != 2 || list[0].TenantID != "demo" || list[1].TenantID != "zeta" {
		t.Errorf("access list %+v", list)
	}
	if got := listFlavorIDs(t, tr, demo, ""); !slices.Contains(got, "priv") {
		t.Errorf("a member with access does not list it: %v", got)
	}
	if show := getFlavorMap(t, tr, demo, "priv"); show["id"] != "priv" {
		t.Errorf("member with access shows %v", show)
	}
	if got := listFlavorIDs(t, tr, other, ""); slices.Contains(got, "priv") {
		t.Errorf("another project lists it: %v", got)
	}

	action := func(token, id string, body any) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/flavors/"+id+"/action", token, body)
	}
	add := func(tenant any) map[string]any {
		return map[string]any{"addTenantAccess": map[string]any{"tenant": tenant}}
	}
	for _, c := range []struct {
		name   string
		r      *testtree.Response
		status int
		want   string
	}{
		{"member adds", action(demo, "priv", add("other")), 403, "Policy doesn't allow os_compute_api:os-flavor-access:add_tenant_access to be performed."},
		{"member removes", action(demo, "priv", map[string]any{"removeTenantAccess": map[string]any{"tenant": "demo"}}), 403, "os_compute_api:os-flavor-access:remove_tenant_access"},
		{"member lists", tr.Do(t, http.MethodGet, "/v2.1/flavors/priv/os-flavor-access", demo, nil), 403, "Policy doesn't allow os_compute_api:os-flavor-access to be performed."},
		{"twice", action(admin, "priv", add("demo")), 409, "Flavor access already exists for flavor priv and project demo combination."},
		{"missing flavor", action(admin, "nosuch", add("demo")), 404, "Flavor nosuch could not be found."},
		{"empty tenant", action(admin, "priv", add("")), 400, "Invalid input for field/attribute tenant"},
		{"tenant a number", action(admin, "priv", add(5)), 400, "5 is not of type 'string'"},
		{"no tenant", action(admin, "priv", map[string]any{"addTenantAccess": map[string]any{}}), 400, "'tenant' is a required property"},
		{"extra field", action(admin, "priv", map[string]any{"addTenantAccess": map[string]any{"tenant": "x", "y": 1}}), 400, "Additional properties are not allowed ('y' was unexpected)"},
		{"unknown action", action(admin, "priv", map[string]any{"fly": nil}), 400, "There is no such action: fly"},
		{"two actions", action(admin, "priv", map[string]any{"addTenantAccess": map[string]any{"tenant": "x"}, "fly": nil}), 400, "Malformed request body"},
		{"remove missing", action(admin, "priv", map[string]any{"removeTenantAccess": map[string]any{"tenant": "nobody"}}), 404, "Flavor access not found for priv / nobody combination."},
		{"public flavor list", tr.Do(t, http.MethodGet, "/v2.1/flavors/1/os-flavor-access", admin, nil), 404, "Access list not available for public flavors."},
	} {
		t.Run(c.name, func(t *testing.T) { faultHas(t, c.r, c.status, c.want) })
	}
	pages, _ = flavors.ListAccesses(as, "priv").AllPages(ctx)
	if list, _ := flavors.ExtractAccesses(pages); len(list) != 2 {
		t.Errorf("bad requests changed the access list: %+v", list)
	}
	// Before 2.7 Nova lets an admin add access to a public flavor.
	if r := action(admin, "2", add("demo")); r.Status != http.StatusOK {
		t.Errorf("add access to a public flavor at 2.1: %s", r)
	}
	if servesMicroversion(7) {
		faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/flavors/3/action", admin, add("demo"), atVersion("2.7")...), 409, "Can not add access to a public flavor.")
	}

	// Take demo's access away.
	rem, err := flavors.RemoveAccess(ctx, as, "priv", flavors.RemoveAccessOpts{Tenant: "demo"}).Extract()
	if err != nil || len(rem) != 1 || rem[0].TenantID != "zeta" {
		t.Errorf("remove access: %+v, %v", rem, err)
	}
	if got := listFlavorIDs(t, tr, demo, ""); slices.Contains(got, "priv") {
		t.Errorf("a member still lists it after removal: %v", got)
	}
	if err := flavors.Delete(ctx, as, "priv").ExtractErr(); err != nil {
		t.Fatal(err)
	}
}
