package identity_test

import "testing"

func TestVersions(t *testing.T) {
	f := newFixture(t)
	v := f.do("GET", "/", "", "").json(t, 300)
	vals := list(obj(v, "versions"), "values")
	if len(vals) != 1 || vals[0].(map[string]any)["id"] != "v3.14" {
		t.Errorf("versions %v", v)
	}
	for _, p := range []string{"/v3", "/v3/"} {
		v := obj(f.do("GET", p, "", "").json(t, 200), "version")
		self := list(v, "links")[0].(map[string]any)["href"]
		if v["id"] != "v3.14" || v["status"] != "stable" || self != "http://cloud.test/identity/v3/" {
			t.Errorf("GET %s: %v", p, v)
		}
	}
}
