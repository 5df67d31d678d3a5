package up_test

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/up"
)

// statuses polls a server's status until it is want, after some other
// status was seen first, and returns the statuses it saw in order, each
// once.
func statuses(t *testing.T, c *gophercloud.ServiceClient, id, want string) []string {
	t.Helper()
	var seen []string
	testpoll.Eventually(t, 60*time.Second, "status "+want, func() (bool, string) {
		s, err := servers.Get(context.Background(), c, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		if len(seen) == 0 || seen[len(seen)-1] != s.Status {
			seen = append(seen, s.Status)
		}
		// The final status counts once something else came before it.
		return s.Status == want && len(seen) > 1, strings.Join(seen, " → ")
	})
	return seen
}

// TestTransitionalStatusesAreVisible: with the fake driver's operations
// taking time, as a real hypervisor's do, a client polling the server sees
// the transitional status of each action before the one that follows it.
func TestTransitionalStatusesAreVisible(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the fake driver's operations")
	}
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ops := map[string]time.Duration{}
	for _, op := range fake.Ops {
		ops[op] = 700 * time.Millisecond
	}
	opts := up.Options{DataDir: t.TempDir(), Cells: 1, HostsPerCell: 2, Listen: "127.0.0.1:0", ReportInterval: 200 * time.Millisecond,
		Auth: config.AuthNoAuth, SpawnLatency: 700 * time.Millisecond, OpLatency: ops}
	tree, err := up.Start(context.Background(), opts, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Shutdown(context.Background()) })
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{Timeout: 30 * time.Second}}
	pc.SetToken("admin:admin")
	c := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: tree.APIURL() + "/", ResourceBase: tree.APIURL() + "/", Type: "compute"}
	ctx := context.Background()

	var s *servers.Server
	testpoll.Eventually(t, 30*time.Second, "a server created", func() (bool, string) {
		var err error
		s, err = servers.Create(ctx, c, servers.CreateOpts{Name: "t", FlavorRef: "1", ImageRef: up.DefaultImageID}, nil).Extract()
		return err == nil, errText(err)
	})
	if seen := statuses(t, c, s.ID, "ACTIVE"); !slices.Contains(seen, "BUILD") {
		t.Errorf("create: saw %v, want BUILD before ACTIVE", seen)
	}
	for _, step := range []struct {
		name, transitional, final string
		act                       func() error
	}{
		{"soft reboot", "REBOOT", "ACTIVE", func() error {
			return servers.Reboot(ctx, c, s.ID, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
		}},
		{"hard reboot", "HARD_REBOOT", "ACTIVE", func() error {
			return servers.Reboot(ctx, c, s.ID, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr()
		}},
		{"rebuild", "REBUILD", "ACTIVE", func() error {
			return servers.Rebuild(ctx, c, s.ID, servers.RebuildOpts{ImageRef: up.DefaultImageID}).Err
		}},
		{"resize", "RESIZE", "VERIFY_RESIZE", func() error { return servers.Resize(ctx, c, s.ID, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr() }},
	} {
		if err := step.act(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if seen := statuses(t, c, s.ID, step.final); !slices.Contains(seen, step.transitional) {
			t.Errorf("%s: saw %v, want %s before %s", step.name, seen, step.transitional, step.final)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
