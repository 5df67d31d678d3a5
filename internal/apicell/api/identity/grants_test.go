package identity_test

import "testing"

func TestGrants(t *testing.T) {
	f := newFixture(t)
	grant := "/v3/projects/" + f.projectID("demo") + "/users/" + f.userID("admin") + "/roles/" + f.roleID("reader")
	f.check([]fault{
		{name: "no such grant", method: "GET", path: grant, token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find role assignment.")},
	})
	if a := f.do("HEAD", grant, f.admin, ""); a.status != 404 || a.header.Get("WWW-Authenticate") != "" {
		t.Errorf("HEAD before the grant: %d %v", a.status, a.header)
	}
	if a := f.do("PUT", grant, f.admin, ""); a.status != 204 || a.body != "" {
		t.Fatalf("grant: %d %q", a.status, a.body)
	}
	for _, m := range []string{"GET", "HEAD"} {
		if a := f.do(m, grant, f.admin, ""); a.status != 204 || a.body != "" {
			t.Errorf("%s the grant: %d %q", m, a.status, a.body)
		}
	}
	rs := list(f.do("GET", "/v3/projects/"+f.projectID("demo")+"/users/"+f.userID("admin")+"/roles", f.admin, "").json(t, 200), "roles")
	if len(rs) != 1 || rs[0].(map[string]any)["name"] != "reader" {
		t.Errorf("admin's roles on demo %v", rs)
	}
	if a := f.do("DELETE", grant, f.admin, ""); a.status != 204 || a.body != "" {
		t.Errorf("revoke: %d %q", a.status, a.body)
	}
	f.check([]fault{
		{name: "revoked grant", method: "GET", path: grant, token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find role assignment.")},
		{name: "no such user", method: "GET", path: "/v3/projects/" + f.projectID("demo") + "/users/nope/roles", token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find user: nope.")},
		{name: "no such project", method: "GET", path: "/v3/projects/nope/users/" + f.userID("demo") + "/roles", token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find project: nope.")},
		{name: "grant as a member", method: "PUT", path: grant, token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:create_grant.")},
	})
}
