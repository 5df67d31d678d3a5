package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestFlavorExtraSpecs covers os-extra_specs: create, show, update and
// delete of a flavor's extra specs, refusals and who may do what.
func TestFlavorExtraSpecs(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	ctx := ctxT(t)
	as := tr.Compute(admin)
	if _, err := flavors.Create(ctx, as, flavors.CreateOpts{ID: "es", Name: "with.specs", RAM: 64, VCPUs: 1, Disk: intPtr(1)}).Extract(); err != nil {
		t.Fatal(err)
	}
	specs, err := flavors.CreateExtraSpecs(ctx, as, "es", flavors.ExtraSpecsOpts{"hw:cpu_policy": "dedicated", "quota:cpu_shares": "512"}).Extract()
	if err != nil || len(specs) != 2 {
		t.Fatalf("create extra specs: %v, %v", specs, err)
	}
	// Numbers are accepted, echoed as sent, and kept as text.
	r := tr.Do(t, http.MethodPost, "/v2.1/flavors/es/os-extra_specs", admin, `{"extra_specs": {"n": 4, "x": 1.5}}`)
	if r.Status != http.StatusOK || string(r.Body) != `{"extra_specs":{"n":4,"x":1.5}}`+"\n" {
		t.Errorf("numeric extra specs: %s", r)
	}
	// Members read them; the list, one key, in Nova's shapes.
	ms := tr.Compute(demo)
	all, err := flavors.ListExtraSpecs(ctx, ms, "es").Extract()
	want := map[string]string{"hw:cpu_policy": "dedicated", "quota:cpu_shares": "512", "n": "4", "x": "1.5"}
	if err != nil || len(all) != len(want) {
		t.Fatalf("list extra specs: %v, %v", all, err)
	}
	for k, v := range want {
		if all[k] != v {
			t.Errorf("extra spec %s = %q, want %q", k, all[k], v)
		}
	}
	one, err := flavors.GetExtraSpec(ctx, ms, "es", "hw:cpu_policy").Extract()
	if err != nil || len(one) != 1 || one["hw:cpu_policy"] != "dedicated" {
		t.Errorf("get extra spec: %v, %v", one, err)
	}
	upd, err := flavors.UpdateExtraSpec(ctx, as, "es", flavors.ExtraSpecsOpts{"hw:cpu_policy": "shared"}).Extract()
	if err != nil || upd["hw:cpu_policy"] != "shared" {
		t.Errorf("update extra spec: %v, %v", upd, err)
	}
	if err := flavors.DeleteExtraSpec(ctx, as, "es", "n").ExtractErr(); err != nil {
		t.Errorf("delete extra spec: %v", err)
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/flavors/es/os-extra_specs/n", demo, nil), 404, "Flavor es has no extra specs with key n.")

	// Bad requests write nothing.
	for _, c := range []struct {
		name, token, method, path string
		body                      any
		status                    int
		want                      string
	}{
		{"member create", demo, "POST", "/v2.1/flavors/es/os-extra_specs", map[string]any{"extra_specs": map[string]any{"a": "1"}}, 403, "os_compute_api:os-flavor-extra-specs:create"},
		{"member update", demo, "PUT", "/v2.1/flavors/es/os-extra_specs/x", map[string]any{"x": "2"}, 403, "os_compute_api:os-flavor-extra-specs:update"},
		{"member delete", demo, "DELETE", "/v2.1/flavors/es/os-extra_specs/x", nil, 403, "os_compute_api:os-flavor-extra-specs:delete"},
		{"bad key", admin, "POST", "/v2.1/flavors/es/os-extra_specs", map[string]any{"extra_specs": map[string]any{"a/b": "1"}}, 400, "'a/b' does not match any of the regexes"},
		{"value a bool", admin, "POST", "/v2.1/flavors/es/os-extra_specs", map[string]any{"extra_specs": map[string]any{"a": true}}, 400, "True is not of type 'string', 'number'"},
		{"value too long", admin, "POST", "/v2.1/flavors/es/os-extra_specs", map[string]any{"extra_specs": map[string]any{"a": strings.Repeat("v", 256)}}, 400, "is too long"},
		{"no extra_specs", admin, "POST", "/v2.1/flavors/es/os-extra_specs", map[string]any{"a": "1"}, 400, "'extra_specs' is a required property"},
		{"extra_specs not an object", admin, "POST", "/v2.1/flavors/es/os-extra_specs", map[string]any{"extra_specs": "a"}, 400, "is not of type 'object'"},
		{"update mismatch", admin, "PUT", "/v2.1/flavors/es/os-extra_specs/x", map[string]any{"y": "2"}, 400, "Request body and URI mismatch"},
		{"update two keys", admin, "PUT", "/v2.1/flavors/es/os-extra_specs/x", map[string]any{"x": "2", "y": "3"}, 400, "has too many properties"},
		{"update empty", admin, "PUT", "/v2.1/flavors/es/os-extra_specs/x", map[string]any{}, 400, "should be non-empty"},
		{"missing flavor", admin, "POST", "/v2.1/flavors/nosuch/os-extra_specs", map[string]any{"extra_specs": map[string]any{"a": "1"}}, 404, "Flavor nosuch could not be found."},
		{"missing flavor list", demo, "GET", "/v2.1/flavors/nosuch/os-extra_specs", nil, 404, "Flavor nosuch could not be found."},
		{"missing key delete", admin, "DELETE", "/v2.1/flavors/es/os-extra_specs/nosuch", nil, 404, "Flavor es has no extra specs with key nosuch."},
	} {
		t.Run(c.name, func(t *testing.T) {
			faultHas(t, tr.Do(t, c.method, c.path, c.token, c.body), c.status, c.want)
		})
	}
	after, err := flavors.ListExtraSpecs(ctx, ms, "es").Extract()
	if err != nil || len(after) != 3 || after["x"] != "1.5" || after["hw:cpu_policy"] != "shared" {
		t.Errorf("after bad requests: %v, %v", after, err)
	}

	// Deleting the flavor takes its extra specs with it.
	if err := flavors.Delete(ctx, as, "es").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/flavors/es/os-extra_specs", admin, nil), 404, "Flavor es could not be found.")
}

// TestFlavorExtraSpecsV286: from 2.86 a create or update of a known
// extra spec with a bad value, or of an unknown key in a known namespace,
// is Nova's 400 and writes nothing; unknown namespaces pass; numbers are
// checked as their text. At 2.85 the same bodies are taken. The policy
// comes first (a member's bad spec is a 403), the flavor after (a bad spec
// on a missing flavor is a 400).
func TestFlavorExtraSpecsV286(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 86)
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	ctx := ctxT(t)
	if _, err := flavors.Create(ctx, tr.Compute(admin), flavors.CreateOpts{ID: "v286", Name: "v286", RAM: 64, VCPUs: 1, Disk: intPtr(1)}).Extract(); err != nil {
		t.Fatal(err)
	}
	const coll = "/v2.1/flavors/v286/os-extra_specs"
	for _, c := range []struct {
		name, token, method, path string
		body                      any
		status                    int
		msg                       string
	}{
		{"bad enum", admin, http.MethodPost, coll, `{"extra_specs": {"hw:cpu_policy": "fast"}}`, 400,
			"Validation failed; 'fast' is not one of: dedicated, shared, mixed."},
		{"unknown key of hw", admin, http.MethodPost, coll, `{"extra_specs": {"hw:foo": "1", "a": "b"}}`, 400,
			"Validation failed; extra spec 'hw:foo' does not appear to be a valid extra spec."},
		{"number below min", admin, http.MethodPost, coll, `{"extra_specs": {"hw:numa_nodes": 0}}`, 400,
			"Validation failed; '0' is less than the min value of '1'."},
		{"float for an integer", admin, http.MethodPost, coll, `{"extra_specs": {"hw:numa_nodes": 2.0}}`, 400,
			"Validation failed; '2.0' is not a valid integer value."},
		{"update bad boolean", admin, http.MethodPut, coll + "/hw:cpu_realtime", `{"hw:cpu_realtime": "maybe"}`, 400,
			"Validation failed; 'maybe' is not a valid boolean-like value."},
		{"update checks before the URI", admin, http.MethodPut, coll + "/other", `{"hw:cpu_realtime": "maybe"}`, 400,
			"Validation failed; 'maybe' is not a valid boolean-like value."},
		{"a member is refused first", demo, http.MethodPost, coll, `{"extra_specs": {"hw:cpu_policy": "fast"}}`, 403, "Policy doesn't allow os_compute_api:os-flavor-extra-specs:create to be performed."},
		{"no such flavor, checked after", admin, http.MethodPost, "/v2.1/flavors/nope/os-extra_specs", `{"extra_specs": {"hw:cpu_policy": "fast"}}`, 400,
			"Validation failed; 'fast' is not one of: dedicated, shared, mixed."},
	} {
		faultHas(t, tr.Do(t, c.method, c.path, c.token, c.body, atVersion(mv)...), c.status, c.msg)
	}
	var got struct {
		ExtraSpecs map[string]string `json:"extra_specs"`
	}
	tr.Do(t, http.MethodGet, coll, admin, nil, atVersion(mv)...).JSON(t, &got)
	if len(got.ExtraSpecs) != 0 {
		t.Errorf("refused bodies wrote %v", got.ExtraSpecs)
	}

	// Good values, unknown namespaces and keys without one are taken.
	good := `{"extra_specs": {"hw:cpu_policy": "dedicated", "hw:numa_nodes": 2, "trait:CUSTOM_GOLD": "required", "resources1:VCPU": "1", "mine:anything": "x", "plain": "y"}}`
	if r := tr.Do(t, http.MethodPost, coll, admin, good, atVersion(mv)...); r.Status != http.StatusOK {
		t.Errorf("good extra specs at %s: %s", mv, r)
	}
	if r := tr.Do(t, http.MethodPut, coll+"/hw:cpu_realtime", admin, `{"hw:cpu_realtime": "yes"}`, atVersion(mv)...); r.Status != http.StatusOK {
		t.Errorf("good update at %s: %s", mv, r)
	}
	// Below 2.86 nothing is checked.
	if r := tr.Do(t, http.MethodPost, coll, admin, `{"extra_specs": {"hw:cpu_policy": "fast", "hw:foo": "1"}}`, atVersion("2.85")...); r.Status != http.StatusOK {
		t.Errorf("unchecked extra specs at 2.85: %s", r)
	}
	if r := tr.Do(t, http.MethodPut, coll+"/hw:cpu_realtime", admin, `{"hw:cpu_realtime": "maybe"}`, atVersion("2.85")...); r.Status != http.StatusOK {
		t.Errorf("unchecked update at 2.85: %s", r)
	}
	tr.Do(t, http.MethodGet, coll, admin, nil, atVersion(mv)...).JSON(t, &got)
	if got.ExtraSpecs["hw:cpu_policy"] != "fast" || got.ExtraSpecs["hw:numa_nodes"] != "2" || got.ExtraSpecs["hw:cpu_realtime"] != "maybe" || len(got.ExtraSpecs) != 8 {
		t.Errorf("extra specs %v", got.ExtraSpecs)
	}
}
