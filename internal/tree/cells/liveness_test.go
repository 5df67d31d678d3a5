package cells_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// gatedLeaf takes builds only while open; closed, it fails them with a
// retryable error, so that a build stays in the cell's inbox stream,
// delivered again later, as one the cell has not got to yet.
type gatedLeaf struct {
	leaf
	open *atomic.Bool
}

func (g gatedLeaf) AcceptBuild(ctx context.Context, tx *db.Tx, env *wire.Envelope, b *wire.BuildInstances) error {
	if !g.open.Load() {
		return errors.New("test: not taking builds yet")
	}
	return g.leaf.AcceptBuild(ctx, tx, env, b)
}

// stopOnlyBroker stops the cell's broker and leaves its service and its
// connection (which keeps trying to reconnect) as they are: the cell's
// broker is down, its process lives.
func (c *testCell) stopOnlyBroker() {
	c.mu.Lock()
	b := c.broker
	c.broker = nil
	c.mu.Unlock()
	b.Shutdown()
}

// startOnlyBroker starts the cell's broker again, on its port and store:
// the connections to it reconnect.
func (c *testCell) startOnlyBroker() {
	c.tr.t.Helper()
	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: c.path, Listen: c.listen, StoreDir: c.storeDir})
	if err != nil {
		c.tr.t.Fatalf("%s: start broker: %v", c.path, err)
	}
	c.mu.Lock()
	c.broker = b
	c.mu.Unlock()
}

// childAt returns child p as cell at's service sees it now.
func childAt(t *testing.T, tr *tree, at, p string) cells.Neighbour {
	t.Helper()
	for _, n := range tr.cell(at).service().Neighbours() {
		if n.Path == p {
			return n
		}
	}
	t.Fatalf("%s has no neighbour %s", at, p)
	return cells.Neighbour{}
}

// downAt says whether cell at counts child p down, for its scheduler (its
// service's view) and for the operator views (cells.DownCells over its
// cells table, what os-cells, cellcloud status, os-services and
// os-hypervisors read), and why.
func downAt(t *testing.T, tr *tree, at, p string) (scheduler, operator bool, why string) {
	t.Helper()
	c := tr.cell(at)
	n := childAt(t, tr, at, p)
	// The root counts a silent child down only after an hour: what is
	// down here is down because it cannot receive.
	down, err := cells.DownCells(context.Background(), c.db, time.Now(), time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c.service().Down(n), slices.Contains(down, p), cells.NotReceiving(n)
}

// TestCellWhoseBrokerIsDownTakesNoBuilds: a child cell whose own broker is
// down still reports to its parent, over the parent's broker, but says it
// cannot receive, and the parent, which cannot reach that broker either,
// counts it down at once (not after cells.down_after, an hour here): its
// scheduler and its operator views alike. The cases:
//
//   - the receiver is down (cell1's broker stopped, its process alive):
//     every new build goes to cell2; a build cell1's broker took before
//     and cell1 had not applied is placed on cell2 after
//     cells.build_accept_timeout, fenced, and is accepted there once;
//   - the message arrives after all (the broker returns with the old
//     build in its stream): cell1 applies it once, at the first
//     placement's base version, below the fence, so the API cell's copy
//     keeps cell2's instance and tells cell1 to delete its own (apicopy;
//     the copy's side is in replace_sent_test.go and test/integration);
//   - reports arrive twice (every 100 ms, saying the same): nothing
//     changes, the cell stays down until a report says it can receive;
//   - the sender dies halfway (the root's service stops and starts again
//     while cell1's broker is down): its cells table says cell1 is down
//     meanwhile, the new service finds it down at once, and the next
//     build goes to cell2;
//   - the broker returns: the cell says it can receive, the parent
//     reaches it, and it is chosen again.
func TestCellWhoseBrokerIsDownTakesNoBuilds(t *testing.T) {
	t.Parallel()
	var open atomic.Bool
	more := reportingLeaves(time.Hour, cell1, cell2)
	more[api] = func(c *cells.Config) {
		c.DownAfter = time.Hour
		// Long enough that cell1, alive and reporting, does not prove it
		// took the first build (sweepSent) before its broker stops.
		c.BuildAcceptTimeout = 3 * time.Second
	}
	accept := map[string]func(leaf) cells.BuildAcceptor{cell1: func(l leaf) cells.BuildAcceptor { return gatedLeaf{l, &open} }}
	tr, log := buildTreeAccepting(t, map[string]int{cell1: 8, cell2: 2}, more, accept, api, cell1, cell2)
	published := tr.buildsPublished(cell1)

	// A build cell1's broker takes and cell1 has not applied when the
	// broker stops.
	before := build(t, tr, "before", 2)
	testpoll.Eventually(t, wait, "the first build kept, sent, for "+cell1, func() (bool, string) {
		all, sent := tr.cell(api).outboxRows(cell1)
		return all == 1 && sent == 1, fmt.Sprintf("%d rows, %d sent", all, sent)
	})
	if ps := log.placements(); len(ps) != 1 || ps[0].Child != cell1 {
		t.Fatalf("placements %+v, want the first on %s", ps, cell1)
	}

	tr.cell(cell1).stopOnlyBroker()
	testpoll.Eventually(t, wait, cell1+" down at the root", func() (bool, string) {
		sched, op, why := downAt(t, tr, api, cell1)
		return sched && op, fmt.Sprintf("scheduler %v, operator views %v (%s)", sched, op, why)
	})
	// It still reports, over the root's broker, saying it cannot receive.
	seen := childAt(t, tr, api, cell1).LastSeen
	testpoll.Eventually(t, wait, cell1+"'s reports, saying it cannot receive", func() (bool, string) {
		n := childAt(t, tr, api, cell1)
		return n.LastSeen.After(seen) && n.Report != nil && n.Report.NotReceiving != "", fmt.Sprintf("%+v", n.Report)
	})

	// Every build made while it cannot receive goes to cell2.
	var during [][]string
	for i := range 4 {
		during = append(during, build(t, tr, fmt.Sprintf("during%d", i), 1))
	}
	// And the first build, once it has waited build_accept_timeout.
	testpoll.Eventually(t, wait, "every build accepted by "+cell2, func() (bool, string) {
		return len(log.acceptedAt(cell2)) == len(during)+1, fmt.Sprint(len(log.acceptedAt(cell2)))
	})
	for _, p := range log.placements()[1:] {
		if p.Child != cell2 {
			t.Errorf("a build placed on %s while it could not receive: %+v", p.Child, p.Build)
		}
	}
	var moved []wire.BuildInstances
	count := map[string]int{}
	for _, b := range log.acceptedAt(cell2) {
		for _, u := range uuidsOf(b) {
			count[u]++
		}
		if strings.HasPrefix(b.Instances[0].UUID, "before") {
			moved = append(moved, b)
		}
	}
	if len(moved) != 1 || !slices.Equal(uuidsOf(moved[0]), before) || moved[0].BaseVersion != cells.FenceStep || !slices.Equal(moved[0].Tried, []string{cell1}) {
		t.Errorf("%s took the first build as %+v; want it once, at base version %d, %s tried", cell2, moved, cells.FenceStep, cell1)
	}
	for _, u := range append(slices.Concat(during...), before...) {
		if count[u] != 1 {
			t.Errorf("%s accepted %s %d times, want once", cell2, u, count[u])
		}
	}
	if n := published.Load(); n != 1 {
		t.Errorf("%d builds published to %s, want only the first", n, cell1)
	}
	if got := log.acceptedAt(cell1); len(got) != 0 {
		t.Errorf("%s accepted %+v while its broker was down", cell1, got)
	}

	// The root's service dies and starts again while cell1's broker is
	// down: the cells table still says cell1 is down, and the new service
	// finds it so at once (its new connection to that broker is down).
	tr.cell(api).stopService()
	if down, err := cells.DownCells(context.Background(), tr.cell(api).db, time.Now(), time.Hour, time.Now()); err != nil || !slices.Contains(down, cell1) {
		t.Errorf("down cells %v (%v) while the root's service is stopped, want %s among them", down, err, cell1)
	}
	tr.cell(api).startService()
	testpoll.Eventually(t, wait, cell1+" down at the restarted root", func() (bool, string) {
		sched, op, why := downAt(t, tr, api, cell1)
		return sched && op, fmt.Sprintf("scheduler %v, operator views %v (%s)", sched, op, why)
	})
	during = append(during, build(t, tr, "restarted", 1))
	testpoll.Eventually(t, wait, "the build after the root's restart accepted by "+cell2, func() (bool, string) {
		return len(log.acceptedAt(cell2)) == len(during)+1, fmt.Sprint(len(log.acceptedAt(cell2)))
	})
	if ps := log.placements(); ps[len(ps)-1].Child != cell2 {
		t.Errorf("the build after the root's restart placed on %s", ps[len(ps)-1].Child)
	}

	// The broker returns: cell1 can receive and is up again.
	open.Store(true)
	tr.cell(cell1).startOnlyBroker()
	testpoll.Eventually(t, wait, cell1+" up at the root", func() (bool, string) {
		sched, op, why := downAt(t, tr, api, cell1)
		return !sched && !op, fmt.Sprintf("scheduler %v, operator views %v (%s)", sched, op, why)
	})
	// The old build its broker kept arrives after all, once, below the
	// fence.
	testpoll.Eventually(t, wait, "the old build applied at "+cell1, func() (bool, string) {
		return len(log.acceptedAt(cell1)) > 0, ""
	})
	if late := log.acceptedAt(cell1); len(late) != 1 || late[0].BaseVersion != 0 || !slices.Equal(uuidsOf(late[0]), before) {
		t.Errorf("%s accepted %+v, want the first build once, at base version 0", cell1, late)
	}

	// It is chosen again.
	after := build(t, tr, "after", 1)
	testpoll.Eventually(t, wait, "the build after accepted by "+cell1, func() (bool, string) {
		for _, b := range log.acceptedAt(cell1) {
			if slices.Equal(uuidsOf(b), after) {
				return true, ""
			}
		}
		return false, fmt.Sprint(log.placements())
	})
	if fs := log.failures(); len(fs) != 0 {
		t.Errorf("failures %+v, want none", fs)
	}
}

// TestChildWhoseInboxTheParentCannotReachIsDown: the parent sees for
// itself whether it can reach a child's inbox, whatever the child
// reports. The root's cells table sends cell1's messages to a broker
// where cell1's inbox stream does not exist (as if the stream were lost),
// while cell1, alive, keeps reporting that it can receive. The cases:
//
//   - the receiver cannot take the message (no stream: no JetStream
//     responders): the first build fails to publish, cell1 is down at once
//     for the scheduler and the operator views, though its reports keep
//     coming, and the build is placed on cell2 after
//     cells.build_accept_timeout, fenced; the next build goes to cell2;
//   - the stream returns: the root probes it (a publish the stream
//     refuses, storing nothing), cell1 is up again and nothing was stored;
//   - the broker goes (the root's connection to it is down): cell1 is
//     down again at once.
func TestChildWhoseInboxTheParentCannotReachIsDown(t *testing.T) {
	t.Parallel()
	more := reportingLeaves(time.Hour, cell1, cell2)
	tr, log := buildTreeWith(t, map[string]int{cell1: 8, cell2: 2}, more, api, cell1, cell2)

	decoy, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "decoy", Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "decoy")})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			decoy.Shutdown()
		}
	})
	ctx := context.Background()
	root := tr.cell(api)
	if err := cells.AddNeighbour(ctx, root.db, api, cells.Neighbour{Path: cell1, Relation: cells.Child, BrokerURL: decoy.URL(), WeightScale: 1}); err != nil {
		t.Fatal(err)
	}
	if err := root.service().RefreshNeighbours(ctx); err != nil {
		t.Fatal(err)
	}
	if sched, op, why := downAt(t, tr, api, cell1); sched || op {
		t.Fatalf("%s down before anything failed: scheduler %v, operator %v (%s)", cell1, sched, op, why)
	}

	first := build(t, tr, "first", 1)
	testpoll.Eventually(t, wait, cell1+" down at the root", func() (bool, string) {
		sched, op, why := downAt(t, tr, api, cell1)
		return sched && op && strings.Contains(why, "inbox stream"), fmt.Sprintf("scheduler %v, operator views %v (%s)", sched, op, why)
	})
	seen := childAt(t, tr, api, cell1).LastSeen
	testpoll.Eventually(t, wait, cell1+"'s reports, saying it can receive", func() (bool, string) {
		n := childAt(t, tr, api, cell1)
		return n.LastSeen.After(seen) && n.Report != nil && n.Report.NotReceiving == "", fmt.Sprintf("%+v", n.Report)
	})
	if sched, op, _ := downAt(t, tr, api, cell1); !sched || !op {
		t.Errorf("%s up again on its own report: scheduler down %v, operator views down %v", cell1, sched, op)
	}
	testpoll.Eventually(t, wait, "the first build accepted by "+cell2, func() (bool, string) {
		return len(log.acceptedAt(cell2)) == 1, fmt.Sprint(log.placements())
	})
	if b := log.acceptedAt(cell2)[0]; !slices.Equal(uuidsOf(b), first) || b.BaseVersion != cells.FenceStep {
		t.Errorf("%s accepted %+v, want the first build at base version %d", cell2, b, cells.FenceStep)
	}
	next := build(t, tr, "next", 1)
	testpoll.Eventually(t, wait, "the next build accepted by "+cell2, func() (bool, string) {
		return len(log.acceptedAt(cell2)) == 2, fmt.Sprint(log.placements())
	})
	if ps := log.placements(); len(ps) != 3 || ps[2].Child != cell2 || !slices.Equal(uuidsOf(ps[2].Build), next) || ps[2].Build.Attempts != 1 {
		t.Errorf("placements %+v, want the next build on %s at its first attempt", ps, cell2)
	}

	// The stream returns on the broker the root reaches.
	nc, err := broker.Connect(ctx, decoy.URL(), "test decoy", tr.logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "CELLIN_api_cell1", Subjects: []string{"cellcloud." + cell1 + ".in"}, Retention: jetstream.WorkQueuePolicy})
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, cell1+" up at the root", func() (bool, string) {
		sched, op, why := downAt(t, tr, api, cell1)
		return !sched && !op, fmt.Sprintf("scheduler %v, operator views %v (%s)", sched, op, why)
	})
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("the probes stored %d messages in %s's inbox, want none", info.State.Msgs, cell1)
	}

	decoy.Shutdown()
	stopped = true
	testpoll.Eventually(t, wait, cell1+" down at the root", func() (bool, string) {
		sched, op, why := downAt(t, tr, api, cell1)
		return sched && op && strings.Contains(why, "connection"), fmt.Sprintf("scheduler %v, operator views %v (%s)", sched, op, why)
	})
}
