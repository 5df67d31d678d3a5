package identity_test

import "testing"

func TestRoleAssignments(t *testing.T) {
	f := newFixture(t)
	demo, project := f.userID("demo"), f.projectID("demo")
	as := list(f.do("GET", "/v3/role_assignments?user.id="+demo+"&include_names", f.admin, "").json(t, 200), "role_assignments")
	if len(as) != 1 {
		t.Fatalf("demo's assignments %v", as)
	}
	a := as[0].(map[string]any)
	user, role, proj := obj(a, "user"), obj(a, "role"), obj(obj(a, "scope"), "project")
	if user["id"] != demo || user["name"] != "demo" || obj(user, "domain")["name"] != "Default" || role["name"] != "member" ||
		proj["id"] != project || proj["name"] != "demo" || obj(proj, "domain")["id"] != "default" ||
		obj(a, "links")["assignment"] != "http://cloud.test/identity/v3/projects/"+project+"/users/"+demo+"/roles/"+f.roleID("member") {
		t.Errorf("demo's assignment %v", a)
	}
	if as := list(f.do("GET", "/v3/role_assignments?user.id="+demo, f.admin, "").json(t, 200), "role_assignments"); len(as) != 1 || obj(as[0].(map[string]any), "role")["name"] != nil {
		t.Errorf("without names %v", as)
	}
	if as := list(f.do("GET", "/v3/role_assignments?group.id=g", f.admin, "").json(t, 200), "role_assignments"); len(as) != 0 {
		t.Errorf("a group's assignments %v, want none", as)
	}
	f.check([]fault{
		{name: "unknown filter", method: "GET", path: "/v3/role_assignments?colour=red", token: f.admin, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for query parameter 'colour': it is not a role assignment filter.")},
		{name: "as a member", method: "GET", path: "/v3/role_assignments", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_role_assignments.")},
	})
}
