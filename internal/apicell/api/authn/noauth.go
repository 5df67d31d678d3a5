package authn

import (
	"context"
	"strings"
)

// NoAuth is the development mode, like Nova's noauth2: the token is
// "user:project" (or "user", meaning the project of the same name), the
// user "admin" is an administrator, and no token at all means admin:admin.
// Every other user is a member of the project named.
type NoAuth struct{}

// Authenticate reads a noauth token. A token that names no user, or a name
// over 255 characters, is refused.
func (NoAuth) Authenticate(_ context.Context, tok string) (Principal, error) {
	if tok == "" {
		tok = "admin:admin"
	}
	user, project, _ := strings.Cut(tok, ":")
	if project == "" {
		project = user
	}
	if user == "" || len(user) > 255 || len(project) > 255 {
		return Principal{}, ErrUnauthorized
	}
	roles := []string{"member", "reader"}
	if user == "admin" {
		roles = []string{"admin", "member", "reader"}
	}
	return Principal{UserID: user, UserName: user, ProjectID: project, ProjectName: project, Roles: roles}, nil
}
