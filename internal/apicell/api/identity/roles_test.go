package identity_test

import "testing"

func TestRoles(t *testing.T) {
	f := newFixture(t)
	ro := obj(f.do("POST", "/v3/roles", f.admin, `{"role": {"name": "auditor", "description": "reads logs"}}`).json(t, 201), "role")
	id, _ := ro["id"].(string)
	if id == "" || ro["domain_id"] != nil || ro["description"] != "reads logs" {
		t.Fatalf("created %v", ro)
	}
	if got := obj(f.do("GET", "/v3/roles/"+id, f.admin, "").json(t, 200), "role"); got["name"] != "auditor" {
		t.Errorf("show %v", got)
	}
	if rs := list(f.do("GET", "/v3/roles?name=reader", f.admin, "").json(t, 200), "roles"); len(rs) != 1 || rs[0].(map[string]any)["description"] != nil {
		t.Errorf("roles named reader %v", rs)
	}
	if a := f.do("DELETE", "/v3/roles/"+id, f.admin, ""); a.status != 204 || a.body != "" {
		t.Errorf("delete: %d %q", a.status, a.body)
	}
	f.check([]fault{
		{name: "deleted role", method: "GET", path: "/v3/roles/" + id, token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find role: "+id+".")},
		{name: "no name", method: "POST", path: "/v3/roles", token: f.admin, body: `{"role": {}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'name': 'name' is a required property.")},
		{name: "domain role", method: "POST", path: "/v3/roles", token: f.admin, body: `{"role": {"name": "x", "domain_id": "default"}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'domain_id': domain-specific roles are not supported.")},
		{name: "list as a member", method: "GET", path: "/v3/roles", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_roles.")},
	})
}
