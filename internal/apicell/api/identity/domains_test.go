package identity_test

import "testing"

func TestDomains(t *testing.T) {
	f := newFixture(t)
	ds := list(f.do("GET", "/v3/domains", f.admin, "").json(t, 200), "domains")
	if len(ds) != 1 || ds[0].(map[string]any)["id"] != "default" || ds[0].(map[string]any)["name"] != "Default" {
		t.Fatalf("domains %v", ds)
	}
	if d := obj(f.do("GET", "/v3/domains/default", f.admin, "").json(t, 200), "domain"); d["enabled"] != true ||
		obj(d, "links")["self"] != "http://cloud.test/identity/v3/domains/default" {
		t.Errorf("domain %v", d)
	}
	if ds := list(f.do("GET", "/v3/auth/domains", f.demo, "").json(t, 200), "domains"); len(ds) != 0 {
		t.Errorf("a token's domains %v, want none", ds)
	}
	f.check([]fault{
		{name: "route rule", method: "GET", path: "/v3/domains", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_domains.")},
		{name: "no such domain", method: "GET", path: "/v3/domains/nope", token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find domain: nope.")},
	})
}
