package identity

import (
	"context"
	"errors"
	"fmt"
)

// Account is a user to bootstrap with a role on a project of the same kind.
type Account struct {
	User, Password, Project, Role string
}

// Bootstrap makes sure the cloud has the Default domain, the admin, member
// and reader roles (each implying the next, as keystone-manage bootstrap
// sets up), and each account: its project, its user and its role. It is
// idempotent. An existing user given a Password is treated as
// keystone-manage bootstrap treats its admin (keystone/cmd/bootstrap.py
// _bootstrap_admin_user): re-enabled if disabled, and its password reset
// only when the given one does not already authenticate it, so that a
// restart with the same password keeps the user's tokens (a reset revokes
// them). An account with an empty Password keeps an existing user's
// password.
func (s *Store) Bootstrap(ctx context.Context, accounts ...Account) error {
	_, err := s.BootstrapAccounts(ctx, accounts...)
	return err
}

// What Bootstrap did to an account's user.
const (
	UserCreated       = "created"
	UserPasswordReset = "password reset"
	UserKept          = "already there"
)

// BootstrapAccounts is Bootstrap, telling for each account what it did
// to its user: UserCreated, UserPasswordReset (the given password did not
// authenticate it, or it was disabled) or UserKept.
func (s *Store) BootstrapAccounts(ctx context.Context, accounts ...Account) ([]string, error) {
	if err := s.EnsureDomain(ctx, Domain{ID: DefaultDomainID, Name: "Default", Description: "The default domain"}); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	var prev string
	for _, name := range []string{RoleAdmin, RoleMember, RoleReader} {
		r, err := s.ensureRole(ctx, name)
		if err != nil {
			return nil, err
		}
		if prev != "" {
			if err := s.Imply(ctx, prev, r.ID); err != nil {
				return nil, fmt.Errorf("bootstrap: %w", err)
			}
		}
		prev = r.ID
	}
	out := make([]string, 0, len(accounts))
	for _, a := range accounts {
		did, err := s.ensureAccount(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("bootstrap %s: %w", a.User, err)
		}
		out = append(out, did)
	}
	return out, nil
}

func (s *Store) ensureRole(ctx context.Context, name string) (Role, error) {
	r, err := s.RoleByName(ctx, name)
	var nf *NotFoundError
	if errors.As(err, &nf) {
		r = Role{Name: name}
		err = s.CreateRole(ctx, &r)
	}
	return r, err
}

func (s *Store) ensureAccount(ctx context.Context, a Account) (string, error) {
	p, err := s.ProjectByName(ctx, DefaultDomainID, a.Project)
	var nf *NotFoundError
	if errors.As(err, &nf) {
		p = Project{Name: a.Project, DomainID: DefaultDomainID, Enabled: true, Description: "Bootstrap project"}
		err = s.CreateProject(ctx, &p)
	}
	if err != nil {
		return "", err
	}
	did := UserKept
	u, err := s.UserByName(ctx, DefaultDomainID, a.User)
	switch {
	case errors.As(err, &nf):
		u = User{Name: a.User, DomainID: DefaultDomainID, DefaultProjectID: p.ID, Enabled: true}
		err, did = s.CreateUser(ctx, &u, a.Password), UserCreated
	case err == nil && a.Password != "":
		var changed bool
		if changed, err = s.recover(ctx, u, a.Password); changed {
			did = UserPasswordReset
		}
	}
	if err != nil {
		return "", err
	}
	r, err := s.ensureRole(ctx, a.Role)
	if err != nil {
		return "", err
	}
	return did, s.Grant(ctx, Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: r.ID})
}

// recover enables an existing user and gives it password, changing only
// what differs: a password that already authenticates the user is kept.
// It tells whether it changed anything.
func (s *Store) recover(ctx context.Context, u User, password string) (bool, error) {
	var p UserPatch
	if !u.Enabled {
		yes := true
		p.Enabled = &yes
	}
	var hash string
	if err := s.db.QueryRow(ctx, `SELECT password_hash FROM id_users WHERE id = ?`, u.ID).Scan(&hash); err != nil {
		return false, err
	}
	if !CheckPassword(hash, password) {
		p.Password = &password
	}
	if p == (UserPatch{}) {
		return false, nil
	}
	_, err := s.UpdateUser(ctx, u.ID, p)
	return err == nil, err
}
