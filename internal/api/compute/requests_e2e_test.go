package compute_test

import (
	"encoding/base64"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/api/compute"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestRequests covers what needs no build: bad input, routing, versions
// and flavors.
func TestRequests(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	t.Run("bad create", func(t *testing.T) { testBadCreate(t, tr) })
	t.Run("routes", func(t *testing.T) { testRoutes(t, tr) })
	t.Run("versions", func(t *testing.T) { testVersions(t, tr) })
	t.Run("flavors", func(t *testing.T) { testFlavors(t, tr) })
}

func testBadCreate(t *testing.T, tr *testtree.Tree) {
	// server builds a valid server with changes; a nil value removes a field.
	server := func(changes map[string]any) map[string]any {
		s := map[string]any{"name": "bad", "flavorRef": "1", "imageRef": imageID}
		for k, v := range changes {
			if v == nil {
				delete(s, k)
			} else {
				s[k] = v
			}
		}
		return map[string]any{"server": s}
	}
	cases := []struct {
		name   string
		body   any
		status int
		// want are words the message must hold, naming the problem.
		want []string
	}{
		{"missing name", server(map[string]any{"name": nil}), 400, []string{"'name' is a required property"}},
		{"empty name", server(map[string]any{"name": ""}), 400, []string{"name"}},
		{"blank name", server(map[string]any{"name": "   "}), 400, []string{"name"}},
		{"name with leading space", server(map[string]any{"name": " web"}), 400, []string{"name"}},
		{"name too long", server(map[string]any{"name": strings.Repeat("n", 256)}), 400, []string{"name"}},
		{"name not a string", server(map[string]any{"name": 7}), 400, []string{"name"}},
		{"missing flavorRef", server(map[string]any{"flavorRef": nil}), 400, []string{"'flavorRef' is a required property"}},
		{"empty flavorRef", server(map[string]any{"flavorRef": ""}), 400, []string{"flavorRef"}},
		{"flavorRef an object", server(map[string]any{"flavorRef": map[string]any{}}), 400, []string{"flavorRef"}},
		{"no such flavor", server(map[string]any{"flavorRef": "999"}), 400, []string{"Flavor 999 could not be found"}},
		{"no such flavor by number", server(map[string]any{"flavorRef": 999}), 400, []string{"Flavor 999 could not be found"}},
		{"missing imageRef", server(map[string]any{"imageRef": nil}), 400, []string{"imageRef"}},
		{"malformed imageRef", server(map[string]any{"imageRef": "not-an-image"}), 400, []string{"imageRef", "not-an-image"}},
		{"imageRef not a string", server(map[string]any{"imageRef": 5}), 400, []string{"imageRef"}},
		{"unknown field", server(map[string]any{"bogus": 1}), 400, []string{"Additional properties are not allowed", "'bogus'"}},
		{"unknown top-level key", map[string]any{"server": server(nil)["server"], "extra": 1}, 400, []string{"'extra'"}},
		{"min_count > max_count", server(map[string]any{"min_count": 3, "max_count": 2}), 400, []string{"min_count must be <= max_count"}},
		{"min_count 0", server(map[string]any{"min_count": 0}), 400, []string{"min_count", "minimum of 1"}},
		{"max_count 0", server(map[string]any{"max_count": 0}), 400, []string{"max_count", "minimum of 1"}},
		{"min_count not a number", server(map[string]any{"min_count": "two"}), 400, []string{"min_count"}},
		{"max_count too large", server(map[string]any{"max_count": 100000}), 400, []string{"max_count"}},
		{"user_data not base64", server(map[string]any{"user_data": "not base64!"}), 400, []string{"user_data", "base64"}},
		{"user_data too long", server(map[string]any{"user_data": base64.StdEncoding.EncodeToString(make([]byte, 49152+3))}), 400, []string{"user_data", "too long"}},
		{"metadata value not a string", server(map[string]any{"metadata": map[string]any{"k": 1}}), 400, []string{"metadata"}},
		{"networks auto at 2.1", server(map[string]any{"networks": "auto"}), 400, []string{"networks"}},
		{"return_reservation_id not a boolean", server(map[string]any{"return_reservation_id": "maybe"}), 400, []string{"return_reservation_id"}},
		{"scheduler hints not an object", map[string]any{"server": server(nil)["server"], "os:scheduler_hints": []int{1}}, 400, []string{"os:scheduler_hints"}},
		{"server not an object", map[string]any{"server": "web"}, 400, []string{"server", "object"}},
		{"no server", map[string]any{"servers": server(nil)["server"]}, 400, []string{"'server' is a required property"}},
		{"non-JSON body", "name=web&flavorRef=1", 400, []string{"Malformed request body"}},
		{"truncated JSON", `{"server": {"name": "web"`, 400, []string{"Malformed request body"}},
		{"JSON array", `[{"server": {"name": "web", "flavorRef": "1", "imageRef": "` + imageID + `"}}]`, 400, []string{"Malformed request body"}},
		{"JSON null", "null", 400, []string{"Malformed request body"}},
		{"empty body", "", 400, []string{"Malformed request body"}},
		{"body too large", server(map[string]any{"metadata": map[string]string{"k": strings.Repeat("x", 120<<10)}}), 413, []string{"too large"}},
	}
	before := len(listAll(t, tr, admin, "?all_tenants=1"))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, c.body)
			msg := testtree.Fault(t, r, c.status)
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not hold %q", msg, w)
				}
			}
		})
	}
	// gophercloud sees the same.
	_, err := servers.Create(ctxT(t), tr.Compute(demo), servers.CreateOpts{Name: "bad", FlavorRef: "999", ImageRef: imageID}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("gophercloud create with a missing flavor: %v, want a 400", err)
	}
	if after := len(listAll(t, tr, admin, "?all_tenants=1")); after != before {
		t.Errorf("bad requests created servers: %d before, %d after", before, after)
	}
}

func testRoutes(t *testing.T, tr *testtree.Tree) {
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v2.1/servers/x/y", 404},
		{"GET", "/v2.1/servers/detail/x", 404},
		{"GET", "/v2.1/demo/nosuch", 404},
		{"GET", "/v2.1/demo/nosuch/deeper", 404},
		// A first segment that names no resource is a project id, as in
		// Nova, and it must be the caller's.
		{"GET", "/v2.1/nosuch", 400},
		{"GET", "/v2.1/other/servers", 400},
		{"GET", "/v2.1/demo", 200},
		{"GET", "/v2.1/demo/", 200},
		{"GET", "/v2.1/demo/flavors", 200},
		{"GET", "/v3/servers", 404},
		{"GET", "/v2.1/servers/00000000-0000-0000-0000-000000000000", 404},
		{"DELETE", "/v2.1/servers/00000000-0000-0000-0000-000000000000", 404},
		{"GET", "/v2.1/flavors/999", 404},
		{"PUT", "/v2.1/servers", 405},
		{"DELETE", "/v2.1/servers", 405},
		{"PATCH", "/v2.1/servers", 405},
		{"POST", "/v2.1/flavors/1", 405},
		{"DELETE", "/v2.1/flavors", 405},
		{"POST", "/", 405},
	} {
		r := tr.Do(t, c.method, c.path, demo, nil)
		if r.Status != c.status {
			t.Errorf("%s %s: %s, want %d", c.method, c.path, r, c.status)
			continue
		}
		if c.status >= 400 {
			testtree.Fault(t, r, c.status)
		}
	}
}

func testVersions(t *testing.T, tr *testtree.Tree) {
	root := strings.TrimSuffix(tr.APIURL(), "/v2.1")
	checkDoc := func(t *testing.T, v map[string]any) {
		t.Helper()
		if v["id"] != "v2.1" || v["status"] != "CURRENT" || v["min_version"] != "2.1" || v["version"] != compute.MaxVersion.String() {
			t.Errorf("version document %v", v)
		}
		links, _ := v["links"].([]any)
		self, _ := links[0].(map[string]any)
		if self["rel"] != "self" || self["href"] != root+"/v2.1/" {
			t.Errorf("version links %v, want self %s/v2.1/", links, root)
		}
	}
	r := tr.Do(t, http.MethodGet, "/", "", nil)
	var vs struct {
		Versions []map[string]any `json:"versions"`
	}
	r.JSON(t, &vs)
	if r.Status != http.StatusOK || len(vs.Versions) != 1 {
		t.Fatalf("GET /: %s", r)
	}
	checkDoc(t, vs.Versions[0])
	for _, p := range []string{"/v2.1", "/v2.1/"} {
		r := tr.Do(t, http.MethodGet, p, "", nil)
		var v struct {
			Version map[string]any `json:"version"`
		}
		r.JSON(t, &v)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %s", p, r)
		}
		checkDoc(t, v.Version)
	}

	for _, c := range []struct {
		header, value string
		status        int
		echo          string
	}{
		{"", "", 200, "2.1"},
		{"OpenStack-API-Version", "compute 2.1", 200, "2.1"},
		{"OpenStack-API-Version", "compute latest", 200, compute.MaxVersion.String()},
		{"OpenStack-API-Version", "compute 2.47", 200, "2.47"},
		{"OpenStack-API-Version", "image 2.5, compute 2.1", 200, "2.1"},
		{"OpenStack-API-Version", "image 2.5", 200, "2.1"},
		{"X-OpenStack-Nova-API-Version", "2.1", 200, "2.1"},
		{"OpenStack-API-Version", "compute 9.99", 406, ""},
		{"OpenStack-API-Version", "compute 2.0", 406, ""},
		{"X-OpenStack-Nova-API-Version", "3.0", 406, ""},
		{"OpenStack-API-Version", "compute two", 400, ""},
		{"OpenStack-API-Version", "compute 2", 400, ""},
	} {
		for _, p := range []string{"/v2.1/servers", "/v2.1/flavors", "/v2.1"} {
			r := tr.Do(t, http.MethodGet, p, demo, nil, c.header, c.value)
			if c.status != 200 {
				msg := testtree.Fault(t, r, c.status)
				if c.status == 406 && !strings.Contains(msg, "is not supported by the API") {
					t.Errorf("%s: %s: message %q", p, c.value, msg)
				}
				continue
			}
			if r.Status != 200 {
				t.Errorf("GET %s with %s: %s: %s", p, c.header, c.value, r)
				continue
			}
			if got := r.Header.Get("OpenStack-API-Version"); got != "compute "+c.echo {
				t.Errorf("GET %s with %s: %s: OpenStack-API-Version %q, want compute %s", p, c.header, c.value, got, c.echo)
			}
			if got := r.Header.Get("X-OpenStack-Nova-API-Version"); got != c.echo {
				t.Errorf("GET %s with %s: %s: X-OpenStack-Nova-API-Version %q, want %s", p, c.header, c.value, got, c.echo)
			}
			if !strings.Contains(r.Header.Get("Vary"), "OpenStack-API-Version") {
				t.Errorf("GET %s: Vary %q", p, r.Header.Get("Vary"))
			}
		}
	}
	// gophercloud with a microversion.
	sc := tr.Compute(demo)
	sc.Microversion = "2.1"
	if _, err := flavors.Get(ctxT(t), sc, "1").Extract(); err != nil {
		t.Errorf("gophercloud at 2.1: %v", err)
	}
	sc.Microversion = "2.100"
	if _, err := flavors.Get(ctxT(t), sc, "1").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotAcceptable) {
		t.Errorf("gophercloud at 2.100: %v, want a 406", err)
	}
}

func testFlavors(t *testing.T, tr *testtree.Tree) {
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
