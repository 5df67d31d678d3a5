package identity_test

import (
	"strings"
	"testing"
)

func TestTokens(t *testing.T) {
	f := newFixture(t)
	password := `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo", "domain": {"name": "Default"}, "password": "pw-demo"}}},
		"scope": {"project": {"name": "demo", "domain": {"id": "default"}}}}}`
	a := f.do("POST", "/v3/auth/tokens", "", password)
	tok := obj(a.json(t, 201), "token")
	secret := a.header.Get("X-Subject-Token")
	if secret == "" || obj(tok, "project")["name"] != "demo" || obj(tok, "user")["name"] != "demo" || len(list(tok, "catalog")) != 2 ||
		len(list(tok, "roles")) == 0 || tok["is_domain"] != false {
		t.Fatalf("issued %v (X-Subject-Token %q)", tok, secret)
	}
	if tok := obj(f.do("POST", "/v3/auth/tokens?nocatalog", "", password).json(t, 201), "token"); tok["catalog"] != nil {
		t.Errorf("nocatalog: %v", tok)
	}
	// The token method, unscoped: no project, no roles, no catalog.
	un := obj(f.do("POST", "/v3/auth/tokens", "", `{"auth": {"identity": {"methods": ["token"], "token": {"id": "`+secret+`"}}, "scope": "unscoped"}}`).json(t, 201), "token")
	if un["project"] != nil || un["catalog"] != nil || un["roles"] != nil {
		t.Errorf("unscoped by token %v", un)
	}
	// Validate, check and revoke: a token may look at itself; the admin at any.
	v := f.do("GET", "/v3/auth/tokens", secret, "", "X-Subject-Token", secret)
	if got := obj(v.json(t, 200), "token"); obj(got, "user")["name"] != "demo" || v.header.Get("X-Subject-Token") != secret {
		t.Errorf("validate own: %v %v", got, v.header)
	}
	if a := f.do("HEAD", "/v3/auth/tokens", f.admin, "", "X-Subject-Token", secret); a.status != 200 || a.header.Get("X-Subject-Token") != secret {
		t.Errorf("check by the admin: %d %v", a.status, a.header)
	}
	if a := f.do("DELETE", "/v3/auth/tokens", f.demo, "", "X-Subject-Token", secret); a.status != 204 || a.body != "" {
		t.Errorf("revoke by its user: %d %q", a.status, a.body)
	}
	f.check([]fault{
		{name: "revoked subject", method: "GET", path: "/v3/auth/tokens", token: f.admin, headers: []string{"X-Subject-Token", secret},
			status: 404, want: keystoneError(404, "Not Found", "Could not find token: "+secret[:16]+"….")},
		{name: "revoked token", method: "GET", path: "/v3/auth/tokens", token: secret, headers: []string{"X-Subject-Token", f.demo},
			status: 401, wwwAuthenticate: true, want: keystoneError(401, "Unauthorized", "The request you have made requires authentication.")},
		{name: "no subject", method: "GET", path: "/v3/auth/tokens", token: f.admin, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'X-Subject-Token': the header is required.")},
		{name: "short unknown subject", method: "DELETE", path: "/v3/auth/tokens", token: f.admin, headers: []string{"X-Subject-Token", "abc"},
			status: 404, want: keystoneError(404, "Not Found", "Could not find token: abc.")},
		{name: "unknown subject", method: "GET", path: "/v3/auth/tokens", token: f.admin, headers: []string{"X-Subject-Token", "0123456789abcdefXYZ"},
			status: 404, want: keystoneError(404, "Not Found", "Could not find token: 0123456789abcdef….")},
		{name: "another's subject", method: "GET", path: "/v3/auth/tokens", token: f.demo, headers: []string{"X-Subject-Token", f.admin},
			status: 403, want: keystoneError(403, "Forbidden", "You are not authorized to perform the requested action: identity:validate_token.")},
		{name: "wrong password", method: "POST", path: "/v3/auth/tokens", status: 401, wwwAuthenticate: true,
			body: strings.Replace(password, "pw-demo", "no", 1),
			want: keystoneError(401, "Unauthorized", "The request you have made requires authentication.")},
		{name: "unsupported method", method: "POST", path: "/v3/auth/tokens", status: 401, wwwAuthenticate: true,
			body: `{"auth": {"identity": {"methods": ["totp"]}}}`,
			want: keystoneError(401, "Unauthorized", "Attempted to authenticate with an unsupported method.")},
		{name: "domain scope", method: "POST", path: "/v3/auth/tokens", status: 401, wwwAuthenticate: true,
			body: strings.Replace(password, `"project": {"name": "demo", "domain": {"id": "default"}}`, `"domain": {"id": "default"}`, 1),
			want: keystoneError(401, "Unauthorized", "Domain and system scoped tokens are not supported; ask for a project-scoped token.")},
		{name: "no identity", method: "POST", path: "/v3/auth/tokens", body: `{"auth": {}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'identity': 'identity' is a required property.")},
		{name: "no methods", method: "POST", path: "/v3/auth/tokens", body: `{"auth": {"identity": {}}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'identity/methods': 'methods' is a required property with at least one method.")},
		{name: "no password", method: "POST", path: "/v3/auth/tokens", body: `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "demo"}}}}}`, status: 400,
			want: keystoneError(400, "Bad Request", "Invalid input for field 'identity/password/user/password': 'password' is a required property.")},
		{name: "bad scope", method: "POST", path: "/v3/auth/tokens", body: strings.Replace(password, `"scope": {`, `"scope": "all", "x": {`, 1), status: 400,
			want: keystoneError(400, "Bad Request", `Invalid input for field 'scope': "all" is not 'unscoped' or an object.`)},
		{name: "malformed body", method: "POST", path: "/v3/auth/tokens", body: `{"auth": [`, status: 400,
			want: keystoneError(400, "Bad Request", "Malformed request body: it is not a JSON object.")},
		{name: "too large", method: "POST", path: "/v3/auth/tokens", body: `{"auth": "` + strings.Repeat("x", 120<<10) + `"}`, status: 413,
			want: keystoneError(413, "Request Entity Too Large", "Request is too large.")},
	})
}
