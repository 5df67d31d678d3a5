package authn

import (
	"context"
	"errors"

	"github.com/cellcloud/cellcloud/internal/apicell/identity"
)

// Local validates tokens against the API cell's own identity service.
type Local struct {
	Store *identity.Store
}

// Authenticate validates a token issued by the identity service.
func (l Local) Authenticate(ctx context.Context, tok string) (Principal, error) {
	t, err := l.Store.Validate(ctx, tok)
	if errors.Is(err, identity.ErrTokenNotFound) {
		return Principal{}, ErrUnauthorized
	}
	if err != nil {
		return Principal{}, err
	}
	return FromToken(t), nil
}

// FromToken is the principal of a validated identity token.
func FromToken(t *identity.Token) Principal {
	p := Principal{UserID: t.User.ID, UserName: t.User.Name, UserDomainID: t.User.DomainID, Roles: t.RoleNames(), ExpiresAt: t.ExpiresAt}
	if t.Project != nil {
		p.ProjectID, p.ProjectName, p.ProjectDomainID = t.Project.ID, t.Project.Name, t.Project.DomainID
	}
	return p
}
