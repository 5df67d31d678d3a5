// Package authn authenticates the callers of the public APIs (Compute,
// Image, Networking) from their X-Auth-Token. Three modes share one
// interface: the API cell's own identity service ("local"), an external
// Keystone v3 ("keystone"), and the development mode ("noauth"). A small
// cache in front of the first two keeps token validation off the hot path
// of every request.
package authn

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// The authentication modes.
const (
	ModeLocal    = "local"
	ModeKeystone = "keystone"
	ModeNoAuth   = "noauth"
)

// message is an error whose text is an API message, shown to clients as is.
type message string

func (m message) Error() string { return string(m) }

// ErrUnauthorized is a missing, unknown, expired or revoked token.
var ErrUnauthorized error = message("The request you have made requires authentication.")

// Principal is who is calling, as a validated token says.
type Principal struct {
	UserID, UserName, UserDomainID          string
	ProjectID, ProjectName, ProjectDomainID string
	// Roles are the role names on the project, implied roles included.
	Roles []string
	// ExpiresAt is when the token expires (zero: never, in noauth).
	ExpiresAt time.Time
}

// HasRole reports whether the principal holds a role.
func (p Principal) HasRole(name string) bool { return slices.Contains(p.Roles, name) }

// Credentials are the principal as the policy engine sees it.
func (p Principal) Credentials() policy.Credentials {
	return policy.Credentials{UserID: p.UserID, ProjectID: p.ProjectID, DomainID: p.ProjectDomainID, Roles: p.Roles, IsAdmin: p.HasRole("admin")}
}

// Authenticator validates a token.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// Token is the X-Auth-Token of a request.
func Token(r *http.Request) string { return r.Header.Get("X-Auth-Token") }
