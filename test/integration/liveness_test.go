package integration

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// TestCellWhoseBrokerIsDownGetsNoBuilds is issue 17's broker outage: a
// compute cell on an external broker (a nats-server process) has its
// broker stopped while its process lives. Its capacity reports still reach
// the API cell, over the API cell's broker, but say it cannot receive, and
// the API cell cannot reach that broker either: the cell is down at once
// (cells.down_after is a minute here), for the scheduler and for os-cells
// (what `cellcloud status` prints) alike. The cases:
//
//   - the receiver is down: every server created meanwhile goes ACTIVE in
//     the other cell, placed there at once (at its first placement's
//     versions, not moved), though the down cell keeps reporting;
//   - the broker returns: the cell is up again and is chosen again, and
//     the API copy and the cells agree.
//
// Builds a cell's broker took before it stopped, and the cell had not
// applied, are placed elsewhere after cells.build_accept_timeout and
// fenced: internal/tree/cells TestCellWhoseBrokerIsDownTakesNoBuilds. (A
// process cannot be kept from taking one here: frozen, it finds the build
// in its socket when it runs again, and builds it once, as taken.)
func TestCellWhoseBrokerIsDownGetsNoBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	natsServer, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skipf("needs nats-server, for a broker that stops while its cell's process lives: %v", err)
	}
	const cell1, cell2 = "api!cell1", "api!cell2"
	tr := startTree(t, []cellSpec{
		{path: "api", cells: map[string]any{"down_after": "60s", "build_accept_timeout": "2s"}},
		{path: cell1, hosts: 3, parent: "api"},
		// cell2 has more room: the API cell's scheduler prefers it.
		{path: cell2, hosts: 4, parent: "api", natsServer: natsServer},
	})
	ctx := context.Background()
	apiDB := tr.openDB("api")
	tr.waitReady(map[string]int{cell1: 3, cell2: 4})
	demo := tr.client("demo:demo")
	state := func(cell string) string {
		var body struct {
			Cells []struct{ Name, State string } `json:"cells"`
		}
		tr.get(t, "/os-cells", &body)
		for _, c := range body.Cells {
			if c.Name == cell {
				return c.State
			}
		}
		return "absent"
	}
	// down says how the API cell counts cell2: its scheduler's definition
	// over its cells table (cells.DownCells) and os-cells.
	down := func() (bool, string) {
		ds, err := cells.DownCells(ctx, apiDB, time.Now(), time.Minute, time.Now().Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(ds, cell2), state(cell2)
	}

	// The broker stops; the cell's process runs on.
	tr.brokers[cell2].kill()
	testpoll.Eventually(t, 30*time.Second, cell2+" down for the scheduler and in os-cells", func() (bool, string) {
		d, s := down()
		return d && s == "down", fmt.Sprintf("scheduler down %v, os-cells %s", d, s)
	})
	// It still reports, over the API cell's broker, that it cannot
	// receive.
	lastSeen := func() (time.Time, string) {
		ns, err := cells.ListNeighbours(ctx, apiDB)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.Path == cell2 && n.Report != nil {
				return n.LastSeen, n.Report.NotReceiving
			}
		}
		return time.Time{}, ""
	}
	seen, _ := lastSeen()
	testpoll.Eventually(t, 30*time.Second, cell2+" reporting that it cannot receive", func() (bool, string) {
		at, why := lastSeen()
		return at.After(seen) && why != "", fmt.Sprintf("last report %v: %q", at, why)
	})

	var during []string
	for i := range 8 {
		s, err := servers.Create(ctx, demo, servers.CreateOpts{Name: fmt.Sprintf("during-%d", i), FlavorRef: "1", ImageRef: imageID}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		during = append(during, s.ID)
	}
	testpoll.Eventually(t, 90*time.Second, "every server ACTIVE in "+cell1, func() (bool, string) {
		states := map[string]string{}
		n := 0
		for u, a := range apiInstances(t, apiDB) {
			states[u] = fmt.Sprintf("%s %s/%s v%d", a.cell, a.vmState, a.taskState, a.version)
			if a.cell == cell1 && a.vmState == "active" && a.taskState == "" {
				n++
			}
		}
		return n == len(during), fmt.Sprint(states)
	})
	for _, u := range during {
		if a := apiInstances(t, apiDB)[u]; a.version > cells.FenceStep {
			t.Errorf("server %s was placed on %s first and moved (version %d)", u, cell2, a.version)
		}
	}
	if d, s := down(); !d || s != "down" {
		t.Errorf("%s while its broker is down: scheduler down %v, os-cells %s", cell2, d, s)
	}

	// The broker returns.
	tr.brokers[cell2].start()
	testpoll.Eventually(t, 60*time.Second, cell2+" up for the scheduler and in os-cells", func() (bool, string) {
		d, s := down()
		return !d && s == "up", fmt.Sprintf("scheduler down %v, os-cells %s", d, s)
	})
	cell1DB, cell2DB := tr.openDB(cell1), tr.openDB(cell2)

	// It is chosen again.
	after, err := servers.Create(ctx, demo, servers.CreateOpts{Name: "after", FlavorRef: "1", ImageRef: imageID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 60*time.Second, "the server after ACTIVE in "+cell2, func() (bool, string) {
		a := apiInstances(t, apiDB)[after.ID]
		return a.cell == cell2 && a.vmState == "active" && a.taskState == "", fmt.Sprintf("%+v", a)
	})
	testpoll.Eventually(t, 30*time.Second, "the API copy and the cells to agree", func() (bool, string) {
		d := converged(t, apiInstances(t, apiDB), map[string]map[string]cellInstance{cell1: cellInstances(t, cell1, cell1DB), cell2: cellInstances(t, cell2, cell2DB)})
		return d == "", d
	})
	checkClaims(t, cell1, cell1DB)
}
