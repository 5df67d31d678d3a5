package identity_test

import (
	"net/http"
	"testing"
)

// TestRouterAndAuth pins, byte for byte, the answers of the machinery the
// rooms share: the router's 404 and 405, authentication (401 with
// WWW-Authenticate) and a route's policy rule (403). Each room's own
// refusals are in its test file.
func TestRouterAndAuth(t *testing.T) {
	f := newFixture(t)
	f.check([]fault{
		{name: "no route", method: "GET", path: "/nope", status: 404, want: keystoneError(404, "Not Found", "The resource could not be found.")},
		{name: "no route under v3", method: "GET", path: "/v3/groups", token: f.admin, status: 404, want: keystoneError(404, "Not Found", "The resource could not be found.")},
		{name: "wrong method", method: "PUT", path: "/v3/domains", token: f.admin, status: 405,
			want: keystoneError(405, "Method Not Allowed", "The method is not allowed for the requested URL.")},
		{name: "no token", method: "GET", path: "/v3/projects", status: 401, wwwAuthenticate: true,
			want: keystoneError(401, "Unauthorized", "The request you have made requires authentication.")},
		{name: "bad token", method: "GET", path: "/v3/projects", token: "not-a-token", status: 401, wwwAuthenticate: true,
			want: keystoneError(401, "Unauthorized", "The request you have made requires authentication.")},
		{name: "route rule", method: "GET", path: "/v3/projects", token: f.demo, status: 403,
			want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:list_projects.")},
	})
	// A HEAD's answer has no body, but the same status and header.
	if got := f.do("HEAD", "/v3/auth/tokens", "", ""); got.status != http.StatusUnauthorized || got.header.Get("WWW-Authenticate") != `Keystone uri="identity"` {
		t.Errorf("HEAD without a token: %d %v", got.status, got.header)
	}
	// Every answer varies with the token, a success too.
	if got := f.do("GET", "/", "", ""); got.header.Get("Vary") != "X-Auth-Token" {
		t.Errorf("versions: Vary %q", got.header.Get("Vary"))
	}
}
