package identity_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestBootstrapKeepsAMatchingPassword: bootstrapping an existing user with
// the password it already has (a restart with the same admin password in
// the environment) changes nothing and keeps its tokens; another password
// resets it and revokes them; a disabled user is enabled again, as
// keystone-manage bootstrap does.
func TestBootstrapKeepsAMatchingPassword(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st := newStore(t, d, &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		admin := identity.Account{User: "admin", Password: "pw-admin", Project: "admin", Role: identity.RoleAdmin}
		login := func(pw string) (string, error) {
			_, secret, err := st.Issue(ctx, identity.AuthRequest{
				Password: &identity.PasswordMethod{UserName: "admin", DomainID: identity.DefaultDomainID, Password: pw},
				Scope:    identity.Scope{ProjectName: "admin", DomainID: identity.DefaultDomainID}})
			return secret, err
		}
		secret, err := login("pw-admin")
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Bootstrap(ctx, admin); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Validate(ctx, secret); err != nil {
			t.Errorf("the admin's token after a bootstrap with the same password: %v, want it valid", err)
		}

		// A disabled admin is enabled again; its password is kept.
		u, err := st.UserByName(ctx, identity.DefaultDomainID, "admin")
		if err != nil {
			t.Fatal(err)
		}
		no := false
		if _, err := st.UpdateUser(ctx, u.ID, identity.UserPatch{Enabled: &no}); err != nil {
			t.Fatal(err)
		}
		if err := st.Bootstrap(ctx, admin); err != nil {
			t.Fatal(err)
		}
		if secret, err = login("pw-admin"); err != nil {
			t.Fatalf("the admin after a bootstrap of the disabled user: %v, want enabled with its password", err)
		}

		// Another password is a reset: the old one and the tokens go.
		admin.Password = "pw-new"
		if err := st.Bootstrap(ctx, admin); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Validate(ctx, secret); !errors.Is(err, identity.ErrTokenNotFound) {
			t.Errorf("a token after a password reset by bootstrap: %v, want revoked", err)
		}
		if _, err := login("pw-admin"); !errors.Is(err, identity.ErrUnauthorized) {
			t.Errorf("the old password after a reset: %v, want ErrUnauthorized", err)
		}
		if _, err := login("pw-new"); err != nil {
			t.Errorf("the new password after a reset: %v", err)
		}
	})
}
