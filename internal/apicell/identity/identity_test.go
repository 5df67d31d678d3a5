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

// clock is a settable time for token expiry.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newStore(t *testing.T, d *db.DB, c *clock) *identity.Store {
	t.Helper()
	if err := d.Migrate(context.Background(), identity.MigrationSet, identity.Migrations); err != nil {
		t.Fatal(err)
	}
	st, err := identity.New(context.Background(), d, identity.Options{TokenTTL: time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bootstrap(context.Background(),
		identity.Account{User: "admin", Password: "pw-admin", Project: "admin", Role: identity.RoleAdmin},
		identity.Account{User: "demo", Password: "pw-demo", Project: "demo", Role: identity.RoleMember}); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestTokensOnEveryEngine(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
		st := newStore(t, d, c)
		// Bootstrap is idempotent.
		if err := st.Bootstrap(ctx, identity.Account{User: "demo", Project: "demo", Role: identity.RoleMember}); err != nil {
			t.Fatal(err)
		}
		byName := func(user, pw, project string) identity.AuthRequest {
			return identity.AuthRequest{Password: &identity.PasswordMethod{UserName: user, DomainName: "Default", Password: pw},
				Scope: identity.Scope{ProjectName: project, DomainID: identity.DefaultDomainID}}
		}
		tok, secret, err := st.Issue(ctx, byName("admin", "pw-admin", "admin"))
		if err != nil {
			t.Fatal(err)
		}
		if got := tok.RoleNames(); len(got) != 3 || got[0] != "admin" || got[1] != "member" || got[2] != "reader" {
			t.Errorf("admin's roles %v, want admin and the roles it implies, member and reader", got)
		}
		if tok.Project == nil || tok.Project.Name != "admin" || !tok.ExpiresAt.Equal(c.t.Add(time.Hour)) {
			t.Errorf("token %+v", tok)
		}
		v, err := st.Validate(ctx, secret)
		if err != nil || v.User.Name != "admin" {
			t.Fatalf("validate: %+v %v", v, err)
		}

		// Wrong password, unknown user, another's project: refused, with
		// nothing said about which.
		for _, req := range []identity.AuthRequest{byName("admin", "wrong", "admin"), byName("nobody", "x", "admin")} {
			if _, _, err := st.Issue(ctx, req); !errors.Is(err, identity.ErrUnauthorized) {
				t.Errorf("issue %+v: %v, want ErrUnauthorized", req.Password, err)
			}
		}
		var se *identity.ScopeError
		if _, _, err := st.Issue(ctx, byName("demo", "pw-demo", "admin")); !errors.As(err, &se) {
			t.Errorf("demo scoping to project admin: %v, want a ScopeError", err)
		}

		// Rescoping by token keeps the expiry; no scope means the default project.
		_, dsecret, err := st.Issue(ctx, identity.AuthRequest{Password: &identity.PasswordMethod{UserName: "demo", DomainID: "default", Password: "pw-demo"}})
		if err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(30 * time.Minute)
		re, _, err := st.Issue(ctx, identity.AuthRequest{Token: dsecret, Scope: identity.Scope{ProjectName: "demo", DomainName: "Default"}})
		if err != nil || re.Project == nil || re.Project.Name != "demo" || !re.ExpiresAt.Equal(c.t.Add(30*time.Minute)) {
			t.Errorf("rescoped: %+v %v", re, err)
		}

		// Expiry.
		c.t = c.t.Add(31 * time.Minute)
		if _, err := st.Validate(ctx, secret); !errors.Is(err, identity.ErrTokenNotFound) {
			t.Errorf("an expired token validates: %v", err)
		}

		// Revocation, and a removed role, end a token at once.
		_, s2, err := st.Issue(ctx, byName("demo", "pw-demo", "demo"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Revoke(ctx, s2); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Validate(ctx, s2); !errors.Is(err, identity.ErrTokenNotFound) {
			t.Errorf("a revoked token validates: %v", err)
		}
		if err := st.Revoke(ctx, s2); !errors.Is(err, identity.ErrTokenNotFound) {
			t.Errorf("revoking twice: %v", err)
		}
		_, s3, err := st.Issue(ctx, byName("demo", "pw-demo", "demo"))
		if err != nil {
			t.Fatal(err)
		}
		u, _ := st.UserByName(ctx, "default", "demo")
		p, _ := st.ProjectByName(ctx, "default", "demo")
		r, _ := st.RoleByName(ctx, "member")
		if err := st.Ungrant(ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: r.ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Validate(ctx, s3); !errors.Is(err, identity.ErrTokenNotFound) {
			t.Errorf("a token whose user lost every role on its project validates: %v", err)
		}

		// Secrets are never stored: only their hashes.
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM id_tokens WHERE hash = ?`, s3).Scan(&n); err != nil || n != 0 {
			t.Errorf("a token secret is stored as is (%d rows, %v)", n, err)
		}
		var hash string
		if err := d.QueryRow(ctx, `SELECT password_hash FROM id_users WHERE name = 'demo'`).Scan(&hash); err != nil || hash == "pw-demo" || !identity.CheckPassword(hash, "pw-demo") {
			t.Errorf("password stored as %q (%v)", hash, err)
		}
	})
}

func TestCreateConflictsAndValidation(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		st := newStore(t, d, &clock{t: time.Now()})
		p := identity.Project{Name: "demo", Enabled: true}
		var ce *identity.ConflictError
		if err := st.CreateProject(ctx, &p); !errors.As(err, &ce) {
			t.Errorf("a second project demo: %v, want a conflict", err)
		}
		var ve *identity.ValidationError
		if err := st.CreateProject(ctx, &identity.Project{Name: " "}); !errors.As(err, &ve) {
			t.Errorf("a blank project name: %v, want a validation error", err)
		}
		var nf *identity.NotFoundError
		if err := st.CreateUser(ctx, &identity.User{Name: "x", DomainID: "nope"}, "pw"); !errors.As(err, &nf) {
			t.Errorf("a user in a missing domain: %v, want not found", err)
		}
		if err := st.DeleteProject(ctx, "nope"); !errors.As(err, &nf) {
			t.Errorf("deleting a missing project: %v", err)
		}
	})
}
