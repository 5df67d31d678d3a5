package identity_test

import "testing"

func TestProjects(t *testing.T) {
	f := newFixture(t)
	p := obj(f.do("POST", "/v3/projects", f.admin, `{"project": {"name": "p2", "description": "two"}}`).json(t, 201), "project")
	id, _ := p["id"].(string)
	if id == "" || p["domain_id"] != "default" || p["parent_id"] != "default" || p["enabled"] != true || p["description"] != "two" || p["is_domain"] != false {
		t.Fatalf("created %v", p)
	}
	if got := obj(f.do("GET", "/v3/projects/"+id, f.admin, "").json(t, 200), "project"); got["name"] != "p2" {
		t.Errorf("show %v", got)
	}
	if got := obj(f.do("PATCH", "/v3/projects/"+id, f.admin, `{"project": {"enabled": false}}`).json(t, 200), "project"); got["enabled"] != false {
		t.Errorf("update %v", got)
	}
	if ps := list(f.do("GET", "/v3/projects?enabled=false", f.admin, "").json(t, 200), "projects"); len(ps) != 1 || ps[0].(map[string]any)["id"] != id {
		t.Errorf("disabled projects %v", ps)
	}
	// A member sees their own project, and the projects they may scope to.
	if got := obj(f.do("GET", "/v3/projects/"+f.projectID("demo"), f.demo, "").json(t, 200), "project"); got["name"] != "demo" {
		t.Errorf("demo's own project %v", got)
	}
	if ps := list(f.do("GET", "/v3/auth/projects", f.demo, "").json(t, 200), "projects"); len(ps) != 1 || ps[0].(map[string]any)["name"] != "demo" {
		t.Errorf("demo's projects %v", ps)
	}
	if a := f.do("DELETE", "/v3/projects/"+id, f.admin, ""); a.status != 204 || a.body != "" {
		t.Errorf("delete: %d %q", a.status, a.body)
	}
	f.check([]fault{
		{name: "another's project", method: "GET", path: "/v3/projects/" + f.projectID("admin"), token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:get_project.")},
		{name: "no such project", method: "GET", path: "/v3/projects/nope", token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find project: nope.")},
		{name: "deleted project", method: "DELETE", path: "/v3/projects/" + id, token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find project: "+id+".")},
		{name: "bad filter", method: "GET", path: "/v3/projects?enabled=maybe", token: f.admin, status: 400,
			want: keystoneError(400, "Bad Request", `Invalid input for query parameter 'enabled': "maybe" is not a boolean.`)},
		{name: "no name", method: "POST", path: "/v3/projects", token: f.admin, body: `{"project": {}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'name': 'name' is a required property.")},
		{name: "no project", method: "POST", path: "/v3/projects", token: f.admin, body: `{}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'project': 'project' is a required property.")},
		{name: "wrong type", method: "POST", path: "/v3/projects", token: f.admin, body: `{"project": {"name": 3}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'project': 'name' must be of type string, not number.")},
		{name: "a domain", method: "POST", path: "/v3/projects", token: f.admin, body: `{"project": {"name": "d", "is_domain": true}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'is_domain': projects acting as domains are not supported.")},
		{name: "nested", method: "POST", path: "/v3/projects", token: f.admin, body: `{"project": {"name": "n", "parent_id": "x"}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'parent_id': nested projects are not supported; the parent must be the domain.")},
		{name: "move", method: "PATCH", path: "/v3/projects/" + f.projectID("demo"), token: f.admin, body: `{"project": {"domain_id": "x"}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'domain_id': a project's domain cannot be changed.")},
		{name: "create as a member", method: "POST", path: "/v3/projects", token: f.demo, body: `{"project": {"name": "x"}}`, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:create_project.")},
	})
}
