package cells_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The builds of a test tree: what each leaf accepted, what the root
// recorded as placed and as failed, each once its transaction committed.
type buildLog struct {
	mu       sync.Mutex
	accepted map[string][]wire.BuildInstances // by cell
	placed   []placement
	failed   []failedBuild
	// takenAsked and taken count the root's Taken calls and its yeses.
	takenAsked, taken int
}

type placement struct {
	Child string
	Build wire.BuildInstances
}

type failedBuild struct {
	Reason string
	Build  wire.BuildInstances
}

func (l *buildLog) acceptedAt(cell string) []wire.BuildInstances {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.accepted[cell])
}

func (l *buildLog) placements() []placement {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.placed)
}

func (l *buildLog) failures() []failedBuild {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.failed)
}

// leaf takes builds for a cell with hosts.
type leaf struct {
	cell string
	log  *buildLog
}

func (a leaf) AcceptBuild(_ context.Context, tx *db.Tx, _ *wire.Envelope, b *wire.BuildInstances) error {
	cp := *b
	tx.AfterCommit(func() {
		a.log.mu.Lock()
		a.log.accepted[a.cell] = append(a.log.accepted[a.cell], cp)
		a.log.mu.Unlock()
	})
	return nil
}

// root records placements and failures as the API cell does.
type root struct{ log *buildLog }

func (r root) Placed(_ context.Context, tx *db.Tx, child, _ string, b *wire.BuildInstances) error {
	cp := *b
	tx.AfterCommit(func() {
		r.log.mu.Lock()
		r.log.placed = append(r.log.placed, placement{child, cp})
		r.log.mu.Unlock()
	})
	return nil
}

// Taken: a leaf in child's subtree accepted one of b's instances (the
// API cell knows it from the states they send up), at a base version of
// b's or above.
func (r root) Taken(_ context.Context, _ *db.Tx, child string, b *wire.BuildInstances) (bool, error) {
	r.log.mu.Lock()
	defer r.log.mu.Unlock()
	r.log.takenAsked++
	for cell, bs := range r.log.accepted {
		if cell != child && !strings.HasPrefix(cell, child+"!") {
			continue
		}
		for _, a := range bs {
			if a.BaseVersion >= b.BaseVersion && slices.ContainsFunc(a.Instances, func(in wire.InstanceSpec) bool {
				return slices.ContainsFunc(b.Instances, func(x wire.InstanceSpec) bool { return x.UUID == in.UUID })
			}) {
				r.log.taken++
				return true, nil
			}
		}
	}
	return false, nil
}

func (r root) BuildError(_ context.Context, tx *db.Tx, b *wire.BuildInstances, reason string) error {
	cp := *b
	tx.AfterCommit(func() {
		r.log.mu.Lock()
		r.log.failed = append(r.log.failed, failedBuild{reason, cp})
		r.log.mu.Unlock()
	})
	return nil
}

// hosts is the capacity of n hosts of 16 cores, 32 GiB and 1 TB.
type hosts int

func (h hosts) Capacity(context.Context, cells.Querier) (capacity.Report, error) {
	n := int(h)
	return capacity.Report{Hosts: n, TotalVCPUs: 16 * n, FreeVCPUs: 16 * n, TotalRAMMB: 32768 * int64(n), FreeRAMMB: 32768 * int64(n),
		TotalDiskGB: 1000 * int64(n), FreeDiskGB: 1000 * int64(n), Slots: []capacity.Slot{{VCPUs: 16, RAMMB: 32768, DiskGB: 1000, Count: n}}}, nil
}

// acceptTimeout is the tests' cells.build_accept_timeout.
const acceptTimeout = 500 * time.Millisecond

// buildTree starts a tree in which the cells of leaves have that many
// hosts and take builds, the others route, and the root records
// placements and failures. Every cell places elsewhere after
// acceptTimeout; none counts a child down during a test (the report
// interval is an hour), so what moves a build is its cell not taking it.
func buildTree(t *testing.T, leaves map[string]int, paths ...string) (*tree, *buildLog) {
	t.Helper()
	return buildTreeWith(t, leaves, nil, paths...)
}

// buildTreeWith is buildTree where more, when it has a function for a
// cell, adjusts that cell's configuration further.
func buildTreeWith(t *testing.T, leaves map[string]int, more map[string]func(*cells.Config), paths ...string) (*tree, *buildLog) {
	t.Helper()
	return buildTreeAccepting(t, leaves, more, nil, paths...)
}

// buildTreeAccepting is buildTreeWith where accept, when it has a
// function for a leaf, wraps what takes that leaf's builds.
func buildTreeAccepting(t *testing.T, leaves map[string]int, more map[string]func(*cells.Config), accept map[string]func(leaf) cells.BuildAcceptor, paths ...string) (*tree, *buildLog) {
	t.Helper()
	log := &buildLog{accepted: map[string][]wire.BuildInstances{}}
	configure := map[string]func(*cells.Config){}
	setup := map[string]func(*cells.Service){}
	for _, p := range paths {
		n, isLeaf := leaves[p]
		configure[p] = func(c *cells.Config) {
			c.BuildAcceptTimeout = acceptTimeout
			if isLeaf {
				c.Capacity = hosts(n)
			}
			if more[p] != nil {
				more[p](c)
			}
		}
		setup[p] = func(s *cells.Service) {
			switch {
			case isLeaf && accept[p] != nil:
				s.AcceptBuilds(accept[p](leaf{p, log}))
			case isLeaf:
				s.AcceptBuilds(leaf{p, log})
			case p == api:
				s.RecordPlacements(root{log})
				s.RecordBuildErrors(root{log})
			}
		}
	}
	tr := newTreeSetup(t, configure, setup, paths...)
	// Each cell reports once as it starts, before its children; the
	// routing cells report again once their children have.
	for i := len(paths) - 1; i >= 0; i-- {
		p := paths[i]
		var children []string
		for _, q := range paths {
			if strings.HasPrefix(q, p+"!") && !strings.Contains(q[len(p)+1:], "!") {
				children = append(children, q)
			}
		}
		if len(children) == 0 {
			continue
		}
		testpoll.Eventually(t, wait, "the reports of "+strings.Join(children, ", ")+" at "+p, func() (bool, string) {
			got := map[string]int{}
			for _, n := range tr.cell(p).service().Neighbours() {
				if n.Report != nil {
					got[n.Path] = n.Report.Hosts
				}
			}
			for _, c := range children {
				if got[c] == 0 {
					return false, fmt.Sprint(got)
				}
			}
			return true, ""
		})
		if p != api {
			// Its report to its parent with its children's hosts.
			tr.cell(p).service().ReportSoon()
		}
	}
	return tr, log
}

var flavor1 = wire.Flavor{ID: "1", Name: "m1.tiny", VCPUs: 1, RAMMB: 512, RootGB: 1}

// build sends a build of n instances to the root's own cells service, as
// the Compute API does, and returns their UUIDs.
func build(t *testing.T, tr *tree, name string, n int) []string {
	t.Helper()
	b := wire.BuildInstances{Flavor: flavor1, Attempts: 1}
	var uuids []string
	for i := range n {
		u := fmt.Sprintf("%s-%d", name, i)
		uuids = append(uuids, u)
		b.Instances = append(b.Instances, wire.InstanceSpec{UUID: u, Name: u, ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: time.Now().UTC()})
	}
	c := tr.cell(api)
	svc := c.service()
	ctx := context.Background()
	if err := c.db.InTx(ctx, func(tx *db.Tx) error {
		return svc.Send(ctx, tx, api, wire.MethodBuildInstances, "req-"+name, &b)
	}); err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return uuids
}

func uuidsOf(b wire.BuildInstances) []string {
	var out []string
	for _, s := range b.Instances {
		out = append(out, s.UUID)
	}
	return out
}

// loseInbox stops a cell's service and deletes its inbox stream, its
// broker left running (a stream lost with a NATS server): its parent's
// connection to the broker stays up, so the parent, which counts a cell
// down at once when that connection goes (liveness.go), learns that the
// cell cannot take messages only from a publish that fails. The cell's
// service, started again, makes the stream anew.
func (c *testCell) loseInbox() {
	c.tr.t.Helper()
	c.stopService()
	js, err := jetstream.New(c.conn())
	if err != nil {
		c.tr.t.Fatal(err)
	}
	if err := js.DeleteStream(context.Background(), "CELLIN_"+strings.ReplaceAll(c.path, "!", "_")); err != nil {
		c.tr.t.Fatalf("%s: delete the inbox stream: %v", c.path, err)
	}
}

// queued returns the messages of method the cell holds for neighbour nb.
func (c *testCell) queued(nb, method string) []outbox.Entry {
	es, err := outbox.Pending(context.Background(), c.db, nb, 1000)
	if err != nil {
		c.tr.t.Fatal(err)
	}
	var out []outbox.Entry
	for _, e := range es {
		if e.Method == method {
			out = append(out, e)
		}
	}
	return out
}

// delivered sends a note from cell from to cell to and waits for it: what
// was queued for to before it has been delivered too.
func (tr *tree) delivered(from, to string, n int) {
	tr.t.Helper()
	tr.cell(from).send(to, n)
	testpoll.Eventually(tr.t, wait, fmt.Sprintf("note %d at %s", n, to), func() (bool, string) {
		for _, a := range tr.appliedAt(to) {
			if a.N == n {
				return true, ""
			}
		}
		return false, "not applied"
	})
}

// TestBuildNotTakenInTimeIsPlacedElsewhere: a build placed on a cell that
// has just died, before the cell counts as down, is
// placed on another cell once it has waited cells.build_accept_timeout,
// with its versions fenced above anything the first cell could use. The
// cases:
//
//   - the receiver is down (its service stopped and its inbox stream
//     lost, so the root learns it only from the publish that fails; a cell
//     whose broker is down is never chosen: liveness_test.go): the build
//     waits in the root's outbox, then moves; when the cell returns it
//     gets nothing (the build left the
//     outbox in the transaction that placed it elsewhere);
//   - the sender dies halfway (the root's cells service stops while the
//     build waits and starts again): the build moves once, after the
//     restart;
//   - the message arrives after all, twice (a publish whose ack was lost,
//     relayed again): the first cell applies it once, and it is older than
//     the new placement, which the API cell's copy keeps (apicopy tells
//     that cell to delete what it builds from it).
func TestBuildNotTakenInTimeIsPlacedElsewhere(t *testing.T) {
	t.Parallel()
	// cell1 has more room, so the root places there first.
	tr, log := buildTree(t, map[string]int{cell1: 8, cell2: 2}, api, cell1, cell2)

	tr.cell(cell1).loseInbox()
	uuids := build(t, tr, "b1", 2)
	if ps := log.placements(); len(ps) != 1 || ps[0].Child != cell1 || ps[0].Build.BaseVersion != 0 || !ps[0].Build.Recorded {
		t.Fatalf("first placement %+v, want on %s at base version 0, recorded", ps, cell1)
	}
	stuck := tr.cell(api).queued(cell1, wire.MethodBuildInstances)
	if len(stuck) != 1 {
		t.Fatalf("%d builds queued for %s, want 1", len(stuck), cell1)
	}

	// The root's cells service stops while the build waits, and starts again.
	tr.cell(api).stopService()
	tr.cell(api).startService()

	testpoll.Eventually(t, wait, "the build accepted by "+cell2, func() (bool, string) {
		return len(log.acceptedAt(cell2)) > 0, fmt.Sprint(log.placements())
	})
	got := log.acceptedAt(cell2)
	if len(got) != 1 || !slices.Equal(uuidsOf(got[0]), uuids) {
		t.Fatalf("%s accepted %+v, want one build of %v", cell2, got, uuids)
	}
	b := got[0]
	if b.BaseVersion != cells.FenceStep || !b.Recorded || b.Attempts != 2 || !slices.Equal(b.Tried, []string{cell1}) {
		t.Errorf("the build placed again: base %d recorded %v attempts %d tried %v; want %d, true, 2, [%s]",
			b.BaseVersion, b.Recorded, b.Attempts, b.Tried, cells.FenceStep, cell1)
	}
	ps := log.placements()
	if len(ps) != 2 || ps[1].Child != cell2 || ps[1].Build.BaseVersion != cells.FenceStep {
		t.Errorf("placements %+v, want a second on %s at base version %d", ps, cell2, cells.FenceStep)
	}
	if q := tr.cell(api).queued(cell1, wire.MethodBuildInstances); len(q) != 0 {
		t.Errorf("%d builds still queued for %s", len(q), cell1)
	}

	// The cell returns: it gets nothing of that build.
	tr.cell(cell1).startService()
	tr.delivered(api, cell1, 1)
	if got := log.acceptedAt(cell1); len(got) != 0 {
		t.Errorf("%s accepted %+v after it returned, want nothing", cell1, got)
	}

	// The first message delivered after all, and again.
	env, err := wire.Decode(stuck[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := tr.cell(api).db.InTx(context.Background(), func(tx *db.Tx) error {
			return outbox.Enqueue(context.Background(), tx, cell1, env)
		}); err != nil {
			t.Fatal(err)
		}
	}
	tr.cell(api).service().Wake()
	tr.delivered(api, cell1, 2)
	// The note came after both copies, but a build is recorded when its
	// transaction has committed and a note while it applies: wait for the
	// record.
	testpoll.Eventually(t, wait, "the late build recorded at "+cell1, func() (bool, string) {
		return len(log.acceptedAt(cell1)) > 0, "none yet"
	})
	late := log.acceptedAt(cell1)
	if len(late) != 1 || late[0].BaseVersion+1 >= b.BaseVersion+1 || !slices.Equal(uuidsOf(late[0]), uuids) {
		t.Errorf("%s accepted %+v from the late message, want it once, older than base version %d", cell1, late, b.BaseVersion)
	}
	if ps := log.placements(); len(ps) != 2 {
		t.Errorf("placements %+v after the late message, want still 2", ps)
	}
	if fs := log.failures(); len(fs) != 0 {
		t.Errorf("failures %+v, want none", fs)
	}
}

// TestBuildNotTakenAndNowhereElseFails: with no other cell, a build its
// only cell does not take in time ends as the root's "No valid host"
// failure, at the fenced base version, and the cell that returns gets
// nothing.
func TestBuildNotTakenAndNowhereElseFails(t *testing.T) {
	t.Parallel()
	tr, log := buildTree(t, map[string]int{cell1: 2}, api, cell1)
	tr.cell(cell1).loseInbox()
	uuids := build(t, tr, "b2", 3)
	testpoll.Eventually(t, wait, "the build to fail", func() (bool, string) {
		return len(log.failures()) > 0, fmt.Sprint(log.placements())
	})
	fs := log.failures()
	if len(fs) != 1 || !strings.HasPrefix(fs[0].Reason, cells.NoValidCellReason) || fs[0].Build.BaseVersion < cells.FenceStep ||
		!slices.Equal(uuidsOf(fs[0].Build), uuids) {
		t.Errorf("failures %+v, want one of %v with %q at base version %d or more", fs, uuids, cells.NoValidCellReason, cells.FenceStep)
	}
	tr.cell(cell1).startService()
	tr.delivered(api, cell1, 1)
	if got := log.acceptedAt(cell1); len(got) != 0 {
		t.Errorf("%s accepted %+v after it returned, want nothing", cell1, got)
	}
}

// TestRoutingCellPlacesElsewhereBelow: in a tree of depth 3 the routing
// cell that placed a build on its child moves it to its other child when
// the first does not take it in time; the root, which recorded the build
// at the routing cell, places nothing again. The build goes on unrecorded
// from a fenced version (the cell that takes it announces its instances).
func TestRoutingCellPlacesElsewhereBelow(t *testing.T) {
	t.Parallel()
	const cellB = "api!cell1!b"
	tr, log := buildTree(t, map[string]int{cellA: 8, cellB: 2}, api, cell1, cellA, cellB)
	tr.cell(cellA).loseInbox()
	uuids := build(t, tr, "b3", 2)
	testpoll.Eventually(t, wait, "the build accepted by "+cellB, func() (bool, string) {
		return len(log.acceptedAt(cellB)) > 0, ""
	})
	got := log.acceptedAt(cellB)
	if len(got) != 1 || !slices.Equal(uuidsOf(got[0]), uuids) {
		t.Fatalf("%s accepted %+v, want one build of %v", cellB, got, uuids)
	}
	// The root recorded cell1 at base 0 (version 1); cell1 sent it on
	// from version 1, then placed it again past the fence.
	if b := got[0]; b.BaseVersion != 1+cells.FenceStep || b.Recorded || !slices.Equal(b.Tried, []string{cellA}) || b.Attempts != 2 {
		t.Errorf("the build placed again: base %d recorded %v tried %v attempts %d; want %d, false, [%s], 2",
			b.BaseVersion, b.Recorded, b.Tried, b.Attempts, 1+cells.FenceStep, cellA)
	}
	if ps := log.placements(); len(ps) != 1 || ps[0].Child != cell1 {
		t.Errorf("root placements %+v, want only the first, on %s", ps, cell1)
	}
	tr.cell(cellA).startService()
	tr.delivered(api, cellA, 1)
	if got := log.acceptedAt(cellA); len(got) != 0 {
		t.Errorf("%s accepted %+v after it returned, want nothing", cellA, got)
	}
}
