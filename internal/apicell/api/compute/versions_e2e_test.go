package compute_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"

	"github.com/cellcloud/cellcloud/internal/apicell/api/compute"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestVersions: the version documents at /, /v2, /v2.1 and
// /v2.1/versions/{id}, field by field as Nova's versions.py and
// views/versions.py write them, the discovery ones without a token; Nova's
// 300 choices elsewhere; and microversion negotiation.
func TestVersions(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	root := strings.TrimSuffix(tr.APIURL(), "/v2.1")
	// A tree whose API wants real tokens, for what must answer without.
	keyed := testtree.Start(t, testtree.Options{Auth: "local", Cells: 1, HostsPerCell: 1})
	keyedRoot := strings.TrimSuffix(keyed.APIURL(), "/v2.1")
	jsonOf := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	same := func(what string, got map[string]any, want string) {
		t.Helper()
		var w map[string]any
		if err := json.Unmarshal([]byte(want), &w); err != nil {
			t.Fatal(err)
		}
		if jsonOf(got) != jsonOf(w) {
			t.Errorf("%s:\n got %s\nwant %s", what, jsonOf(got), jsonOf(w))
		}
	}
	v20 := `"id": "v2.0", "status": "SUPPORTED", "version": "", "min_version": "", "updated": "2011-01-21T11:33:21Z"`
	v21 := `"id": "v2.1", "status": "CURRENT", "version": "` + compute.MaxVersion.String() + `", "min_version": "2.1", "updated": "2013-07-23T11:33:21Z"`
	media20 := `"media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"}]`
	media21 := `"media-types": [{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}]`
	described := `{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"}`
	doc := func(fields, media, self string) string {
		return `{"version": {` + fields + `, "links": [{"rel": "self", "href": "` + self + `"}, ` + described + `], ` + media + `}}`
	}

	// GET /: both versions, a self link each, no media types; any method,
	// no token, no microversion.
	if r := keyed.Do(t, http.MethodGet, "/v2.1/servers", "", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("the keyed tree answers without a token: %s", r)
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		r := keyed.Do(t, method, "/", "", nil)
		if r.Status != http.StatusOK || r.Header.Get("OpenStack-API-Version") != "" {
			t.Fatalf("%s /: %s %v", method, r, r.Header)
		}
		same(method+" /", r.Map(t), `{"versions": [{`+v20+`, "links": [{"rel": "self", "href": "`+keyedRoot+`/v2/"}]}, {`+v21+`, "links": [{"rel": "self", "href": "`+keyedRoot+`/v2.1/"}]}]}`)
	}
	// The v2.1 document without a token; v2.0's at /v2, without
	// microversion headers.
	for _, p := range []string{"/v2.1", "/v2.1/"} {
		r := keyed.Do(t, http.MethodGet, p, "", nil)
		if r.Status != http.StatusOK || r.Header.Get("OpenStack-API-Version") != "compute 2.1" {
			t.Fatalf("GET %s without a token: %s %v", p, r, r.Header)
		}
		same("GET "+p, r.Map(t), doc(v21, media21, keyedRoot+"/v2.1/"))
	}
	for _, p := range []string{"/v2", "/v2/"} {
		r := keyed.Do(t, http.MethodGet, p, "", nil, "OpenStack-API-Version", "compute 2.5")
		if r.Status != http.StatusOK || r.Header.Get("OpenStack-API-Version") != "" {
			t.Fatalf("GET %s without a token: %s %v", p, r, r.Header)
		}
		same("GET "+p, r.Map(t), doc(v20, media20, keyedRoot+"/v2/"))
	}
	// Under the API (a token, the caller's project): the same v2.1
	// document, and either document by id, its self link the v2.1 root.
	if r := keyed.Do(t, http.MethodGet, "/v2.1/demo/", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /v2.1/demo/ without a token: %s", r)
	}
	same("GET /v2.1/demo/", tr.Do(t, http.MethodGet, "/v2.1/demo/", demo, nil).Map(t), doc(v21, media21, root+"/v2.1/"))
	same("GET /v2.1/versions/v2.1", tr.Do(t, http.MethodGet, "/v2.1/versions/v2.1", demo, nil).Map(t), doc(v21, media21, root+"/v2.1/"))
	same("GET /v2.1/versions/v2.0", tr.Do(t, http.MethodGet, "/v2.1/versions/v2.0", demo, nil).Map(t), doc(v20, media20, root+"/v2.1/"))
	testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/versions/v3", demo, nil), http.StatusNotFound)
	if r := keyed.Do(t, http.MethodGet, "/v2.1/versions/v2.1", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("GET /v2.1/versions/v2.1 without a token: %s", r)
	}
	// Elsewhere: 300, each version with the path under its root.
	r := keyed.Do(t, http.MethodGet, "/servers/x", "", nil)
	if r.Status != http.StatusMultipleChoices {
		t.Fatalf("GET /servers/x: %s", r)
	}
	same("GET /servers/x", r.Map(t), `{"choices": [{"id": "v2.0", "status": "SUPPORTED", "links": [{"rel": "self", "href": "`+keyedRoot+`/v2/servers/x"}], `+media20+`}, `+
		`{"id": "v2.1", "status": "CURRENT", "links": [{"rel": "self", "href": "`+keyedRoot+`/v2.1/servers/x"}], `+media21+`}]}`)

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

	// The microversion is served up to 2.92.
	r = tr.Do(t, "GET", "/v2.1/", demo, nil)
	if !strings.Contains(string(r.Body), `"version":"2.92"`) {
		t.Errorf("the version document does not say 2.92: %s", r.Body)
	}
	if r := tr.Do(t, "GET", "/v2.1/flavors", demo, nil, atVersion("2.92")...); r.Status != http.StatusOK {
		t.Errorf("2.92: %s, want a 200", r)
	}
	if r := tr.Do(t, "GET", "/v2.1/flavors", demo, nil, atVersion("2.93")...); r.Status != http.StatusNotAcceptable {
		t.Errorf("2.93: %s, want a 406", r)
	}
}
