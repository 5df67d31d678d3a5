package scenario

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// CirrosID is the image every API cell seeds (internal/apicell/api/image.CirrosID);
// the fake driver boots it.
const CirrosID = "5f5c1b7e-6c2a-4e43-9a57-0d8c1c0c1c0c"

// Wait bounds every wait of a scenario: builds, actions and deletes go
// through the cells below, which may be other processes.
const Wait = 60 * time.Second

// booted is a server a scenario built, and the cell it must land in ("" for
// whichever the cell scheduler picks).
type booted struct {
	id, name, cell string
	sc             *gophercloud.ServiceClient
}

// BootActDelete is the core scenario across two compute cells: the admin
// boots two servers into each of the first two cells (target_cell), a
// member boots one where the scheduler likes; all become ACTIVE with an
// address from their cell's network; one is stopped and started, one
// rebooted, and both come back ACTIVE with the action recorded; then all
// are deleted, each answers 404, none is listed, and no hypervisor holds
// anything any more.
func BootActDelete(t *testing.T, c Cloud) {
	t.Helper()
	ctx := t.Context()
	cells := c.ComputeCells()
	if len(cells) < 2 {
		t.Fatalf("the scenario needs two compute cells, the cloud has %v", cells)
	}
	admin, member := Compute(c, c.AdminToken()), Compute(c, c.MemberToken())

	// Boot.
	var all []booted
	for _, cell := range cells[:2] {
		for i := range 2 {
			name := fmt.Sprintf("scenario-%s-%d", strings.ReplaceAll(cell.Path, "!", "-"), i)
			hints := servers.SchedulerHintOpts{AdditionalProperties: map[string]any{"target_cell": cell.Path}}
			s, err := servers.Create(ctx, admin, servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: CirrosID}, hints).Extract()
			if err != nil {
				t.Fatalf("boot %s into %s: %v", name, cell.Path, err)
			}
			all = append(all, booted{id: s.ID, name: name, cell: cell.Path, sc: admin})
		}
	}
	s, err := servers.Create(ctx, member, servers.CreateOpts{Name: "scenario-member", FlavorRef: "1", ImageRef: CirrosID}, nil).Extract()
	if err != nil {
		t.Fatalf("boot as a member: %v", err)
	}
	all = append(all, booted{id: s.ID, name: "scenario-member", sc: member})

	// ACTIVE, each with an address of the right cell.
	for _, b := range all {
		got := waitStatus(t, b.sc, b.id, "ACTIVE")
		cell := cellOf(t, c, got)
		if b.cell != "" && cell != b.cell {
			t.Errorf("%s: addresses %v are in %s, want %s", b.name, got.Addresses, cell, b.cell)
		}
	}

	// Act on one server in each cell: stop and start, reboot.
	stopped, rebooted := all[0], all[2]
	if err := servers.Stop(ctx, stopped.sc, stopped.id).ExtractErr(); err != nil {
		t.Fatalf("stop %s: %v", stopped.name, err)
	}
	waitStatus(t, stopped.sc, stopped.id, "SHUTOFF")
	if err := servers.Start(ctx, stopped.sc, stopped.id).ExtractErr(); err != nil {
		t.Fatalf("start %s: %v", stopped.name, err)
	}
	if err := servers.Reboot(ctx, rebooted.sc, rebooted.id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr(); err != nil {
		t.Fatalf("reboot %s: %v", rebooted.name, err)
	}
	for _, a := range []struct {
		b      booted
		action string
	}{{stopped, "start"}, {rebooted, "reboot"}} {
		testpoll.Eventually(t, Wait, fmt.Sprintf("%s ACTIVE after %s", a.b.name, a.action), func() (bool, string) {
			got, err := servers.Get(ctx, a.b.sc, a.b.id).Extract()
			if err != nil {
				return false, err.Error()
			}
			if got.Status != "ACTIVE" || got.TaskState != "" {
				return false, fmt.Sprintf("status %s task %q", got.Status, got.TaskState)
			}
			acts, err := actions(ctx, a.b.sc, a.b.id)
			if err != nil {
				return false, err.Error()
			}
			return len(acts) > 0 && acts[0] == a.action, fmt.Sprintf("actions %v", acts)
		})
		if got := cellOf(t, c, waitStatus(t, a.b.sc, a.b.id, "ACTIVE")); got != a.b.cell {
			t.Errorf("%s: addresses in %s after %s, want %s", a.b.name, got, a.action, a.b.cell)
		}
	}

	// Delete: every server answers 404, none is listed, no host holds one.
	for _, b := range all {
		if err := servers.Delete(ctx, b.sc, b.id).ExtractErr(); err != nil {
			t.Fatalf("delete %s: %v", b.name, err)
		}
	}
	for _, b := range all {
		testpoll.Eventually(t, Wait, b.name+" gone", func() (bool, string) {
			got, err := servers.Get(ctx, b.sc, b.id).Extract()
			if gophercloud.ResponseCodeIs(err, 404) {
				return true, ""
			}
			if err != nil {
				return false, err.Error()
			}
			return false, fmt.Sprintf("status %s task %q", got.Status, got.TaskState)
		})
	}
	pages, err := servers.List(admin, servers.ListOpts{AllTenants: true}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list servers: %v", err)
	}
	left, err := servers.ExtractServers(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range left {
		t.Errorf("server %s (%s) is still listed as %s", s.ID, s.Name, s.Status)
	}
	testpoll.Eventually(t, Wait, "every hypervisor empty", func() (bool, string) {
		pages, err := hypervisors.List(admin, nil).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		hs, err := hypervisors.ExtractHypervisors(pages)
		if err != nil {
			return false, err.Error()
		}
		if len(hs) == 0 {
			return false, "no hypervisors listed"
		}
		var busy []string
		for _, h := range hs {
			if h.RunningVMs != 0 || h.VCPUsUsed != 0 {
				busy = append(busy, fmt.Sprintf("%s: %d VMs, %d vCPUs", h.HypervisorHostname, h.RunningVMs, h.VCPUsUsed))
			}
		}
		return len(busy) == 0, strings.Join(busy, "; ")
	})
}

// waitStatus polls the server until it has status; ERROR ends the wait at
// once unless it is the status wanted.
func waitStatus(t *testing.T, sc *gophercloud.ServiceClient, id, status string) *servers.Server {
	t.Helper()
	var s *servers.Server
	testpoll.Eventually(t, Wait, fmt.Sprintf("server %s %s", id, status), func() (bool, string) {
		var err error
		if s, err = servers.Get(t.Context(), sc, id).Extract(); err != nil {
			return false, err.Error()
		}
		if s.Status == "ERROR" && status != "ERROR" {
			t.Fatalf("server %s went to ERROR: %+v", id, s.Fault)
		}
		return s.Status == status, fmt.Sprintf("status %s task %q", s.Status, s.TaskState)
	})
	return s
}

// cellOf is the one cell that handed out every address of s.
func cellOf(t *testing.T, c Cloud, s *servers.Server) string {
	t.Helper()
	var addrs []netip.Addr
	for _, list := range s.Addresses {
		l, _ := list.([]any)
		for _, a := range l {
			m, _ := a.(map[string]any)
			str, _ := m["addr"].(string)
			ip, err := netip.ParseAddr(str)
			if err != nil {
				t.Fatalf("server %s: address %v: %v", s.ID, a, err)
			}
			addrs = append(addrs, ip)
		}
	}
	if len(addrs) == 0 {
		t.Fatalf("server %s has no address: %v", s.ID, s.Addresses)
	}
	var in []string
	for _, a := range addrs {
		cell, err := c.AddressCell(a)
		if err != nil {
			t.Fatalf("server %s: the cell of %s: %v", s.ID, a, err)
		}
		if !slices.Contains(in, cell) {
			in = append(in, cell)
		}
	}
	if len(in) != 1 || in[0] == "" {
		t.Fatalf("server %s: addresses %v are in cells %v, want exactly one", s.ID, addrs, in)
	}
	return in[0]
}

// actions are the names of a server's instance actions, newest first.
func actions(ctx context.Context, sc *gophercloud.ServiceClient, id string) ([]string, error) {
	pages, err := instanceactions.List(sc, id, nil).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	acts, err := instanceactions.ExtractInstanceActions(pages)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(acts))
	for i, a := range acts {
		names[i] = a.Action
	}
	return names, nil
}
