package volume_test

import (
	"testing"
)

func TestVersionDocuments(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/volume/", 300},
		{"/volume", 300},
		{"/volume/v3/", 200},
		{"/volume/v3", 200},
	} {
		r := e.do("GET", tc.path, "")
		vs, _ := r.json(t, tc.status)["versions"].([]any)
		if len(vs) != 1 {
			t.Fatalf("%s: %s", tc.path, r.body)
		}
		v := vs[0].(map[string]any)
		if v["id"] != "v3.0" || v["status"] != "CURRENT" || v["version"] != "3.60" || v["min_version"] != "3.0" {
			t.Errorf("%s: %v", tc.path, v)
		}
		links := v["links"].([]any)
		if self := links[1].(map[string]any); self["rel"] != "self" || self["href"] != e.srv.URL+"/volume/v3/" {
			t.Errorf("%s: self link %v", tc.path, self)
		}
	}
	// The v3 document is negotiated like every /v3 request; the root one
	// is not.
	r := e.do("GET", "/volume/v3/", "", "OpenStack-API-Version", "volume latest")
	r.json(t, 200)
	if got := r.header.Get("OpenStack-API-Version"); got != "volume 3.60" {
		t.Errorf("version header %q", got)
	}
	if got := e.do("GET", "/volume/", "", "OpenStack-API-Version", "volume 3.99").status; got != 300 {
		t.Errorf("root document with a version out of range: %d", got)
	}
}
