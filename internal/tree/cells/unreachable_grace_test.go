package cells_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// TestChildWhoseInboxRefusesPublishesBrieflyTakesBuilds: a child's inbox
// stream that refuses the parent's publishes for less than
// cells.unreachable_after, as a stream on a NATS cluster does while it
// elects a leader after losing a server, keeps the child in the
// scheduler's choice. Here the root's only child is cell1, and the root's
// link to it points at a broker without its stream (every publish is
// refused: no responders), then back at the real one:
//
//   - the receiver is unreachable: the first build, and the second one
//     placed after the first refusal, wait in the root's outbox (not "No
//     valid host", which the root's only child being counted down at the
//     first refusal gave: builds ended in ERROR when a NATS server was
//     lost);
//   - the stream takes publishes again: both are delivered and accepted
//     once each, at their first attempt, nothing failed;
//   - a refusal lasting longer than the grace still counts the child down
//     (TestChildWhoseInboxTheParentCannotReachIsDown, with a short grace).
func TestChildWhoseInboxRefusesPublishesBrieflyTakesBuilds(t *testing.T) {
	t.Parallel()
	more := map[string]func(*cells.Config){api: func(c *cells.Config) {
		c.UnreachableAfter = time.Hour
		c.BuildAcceptTimeout = time.Hour
		c.DownAfter = time.Hour
	}}
	tr, log := buildTreeWith(t, map[string]int{cell1: 8}, more, api, cell1)

	decoy, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "decoy", Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "decoy")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(decoy.Shutdown)
	ctx := context.Background()
	root := tr.cell(api)
	real := childAt(t, tr, api, cell1)
	point := func(url string) {
		t.Helper()
		n := real
		n.BrokerURL = url
		if err := cells.AddNeighbour(ctx, root.db, api, n); err != nil {
			t.Fatal(err)
		}
		if err := root.service().RefreshNeighbours(ctx); err != nil {
			t.Fatal(err)
		}
	}
	point(decoy.URL())

	first := build(t, tr, "first", 1)
	testpoll.Eventually(t, wait, "cell1's inbox to refuse the root's publish", func() (bool, string) {
		return len(tr.logs.find("neighbour unreachable; keeping its messages", map[string]string{"cell": api, "neighbour": cell1})) > 0, "no refusal logged"
	})
	if sched, op, why := downAt(t, tr, api, cell1); sched || op {
		t.Fatalf("%s down after one refused publish, within unreachable_after: scheduler %v, operator %v (%s)", cell1, sched, op, why)
	}
	second := build(t, tr, "second", 1)
	// The second build is scheduled (to cell1, into the outbox) rather
	// than failed.
	testpoll.Eventually(t, wait, "the second build placed", func() (bool, string) {
		return len(log.placements()) == 2 || len(log.failures()) > 0, fmt.Sprintf("placements %+v, failures %+v", log.placements(), log.failures())
	})
	if f := log.failures(); len(f) > 0 {
		t.Fatalf("builds failed while cell1's inbox refused publishes briefly: %+v", f)
	}
	if n := len(log.acceptedAt(cell1)); n != 0 {
		t.Fatalf("cell1 accepted %d builds through a broker without its stream", n)
	}

	point(real.BrokerURL)
	testpoll.Eventually(t, wait, "both builds accepted by cell1", func() (bool, string) {
		return len(log.acceptedAt(cell1)) >= 2, fmt.Sprint(log.placements())
	})
	tr.waitOutboxesEmpty(wait)
	var got [][]string
	for _, b := range log.acceptedAt(cell1) {
		got = append(got, uuidsOf(b))
		if b.Attempts != 1 {
			t.Errorf("cell1 accepted %v at attempt %d, want its first", uuidsOf(b), b.Attempts)
		}
	}
	if len(got) != 2 || !slices.ContainsFunc(got, func(u []string) bool { return slices.Equal(u, first) }) || !slices.ContainsFunc(got, func(u []string) bool { return slices.Equal(u, second) }) {
		t.Errorf("cell1 accepted %v, want %v and %v once each", got, first, second)
	}
	if f := log.failures(); len(f) > 0 {
		t.Errorf("failed builds: %+v", f)
	}
}
