package identity_test

import "testing"

func TestUsers(t *testing.T) {
	f := newFixture(t)
	u := obj(f.do("POST", "/v3/users", f.admin, `{"user": {"name": "u2", "password": "pw-u2", "email": "u2@example.org", "default_project_id": "`+f.projectID("demo")+`"}}`).json(t, 201), "user")
	id, _ := u["id"].(string)
	if id == "" || u["domain_id"] != "default" || u["enabled"] != true || u["email"] != "u2@example.org" || u["password"] != nil || u["description"] != nil {
		t.Fatalf("created %v", u)
	}
	if got := obj(f.do("GET", "/v3/users/"+id, f.admin, "").json(t, 200), "user"); got["name"] != "u2" || got["default_project_id"] != f.projectID("demo") {
		t.Errorf("show %v", got)
	}
	if got := obj(f.do("PATCH", "/v3/users/"+id, f.admin, `{"user": {"description": "two"}}`).json(t, 200), "user"); got["description"] != "two" {
		t.Errorf("update %v", got)
	}
	if us := list(f.do("GET", "/v3/users?name=u2", f.admin, "").json(t, 200), "users"); len(us) != 1 || us[0].(map[string]any)["id"] != id {
		t.Errorf("users named u2 %v", us)
	}
	// A user may look at themselves and their projects.
	demo := f.userID("demo")
	if got := obj(f.do("GET", "/v3/users/"+demo, f.demo, "").json(t, 200), "user"); got["name"] != "demo" {
		t.Errorf("demo by demo %v", got)
	}
	if ps := list(f.do("GET", "/v3/users/"+demo+"/projects", f.demo, "").json(t, 200), "projects"); len(ps) != 1 || ps[0].(map[string]any)["name"] != "demo" {
		t.Errorf("demo's projects %v", ps)
	}
	if a := f.do("DELETE", "/v3/users/"+id, f.admin, ""); a.status != 204 || a.body != "" {
		t.Errorf("delete: %d %q", a.status, a.body)
	}
	f.check([]fault{
		{name: "another user", method: "GET", path: "/v3/users/" + f.userID("admin"), token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:get_user.")},
		{name: "another user's projects", method: "GET", path: "/v3/users/" + f.userID("admin") + "/projects", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_user_projects.")},
		{name: "no such user's projects", method: "GET", path: "/v3/users/nope/projects", token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find user: nope.")},
		{name: "deleted user", method: "GET", path: "/v3/users/" + id, token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find user: "+id+".")},
		{name: "no name", method: "POST", path: "/v3/users", token: f.admin, body: `{"user": {}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'name': 'name' is a required property.")},
		{name: "move", method: "PATCH", path: "/v3/users/" + demo, token: f.admin, body: `{"user": {"domain_id": "x"}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'domain_id': a user's domain cannot be changed.")},
		{name: "update with a null user", method: "PATCH", path: "/v3/users/" + demo, token: f.admin, body: `{"user": null}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'user': None is not of type 'object'.")},
		{name: "update with a string for the user", method: "PATCH", path: "/v3/users/" + demo, token: f.admin, body: `{"user": "demo"}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'user': 'demo' is not of type 'object'.")},
		{name: "update with an empty user", method: "PATCH", path: "/v3/users/" + demo, token: f.admin, body: `{"user": {}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'user': {} does not have enough properties.")},
		{name: "bad filter", method: "GET", path: "/v3/users?enabled=2", token: f.admin, status: 400,
			want: keystoneError(400, "Bad Request", `Invalid input for query parameter 'enabled': "2" is not a boolean.`)},
		{name: "list as a member", method: "GET", path: "/v3/users", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_users.")},
	})
	// The refused updates changed nothing.
	if got := obj(f.do("GET", "/v3/users/"+demo, f.admin, "").json(t, 200), "user"); got["name"] != "demo" || got["enabled"] != true || got["domain_id"] != "default" {
		t.Errorf("demo after refused updates: %v", got)
	}
}
