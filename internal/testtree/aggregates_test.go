package testtree_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/up"
)

// bootZone creates a server of project p in zone (no cell named) and
// returns its id.
func bootZone(t *testing.T, tr *testtree.Tree, name, zone string) string {
	t.Helper()
	s, err := servers.Create(context.Background(), tr.Compute(adminP),
		servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: up.DefaultImageID, AvailabilityZone: zone}, nil).Extract()
	if err != nil {
		t.Fatalf("create %s in %q: %v", name, zone, err)
	}
	return s.ID
}

// settled waits for the servers to be ACTIVE or ERROR in the API copy and
// returns them.
func settled(t *testing.T, tr *testtree.Tree, ids ...string) []apidb.Instance {
	t.Helper()
	out := make([]apidb.Instance, len(ids))
	testpoll.Eventually(t, 60*time.Second, "servers active or in error", func() (bool, string) {
		for i, id := range ids {
			in, err := apidb.Get(context.Background(), tr.API.DB, id)
			if err != nil {
				return false, err.Error()
			}
			if in.VMState != "active" && in.VMState != "error" {
				return false, fmt.Sprintf("%s %s/%s", id, in.VMState, in.TaskState)
			}
			out[i] = *in
		}
		return true, ""
	})
	return out
}

// waitZones waits until the cell's database puts each host in its zone.
func waitZones(t *testing.T, d *db.DB, what string, want map[string]string) {
	t.Helper()
	testpoll.Eventually(t, 60*time.Second, what, func() (bool, string) {
		nodes, err := celldb.ListNodes(context.Background(), d)
		if err != nil {
			return false, err.Error()
		}
		got := map[string]string{}
		for _, n := range nodes {
			got[n.Host] = n.AvailabilityZone
		}
		for h, z := range want {
			if got[h] != z {
				return false, fmt.Sprintf("zones %v", got)
			}
		}
		return true, ""
	})
}

// waitReported waits until the API cell's reports from its children say
// which of them have zone: exactly cells.
func waitReported(t *testing.T, tr *testtree.Tree, zone string, want ...string) {
	t.Helper()
	slices.Sort(want)
	testpoll.Eventually(t, 60*time.Second, "the cells' reports name zone "+zone, func() (bool, string) {
		ns, err := cells.ListNeighbours(context.Background(), tr.API.DB)
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, n := range ns {
			if n.Relation == cells.Child && n.Report != nil && slices.Contains(n.Report.AvailabilityZones, zone) {
				got = append(got, n.Path)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("reported by %v", got)
	})
}

// TestAggregateZonesAcrossCells: an operator fences hosts of two cells
// into an aggregate with a zone and every build asked for that zone lands
// on them; a zone one cell alone has gets every build asked for it; a
// zone nobody has is a 400; the zone is the servers' OS-EXT-AZ. While a
// cell is down its hosts neither join nor leave (503), its aggregate's
// metadata changes and the cell has it when it returns; a build for a
// zone whose only cell is down ends in ERROR, no valid host.
func TestAggregateZonesAcrossCells(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 3, HostsPerCell: 2})
	ctx := context.Background()
	admin := tr.Compute("admin:admin")
	admin.Microversion = "2.41"
	c1, c2, c3 := tr.Cells[0].Config().Cell, tr.Cells[1].Config().Cell, tr.Cells[2].Config().Cell
	host := func(cell string, i int) string {
		return fmt.Sprintf("%s-host%03d", cell[strings.LastIndex(cell, "!")+1:], i)
	}

	fenced, err := aggregates.Create(ctx, admin, aggregates.CreateOpts{Name: "fenced", AvailabilityZone: "az1"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{c1 + "@" + host(c1, 1), c2 + "@" + host(c2, 1)} {
		if _, err := aggregates.AddHost(ctx, admin, fenced.ID, aggregates.AddHostOpts{Host: h}).Extract(); err != nil {
			t.Fatalf("add %s: %v", h, err)
		}
	}
	lonely, err := aggregates.Create(ctx, admin, aggregates.CreateOpts{Name: "lonely", AvailabilityZone: "az2"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aggregates.AddHost(ctx, admin, lonely.ID, aggregates.AddHostOpts{Host: host(c3, 2)}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitZones(t, tr.Cells[0].DB, "cell1's host001 in az1", map[string]string{host(c1, 1): "az1", host(c1, 2): "nova"})
	waitZones(t, tr.Cells[1].DB, "cell2's host001 in az1", map[string]string{host(c2, 1): "az1", host(c2, 2): "nova"})
	waitZones(t, tr.Cells[2].DB, "cell3's host002 in az2", map[string]string{host(c3, 1): "nova", host(c3, 2): "az2"})
	waitReported(t, tr, "az1", c1, c2)
	waitReported(t, tr, "az2", c3)

	// Every build asked for az1 lands on the two fenced hosts, in both
	// cells; every one asked for az2 on cell3's host002.
	var ids []string
	for i := range 6 {
		ids = append(ids, bootZone(t, tr, fmt.Sprintf("fenced-%d", i), "az1"))
	}
	for i := range 3 {
		ids = append(ids, bootZone(t, tr, fmt.Sprintf("lonely-%d", i), "az2"))
	}
	cellsUsed := map[string]bool{}
	for i, in := range settled(t, tr, ids...) {
		want := []string{c1 + "@" + host(c1, 1), c2 + "@" + host(c2, 1)}
		zone := "az1"
		if i >= 6 {
			want, zone = []string{c3 + "@" + host(c3, 2)}, "az2"
		}
		if in.VMState != "active" || !slices.Contains(want, in.Cell+"@"+in.Host) || in.AvailabilityZone != zone {
			t.Errorf("%s: %s on %s@%s in zone %q, want active on one of %v in %s", in.Name, in.VMState, in.Cell, in.Host, in.AvailabilityZone, want, zone)
		}
		if i < 6 {
			cellsUsed[in.Cell] = true
		}
	}
	if len(cellsUsed) != 2 {
		t.Errorf("the az1 builds used cells %v, want both cells of the aggregate", cellsUsed)
	}
	// A build with no zone takes its host's as its OS-EXT-AZ.
	s, err := servers.Get(ctx, tr.Compute(adminP), ids[0]).Extract()
	if err != nil || s.AvailabilityZone != "az1" {
		t.Errorf("OS-EXT-AZ:availability_zone of an az1 server: %q, %v", s.AvailabilityZone, err)
	}
	// A zone nobody has: Nova's 400.
	_, err = servers.Create(ctx, tr.Compute(adminP), servers.CreateOpts{Name: "nowhere", FlavorRef: "1", ImageRef: up.DefaultImageID,
		AvailabilityZone: "az-none"}, nil).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) || !strings.Contains(err.Error(), "The requested availability zone is not available") {
		t.Errorf("create in an unknown zone: %v, want 400 The requested availability zone is not available", err)
	}

	// cell3 goes down; while it is, its host001 joins az2 and the
	// aggregate gets a property.
	// Back on the same broker address, where the API cell's link finds it.
	cfg := testtree.StopCell(t, tr.Cells[2])
	// A host of the down cell neither joins nor leaves: a 503 naming the
	// cell (once the API cell counts it down). The aggregate's metadata
	// changes all the same.
	testpoll.Eventually(t, 60*time.Second, "the API cell to count cell3 down", func() (bool, string) {
		r, err := tr.Send(http.MethodGet, "/v2.1/os-hosts/"+host(c3, 1), "admin:admin", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusServiceUnavailable, r.String()
	})
	if _, err := aggregates.AddHost(ctx, admin, lonely.ID, aggregates.AddHostOpts{Host: host(c3, 1)}).Extract(); !gophercloud.ResponseCodeIs(err, 503) ||
		!strings.Contains(err.Error(), c3) {
		t.Errorf("adding a host of the down cell: %v, want a 503 naming %s", err, c3)
	}
	if _, err := aggregates.RemoveHost(ctx, admin, lonely.ID, aggregates.RemoveHostOpts{Host: host(c3, 2)}).Extract(); !gophercloud.ResponseCodeIs(err, 503) {
		t.Errorf("removing a host of the down cell: %v, want a 503", err)
	}
	if _, err := aggregates.SetMetadata(ctx, admin, lonely.ID, aggregates.SetMetadataOpts{Metadata: map[string]any{"ssd": "true"}}).Extract(); err != nil {
		t.Fatal(err)
	}
	// A build for az2 while its only cell is down: accepted (the zone
	// exists), then ERROR with no valid host.
	orphan := bootZone(t, tr, "orphan", "az2")
	in := settled(t, tr, orphan)[0]
	if in.VMState != "error" || !strings.Contains(strings.ToLower(in.Fault.Message), "no valid") {
		t.Errorf("build for a zone whose only cell is down: %s, fault %q; want error, no valid host", in.VMState, in.Fault.Message)
	}

	back := testtree.RestartCell(t, cfg)
	testpoll.Eventually(t, 30*time.Second, "cell3 holds the aggregate's new property", func() (bool, string) {
		held, err := celldb.HeldAggregates(ctx, back.DB)
		if err != nil {
			return false, err.Error()
		}
		for _, a := range held {
			if a.Name == "lonely" && a.Metadata["ssd"] == "true" && slices.Equal(a.Hosts, []string{host(c3, 2)}) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", held)
	})
	// Back: its host joins.
	testpoll.Eventually(t, 30*time.Second, "adding cell3's host001 once the cell is back", func() (bool, string) {
		_, err := aggregates.AddHost(ctx, admin, lonely.ID, aggregates.AddHostOpts{Host: host(c3, 1)}).Extract()
		return err == nil, fmt.Sprint(err)
	})
	waitZones(t, back.DB, "cell3's host001 in az2 after it joined", map[string]string{host(c3, 1): "az2", host(c3, 2): "az2"})
	// And builds for az2 go there again.
	again := settled(t, tr, bootZone(t, tr, "lonely-again", "az2"))[0]
	if again.VMState != "active" || again.Cell != c3 {
		t.Errorf("az2 build after cell3 returned: %s in %s", again.VMState, again.Cell)
	}
}

// TestAggregateFiltersAcrossCells: a flavor's aggregate_instance_extra_specs
// send its builds to the hosts of the aggregates that match, in whichever
// cells they are; hosts isolated for another project
// (filter_tenant_id) get none of a project's builds.
func TestAggregateFiltersAcrossCells(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 3, HostsPerCell: 2})
	ctx := context.Background()
	admin := tr.Compute("admin:admin")
	c1, c2, c3 := tr.Cells[0].Config().Cell, tr.Cells[1].Config().Cell, tr.Cells[2].Config().Cell
	host := func(cell string, i int) string {
		return fmt.Sprintf("%s@%s-host%03d", cell, cell[strings.LastIndex(cell, "!")+1:], i)
	}
	aggregate := func(name string, md map[string]any, hosts ...string) {
		t.Helper()
		a, err := aggregates.Create(ctx, admin, aggregates.CreateOpts{Name: name}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if _, err := aggregates.AddHost(ctx, admin, a.ID, aggregates.AddHostOpts{Host: h}).Extract(); err != nil {
				t.Fatalf("add %s: %v", h, err)
			}
		}
		if _, err := aggregates.SetMetadata(ctx, admin, a.ID, aggregates.SetMetadataOpts{Metadata: md}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	ssdHosts := []string{host(c2, 2), host(c3, 1)}
	aggregate("ssd", map[string]any{"ssd": "true"}, ssdHosts...)
	aggregate("spinning", map[string]any{"ssd": "false"}, host(c2, 1), host(c3, 2))
	aggregate("q-only", map[string]any{"filter_tenant_id": "q"}, host(c1, 1), host(c1, 2))

	fl, err := flavors.Create(ctx, admin, flavors.CreateOpts{Name: "ssd.tiny", RAM: 512, VCPUs: 1, Disk: gophercloud.IntToPointer(1)}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := flavors.CreateExtraSpecs(ctx, admin, fl.ID, flavors.ExtraSpecsOpts{"aggregate_instance_extra_specs:ssd": "true"}).Extract(); err != nil {
		t.Fatal(err)
	}
	// The cells report the capabilities before the builds come.
	testpoll.Eventually(t, 60*time.Second, "every cell's report names its aggregates", func() (bool, string) {
		ns, err := cells.ListNeighbours(ctx, tr.API.DB)
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, nb := range ns {
			if a := nb.Report; nb.Relation == cells.Child && a != nil && a.Aggregates != nil &&
				(nb.Path == c1) == slices.Contains(a.Aggregates.Projects, "q") &&
				(nb.Path == c1 || slices.Contains(a.Aggregates.Metadata["ssd"], "true")) {
				n++
			}
		}
		return n == 3, fmt.Sprintf("%d cells report their aggregates", n)
	})

	var ssd, plain []string
	for i := range 4 {
		s, err := servers.Create(ctx, tr.Compute(adminP), servers.CreateOpts{Name: fmt.Sprintf("ssd-%d", i), FlavorRef: fl.ID,
			ImageRef: up.DefaultImageID}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		ssd = append(ssd, s.ID)
	}
	for i := range 6 {
		plain = append(plain, bootZone(t, tr, fmt.Sprintf("p-%d", i), ""))
	}
	for _, in := range settled(t, tr, ssd...) {
		if in.VMState != "active" || !slices.Contains(ssdHosts, in.Cell+"@"+in.Host) {
			t.Errorf("%s (ssd flavor): %s on %s@%s (fault %q), want active on one of %v", in.Name, in.VMState, in.Cell, in.Host, in.Fault.Message, ssdHosts)
		}
	}
	for _, in := range settled(t, tr, plain...) {
		if in.VMState != "active" || in.Cell == c1 {
			t.Errorf("%s (project p): %s in %s, want active outside %s, whose hosts are q's only", in.Name, in.VMState, in.Cell, c1)
		}
	}
	// Project q may use them.
	s, err := servers.Create(ctx, tr.Compute("demo:q"), servers.CreateOpts{Name: "q-1", FlavorRef: "1", ImageRef: up.DefaultImageID},
		servers.SchedulerHintOpts{}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if in := settled(t, tr, s.ID)[0]; in.VMState != "active" {
		t.Errorf("project q's server: %s", in.VMState)
	}
}
