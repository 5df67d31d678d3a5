package conductor_test

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// logRecord is one log line: its level, message and attributes (those
// the logger was made With too).
type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// logCapture is a slog.Handler that keeps every record.
type logCapture struct {
	mu    *sync.Mutex
	recs  *[]logRecord
	attrs map[string]string
}

func newLogCapture() *logCapture {
	return &logCapture{mu: &sync.Mutex{}, recs: &[]logRecord{}, attrs: map[string]string{}}
}

func (h *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCapture) Handle(_ context.Context, r slog.Record) error {
	attrs := maps.Clone(h.attrs)
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	*h.recs = append(*h.recs, logRecord{Level: r.Level, Msg: r.Message, Attrs: attrs})
	h.mu.Unlock()
	return nil
}

func (h *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	attrs := maps.Clone(h.attrs)
	for _, a := range as {
		attrs[a.Key] = a.Value.String()
	}
	return &logCapture{mu: h.mu, recs: h.recs, attrs: attrs}
}

func (h *logCapture) WithGroup(string) slog.Handler { return h }

func (h *logCapture) records() []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]logRecord(nil), *h.recs...)
}

// gatedCompute counts destroys per instance; a destroy of an instance
// with a gate waits until the gate is closed.
type gatedCompute struct {
	mu       sync.Mutex
	destroys map[string]int
	gates    map[string]chan struct{}
}

func (g *gatedCompute) Spawn(context.Context, string, string) error { return nil }

func (g *gatedCompute) Destroy(ctx context.Context, _, uuid string) error {
	g.mu.Lock()
	g.destroys[uuid]++
	gate := g.gates[uuid]
	g.mu.Unlock()
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gatedCompute) count(uuid string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.destroys[uuid]
}

// countingNetwork counts deallocations per instance.
type countingNetwork struct {
	mu       sync.Mutex
	deallocs map[string]int
}

func (n *countingNetwork) Allocate(context.Context, string, []wire.NIC) ([]wire.Address, error) {
	return nil, nil
}

func (n *countingNetwork) Deallocate(_ context.Context, uuid string) error {
	n.mu.Lock()
	n.deallocs[uuid]++
	n.mu.Unlock()
	return nil
}

func (n *countingNetwork) count(uuid string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.deallocs[uuid]
}

// TestADeleteRunsOnce: the work loop lists the instances being deleted
// while the delete of one of them (A) is in flight, and gets to A only
// after that delete ended (the loop waits for a free worker in between,
// as in a bulk delete with more instances than workers). A is destroyed
// and its network freed once, not again from the stale list, and nothing
// is logged as an error; the log lines of each delete carry the delete's
// request id, not the build's.
//
// Twice and halfway: a delete_instances for A delivered again after it is
// done changes nothing; a process that died halfway through a delete
// (destroyed, not yet recorded) finds the instance still deleting when it
// restarts and runs the delete again: destroy and deallocate are no-ops
// the second time (TestFailingDestroyIsRetriedAtThePollInterval), and the
// delete is then recorded once.
func TestADeleteRunsOnce(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	// B and C sort before A in the work loop's list (oldest first); D
	// comes last.
	a, b, c, dd := uuidN(3), uuidN(1), uuidN(2), uuidN(4)
	err := d.InTx(ctx, func(tx *db.Tx) error {
		for i, u := range []string{b, c, a, dd} {
			in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i",
				CreatedAt: t0.Add(time.Duration(i) * time.Second)}, Flavor: small, VMState: celldb.VMActive, Host: "h1", Version: 5,
				RequestID: "req-build"}
			if err := celldb.Insert(ctx, tx, []celldb.Instance{in}, t0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	comp := &gatedCompute{destroys: map[string]int{}, gates: map[string]chan struct{}{a: make(chan struct{}), b: make(chan struct{})}}
	net := &countingNetwork{deallocs: map[string]int{}}
	logs := newLogCapture()
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: &recorder{}, Scheduler: &fakeScheduler{}, Network: net, Compute: comp,
		Workers: 2, PollInterval: time.Hour, HealInterval: time.Hour, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	if err := cd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })
	del := func(requestID string, uuids ...string) {
		t.Helper()
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return cd.DeleteInstances(ctx, tx, envelope(requestID, &wire.DeleteInstances{UUIDs: uuids}))
		}); err != nil {
			t.Fatal(err)
		}
	}
	destroyed := func(u string) {
		t.Helper()
		testpoll.Eventually(t, wait, "the destroy of "+u, func() (bool, string) { return comp.count(u) > 0, "not yet" })
	}

	// A's delete starts and holds a worker in its destroy.
	del("req-del-a", a)
	destroyed(a)
	// B and C are deleted too: the next pass lists B, C and A; B takes the
	// other worker and holds it; the pass waits for a worker for C.
	del("req-del-bc", b, c)
	destroyed(b)
	// A's delete ends, which frees its worker for C: the pass goes on to
	// A, listed while its delete was in flight.
	close(comp.gates[a])
	destroyed(c)
	close(comp.gates[b])
	// A later pass (D's) starts only when that one has ended.
	del("req-del-d", dd)
	for _, u := range []string{a, b, c, dd} {
		testpoll.Eventually(t, wait, "the delete of "+u, func() (bool, string) {
			in := get(t, d, u)
			return in.Deleted, fmt.Sprintf("task %q", in.TaskState)
		})
	}
	_ = cd.Shutdown(ctx) // waits for every delete started
	for _, u := range []string{a, b, c, dd} {
		if n, m := comp.count(u), net.count(u); n != 1 || m != 1 {
			t.Errorf("%s: destroyed %d times, network freed %d times; want once each", u, n, m)
		}
	}
	want := map[string]string{a: "req-del-a", b: "req-del-bc", c: "req-del-bc", dd: "req-del-d"}
	done := map[string]bool{}
	for _, r := range logs.records() {
		if r.Level >= slog.LevelError {
			t.Errorf("logged %s %q %v", r.Level, r.Msg, r.Attrs)
		}
		u := r.Attrs["instance"]
		if _, ok := want[u]; !ok {
			continue
		}
		if rid := r.Attrs["request_id"]; rid != want[u] {
			t.Errorf("%q about %s carries request id %q, want the delete's %q", r.Msg, u, rid, want[u])
		}
		if r.Msg == "instance deleted" {
			done[u] = true
		}
	}
	if len(done) != len(want) {
		t.Errorf("\"instance deleted\" logged for %v, want all of %v", done, want)
	}

	// The delete again: nothing changes.
	before := get(t, d, a)
	del("req-del-a", a)
	if after := get(t, d, a); after.Version != before.Version || after.TaskState != "" {
		t.Errorf("a delete delivered again changed the instance: %+v", after)
	}
}
