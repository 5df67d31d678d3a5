package identity_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestFaults pins every kind of error answer of the API, byte for byte:
// the router's 404 and 405, authentication, the policy, and each room's
// own refusals.
func TestFaults(t *testing.T) {
	f := newFixture(t)
	big := `{"auth": "` + strings.Repeat("x", 120<<10) + `"}`
	f.check([]fault{
		{name: "no route", method: "GET", path: "/nope", status: 404, want: keystoneError(404, "Not Found", "The resource could not be found.")},
		{name: "wrong method", method: "PUT", path: "/v3/domains", token: f.admin, status: 405,
			want: keystoneError(405, "Method Not Allowed", "The method is not allowed for the requested URL.")},
		{name: "no token", method: "GET", path: "/v3/projects", status: 401, wwwAuthenticate: true,
			want: keystoneError(401, "Unauthorized", "The request you have made requires authentication.")},
		{name: "bad token", method: "GET", path: "/v3/projects", token: "not-a-token", status: 401, wwwAuthenticate: true,
			want: keystoneError(401, "Unauthorized", "The request you have made requires authentication.")},
		{name: "route rule", method: "GET", path: "/v3/domains", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_domains.")},
		{name: "wrong password", method: "POST", path: "/v3/auth/tokens", status: 401, wwwAuthenticate: true,
			body: `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "domain": {"id": "default"}, "password": "no"}}}}}`,
			want: keystoneError(401, "Unauthorized", "The request you have made requires authentication.")},
		{name: "unsupported method", method: "POST", path: "/v3/auth/tokens", status: 401, wwwAuthenticate: true,
			body: `{"auth": {"identity": {"methods": ["totp"]}}}`,
			want: keystoneError(401, "Unauthorized", "Attempted to authenticate with an unsupported method.")},
		{name: "malformed body", method: "POST", path: "/v3/auth/tokens", body: `{"auth": [`, status: 400,
			want: keystoneError(400, "Bad Request", "Malformed request body: it is not a JSON object.")},
		{name: "too large", method: "POST", path: "/v3/auth/tokens", body: big, status: 413,
			want: keystoneError(413, "Request Entity Too Large", "Request is too large.")},
		{name: "no subject", method: "GET", path: "/v3/auth/tokens", token: f.admin, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'X-Subject-Token': the header is required.")},
		{name: "unknown subject", method: "GET", path: "/v3/auth/tokens", token: f.admin, headers: []string{"X-Subject-Token", "0123456789abcdefXYZ"},
			status: 404, want: keystoneError(404, "Not Found", "Could not find token: 0123456789abcdef….")},
		{name: "another's subject", method: "GET", path: "/v3/auth/tokens", token: f.demo, headers: []string{"X-Subject-Token", f.admin},
			status: 403, want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:validate_token.")},
		{name: "another's project", method: "GET", path: "/v3/projects/" + f.projectID("admin"), token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:get_project.")},
		{name: "another user", method: "GET", path: "/v3/users/" + f.userID("admin"), token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:get_user.")},
		{name: "another user's projects", method: "GET", path: "/v3/users/" + f.userID("admin") + "/projects", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_user_projects.")},
		{name: "no such project", method: "GET", path: "/v3/projects/nope", token: f.admin, status: 404,
			want: keystoneError(404, "Not Found", "Could not find project: nope.")},
		{name: "no such grant", method: "GET", path: "/v3/projects/" + f.projectID("demo") + "/users/" + f.userID("admin") + "/roles/" + f.roleID("reader"),
			token: f.admin, status: 404, want: keystoneError(404, "Not Found", "Could not find role assignment.")},
		{name: "bad filter", method: "GET", path: "/v3/projects?enabled=maybe", token: f.admin, status: 400,
			want: keystoneError(400, "Bad Request", `Invalid input for query parameter 'enabled': "maybe" is not a boolean.`)},
		{name: "catalog of an unscoped token", method: "GET", path: "/v3/auth/catalog", token: f.unscoped("demo", "pw-demo"), status: 403,
			want: keystoneError(403, "Forbidden", "A project-scoped token is required to produce a service catalog.")},
	})
	// A HEAD's answer has no body, but the same status and header.
	if got := f.do("HEAD", "/v3/auth/tokens", "", ""); got.status != http.StatusUnauthorized || got.header.Get("WWW-Authenticate") != `Keystone uri="identity"` {
		t.Errorf("HEAD without a token: %d %v", got.status, got.header)
	}
}
