package up_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestDefaultNetworkBelongsToTheAdminProject: with the local Identity
// service, the seeded network "private" (and its subnet) belongs to the
// admin project by its id, as Neutron's project_id is, not by its name.
func TestDefaultNetworkBelongsToTheAdminProject(t *testing.T) {
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx := context.Background()
	tree, err := up.Start(ctx, up.Options{DataDir: t.TempDir(), Cells: 1, HostsPerCell: 1, Listen: "127.0.0.1:0",
		ReportInterval: 200 * time.Millisecond, AdminPassword: "admin-secret", DemoPassword: "demo-secret"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Shutdown(context.Background()) })
	if tree.API.Identity == nil {
		t.Fatal("the API cell runs no local identity")
	}
	admin, err := tree.API.Identity.ProjectByName(ctx, identity.DefaultDomainID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	n, err := netdb.GetNetwork(ctx, tree.API.DB, "private")
	if err != nil {
		t.Fatal(err)
	}
	s, err := netdb.GetSubnet(ctx, tree.API.DB, n.Subnets[0])
	if err != nil {
		t.Fatal(err)
	}
	if admin.ID == "admin" || n.ProjectID != admin.ID || s.ProjectID != admin.ID {
		t.Errorf("network private belongs to %q, its subnet to %q; the admin project's id is %q", n.ProjectID, s.ProjectID, admin.ID)
	}
}
