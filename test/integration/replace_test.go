package integration

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestBuildSentToADeadCellIsPlacedElsewhere freezes a compute cell's
// process (SIGSTOP: its embedded broker answers nothing, its connections
// stay open) and at once creates servers. The API cell, still connected
// to the cell's broker, does not count the cell down for a minute
// (cells.down_after) until a publish to it fails, so the builds go to it,
// the best ranked, and wait in the API cell's outbox: the receiver is down.
// (A cell whose process and broker die is down at once, as its parent's
// connection drops, and gets no builds: internal/tree/cells
// liveness_test.go.) The frozen process is killed before it returns.
// Within cells.build_accept_timeout (2s, after the unacknowledged publish
// has timed out) they
// are placed on the other cell and go ACTIVE there; a build that may go
// nowhere else (the admin's target_cell) goes to ERROR with "No valid host".
// The dead cell returns and builds nothing. Then the first build message
// is delivered to it after all, twice (as when the API cell's relay
// published it just before the build moved and relayed it again): the
// cell applies it once and builds the servers, its updates lose to the
// API cell's fenced record, the API cell tells it to delete them, and it
// does, freeing their addresses and claims; the API copy still shows them
// ACTIVE in the other cell. The sender dies halfway: the API cell's process
// is killed while the builds wait, and they move once after it restarts
// (TestBuildNotTakenInTimeIsPlacedElsewhere in internal/tree/cells checks
// that without a race with the timeout).
func TestBuildSentToADeadCellIsPlacedElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	const cell1, cell2 = "api!cell1", "api!cell2"
	tr := startTree(t, []cellSpec{
		{path: "api", cells: map[string]any{"down_after": "60s", "build_accept_timeout": "2s"}},
		// cell2 has more room: the API cell's scheduler prefers it.
		{path: cell1, hosts: 1, parent: "api"},
		{path: cell2, hosts: 4, parent: "api"},
	})
	ctx := context.Background()
	apiDB := tr.openDB("api")
	tr.waitReady(map[string]int{cell1: 1, cell2: 4})
	demo := tr.client("demo:demo")
	admin := tr.client("admin:admin")

	tr.procs[cell2].freeze()
	if _, err := servers.Create(ctx, demo, servers.CreateOpts{Name: "moved", FlavorRef: "1", ImageRef: imageID, Min: 2, Max: 2}, nil).Extract(); err != nil {
		t.Fatal(err)
	}
	pinned, err := servers.Create(ctx, admin, schedulerHints{servers.CreateOpts{Name: "pinned", FlavorRef: "1", ImageRef: imageID},
		map[string]any{"target_cell": cell2}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	// The builds wait for the dead cell: keep the servers' one to
	// deliver it late.
	var stuck *wire.Envelope
	testpoll.Eventually(t, 30*time.Second, "the builds queued for "+cell2, func() (bool, string) {
		es, err := outbox.Pending(ctx, apiDB, cell2, 100)
		if err != nil {
			return false, err.Error()
		}
		for _, e := range es {
			if e.Method == wire.MethodBuildInstances && strings.Contains(string(e.Body), `"moved-1"`) {
				if stuck, err = wire.Decode(e.Body); err != nil {
					t.Fatal(err)
				}
			}
		}
		return stuck != nil, fmt.Sprintf("%d messages queued", len(es))
	})
	// The sender dies halfway: the API cell's process is killed while the
	// builds wait (most likely before they move; if not, after) and starts
	// again. Each build moves once.
	tr.procs["api"].kill()
	tr.procs["api"].start()
	tr.waitReady(map[string]int{cell1: 1, cell2: 4})

	var moved []string
	testpoll.Eventually(t, 60*time.Second, "the servers ACTIVE in "+cell1+" and the pinned one in ERROR", func() (bool, string) {
		moved = moved[:0]
		states := map[string]string{}
		for u, a := range apiInstances(t, apiDB) {
			states[u] = fmt.Sprintf("%s %s/%s v%d", a.cell, a.vmState, a.taskState, a.version)
			if u != pinned.ID && a.cell == cell1 && a.vmState == "active" && a.taskState == "" && a.version > cells.FenceStep {
				moved = append(moved, u)
			}
		}
		pin := apiInstances(t, apiDB)[pinned.ID]
		return len(moved) == 2 && pin.vmState == "error" && pin.cell == "", fmt.Sprint(states)
	})
	var fault struct {
		Server struct {
			Fault struct{ Message string } `json:"fault"`
		} `json:"server"`
	}
	tr.get(t, "/servers/"+pinned.ID, &fault)
	if !strings.HasPrefix(fault.Server.Fault.Message, cells.NoValidCellReason) {
		t.Errorf("the pinned server's fault %q, want %q", fault.Server.Fault.Message, cells.NoValidCellReason)
	}
	before := apiInstances(t, apiDB)
	if es, _ := outbox.Pending(ctx, apiDB, cell2, 100); slices.ContainsFunc(es, func(e outbox.Entry) bool { return e.Method == wire.MethodBuildInstances }) {
		t.Errorf("builds still queued for %s after they moved", cell2)
	}

	// The dead cell returns and builds nothing.
	tr.procs[cell2].kill()
	killedAt := time.Now()
	tr.procs[cell2].start()
	testpoll.Eventually(t, 60*time.Second, cell2+" reporting again", func() (bool, string) {
		ns, err := cells.ListNeighbours(ctx, apiDB)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range ns {
			if n.Path == cell2 {
				return n.LastSeen.After(killedAt), n.LastSeen.String()
			}
		}
		return false, "not in the cells table"
	})
	cell1DB, cell2DB := tr.openDB(cell1), tr.openDB(cell2)
	truth := func() map[string]map[string]cellInstance {
		return map[string]map[string]cellInstance{cell1: cellInstances(t, cell1, cell1DB), cell2: cellInstances(t, cell2, cell2DB)}
	}
	if got := cellInstances(t, cell2, cell2DB); len(got) != 0 {
		t.Errorf("%s holds %v after it returned, want nothing", cell2, got)
	}

	// The first build message delivered after all, twice.
	for range 2 {
		if err := apiDB.InTx(ctx, func(tx *db.Tx) error { return outbox.Enqueue(ctx, tx, cell2, stuck) }); err != nil {
			t.Fatal(err)
		}
	}
	testpoll.Eventually(t, 60*time.Second, cell2+" to build the late servers and delete them", func() (bool, string) {
		got := cellInstances(t, cell2, cell2DB)
		if len(got) != 2 {
			return false, fmt.Sprintf("%s holds %v", cell2, got)
		}
		for u, in := range got {
			if !slices.Contains(moved, u) || !in.deleted {
				return false, fmt.Sprintf("%s holds %s as %+v", cell2, u, in)
			}
		}
		return true, ""
	})
	// The copy of every server a cell holds (not the pinned one, which no
	// cell holds) agrees with that cell.
	testpoll.Eventually(t, 30*time.Second, "the API copy and the cells to agree", func() (bool, string) {
		api := apiInstances(t, apiDB)
		delete(api, pinned.ID)
		d := converged(t, api, truth())
		return d == "", d
	})
	fencedOut(t, apiDB, before, moved, "late", cell2, cell2DB)
	checkClaims(t, cell1, cell1DB)
}

// TestRoutingCellPlacesElsewhereWhenItsChildDies: in a tree of depth 3 a
// compute cell below a routing cell (which has a host of its own) is
// frozen (SIGSTOP, as in TestBuildSentToADeadCellIsPlacedElsewhere: a
// publish to it fails before anyone counts it down, then it is killed),
// and servers are created at once. The API cell places them on
// the routing cell, its only child, which places them on the dead cell
// (the one with the most room: it does not count it down for a minute).
// Within cells.build_accept_timeout the routing cell places them on its
// own host or its other child, where they go ACTIVE, at versions fenced
// above anything the dead cell could use; the API cell places nothing
// again. The dead cell returns and builds nothing.
func TestRoutingCellPlacesElsewhereWhenItsChildDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	const mid, dead, other = "api!mid", "api!mid!a", "api!mid!b"
	fast := map[string]any{"down_after": "60s", "build_accept_timeout": "2s"}
	tr := startTree(t, []cellSpec{
		{path: "api", cells: fast},
		{path: mid, hosts: 1, parent: "api", cells: fast},
		{path: dead, hosts: 4, parent: mid},
		{path: other, hosts: 1, parent: mid},
	})
	ctx := context.Background()
	apiDB := tr.openDB("api")
	tr.waitReady(map[string]int{mid: 6})
	tr.procs[dead].freeze()
	if _, err := servers.Create(ctx, tr.client("demo:demo"), servers.CreateOpts{Name: "deep", FlavorRef: "1", ImageRef: imageID, Min: 2, Max: 2}, nil).Extract(); err != nil {
		t.Fatal(err)
	}
	midDB := tr.openDB(mid)
	testpoll.Eventually(t, 30*time.Second, "the build queued at "+mid+" for "+dead, func() (bool, string) {
		es, err := outbox.Pending(ctx, midDB, dead, 100)
		if err != nil {
			return false, err.Error()
		}
		return slices.ContainsFunc(es, func(e outbox.Entry) bool { return e.Method == wire.MethodBuildInstances }), fmt.Sprint(len(es))
	})
	testpoll.Eventually(t, 60*time.Second, "the servers ACTIVE below "+mid+", not in "+dead, func() (bool, string) {
		n := 0
		states := map[string]string{}
		for u, a := range apiInstances(t, apiDB) {
			states[u] = fmt.Sprintf("%s %s/%s v%d", a.cell, a.vmState, a.taskState, a.version)
			if (a.cell == mid || a.cell == other) && a.vmState == "active" && a.taskState == "" && a.version > cells.FenceStep {
				n++
			}
		}
		return n == 2, fmt.Sprint(states)
	})
	tr.procs[dead].kill()
	killedAt := time.Now()
	tr.procs[dead].start()
	testpoll.Eventually(t, 60*time.Second, dead+" reporting again", func() (bool, string) {
		ns, err := cells.ListNeighbours(ctx, midDB)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range ns {
			if n.Path == dead {
				return n.LastSeen.After(killedAt), n.LastSeen.String()
			}
		}
		return false, "not in the cells table"
	})
	cellDBs := map[string]*db.DB{mid: midDB, dead: tr.openDB(dead), other: tr.openDB(other)}
	if got := cellInstances(t, dead, cellDBs[dead]); len(got) != 0 {
		t.Errorf("%s holds %v after it returned, want nothing", dead, got)
	}
	truth := map[string]map[string]cellInstance{}
	for c, d := range cellDBs {
		truth[c] = cellInstances(t, c, d)
	}
	if d := converged(t, apiInstances(t, apiDB), truth); d != "" {
		t.Error(d)
	}
}

// TestBuildInTheExternalBrokerOfADeadCellIsPlacedElsewhere: a compute
// cell on an external broker (a nats-server process of its own) has its
// process killed, its broker left running, and servers are created at
// once. The API cell's relay publishes the builds into that broker, which
// stores them, but nobody applies them. The API cell keeps them in its
// outbox, marked sent, and never publishes them again; once the cell
// counts as down (cells.down_after) and the builds are older than
// cells.build_accept_timeout, it places them on the other cell, where
// they go ACTIVE at fenced versions. The dead cell returns and consumes
// the old message from its broker: it builds the servers, its updates
// lose to the API cell's fenced record, the API cell tells it to delete
// them, and it does: nothing of them is live there, and the API copy still
// shows them ACTIVE in the other cell.
func TestBuildInTheExternalBrokerOfADeadCellIsPlacedElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	natsServer, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skipf("needs nats-server, for a broker that outlives its cell's process: %v", err)
	}
	const cell1, cell2 = "api!cell1", "api!cell2"
	tr := startTree(t, []cellSpec{
		// Down 8 s after its last report (every 500 ms): long enough to
		// place the builds on the killed cell.
		{path: "api", cells: map[string]any{"down_after": "8s", "build_accept_timeout": "2s"}},
		// cell2 has more room: the API cell's scheduler prefers it.
		{path: cell1, hosts: 1, parent: "api"},
		{path: cell2, hosts: 4, parent: "api", natsServer: natsServer},
	})
	ctx := context.Background()
	apiDB := tr.openDB("api")
	tr.waitReady(map[string]int{cell1: 1, cell2: 4})
	demo := tr.client("demo:demo")

	tr.procs[cell2].kill()
	if _, err := servers.Create(ctx, demo, servers.CreateOpts{Name: "kept", FlavorRef: "1", ImageRef: imageID, Min: 2, Max: 2}, nil).Extract(); err != nil {
		t.Fatal(err)
	}
	// cell2's broker stores the build: the API cell keeps it, sent.
	testpoll.Eventually(t, 30*time.Second, "the build kept, sent, for "+cell2, func() (bool, string) {
		var all, sent int
		if err := apiDB.QueryRow(ctx, `SELECT COUNT(*), COUNT(sent_at) FROM outbox WHERE neighbour = ? AND method = ?`,
			cell2, wire.MethodBuildInstances).Scan(&all, &sent); err != nil {
			return false, err.Error()
		}
		return all == 1 && sent == 1, fmt.Sprintf("%d builds queued, %d sent", all, sent)
	})

	var moved []string
	testpoll.Eventually(t, 60*time.Second, "the servers ACTIVE in "+cell1, func() (bool, string) {
		moved = moved[:0]
		states := map[string]string{}
		for u, a := range apiInstances(t, apiDB) {
			states[u] = fmt.Sprintf("%s %s/%s v%d", a.cell, a.vmState, a.taskState, a.version)
			if a.cell == cell1 && a.vmState == "active" && a.taskState == "" && a.version > cells.FenceStep {
				moved = append(moved, u)
			}
		}
		return len(moved) == 2, fmt.Sprint(states)
	})
	var left int
	if err := apiDB.QueryRow(ctx, `SELECT COUNT(*) FROM outbox WHERE neighbour = ? AND method = ?`, cell2, wire.MethodBuildInstances).Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d builds still in the outbox for %s after they moved", left, cell2)
	}
	before := apiInstances(t, apiDB)

	// The dead cell returns, applies the build its broker kept, and is
	// told to delete what it built.
	tr.procs[cell2].start()
	cell1DB, cell2DB := tr.openDB(cell1), tr.openDB(cell2)
	testpoll.Eventually(t, 60*time.Second, cell2+" to build the old servers and delete them", func() (bool, string) {
		got := cellInstances(t, cell2, cell2DB)
		if len(got) != 2 {
			return false, fmt.Sprintf("%s holds %v", cell2, got)
		}
		for u, in := range got {
			if !slices.Contains(moved, u) || !in.deleted {
				return false, fmt.Sprintf("%s holds %s as %+v", cell2, u, in)
			}
		}
		return true, ""
	})
	truth := func() map[string]map[string]cellInstance {
		return map[string]map[string]cellInstance{cell1: cellInstances(t, cell1, cell1DB), cell2: cellInstances(t, cell2, cell2DB)}
	}
	testpoll.Eventually(t, 30*time.Second, "the API copy and the cells to agree", func() (bool, string) {
		d := converged(t, apiInstances(t, apiDB), truth())
		return d == "", d
	})
	fencedOut(t, apiDB, before, moved, "old", cell2, cell2DB)
	checkClaims(t, cell1, cell1DB)
}

// fencedOut checks the end of a build the stale cell built after all: the
// API copy of the moved servers is as it was before (what of them was
// built there lost), and the stale cell holds no claim and no address.
func fencedOut(t *testing.T, apiDB *db.DB, before map[string]apiInstance, moved []string, what, stale string, staleDB *db.DB) {
	t.Helper()
	after := apiInstances(t, apiDB)
	for _, u := range moved {
		if after[u] != before[u] {
			t.Errorf("server %s: API copy %+v after the %s build, want it as before, %+v", u, after[u], what, before[u])
		}
	}
	ctx := context.Background()
	var claims, addrs int
	if err := staleDB.QueryRow(ctx, `SELECT COUNT(*) FROM claims`).Scan(&claims); err != nil {
		t.Fatal(err)
	}
	if err := staleDB.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips WHERE instance_uuid IS NOT NULL`).Scan(&addrs); err != nil {
		t.Fatal(err)
	}
	if claims != 0 || addrs != 0 {
		t.Errorf("%s holds %d claims and %d addresses after deleting the %s servers, want none", stale, claims, addrs, what)
	}
}
