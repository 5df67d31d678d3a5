package node

import (
	"context"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/config"
)

// startAPICell starts an API cell (auth local) on dir, loopback ports
// only, and stops it at the end of the test.
func startAPICell(t *testing.T, dir, adminPassword string) *Node {
	t.Helper()
	cfg := &config.Config{Cell: "api", DataDir: dir, Broker: config.Broker{Listen: "127.0.0.1:0"},
		API: config.API{Listen: "127.0.0.1:0", AdminPassword: adminPassword}}
	n, err := New(cfg, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// TestRestartWithTheSameAdminPasswordKeepsTokens: restarting the API cell
// with the same admin password (serve's CELLCLOUD_ADMIN_PASSWORD) keeps
// the admin's tokens; a restart with another one resets the password and
// revokes them.
func TestRestartWithTheSameAdminPasswordKeepsTokens(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	admin := func(pw string) identity.AuthRequest {
		return identity.AuthRequest{Password: &identity.PasswordMethod{UserName: "admin", DomainID: identity.DefaultDomainID, Password: pw},
			Scope: identity.Scope{ProjectName: "admin", DomainID: identity.DefaultDomainID}}
	}
	n := startAPICell(t, dir, "secret-1")
	_, secret, err := n.Identity.Issue(ctx, admin("secret-1"))
	if err != nil {
		t.Fatal(err)
	}
	n.Shutdown(ctx)

	n = startAPICell(t, dir, "secret-1")
	if _, err := n.Identity.Validate(ctx, secret); err != nil {
		t.Fatalf("the admin's token after a restart with the same password: %v, want it valid", err)
	}
	n.Shutdown(ctx)

	n = startAPICell(t, dir, "secret-2")
	if _, err := n.Identity.Validate(ctx, secret); err == nil {
		t.Error("the admin's token after a restart with another password is still valid, want it revoked")
	}
	if _, _, err := n.Identity.Issue(ctx, admin("secret-2")); err != nil {
		t.Errorf("the new admin password after a restart: %v", err)
	}
}
