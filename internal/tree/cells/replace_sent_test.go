package cells_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// reportingLeaves is the configuration of a test tree whose leaves report
// every 100 ms, and whose root counts a child down after downAfter: a
// live child proves it is alive, a dead one is soon down.
func reportingLeaves(downAfter time.Duration, leaves ...string) map[string]func(*cells.Config) {
	m := map[string]func(*cells.Config){api: func(c *cells.Config) { c.DownAfter = downAfter }}
	for _, l := range leaves {
		m[l] = func(c *cells.Config) { c.ReportInterval = 100 * time.Millisecond }
	}
	return m
}

// outboxRows counts the rows of a cell's outbox for neighbour nb: all, and
// those kept marked sent.
func (c *testCell) outboxRows(nb string) (all, sent int) {
	c.tr.t.Helper()
	err := c.db.QueryRow(context.Background(), `SELECT COUNT(*), COUNT(sent_at) FROM outbox WHERE neighbour = ?`, nb).Scan(&all, &sent)
	if err != nil {
		c.tr.t.Fatal(err)
	}
	return all, sent
}

// buildsPublished counts, from now on, every build_instances published to
// cell p's inbox subject on its broker, duplicates included (a plain
// subscription sees what JetStream's deduplication would drop).
func (tr *tree) buildsPublished(p string) *atomic.Int64 {
	tr.t.Helper()
	var n atomic.Int64
	sub, err := tr.cell(p).conn().Subscribe("cellcloud."+p+".in", func(m *nats.Msg) {
		if env, err := wire.Decode(m.Data); err == nil && env.Method == wire.MethodBuildInstances && m.Header.Get(jetstream.MsgIDHeader) != "" {
			n.Add(1)
		}
	})
	if err != nil {
		tr.t.Fatal(err)
	}
	if err := tr.cell(p).conn().Flush(); err != nil {
		tr.t.Fatal(err)
	}
	tr.t.Cleanup(func() { _ = sub.Unsubscribe() })
	return &n
}

// TestBuildInTheBrokerOfADeadCellIsPlacedElsewhere: a cell whose
// processes died while its broker lives on (an external broker) takes the
// build into its broker, so the build leaves the relay, but nobody
// applies it. The root keeps it in its outbox, marked sent, never
// publishes it again, and once the cell is down and the build is older
// than cells.build_accept_timeout places it elsewhere, fenced. The cases:
//
//   - the receiver is down (its cells service stopped, its broker up):
//     the build is placed on the other cell at the fenced base version;
//   - the message arrives after all (the cell's service returns and
//     consumes its inbox): it applies the old build, at a version below
//     the new placement's, which the API cell's copy fences (apicopy tells
//     it to delete; test/integration covers that part);
//   - sent twice: the relay never publishes a sent build again, however
//     long it waits.
func TestBuildInTheBrokerOfADeadCellIsPlacedElsewhere(t *testing.T) {
	t.Parallel()
	// cell1 has more room, so the root places there first. The root
	// counts a child down 5 s after its last report: long enough to place
	// the build on cell1 after its service stopped.
	tr, log := buildTreeWith(t, map[string]int{cell1: 8, cell2: 2}, reportingLeaves(5*time.Second, cell1, cell2), api, cell1, cell2)
	published := tr.buildsPublished(cell1)

	tr.cell(cell1).stopService()
	uuids := build(t, tr, "s1", 2)
	if ps := log.placements(); len(ps) != 1 || ps[0].Child != cell1 || ps[0].Build.BaseVersion != 0 {
		t.Fatalf("first placement %+v, want on %s at base version 0", ps, cell1)
	}
	// cell1's broker stores it: the root keeps it, marked sent.
	testpoll.Eventually(t, wait, "the build kept, sent, for "+cell1, func() (bool, string) {
		all, sent := tr.cell(api).outboxRows(cell1)
		return all == 1 && sent == 1 && published.Load() == 1, fmt.Sprintf("%d rows, %d sent, %d published", all, sent, published.Load())
	})

	testpoll.Eventually(t, wait, "the build accepted by "+cell2, func() (bool, string) {
		return len(log.acceptedAt(cell2)) > 0, fmt.Sprint(log.placements())
	})
	got := log.acceptedAt(cell2)
	if len(got) != 1 || !slices.Equal(uuidsOf(got[0]), uuids) {
		t.Fatalf("%s accepted %+v, want one build of %v", cell2, got, uuids)
	}
	b := got[0]
	if b.BaseVersion != cells.FenceStep || b.Attempts != 2 || !slices.Equal(b.Tried, []string{cell1}) {
		t.Errorf("the build placed again: base %d attempts %d tried %v; want %d, 2, [%s]", b.BaseVersion, b.Attempts, b.Tried, cells.FenceStep, cell1)
	}
	if ps := log.placements(); len(ps) != 2 || ps[1].Child != cell2 || ps[1].Build.BaseVersion != cells.FenceStep {
		t.Errorf("placements %+v, want a second on %s at base version %d", ps, cell2, cells.FenceStep)
	}
	if all, _ := tr.cell(api).outboxRows(cell1); all != 0 {
		t.Errorf("%d rows still queued for %s", all, cell1)
	}
	if n := published.Load(); n != 1 {
		t.Errorf("the build was published to %s %d times, want once", cell1, n)
	}

	// The cell's service returns and applies the message its broker kept,
	// once, at the version of the first placement, below the fence.
	tr.cell(cell1).startService()
	testpoll.Eventually(t, wait, "the old build applied at "+cell1, func() (bool, string) {
		return len(log.acceptedAt(cell1)) > 0, ""
	})
	tr.delivered(api, cell1, 1)
	// A build is recorded when its transaction has committed, a note
	// while it applies: wait for the record.
	testpoll.Eventually(t, wait, "the late build recorded at "+cell1, func() (bool, string) {
		return len(log.acceptedAt(cell1)) > 0, "none yet"
	})
	late := log.acceptedAt(cell1)
	if len(late) != 1 || late[0].BaseVersion != 0 || !slices.Equal(uuidsOf(late[0]), uuids) {
		t.Errorf("%s accepted %+v, want the first build once, at base version 0", cell1, late)
	}
	if ps := log.placements(); len(ps) != 2 {
		t.Errorf("placements %+v after the cell returned, want still 2", ps)
	}
	if fs := log.failures(); len(fs) != 0 {
		t.Errorf("failures %+v, want none", fs)
	}
	if n := published.Load(); n != 1 {
		t.Errorf("the build was published to %s %d times, want once", cell1, n)
	}
}

// TestSentBuildsOfALiveCellArePruned: the builds a live cell takes are
// kept in the root's outbox only until the cell has reported
// cells.build_accept_timeout after they were sent; then they are deleted,
// never published again and never placed elsewhere, so the outbox does
// not grow. The root's cells service restarting while it keeps them (the
// sender dies halfway) changes nothing: they are pruned after the restart.
func TestSentBuildsOfALiveCellArePruned(t *testing.T) {
	t.Parallel()
	tr, log := buildTreeWith(t, map[string]int{cell1: 8, cell2: 2}, reportingLeaves(time.Hour, cell1, cell2), api, cell1, cell2)
	published := tr.buildsPublished(cell1)
	var all []string
	for i := range 5 {
		all = append(all, build(t, tr, fmt.Sprintf("p%d", i), 1)...)
	}
	testpoll.Eventually(t, wait, "every build accepted by "+cell1, func() (bool, string) {
		return len(log.acceptedAt(cell1)) == len(all), fmt.Sprint(len(log.acceptedAt(cell1)))
	})
	// Each is marked sent (or already pruned) before the restart: a
	// publish acknowledged just as the service stops may be relayed again
	// (JetStream drops the copy), which is not what this test counts.
	testpoll.Eventually(t, wait, "every build marked sent", func() (bool, string) {
		n, sent := tr.cell(api).outboxRows(cell1)
		return n == sent, fmt.Sprintf("%d rows, %d sent", n, sent)
	})
	tr.cell(api).stopService()
	tr.cell(api).startService()
	testpoll.Eventually(t, wait, "the sent builds pruned", func() (bool, string) {
		n, sent := tr.cell(api).outboxRows(cell1)
		return n == 0, fmt.Sprintf("%d rows, %d sent", n, sent)
	})
	var got []string
	for _, b := range log.acceptedAt(cell1) {
		got = append(got, uuidsOf(b)...)
	}
	slices.Sort(got)
	slices.Sort(all)
	if !slices.Equal(got, all) {
		t.Errorf("%s accepted %v, want %v once each", cell1, got, all)
	}
	if n := published.Load(); n != int64(len(all)) {
		t.Errorf("%d builds published to %s, want %d: each once", n, cell1, len(all))
	}
	if ps := log.placements(); len(ps) != len(all) {
		t.Errorf("%d placements, want %d (none placed again)", len(ps), len(all))
	}
	if got := log.acceptedAt(cell2); len(got) != 0 {
		t.Errorf("%s accepted %+v, want nothing", cell2, got)
	}
}

// TestTakenBuildOfACellThatDiedIsNotPlacedAgain: a cell takes a build and
// dies before its reports prove it alive long enough for the root to
// prune the build it keeps. The cell is then down, and the build was sent
// longer ago than cells.build_accept_timeout, but the root's copy shows
// the cell took it (its instances were reported): the root drops the kept
// build and does not place it again, so the server neither moves nor goes
// back to BUILD when the cell returns. (A build the cell had not taken is
// placed elsewhere: TestBuildInTheBrokerOfADeadCellIsPlacedElsewhere.)
func TestTakenBuildOfACellThatDiedIsNotPlacedAgain(t *testing.T) {
	t.Parallel()
	more := reportingLeaves(time.Second, cell1, cell2)
	more[api] = func(c *cells.Config) {
		c.DownAfter = time.Second
		// Long enough that cell1 cannot prove alive before it stops.
		c.BuildAcceptTimeout = 5 * time.Second
	}
	tr, log := buildTreeWith(t, map[string]int{cell1: 8, cell2: 2}, more, api, cell1, cell2)
	uuids := build(t, tr, "t1", 1)
	testpoll.Eventually(t, wait, "the build accepted by "+cell1, func() (bool, string) {
		return len(log.acceptedAt(cell1)) == 1, fmt.Sprint(log.placements())
	})
	tr.cell(cell1).stopService()
	if all, sent := tr.cell(api).outboxRows(cell1); all != 1 || sent != 1 {
		t.Fatalf("the root keeps %d rows (%d sent) for %s, want the build kept, sent", all, sent, cell1)
	}
	testpoll.Eventually(t, wait, "the kept build dropped", func() (bool, string) {
		all, _ := tr.cell(api).outboxRows(cell1)
		return all == 0, fmt.Sprintf("%d rows", all)
	})
	log.mu.Lock()
	taken := log.taken
	log.mu.Unlock()
	if taken != 1 {
		t.Errorf("the root's copy was found to hold the build taken %d times, want once", taken)
	}
	if ps := log.placements(); len(ps) != 1 || ps[0].Child != cell1 || !slices.Equal(uuidsOf(ps[0].Build), uuids) {
		t.Errorf("placements %+v, want only the first, on %s", ps, cell1)
	}
	if got := log.acceptedAt(cell2); len(got) != 0 {
		t.Errorf("%s accepted %+v, want nothing", cell2, got)
	}
	if fs := log.failures(); len(fs) != 0 {
		t.Errorf("failures %+v, want none", fs)
	}
}

// statesUp is a leaf that, as it takes a build, sends its instances'
// states up to the root in the same transaction, as a compute cell does.
type statesUp struct {
	leaf
	svc func() *cells.Service
}

func (a statesUp) AcceptBuild(ctx context.Context, tx *db.Tx, env *wire.Envelope, b *wire.BuildInstances) error {
	if err := a.leaf.AcceptBuild(ctx, tx, env, b); err != nil {
		return err
	}
	u := &wire.InstanceUpdate{}
	for _, in := range b.Instances {
		u.Instances = append(u.Instances, wire.InstanceState{UUID: in.UUID, Cell: a.cell, VMState: "building", Version: b.BaseVersion + 1})
	}
	return a.svc().Send(ctx, tx, api, wire.MethodInstanceUpdate, env.RequestID, u)
}

// TestTakenBuildBelowARoutingCellIsNotPlacedAgain: in a tree of depth 3 a
// compute cell takes a build its routing cell placed there, sends its
// instances' states up through the routing cell, and dies before its
// reports prove it alive long enough for the routing cell to prune the
// build it keeps. The routing cell, which keeps no copy of the instances,
// knows from the states it relayed that the cell took the build: it drops
// the build and does not place it on its other child, so a server that
// may already be ACTIVE neither moves nor is built twice. (A build its
// cell had not taken is placed elsewhere: TestRoutingCellPlacesElsewhereBelow.)
func TestTakenBuildBelowARoutingCellIsNotPlacedAgain(t *testing.T) {
	t.Parallel()
	const cellB = "api!cell1!b"
	more := map[string]func(*cells.Config){
		cell1: func(c *cells.Config) {
			c.DownAfter = time.Second
			// Long enough that cellA cannot prove alive before it stops.
			c.BuildAcceptTimeout = 5 * time.Second
		},
		cellA: func(c *cells.Config) { c.ReportInterval = time.Second },
		cellB: func(c *cells.Config) { c.ReportInterval = time.Second },
	}
	var tr *tree
	accept := map[string]func(leaf) cells.BuildAcceptor{
		cellA: func(l leaf) cells.BuildAcceptor {
			return statesUp{l, func() *cells.Service { return tr.cell(cellA).service() }}
		},
	}
	tr, log := buildTreeAccepting(t, map[string]int{cellA: 8, cellB: 2}, more, accept, api, cell1, cellA, cellB)
	uuids := build(t, tr, "t3", 1)
	testpoll.Eventually(t, wait, "the build accepted by "+cellA, func() (bool, string) {
		return len(log.acceptedAt(cellA)) == 1, fmt.Sprint(log.acceptedAt(cellA))
	})
	// The states went up through cell1: what cellA queued for it is
	// relayed, and cell1 relayed it on.
	testpoll.Eventually(t, wait, "the states relayed up by "+cell1, func() (bool, string) {
		a, _ := tr.cell(cellA).outboxRows(cell1)
		c, _ := tr.cell(cell1).outboxRows(api)
		return a == 0 && c == 0, fmt.Sprintf("%d rows at %s, %d at %s", a, cellA, c, cell1)
	})
	tr.cell(cellA).stopService()
	if all, sent := tr.cell(cell1).outboxRows(cellA); all != 1 || sent != 1 {
		t.Fatalf("%s keeps %d rows (%d sent) for %s, want the build kept, sent", cell1, all, sent, cellA)
	}
	testpoll.Eventually(t, wait, "the kept build dropped", func() (bool, string) {
		all, _ := tr.cell(cell1).outboxRows(cellA)
		return all == 0, fmt.Sprintf("%d rows", all)
	})
	if got := log.acceptedAt(cellB); len(got) != 0 {
		t.Errorf("%s accepted %+v, want nothing", cellB, got)
	}
	if got := log.acceptedAt(cellA); len(got) != 1 || !slices.Equal(uuidsOf(got[0]), uuids) {
		t.Errorf("%s accepted %+v, want the build once", cellA, got)
	}
	if fs := log.failures(); len(fs) != 0 {
		t.Errorf("failures %+v, want none", fs)
	}
}
