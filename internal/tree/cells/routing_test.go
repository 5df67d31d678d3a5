package cells_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const (
	api   = "api"
	cell1 = "api!cell1"
	cellA = "api!cell1!a"
	cell2 = "api!cell2"
)

// wait is how long a test waits for something that normally takes
// milliseconds.
const wait = 15 * time.Second

func TestTargetedDurableDownIsAppliedOnceAtTheTargetOnly(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1, cellA, cell2)
	tr.cell(api).send(cellA, 1)

	testpoll.Eventually(t, wait, "the message to reach "+cellA, func() (bool, string) {
		return len(tr.appliedAt(cellA)) > 0, "not applied"
	})
	tr.waitOutboxesEmpty(wait)

	all := tr.allApplied()
	if len(all) != 1 {
		t.Fatalf("handler ran %d times, want once: %+v", len(all), all)
	}
	got := all[0]
	if got.Cell != cellA || got.N != 1 {
		t.Fatalf("applied %+v, want n=1 at %s", got, cellA)
	}
	if want := []string{api, cell1}; !slices.Equal(got.Route, want) {
		t.Errorf("route at arrival = %v, want %v", got.Route, want)
	}
	if ids := tr.cell(cellA).appliedIDs(methodNote); !slices.Equal(ids, []string{got.ID}) {
		t.Errorf("applied_messages at %s = %v, want [%s]", cellA, ids, got.ID)
	}
	for _, p := range []string{api, cell2} {
		if ids := tr.cell(p).appliedIDs(methodNote); len(ids) != 0 {
			t.Errorf("cell %s, off the route, recorded %v as applied", p, ids)
		}
	}
}

func TestTargetedDurableUpIsAppliedOnceAtTheRoot(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1, cellA, cell2)
	tr.cell(cellA).send(api, 2)

	testpoll.Eventually(t, wait, "the message to reach "+api, func() (bool, string) {
		return len(tr.appliedAt(api)) > 0, "not applied"
	})
	tr.waitOutboxesEmpty(wait)

	all := tr.allApplied()
	if len(all) != 1 || all[0].Cell != api || all[0].N != 2 {
		t.Fatalf("handler runs = %+v, want one at %s", all, api)
	}
	if want := []string{cellA, cell1}; !slices.Equal(all[0].Route, want) {
		t.Errorf("route at arrival = %v, want %v", all[0].Route, want)
	}
	if ids := tr.cell(api).appliedIDs(methodNote); !slices.Equal(ids, []string{all[0].ID}) {
		t.Errorf("applied_messages at %s = %v, want [%s]", api, ids, all[0].ID)
	}
}

// answered checks that results hold one answer per cell, each without an
// error and each from the cell it claims, and returns the cells.
func answered(t *testing.T, rs []wire.Result) []string {
	t.Helper()
	var cs []string
	for _, r := range rs {
		if r.Error != nil {
			t.Errorf("cell %s answered with error %v", r.Cell, r.Error)
			continue
		}
		var e echo
		if err := json.Unmarshal(r.Payload, &e); err != nil || e.Cell != r.Cell {
			t.Errorf("cell %s answered %s (%v)", r.Cell, r.Payload, err)
		}
		cs = append(cs, r.Cell)
	}
	sorted := slices.Sorted(slices.Values(cs))
	if len(slices.Compact(slices.Clone(sorted))) != len(sorted) {
		t.Errorf("a cell answered more than once: %v", cs)
	}
	return sorted
}

func TestGatherReachesTheCellsWithinTheHopLimit(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1, cellA, cell2)
	cases := []struct {
		from string
		dir  wire.Direction
		hops int
		want []string
	}{
		{api, wire.Down, 0, []string{api}},
		{api, wire.Down, 1, []string{api, cell1, cell2}},
		{api, wire.Down, 2, []string{api, cell1, cellA, cell2}},
		{api, wire.Down, 16, []string{api, cell1, cellA, cell2}},
		{cell1, wire.Down, 1, []string{cell1, cellA}},
		{cellA, wire.Up, 1, []string{cell1, cellA}},
		{cellA, wire.Up, 2, []string{api, cell1, cellA}},
	}
	for _, c := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		rs, missing, err := tr.cell(c.from).service().Gather(ctx, c.dir, c.hops, methodEcho, "req-gather", nil)
		cancel()
		if err != nil {
			t.Fatalf("gather from %s %s %d: %v", c.from, c.dir, c.hops, err)
		}
		if got := answered(t, rs); !slices.Equal(got, c.want) {
			t.Errorf("gather from %s %s hop limit %d reached %v, want %v", c.from, c.dir, c.hops, got, c.want)
		}
		if len(missing) != 0 {
			t.Errorf("gather from %s %s hop limit %d: missing %v, want none", c.from, c.dir, c.hops, missing)
		}
	}
}

func TestGatherReportsSilentCellsAsMissingByTheDeadline(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1, cellA, cell2)
	// cell2 is silent at the first level, a at the second: its parent
	// cell1 must give up on it early enough for its own answer to count.
	tr.stopServices(cell2, cellA)

	// The deadline is generous so that a loaded machine still delivers
	// cell1's partial answer within the margin the root leaves it; the
	// gather returns at that deadline, whatever the silent cells do.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	rs, missing, err := tr.cell(api).service().Gather(ctx, wire.Down, 2, methodEcho, "req-silent", nil)
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	if got, want := answered(t, rs), []string{api, cell1}; !slices.Equal(got, want) {
		t.Errorf("answers from %v, want %v", got, want)
	}
	if want := []string{cellA, cell2}; !slices.Equal(missing, want) {
		t.Errorf("missing %v, want %v", missing, want)
	}
	for _, r := range rs {
		if r.Cell == cell2 || r.Cell == cellA {
			t.Errorf("a silent cell answered: %+v", r)
		}
	}
}

func TestCallErrors(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1, cellA, cell2)
	svc := tr.cell(api).service()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	var e echo
	if err := svc.Call(ctx, cellA, methodEcho, "req-ok", nil, &e); err != nil {
		t.Fatalf("call %s: %v", cellA, err)
	}
	if e.Cell != cellA || !slices.Equal(e.Route, []string{api, cell1}) {
		t.Errorf("answer %+v, want cell %s route [%s %s]", e, cellA, api, cell1)
	}

	for _, target := range []string{"api!nope", "api!cell1!nope", "api!nope!deeper"} {
		err := svc.Call(ctx, target, methodEcho, "req-noroute", nil, nil)
		if !errors.Is(err, wire.ErrNoRoute) {
			t.Errorf("call to %s: err = %v, want no_route", target, err)
		}
	}
	if err := svc.Call(ctx, cell1, "no_such_method", "req-unknown", nil, nil); !errors.Is(err, wire.ErrUnknownMethod) {
		t.Errorf("unknown method: err = %v, want unknown_method", err)
	}
	// A durable message can be sent only within the tree.
	err := tr.cell(api).db.InTx(ctx, func(tx *db.Tx) error {
		return svc.Send(ctx, tx, "other!x", methodNote, "req-other", note{})
	})
	if !errors.Is(err, wire.ErrNoRoute) {
		t.Errorf("send to another tree: err = %v, want no_route", err)
	}
}

// TestUnsupportedVersionIsAnsweredOnTheWire sends hand-built call envelopes
// to cell1's call subject, as api would, and reads the answers cell1 sends
// back on api's call subject.
func TestUnsupportedVersionIsAnsweredOnTheWire(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1)
	answers := make(chan *wire.Envelope, 16)
	sub, err := tr.cell(api).conn().Subscribe("cellcloud.api.call", func(m *nats.Msg) {
		if env, err := wire.Decode(m.Data); err == nil && env.Kind == wire.Response {
			answers <- env
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := tr.cell(api).conn().Flush(); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		method, version string
		want            error
	}{
		{methodEcho, "2.0", wire.ErrUnsupportedVersion},
		{methodEcho, "1.1", wire.ErrUnsupportedVersion},
		{"no_such_method", "1.0", wire.ErrUnknownMethod},
		{methodEcho, "1.0", nil},
	}
	for i, c := range cases {
		env, err := cells.NewTargeted(api, cell1, c.method, "req-version", nil)
		if err != nil {
			t.Fatal(err)
		}
		env.Version = c.version
		env.WantResponse = true
		env.Deadline = time.Now().Add(5 * time.Second)
		b, _ := json.Marshal(env)
		if err := tr.cell(cell1).conn().Publish("cellcloud.api!cell1.call", b); err != nil {
			t.Fatal(err)
		}
		var resp *wire.Envelope
		timeout := time.After(5 * time.Second)
		for resp == nil {
			select {
			case r := <-answers:
				if r.InReplyTo == env.ID {
					resp = r
				}
			case <-timeout:
				t.Fatalf("case %d: no answer to %s %s", i, c.method, c.version)
			}
		}
		if len(resp.Results) != 1 || resp.Results[0].Cell != cell1 || resp.Target != api || resp.Version != c.version {
			t.Fatalf("case %d: answer %+v", i, resp)
		}
		rerr := resp.Results[0].Error
		switch {
		case c.want == nil && rerr != nil:
			t.Errorf("%s %s: error %v, want an answer", c.method, c.version, rerr)
		case c.want != nil && !errors.Is(rerr, c.want):
			t.Errorf("%s %s: error %v, want %v", c.method, c.version, rerr, c.want)
		}
	}
	// cell1 is still up and answering.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.cell(api).service().Call(ctx, cell1, methodEcho, "req-after", nil, nil); err != nil {
		t.Fatalf("call after bad versions: %v", err)
	}
}

func TestDuplicateDeliveryIsAppliedOnce(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1)
	c1 := tr.cell(cell1)
	env, err := cells.NewTargeted(api, cell1, methodNote, "req-dup", note{N: 7})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(env)

	// A plain publish without Nats-Msg-Id: the broker stores both copies,
	// as it would a redelivery after the relay lost an ack.
	nc, err := nats.Connect(c1.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var seqs []uint64
	for range 2 {
		ack, err := js.Publish(ctx, "cellcloud.api!cell1.in", body)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		if ack.Duplicate {
			t.Fatal("the broker deduplicated the copy; the test would prove nothing")
		}
		seqs = append(seqs, ack.Sequence)
	}
	if seqs[0] == seqs[1] {
		t.Fatalf("both copies got sequence %d", seqs[0])
	}

	// Both copies are consumed (the work queue empties only on ack)...
	stream, err := js.Stream(ctx, "CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "both copies to be acknowledged", func() (bool, string) {
		info, err := stream.Info(ctx)
		if err != nil {
			return false, fmt.Sprintf("stream info: %v", err)
		}
		return info.State.Msgs == 0, fmt.Sprintf("%d messages in the stream", info.State.Msgs)
	})
	// ...and the second is recognised as a repeat.
	testpoll.Eventually(t, wait, "the repeat to be ignored", func() (bool, string) {
		n := len(tr.logs.find("message already applied; ignoring the repeat", map[string]string{"msg_id": env.ID}))
		return n == 1, fmt.Sprintf("logged %d times", n)
	})

	got := tr.appliedAt(cell1)
	if len(got) != 1 || got[0].ID != env.ID || got[0].N != 7 {
		t.Fatalf("handler runs = %+v, want one of %s", got, env.ID)
	}
	if ids := c1.appliedIDs(methodNote); !slices.Equal(ids, []string{env.ID}) {
		t.Errorf("applied_messages = %v, want [%s]", ids, env.ID)
	}
}

func TestMessagesForADownNeighbourAreKeptAndDeliveredWhenItReturns(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1, cell2)
	a, c2 := tr.cell(api), tr.cell(cell2)
	c2.stopService()
	c2.stopBroker()

	const n = 5
	for i := range n {
		a.send(cell2, i)
	}
	// A neighbour that is down does not hold up the others.
	a.send(cell1, 100)
	testpoll.Eventually(t, 2*time.Second, "a message to cell1 while cell2 is down", func() (bool, string) {
		got := tr.appliedAt(cell1)
		return len(got) == 1, fmt.Sprintf("applied %+v", got)
	})
	// The relay tries, fails, and keeps every message.
	testpoll.Eventually(t, wait, "the relay to find cell2 unreachable", func() (bool, string) {
		return len(tr.logs.find("neighbour unreachable; keeping its messages", map[string]string{"cell": api, "neighbour": cell2})) > 0, "not logged"
	})
	// (cell1's message may still be in the outbox for a moment after it
	// was applied: the relay deletes it once the broker's ack is in.)
	if got := a.outboxCounts(); got[cell2] != n {
		t.Fatalf("api's outbox = %v, want %d for %s", got, n, cell2)
	}
	if got := tr.appliedAt(cell2); len(got) != 0 {
		t.Fatalf("applied while down: %+v", got)
	}

	// cell2 comes back on the same address with the same store.
	c2.startBroker()
	c2.startService()

	testpoll.Eventually(t, wait, "the kept messages to be applied", func() (bool, string) {
		got := len(tr.appliedAt(cell2))
		return got >= n, fmt.Sprintf("%d applied", got)
	})
	tr.waitOutboxesEmpty(wait)
	got := tr.appliedAt(cell2)
	if len(got) != n {
		t.Fatalf("applied %d messages, want %d: %+v", len(got), n, got)
	}
	seen := map[int]bool{}
	for _, g := range got {
		if seen[g.N] {
			t.Errorf("message %d applied twice", g.N)
		}
		seen[g.N] = true
	}
	if ids := c2.appliedIDs(methodNote); len(ids) != n {
		t.Errorf("applied_messages holds %d ids, want %d", len(ids), n)
	}
	if got := tr.appliedAt(cell1); len(got) != 1 {
		t.Errorf("cell1 applied %+v, want only its own message", got)
	}
}

// TestAMessageThatFailsInAGroupIsSettledAlone: messages waiting in a
// cell's inbox are applied together; one that its handler refuses is
// dropped on its own, and every other one is applied exactly once.
func TestAMessageThatFailsInAGroupIsSettledAlone(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1)
	a, c1 := tr.cell(api), tr.cell(cell1)
	c1.stopService() // its broker keeps what arrives meanwhile

	const n = 20
	for i := range n {
		a.send(cell1, i)
		if i == n/2 {
			svc := a.service()
			err := a.db.InTx(context.Background(), func(tx *db.Tx) error {
				return svc.Send(context.Background(), tx, cell1, methodNote, "req-bad", json.RawMessage(`"not a note"`))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	tr.waitOutboxesEmpty(wait) // all stored in cell1's inbox

	c1.startService()
	testpoll.Eventually(t, wait, "the good messages applied and the bad one dropped", func() (bool, string) {
		dropped := len(tr.logs.find("dropping a message that cannot be applied", map[string]string{"cell": cell1}))
		applied := len(tr.appliedAt(cell1))
		return dropped > 0 && applied >= n, fmt.Sprintf("%d applied, %d drops logged", applied, dropped)
	})
	got := tr.appliedAt(cell1)
	seen := map[int]int{}
	for _, g := range got {
		seen[g.N]++
	}
	for i := range n {
		if seen[i] < 1 {
			t.Errorf("message %d not applied", i)
		}
	}
	if ids := c1.appliedIDs(methodNote); len(ids) != n {
		t.Errorf("applied_messages holds %d ids, want %d (the bad message left no mark)", len(ids), n)
	}
}

// BenchmarkCallThroughThreeLevels: a call from the root to a cell two
// levels below and its answer back, each hop on its own cell's embedded
// broker (api -> api!cell1 -> api!cell1!a and back).
func BenchmarkCallThroughThreeLevels(b *testing.B) {
	tr := newTree(b, nil, api, cell1, cellA)
	root := tr.cell(api).service()
	ctx := context.Background()
	var out echo
	if err := root.Call(ctx, cellA, methodEcho, "", struct{}{}, &out); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := root.Call(ctx, cellA, methodEcho, "", struct{}{}, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func TestMessageToItselfIsAppliedInTheSendersTransaction(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1)
	c := tr.cell(cell1)
	c.send(cell1, 7)

	// Applied before Send's transaction returned: nothing queued, nothing
	// recorded against a repeat, nothing on the broker.
	got := tr.appliedAt(cell1)
	if len(got) != 1 || got[0].N != 7 {
		t.Fatalf("applied at %s: %+v, want the note at once", cell1, got)
	}
	if n := c.outboxCounts(); len(n) != 0 {
		t.Errorf("outbox holds %v, want nothing queued", n)
	}
	if ids := c.appliedIDs(methodNote); len(ids) != 0 {
		t.Errorf("applied ids %v recorded for a message that never left the transaction", ids)
	}
	if durable, _ := c.service().Published(); durable != 0 {
		t.Errorf("%d durable messages published, want 0", durable)
	}

	// The handler's error is the sender's: its transaction does not commit.
	svc := c.service()
	err := c.db.InTx(context.Background(), func(tx *db.Tx) error {
		return svc.Send(context.Background(), tx, cell1, methodNote, "req-bad", json.RawMessage(`"not a note"`))
	})
	if !errors.Is(err, wire.ErrBadMessage) {
		t.Errorf("self-send with a payload the handler refuses: err = %v, want a bad message", err)
	}
}
