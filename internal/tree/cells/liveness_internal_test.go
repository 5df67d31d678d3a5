package cells

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellsched"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestIsDownCountsACellThatCannotReceive: the one definition of a child
// that is down, which the cell scheduler and the operator views share.
func TestIsDownCountsACellThatCannotReceive(t *testing.T) {
	now := time.Now()
	const downAfter = time.Minute
	fresh := &capacity.Report{Hosts: 1}
	for _, c := range []struct {
		name string
		n    Neighbour
		down bool
	}{
		{"reported just now", Neighbour{Relation: Child, Report: fresh, LastSeen: now}, false},
		{"silent past down_after", Neighbour{Relation: Child, Report: fresh, LastSeen: now.Add(-2 * downAfter)}, true},
		{"reported just now that it cannot receive", Neighbour{Relation: Child, Report: &capacity.Report{Hosts: 1, NotReceiving: "x"}, LastSeen: now}, true},
		{"reported just now, its inbox unreachable from here", Neighbour{Relation: Child, Report: fresh, LastSeen: now, Unreachable: "x"}, true},
		{"never reported, its inbox unreachable from here", Neighbour{Relation: Child, Unreachable: "x"}, true},
		{"never reported, within down_after of the start", Neighbour{Relation: Child}, false},
		{"a parent is never down", Neighbour{Relation: Parent, Unreachable: "x"}, false},
	} {
		if got := IsDown(c.n, now, downAfter, now); got != c.down {
			t.Errorf("%s: down %v, want %v", c.name, got, c.down)
		}
	}
}

// TestReportFromAnOldCellReceives: a report from a cell that predates
// not_receiving has no such field: it counts as receiving, as before.
// A cells table row written before parent_unreachable reads as
// reachable, and a row written now reads back as written.
func TestReportFromAnOldCellReceives(t *testing.T) {
	old := `{"cell":"api!cell1","report":{"hosts":2,"instances":0,"total_vcpus":32,"total_ram_mb":65536,"total_disk_gb":2000,"free_vcpus":32,"free_ram_mb":65536,"free_disk_gb":2000},"at":"2026-12-01T00:00:00Z"}`
	var r wire.CapacityReport
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	n := Neighbour{Relation: Child, Report: &r.Report, LastSeen: time.Now()}
	if NotReceiving(n) != "" || IsDown(n, time.Now(), time.Minute, time.Now()) {
		t.Errorf("an old cell's fresh report counts down: %+v", r.Report)
	}
	// The field is left out when the cell can receive, so an old parent
	// reads the same report as before.
	b, err := json.Marshal(capacity.Report{Hosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if _, ok := m["not_receiving"]; ok {
		t.Errorf("a report of a cell that can receive carries not_receiving: %s", b)
	}

	ctx := context.Background()
	d := dbtest.Open(t, "sqlite")
	if err := d.Migrate(ctx, "cells", Migrations); err != nil {
		t.Fatal(err)
	}
	if err := AddNeighbour(ctx, d, "api", Neighbour{Path: "api!cell1", Relation: Child, BrokerURL: "nats://127.0.0.1:1", WeightScale: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(ctx, `UPDATE cells SET report = ? WHERE path = 'api!cell1'`, `{"hosts":2,"free_vcpus":32}`); err != nil {
		t.Fatal(err)
	}
	read := func() Neighbour {
		t.Helper()
		ns, err := ListNeighbours(ctx, d)
		if err != nil || len(ns) != 1 {
			t.Fatalf("cells table: %v, %+v", err, ns)
		}
		return ns[0]
	}
	if n := read(); n.Report == nil || n.Report.Hosts != 2 || n.Unreachable != "" {
		t.Errorf("an old row reads as %+v (report %+v)", n, n.Report)
	}
	// What this cell sees of the child's inbox, written twice (the relay
	// writes again after a failed write): the same row.
	for range 2 {
		if err := recordUnreachable(ctx, d, "api!cell1", &capacity.Report{Hosts: 2}, "down"); err != nil {
			t.Fatal(err)
		}
	}
	if n := read(); n.Report == nil || n.Report.Hosts != 2 || n.Unreachable != "down" {
		t.Errorf("after recordUnreachable: %+v (report %+v)", n, n.Report)
	}
	// A report that comes, twice, keeps what this cell sees.
	for range 2 {
		if ok, err := recordReport(ctx, d, "api!cell1", capacity.Report{Hosts: 3, NotReceiving: "own"}, "down", time.Now()); err != nil || !ok {
			t.Fatal(ok, err)
		}
	}
	if n := read(); n.Report == nil || n.Report.Hosts != 3 || n.Report.NotReceiving != "own" || n.Unreachable != "down" {
		t.Errorf("after recordReport: %+v (report %+v)", n, n.Report)
	}
	// No report yet and reachable: the column stays empty.
	if err := recordUnreachable(ctx, d, "api!cell1", nil, ""); err != nil {
		t.Fatal(err)
	}
	if n := read(); n.Report != nil || n.Unreachable != "" {
		t.Errorf("after clearing: %+v", n)
	}
}

// TestMergeDropsNotReceiving: a cell's report merges its children's;
// whether a child can receive is the child's own, never its parent's.
func TestMergeDropsNotReceiving(t *testing.T) {
	if got := capacity.Merge(capacity.Report{Hosts: 1, NotReceiving: "x"}, capacity.Report{Hosts: 2}); got.NotReceiving != "" || got.Hosts != 3 {
		t.Errorf("merged %+v", got)
	}
}

// TestSignificantWhenReceivingChanges: a child that stops (or starts
// again) being able to receive is passed up at once.
func TestSignificantWhenReceivingChanges(t *testing.T) {
	a := capacity.Report{Hosts: 1}
	b := a
	b.NotReceiving = "x"
	if !Significant(a, b) || !Significant(b, a) || Significant(b, b) {
		t.Error("a change of not_receiving is not significant")
	}
}

// TestSweepPrunesWhatACellTookBeforeItStoppedReceiving: a build kept,
// sent, for a child that is now down because it cannot receive is pruned,
// not placed elsewhere, when the child reported while it could receive
// longer than cells.build_accept_timeout after the send: it took it. A
// child never seen receiving since (zero receivingAt: this link is new,
// the parent restarted) has it placed elsewhere, as a dead child's.
func TestSweepPrunesWhatACellTookBeforeItStoppedReceiving(t *testing.T) {
	for _, c := range []struct {
		name        string
		receivingAt time.Duration // before now; 0: never
		pruned      bool
	}{
		{"receiving 10 s after the send", 10 * time.Second, true},
		{"receiving before the send only", 30 * time.Second, false},
		{"never seen receiving", 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			d := dbtest.Open(t, "sqlite")
			for name, ms := range map[string][]db.Migration{"outbox": outbox.Migrations, "cells": Migrations} {
				if err := d.Migrate(ctx, name, ms); err != nil {
					t.Fatal(err)
				}
			}
			b, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "api", Listen: "127.0.0.1:0", StoreDir: filepath.Join(t.TempDir(), "broker")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Shutdown)
			nc, err := broker.Connect(ctx, b.URL(), "test", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			s, err := New(Config{Path: "api", DB: d, Conn: nc, Logger: slog.New(slog.DiscardHandler), BuildAcceptTimeout: time.Second, DownAfter: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			const child = "api!cell1"
			// Placed by another cell: were it placed elsewhere, it would
			// be queued again unsent (replace keeps what it did not place).
			env, err := NewTargeted("api!other", child, wire.MethodBuildInstances, "req", &wire.BuildInstances{Scheduler: "api!other", Instances: []wire.InstanceSpec{{UUID: "u1"}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return outbox.Enqueue(ctx, tx, child, env) }); err != nil {
				t.Fatal(err)
			}
			es, err := outbox.Pending(ctx, d, child, 10)
			if err != nil || len(es) != 1 {
				t.Fatal(es, err)
			}
			now := time.Now()
			sentAt := now.Add(-20 * time.Second)
			if err := outbox.MarkSent(ctx, d, []int64{es[0].Seq}, sentAt); err != nil {
				t.Fatal(err)
			}
			l := &link{n: Neighbour{Path: child, Relation: Child, LastSeen: now, Report: &capacity.Report{NotReceiving: "its connection to its own broker is down"}},
				kept: true, lastSent: sentAt}
			if c.receivingAt > 0 {
				l.receivingAt = now.Add(-c.receivingAt)
			}
			s.neighbours[child] = l
			s.sweepSent(ctx, now)
			var all, sent int
			if err := d.QueryRow(ctx, `SELECT COUNT(*), COUNT(sent_at) FROM outbox WHERE neighbour = ?`, child).Scan(&all, &sent); err != nil {
				t.Fatal(err)
			}
			if c.pruned && all != 0 {
				t.Errorf("%d rows (%d sent) left for %s, want the build pruned", all, sent, child)
			}
			if !c.pruned && (all != 1 || sent != 0) {
				t.Errorf("%d rows (%d sent) for %s, want the build taken to be placed elsewhere (kept again, unsent)", all, sent, child)
			}
		})
	}
}

// TestInboxUnreadableCountsAfterTheGrace: a cell whose own inbox stream
// cannot be read (JetStream "temporarily unavailable" while the stream
// elects a leader on a NATS cluster that lost a server) still says it can
// receive until that has lasted cells.unreachable_after, so that its
// parent does not fail builds for want of it during an election; past it,
// it says it cannot, since when and why; a successful read starts the
// count again.
func TestInboxUnreadableCountsAfterTheGrace(t *testing.T) {
	s := &Service{cfg: Config{UnreachableAfter: 15 * time.Second}, log: slog.New(slog.DiscardHandler)}
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	unavailable := errors.New("nats: API error: code=503 err_code=10008 description=JetStream system temporarily unavailable")
	for _, c := range []struct {
		name    string
		err     error
		at      time.Duration
		refuses bool
	}{
		{"readable", nil, 0, false},
		{"unreadable for the first time", unavailable, time.Second, false},
		{"unreadable for 14 s", unavailable, 15 * time.Second, false},
		{"readable again (a leader elected)", nil, 16 * time.Second, false},
		{"unreadable anew: the count starts again", unavailable, 20 * time.Second, false},
		{"unreadable for 15 s", unavailable, 35 * time.Second, true},
		{"still unreadable", unavailable, time.Minute, true},
		{"readable", nil, 61 * time.Second, false},
	} {
		why := s.inboxRead(c.err, t0.Add(c.at))
		if (why != "") != c.refuses {
			t.Errorf("%s: cannot receive %q, want refusing %v", c.name, why, c.refuses)
		}
		if c.refuses && (!strings.Contains(why, "since 2026-12-07T02:00:20Z") || !strings.Contains(why, "temporarily unavailable")) {
			t.Errorf("%s: %q does not say since when and why", c.name, why)
		}
	}
}

// TestBrokerConnectionDownCountsAfterTheGrace: a connection to a broker
// that is down (the parent's to a child's broker, or a cell's to its own)
// makes the cell at the other end unable to receive only once it has been
// down for reconnectGrace: a NATS client whose server is lost reconnects
// to another server of its cluster within milliseconds, and a build placed
// meanwhile must wait in the outbox, not fail for want of a cell (as one
// did in TestProductionTree when the parent's client moved to another
// server). A connection that comes back starts the count again.
func TestBrokerConnectionDownCountsAfterTheGrace(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	steps := []struct {
		name      string
		connected bool
		at        time.Duration
		down      bool
	}{
		{"up", true, 0, false},
		{"down: reconnecting", false, time.Second, false},
		{"down for 1.9 s", false, 2900 * time.Millisecond, false},
		{"up again", true, 3 * time.Second, false},
		{"down anew: the count starts again", false, 4 * time.Second, false},
		{"down for 2 s", false, 6 * time.Second, true},
		{"still down", false, time.Minute, true},
		{"up", true, 61 * time.Second, false},
	}
	s := &Service{cfg: Config{UnreachableAfter: 15 * time.Second}, log: slog.New(slog.DiscardHandler)}
	l := &link{n: Neighbour{Path: "api!cell1", Relation: Child}}
	for _, c := range steps {
		now := t0.Add(c.at)
		for side, why := range map[string]string{
			"the parent's connection to the child's broker": linkUnreachable(l, c.connected, now, s.cfg.UnreachableAfter),
			"the cell's connection to its own broker":       s.ownConn(c.connected, now),
		} {
			if (why != "") != c.down {
				t.Errorf("%s, %s: cannot receive %q, want %v", side, c.name, why, c.down)
			}
			if c.down && !strings.Contains(why, "since 2026-12-07T02:00:04Z") {
				t.Errorf("%s, %s: %q does not say since when", side, c.name, why)
			}
		}
	}
	// A shorter unreachable_after (tests) shortens the grace with it.
	if g := reconnectGrace(200 * time.Millisecond); g != 200*time.Millisecond {
		t.Errorf("grace with unreachable_after 200ms = %s", g)
	}
}

// TestCellsSeenNamesWhyNoCellTookABuild: the warning of a build no cell
// passes says, for each child, that it is down and why, or what its last
// report fits.
func TestCellsSeenNamesWhyNoCellTookABuild(t *testing.T) {
	now := time.Now()
	s := &Service{cfg: Config{DownAfter: time.Minute, Now: func() time.Time { return now }}, startAt: now, neighbours: map[string]*link{
		"api!c1": {n: Neighbour{Path: "api!c1", Relation: Child, LastSeen: now, Report: &capacity.Report{Hosts: 2, NotReceiving: "its inbox cannot be read"}}},
		"api!c2": {n: Neighbour{Path: "api!c2", Relation: Child, LastSeen: now.Add(-2 * time.Minute), Report: &capacity.Report{Hosts: 2}}},
	}}
	cands := []cellsched.Candidate{{Path: "api!c3", LastSeen: now.Add(-time.Second), Report: capacity.Report{Hosts: 2, FreeVCPUs: 0}}}
	got := s.cellsSeen(cands, &cellsched.Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 512}})
	for _, want := range []string{"api!c1: down, cannot receive: its inbox cannot be read", "api!c2: down, last report 2m0s ago",
		"api!c3: candidate, last report 1s ago, fits 0 (free 0 vCPU, 0 MB, 2 hosts)"} {
		if !strings.Contains(got, want) {
			t.Errorf("cellsSeen = %q, want it to say %q", got, want)
		}
	}
}
