package identity_test

import "testing"

func TestCatalog(t *testing.T) {
	f := newFixture(t)
	cat := list(f.do("GET", "/v3/auth/catalog", f.demo, "").json(t, 200), "catalog")
	if len(cat) != 2 {
		t.Fatalf("catalog %v", cat)
	}
	compute := cat[1].(map[string]any)
	eps := list(compute, "endpoints")
	if compute["id"] != "compute-service" || compute["name"] != "nova" || len(eps) != 3 ||
		eps[0].(map[string]any)["url"] != "http://cloud.test/compute/v2.1" || eps[0].(map[string]any)["region"] != "RegionOne" {
		t.Errorf("compute in the catalog: %v", compute)
	}
	if s := list(f.do("GET", "/v3/services", f.admin, "").json(t, 200), "services"); len(s) != 2 || s[0].(map[string]any)["id"] != "identity-service" {
		t.Errorf("services %v", s)
	}
	if e := list(f.do("GET", "/v3/endpoints", f.admin, "").json(t, 200), "endpoints"); len(e) != 6 || e[5].(map[string]any)["id"] != "compute-admin" {
		t.Errorf("endpoints %v", e)
	}
	if r := list(f.do("GET", "/v3/regions", f.admin, "").json(t, 200), "regions"); len(r) != 1 || r[0].(map[string]any)["id"] != "RegionOne" {
		t.Errorf("regions %v", r)
	}
	f.check([]fault{
		{name: "catalog of an unscoped token", method: "GET", path: "/v3/auth/catalog", token: f.unscoped("demo", "pw-demo"), status: 403,
			want: keystoneError(403, "Forbidden", "A project-scoped token is required to produce a service catalog.")},
		{name: "services as a member", method: "GET", path: "/v3/services", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_services.")},
	})
}
