package compute_test

import (
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

func intPtr(n int) *int    { return &n }
func boolPtr(b bool) *bool { return &b }

// flavorIDs lists the flavors token sees with query (e.g. "?is_public=none").
func listFlavorIDs(t *testing.T, tr *testtree.Tree, token, query string, headers ...string) []string {
	t.Helper()
	r := tr.Do(t, http.MethodGet, "/v2.1/flavors"+query, token, nil, headers...)
	if r.Status != http.StatusOK {
		t.Fatalf("list flavors%s: %s", query, r)
	}
	var out struct {
		Flavors []struct {
			ID string `json:"id"`
		} `json:"flavors"`
	}
	r.JSON(t, &out)
	ids := []string{}
	for _, f := range out.Flavors {
		ids = append(ids, f.ID)
	}
	return ids
}

// showFlavor is GET /flavors/{id} as a map.
func getFlavorMap(t *testing.T, tr *testtree.Tree, token, id string, headers ...string) map[string]any {
	t.Helper()
	r := tr.Do(t, http.MethodGet, "/v2.1/flavors/"+id, token, nil, headers...)
	if r.Status != http.StatusOK {
		t.Fatalf("show flavor %s: %s", id, r)
	}
	return r.Map(t)["flavor"].(map[string]any)
}

// TestFlavors covers the flavor list and show: the default flavors in
// Nova's shape, the list's filters, sorting and pages, and the views of
// later microversions.
func TestFlavors(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	t.Run("defaults", func(t *testing.T) { testFlavorDefaults(t, tr) })
	t.Run("list", func(t *testing.T) { testFlavorList(t, tr) })
	t.Run("2.61 and 2.75 views", func(t *testing.T) { testFlavorV261V275(t, tr) })
}

func testFlavorDefaults(t *testing.T, tr *testtree.Tree) {
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	api := tr.APIURL()
	root := strings.TrimSuffix(api, "/v2.1")

	pages, err := flavors.ListDetail(sc, nil).AllPages(ctx)
	if err != nil {
		t.Fatalf("list flavors: %v", err)
	}
	fs, err := flavors.ExtractFlavors(pages)
	if err != nil {
		t.Fatalf("extract flavors: %v", err)
	}
	want := []flavors.Flavor{
		{ID: "1", Name: "m1.tiny", VCPUs: 1, RAM: 512, Disk: 1},
		{ID: "2", Name: "m1.small", VCPUs: 1, RAM: 2048, Disk: 20},
		{ID: "3", Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 40},
		{ID: "4", Name: "m1.large", VCPUs: 4, RAM: 8192, Disk: 80},
		{ID: "5", Name: "m1.xlarge", VCPUs: 8, RAM: 16384, Disk: 160},
	}
	if len(fs) != len(want) {
		t.Fatalf("%d flavors, want %d: %+v", len(fs), len(want), fs)
	}
	for i, w := range want {
		w.RxTxFactor, w.IsPublic = 1, true
		if !reflect.DeepEqual(fs[i], w) {
			t.Errorf("flavor %d: %+v, want %+v", i, fs[i], w)
		}
	}

	f, err := flavors.Get(ctx, sc, "3").Extract()
	if err != nil {
		t.Fatalf("get flavor 3: %v", err)
	}
	if f.Name != "m1.medium" || f.RAM != 4096 || f.VCPUs != 2 || f.Disk != 40 {
		t.Errorf("flavor 3: %+v", f)
	}
	if _, err := flavors.Get(ctx, sc, "999").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("get flavor 999: %v, want a 404", err)
	}
	msg := testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/flavors/999", demo, nil), http.StatusNotFound)
	if !strings.Contains(msg, "Flavor 999 could not be found") {
		t.Errorf("missing flavor message %q", msg)
	}

	// The index has id, name and links only; the raw detail has Nova's
	// extension fields.
	r := tr.Do(t, http.MethodGet, "/v2.1/flavors", demo, nil)
	var idx struct {
		Flavors []map[string]any `json:"flavors"`
	}
	r.JSON(t, &idx)
	if len(idx.Flavors) != 5 {
		t.Fatalf("flavor index: %s", r)
	}
	wantFirst := `{"id":"1","links":[{"href":"` + api + `/demo/flavors/1","rel":"self"},{"href":"` + root + `/demo/flavors/1","rel":"bookmark"}],"name":"m1.tiny"}`
	if got := mustJSON(idx.Flavors[0]); got != wantFirst {
		t.Errorf("flavor index entry %s, want %s", got, wantFirst)
	}
	r = tr.Do(t, http.MethodGet, "/v2.1/flavors/1", demo, nil)
	var one struct {
		Flavor map[string]any `json:"flavor"`
	}
	r.JSON(t, &one)
	for k, w := range map[string]any{"OS-FLV-EXT-DATA:ephemeral": 0.0, "swap": "", "os-flavor-access:is_public": true,
		"OS-FLV-DISABLED:disabled": false, "rxtx_factor": 1.0, "vcpus": 1.0, "ram": 512.0, "disk": 1.0} {
		if one.Flavor[k] != w {
			t.Errorf("flavor 1 %s = %#v, want %#v", k, one.Flavor[k], w)
		}
	}
}

func testFlavorList(t *testing.T, tr *testtree.Tree) {
	ctx := ctxT(t)
	as := tr.Compute(admin)
	for _, c := range []flavors.CreateOpts{
		{ID: "L1", Name: "list.one", RAM: 300, VCPUs: 3, Disk: intPtr(7)},
		{ID: "L2", Name: "list.two", RAM: 100000, VCPUs: 1, Disk: intPtr(1000), IsPublic: boolPtr(false)},
	} {
		if _, err := flavors.Create(ctx, as, c).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, id := range []string{"L1", "L2"} {
			_ = flavors.Delete(ctx, as, id).ExtractErr()
		}
	}()
	for _, c := range []struct {
		token, query string
		want         []string
	}{
		{demo, "", []string{"1", "2", "3", "4", "5", "L1"}},
		{demo, "?is_public=false", []string{"1", "2", "3", "4", "5", "L1"}}, // only admins choose
		{admin, "?is_public=false", []string{"L2"}},
		{admin, "?is_public=None", []string{"1", "2", "3", "4", "5", "L1", "L2"}},
		{admin, "?is_public=yes", []string{"1", "2", "3", "4", "5", "L1"}},
		{demo, "?minRam=2048", []string{"2", "3", "4", "5"}},
		{admin, "?is_public=none&minRam=8192&minDisk=100", []string{"5", "L2"}},
		{demo, "?minDisk=20&sort_key=memory_mb&sort_dir=desc", []string{"5", "4", "3", "2"}},
		{demo, "?sort_key=name", []string{"L1", "4", "3", "2", "1", "5"}},
		{demo, "?sort_key=vcpus&sort_dir=desc&limit=2", []string{"5", "4"}},
		{demo, "?limit=0", []string{}},
		{demo, "?marker=4", []string{"5", "L1"}},
		{demo, "?sort_key=memory_mb&marker=1", []string{"2", "3", "4", "5"}},
		{demo, "?sort_key=memory_mb&limit=2", []string{"L1", "1"}},
	} {
		if got := listFlavorIDs(t, tr, c.token, c.query); !slices.Equal(got, c.want) {
			t.Errorf("%s lists %s: %v, want %v", c.token, c.query, got, c.want)
		}
	}
	// Pages: a next link when a page is full; gophercloud follows it.
	r := tr.Do(t, http.MethodGet, "/v2.1/flavors/detail?limit=4&sort_key=memory_mb", demo, nil)
	var page struct {
		Flavors []map[string]any    `json:"flavors"`
		Links   []map[string]string `json:"flavors_links"`
	}
	r.JSON(t, &page)
	wantNext := tr.APIURL() + "/flavors/detail?limit=4&marker=3&sort_key=memory_mb"
	if len(page.Flavors) != 4 || len(page.Links) != 1 || page.Links[0]["rel"] != "next" || page.Links[0]["href"] != wantNext {
		t.Errorf("first page: %d flavors, links %v; want 4 and next %s", len(page.Flavors), page.Links, wantNext)
	}
	pages, err := flavors.ListDetail(tr.Compute(demo), flavors.ListOpts{Limit: 2}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := flavors.ExtractFlavors(pages)
	var ids []string
	for _, f := range fs {
		ids = append(ids, f.ID)
	}
	if !slices.Equal(ids, []string{"1", "2", "3", "4", "5", "L1"}) {
		t.Errorf("gophercloud pages of 2: %v", ids)
	}
	// The project in the request's path stays in the link.
	r = tr.Do(t, http.MethodGet, "/v2.1/demo/flavors?limit=1", demo, nil)
	if links, _ := r.Map(t)["flavors_links"].([]any); len(links) != 1 || !strings.HasPrefix(links[0].(map[string]any)["href"].(string), tr.APIURL()+"/demo/flavors?limit=1&marker=1") {
		t.Errorf("next link with the project in the path: %s", r)
	}
	if got := listFlavorIDs(t, tr, demo, "?limit=6"); len(got) != 6 {
		t.Errorf("limit=6: %v", got)
	}

	for _, c := range []struct {
		token, query, want string
	}{
		{demo, "?minRam=lots", "Invalid minRam filter [lots]"},
		{demo, "?minDisk=1.5", "Invalid minDisk filter [1.5]"},
		{admin, "?is_public=maybe", "Invalid is_public filter [maybe]"},
		{demo, "?marker=nosuch", "marker [nosuch] not found"},
		{demo, "?marker=L2", "marker [L2] not found"}, // a flavor demo cannot see
		{demo, "?sort_key=color", "Invalid input for query parameters sort_key. Value: color. 'color' is not one of ['created_at'"},
		{demo, "?sort_dir=up", "Invalid input for query parameters sort_dir"},
		{demo, "?limit=-1", "Invalid input for query parameters limit"},
	} {
		faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/flavors"+c.query, c.token, nil), 400, c.want)
	}
	// Before 2.75 unknown parameters are ignored.
	if got := listFlavorIDs(t, tr, demo, "?color=red"); len(got) != 6 {
		t.Errorf("unknown parameter at 2.1: %v", got)
	}
}

func testFlavorV261V275(t *testing.T, tr *testtree.Tree) {
	v := needMicroversion(t, 61)
	ctx := ctxT(t)
	as := tr.Compute(admin)
	if _, err := flavors.Create(ctx, as, flavors.CreateOpts{ID: "v61", Name: "v61", RAM: 64, VCPUs: 1, Disk: intPtr(1)}).Extract(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = flavors.Delete(ctx, as, "v61").ExtractErr() }()
	if _, err := flavors.CreateExtraSpecs(ctx, as, "v61", flavors.ExtraSpecsOpts{"k": "v"}).Extract(); err != nil {
		t.Fatal(err)
	}
	show := getFlavorMap(t, tr, demo, "v61", atVersion(v)...)
	if specs, _ := show["extra_specs"].(map[string]any); specs["k"] != "v" || show["swap"] != "" {
		t.Errorf("show at %s: %v", v, show)
	}
	if !servesMicroversion(75) {
		return
	}
	show = getFlavorMap(t, tr, demo, "v61", atVersion("2.75")...)
	if show["swap"] != 0.0 {
		t.Errorf("swap at 2.75: %v, want 0", show["swap"])
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/flavors?color=red", demo, nil, atVersion("2.75")...), 400, "Additional properties are not allowed ('color' was unexpected)")
}

func hasField(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}
