package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"

	"github.com/cellcloud/cellcloud/internal/apicell/api/compute"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestVersions: the version documents at / and /v2.1, and microversion
// negotiation.
func TestVersions(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
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

	// The microversion is served up to 2.69.
	r = tr.Do(t, "GET", "/v2.1/", demo, nil)
	if !strings.Contains(string(r.Body), `"version":"2.69"`) {
		t.Errorf("the version document does not say 2.69: %s", r.Body)
	}
}
