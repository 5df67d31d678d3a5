package compute_test

import (
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestFlavorManage covers flavor create, update (2.55's description) and
// delete, with gophercloud and raw requests.
func TestFlavorManage(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	t.Run("create and delete", func(t *testing.T) { testFlavorCreateDelete(t, tr) })
	t.Run("bad creates", func(t *testing.T) { testFlavorBadCreate(t, tr) })
	t.Run("in use", func(t *testing.T) { testFlavorInUse(t, tr) })
	t.Run("2.55 description", func(t *testing.T) { testFlavorV255(t, tr) })
}

func testFlavorCreateDelete(t *testing.T, tr *testtree.Tree) {
	ctx := ctxT(t)
	as := tr.Compute(admin)
	f, err := flavors.Create(ctx, as, flavors.CreateOpts{ID: "c1", Name: "custom.one", RAM: 1024, VCPUs: 2, Disk: intPtr(10),
		Swap: intPtr(512), Ephemeral: intPtr(5), RxTxFactor: 1.5}).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	want := flavors.Flavor{ID: "c1", Name: "custom.one", RAM: 1024, VCPUs: 2, Disk: 10, Swap: 512, Ephemeral: 5, RxTxFactor: 1.5, IsPublic: true}
	if !reflect.DeepEqual(*f, want) {
		t.Errorf("created %+v, want %+v", *f, want)
	}
	// Everyone sees a public flavor, in Nova's shape at 2.1.
	got, err := flavors.Get(ctx, tr.Compute(demo), "c1").Extract()
	if err != nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("member gets %+v, %v", got, err)
	}
	v := getFlavorMap(t, tr, demo, "c1")
	if got := sortedKeys(v); !slices.Equal(got, []string{"OS-FLV-DISABLED:disabled", "OS-FLV-EXT-DATA:ephemeral", "disk", "id", "links",
		"name", "os-flavor-access:is_public", "ram", "rxtx_factor", "swap", "vcpus"}) {
		t.Errorf("flavor fields at 2.1: %v", got)
	}

	// No id: a UUID; the response code is 200, as Nova's.
	r := tr.Do(t, http.MethodPost, "/v2.1/flavors", admin, map[string]any{"flavor": map[string]any{"name": "auto", "ram": "64", "vcpus": 1, "disk": 0}})
	if r.Status != http.StatusOK {
		t.Fatalf("create without id: %s", r)
	}
	auto := r.Map(t)["flavor"].(map[string]any)
	if id, _ := auto["id"].(string); !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(id) {
		t.Errorf("generated id %q, want a UUID", auto["id"])
	}
	if auto["swap"] != "" || auto["ram"] != 64.0 || auto["rxtx_factor"] != 1.0 {
		t.Errorf("auto flavor %v", auto)
	}
	// A numeric id becomes text.
	r = tr.Do(t, http.MethodPost, "/v2.1/flavors", admin, map[string]any{"flavor": map[string]any{"name": "numeric", "id": 4242, "ram": 64, "vcpus": 1, "disk": 0}})
	if r.Status != http.StatusOK || r.Map(t)["flavor"].(map[string]any)["id"] != "4242" {
		t.Errorf("numeric id: %s", r)
	}

	// Only admins delete: 403, then 202, then 404.
	faultHas(t, tr.Do(t, http.MethodDelete, "/v2.1/flavors/c1", demo, nil), 403, "Policy doesn't allow os_compute_api:os-flavor-manage:delete to be performed.")
	if err := flavors.Delete(ctx, as, "c1").ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := flavors.Get(ctx, as, "c1").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("get after delete: %v, want 404", err)
	}
	faultHas(t, tr.Do(t, http.MethodDelete, "/v2.1/flavors/c1", admin, nil), 404, "Flavor c1 could not be found.")
	for _, id := range []string{auto["id"].(string), "4242"} {
		if r := tr.Do(t, http.MethodDelete, "/v2.1/flavors/"+id, admin, nil); r.Status != http.StatusAccepted || len(r.Body) != 0 {
			t.Errorf("delete %s: %s, want 202 and no body", id, r)
		}
	}
	// The id and the name are free again; so are a deleted default's.
	if _, err := flavors.Create(ctx, as, flavors.CreateOpts{ID: "c1", Name: "custom.one", RAM: 64, VCPUs: 1, Disk: intPtr(0)}).Extract(); err != nil {
		t.Errorf("create again after delete: %v", err)
	}
	if err := flavors.Delete(ctx, as, "c1").ExtractErr(); err != nil {
		t.Errorf("delete again: %v", err)
	}
	if got := listFlavorIDs(t, tr, admin, "?is_public=none"); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Errorf("after creates and deletes: %v", got)
	}
}

func testFlavorBadCreate(t *testing.T, tr *testtree.Tree) {
	good := func(changes map[string]any) map[string]any {
		f := map[string]any{"name": "bad", "id": "bad", "ram": 64, "vcpus": 1, "disk": 1}
		for k, v := range changes {
			if v == nil {
				delete(f, k)
			} else {
				f[k] = v
			}
		}
		return map[string]any{"flavor": f}
	}
	before := listFlavorIDs(t, tr, admin, "?is_public=none")
	for _, c := range []struct {
		name   string
		token  string
		body   any
		status int
		want   string
	}{
		{"member", demo, good(nil), 403, "Policy doesn't allow os_compute_api:os-flavor-manage:create to be performed."},
		{"member with a bad body", demo, good(map[string]any{"ram": 0}), 400, "ram"},
		{"no ram", admin, good(map[string]any{"ram": nil}), 400, "'ram' is a required property"},
		{"no name", admin, good(map[string]any{"name": nil}), 400, "'name' is a required property"},
		{"no disk", admin, good(map[string]any{"disk": nil}), 400, "'disk' is a required property"},
		{"ram 0", admin, good(map[string]any{"ram": 0}), 400, "0 is less than the minimum of 1"},
		{"vcpus -1", admin, good(map[string]any{"vcpus": -1}), 400, "-1 is less than the minimum of 1"},
		{"ram as text", admin, good(map[string]any{"ram": "lots"}), 400, "'lots' does not match '^[0-9]+$'"},
		{"ram a fraction", admin, good(map[string]any{"ram": 1.5}), 400, "1.5 is not of type 'integer', 'string'"},
		{"ram 2.0", admin, `{"flavor": {"name": "bad", "ram": 2.0, "vcpus": 1, "disk": 1}}`, 400, "Invalid input received: ram must be an integer"},
		{"ram too big", admin, good(map[string]any{"ram": 1 << 31}), 400, "2147483648 is greater than the maximum of 2147483647"},
		{"disk -1", admin, good(map[string]any{"disk": -1}), 400, "-1 is less than the minimum of 0"},
		{"swap as text", admin, good(map[string]any{"swap": "x"}), 400, "swap"},
		{"ephemeral a bool", admin, good(map[string]any{"OS-FLV-EXT-DATA:ephemeral": true}), 400, "True is not of type 'integer', 'string'"},
		{"empty name", admin, good(map[string]any{"name": ""}), 400, "should be non-empty"},
		{"name with spaces around", admin, good(map[string]any{"name": " bad "}), 400, "An invalid 'name' value was provided"},
		{"name too long", admin, good(map[string]any{"name": strings.Repeat("n", 256)}), 400, "is too long"},
		{"id with a slash", admin, good(map[string]any{"id": "a/b"}), 400, "Invalid input for field/attribute id"},
		{"id with a leading space", admin, good(map[string]any{"id": " a"}), 400, "Invalid input for field/attribute id"},
		{"id a bool", admin, good(map[string]any{"id": true}), 400, "is not of type 'string', 'number', 'null'"},
		{"rxtx_factor 0", admin, good(map[string]any{"rxtx_factor": 0}), 400, "rxtx_factor"},
		{"rxtx_factor '0'", admin, good(map[string]any{"rxtx_factor": "0"}), 400, "'rxtx_factor' argument must be a float between 0 and 3.40282e+38"},
		{"is_public maybe", admin, good(map[string]any{"os-flavor-access:is_public": "maybe"}), 400, "'maybe' is not one of [True, 'True'"},
		{"description before 2.55", admin, good(map[string]any{"description": "d"}), 400, "Additional properties are not allowed ('description' was unexpected)"},
		{"unknown field", admin, good(map[string]any{"color": "red"}), 400, "Additional properties are not allowed ('color' was unexpected)"},
		{"flavor not an object", admin, map[string]any{"flavor": []any{}}, 400, "[] is not of type 'object'"},
		{"no flavor", admin, map[string]any{}, 400, "'flavor' is a required property"},
		{"not JSON", admin, "{", 400, "Malformed request body"},
		{"existing id", admin, good(map[string]any{"id": "1"}), 409, "Flavor with ID 1 already exists."},
		{"existing name", admin, good(map[string]any{"name": "m1.tiny"}), 409, "Flavor with name m1.tiny already exists."},
	} {
		t.Run(c.name, func(t *testing.T) {
			faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/flavors", c.token, c.body), c.status, c.want)
		})
	}
	if after := listFlavorIDs(t, tr, admin, "?is_public=none"); !slices.Equal(after, before) {
		t.Errorf("bad creates wrote flavors: %v before, %v after", before, after)
	}
	if _, err := flavors.Create(ctxT(t), tr.Compute(demo), flavors.CreateOpts{Name: "x", RAM: 1, VCPUs: 1, Disk: intPtr(0)}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("gophercloud create as a member: %v, want 403", err)
	}
}

// testFlavorInUse deletes the flavor of a running server: the server keeps
// its copy, as in Nova.
func testFlavorInUse(t *testing.T, tr *testtree.Tree) {
	ctx := ctxT(t)
	as := tr.Compute(admin)
	if _, err := flavors.Create(ctx, as, flavors.CreateOpts{ID: "inuse", Name: "in.use", RAM: 128, VCPUs: 1, Disk: intPtr(1)}).Extract(); err != nil {
		t.Fatal(err)
	}
	sc := tr.Compute(demo)
	s, err := servers.Create(ctx, sc, servers.CreateOpts{Name: "uses-it", FlavorRef: "inuse", ImageRef: imageID}, nil).Extract()
	if err != nil {
		t.Fatalf("boot with the new flavor: %v", err)
	}
	waitStatus(t, sc, s.ID, "ACTIVE")
	if err := flavors.Delete(ctx, as, "inuse").ExtractErr(); err != nil {
		t.Fatalf("delete a flavor in use: %v", err)
	}
	got := waitStatus(t, sc, s.ID, "ACTIVE")
	if got.Flavor["id"] != "inuse" {
		t.Errorf("server flavor after the flavor's delete: %v", got.Flavor)
	}
	// New boots cannot use it.
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{"name": "late", "flavorRef": "inuse", "imageRef": imageID}})
	faultHas(t, r, 400, "Flavor inuse could not be found.")
	deleteAll(t, tr, demo, []string{s.ID})
}

func testFlavorV255(t *testing.T, tr *testtree.Tree) {
	v := needMicroversion(t, 55)
	ctx := ctxT(t)
	as := tr.Compute(admin)
	as.Microversion = v
	f, err := flavors.Create(ctx, as, flavors.CreateOpts{ID: "d", Name: "described", RAM: 64, VCPUs: 1, Disk: intPtr(1), Description: "for tests"}).Extract()
	if err != nil || f.Description != "for tests" {
		t.Fatalf("create with a description: %+v, %v", f, err)
	}
	defer func() { _ = flavors.Delete(ctx, as, "d").ExtractErr() }()
	if show := getFlavorMap(t, tr, demo, "d", atVersion(v)...); show["description"] != "for tests" {
		t.Errorf("show at %s: %v", v, show)
	}
	if show := getFlavorMap(t, tr, demo, "1", atVersion(v)...); show["description"] != nil || !hasField(show, "description") {
		t.Errorf("a flavor without description at %s: %v, want description null", v, show)
	}
	if show := getFlavorMap(t, tr, demo, "d"); hasField(show, "description") {
		t.Errorf("description shown at 2.1: %v", show)
	}
	r := tr.Do(t, http.MethodGet, "/v2.1/flavors", demo, nil, atVersion(v)...)
	for _, e := range r.Map(t)["flavors"].([]any) {
		if !hasField(e.(map[string]any), "description") {
			t.Errorf("index entry without description at %s: %v", v, e)
		}
	}
	upd, err := flavors.Update(ctx, as, "d", flavors.UpdateOpts{Description: "changed"}).Extract()
	if err != nil || upd.Description != "changed" || upd.ID != "d" {
		t.Errorf("update: %+v, %v", upd, err)
	}
	r = tr.Do(t, http.MethodPut, "/v2.1/flavors/d", admin, map[string]any{"flavor": map[string]any{"description": nil}}, atVersion(v)...)
	if r.Status != http.StatusOK || r.Map(t)["flavor"].(map[string]any)["description"] != nil {
		t.Errorf("clear the description: %s", r)
	}
	for _, c := range []struct {
		name, token string
		body        any
		headers     []string
		path        string
		status      int
		want        string
	}{
		{"member", demo, map[string]any{"flavor": map[string]any{"description": "x"}}, atVersion(v), "d", 403, "os_compute_api:os-flavor-manage:update"},
		{"at 2.1", admin, map[string]any{"flavor": map[string]any{"description": "x"}}, nil, "d", 404, "The resource could not be found."},
		{"no description", admin, map[string]any{"flavor": map[string]any{}}, atVersion(v), "d", 400, "'description' is a required property"},
		{"other field", admin, map[string]any{"flavor": map[string]any{"description": "x", "name": "y"}}, atVersion(v), "d", 400, "Additional properties are not allowed ('name' was unexpected)"},
		{"control character", admin, map[string]any{"flavor": map[string]any{"description": "a\nb"}}, atVersion(v), "d", 400, "Invalid input for field/attribute description"},
		{"missing flavor", admin, map[string]any{"flavor": map[string]any{"description": "x"}}, atVersion(v), "nosuch", 404, "Flavor nosuch could not be found."},
	} {
		t.Run(c.name, func(t *testing.T) {
			faultHas(t, tr.Do(t, http.MethodPut, "/v2.1/flavors/"+c.path, c.token, c.body, c.headers...), c.status, c.want)
		})
	}
}
