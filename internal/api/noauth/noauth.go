// Package noauth is the development authentication of the public APIs,
// like Nova's noauth2: the X-Auth-Token is "user:project" (or "user",
// meaning the project of the same name), the user "admin" is an
// administrator, and no token at all means admin:admin. Every API parses
// tokens here, so that real identity replaces it in one place.
package noauth

import (
	"net/http"
	"strings"
)

// Principal is who is calling.
type Principal struct {
	UserID    string
	ProjectID string
	Admin     bool
}

// FromRequest reads the caller from the X-Auth-Token header. It reports
// false for a token that names no user or a name over 255 characters.
func FromRequest(r *http.Request) (Principal, bool) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		tok = "admin:admin"
	}
	user, project, _ := strings.Cut(tok, ":")
	if project == "" {
		project = user
	}
	if user == "" || len(user) > 255 || len(project) > 255 {
		return Principal{}, false
	}
	return Principal{UserID: user, ProjectID: project, Admin: user == "admin"}, true
}
