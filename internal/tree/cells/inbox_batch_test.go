package cells_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// methodCounted is durable: its handler writes a row in the cell's own
// database, in the message's transaction, so that what a rolled-back
// attempt did is undone with it.
const methodCounted = "test_counted"

// TestInboxBatchAppliesEachMessageOnce: messages waiting in a cell's inbox
// when it starts are applied together, their ids recorded as applied in
// one statement. In that batch a message applied before is skipped, a
// message delivered twice takes effect once, and a message whose handler
// fails is undone alone, with its record of being applied: it is retried
// after its delay and applied then, once, while the others commit at once.
// (A handler that fails only in the batch succeeds in the batch's second
// attempt, each message under its own savepoint.)
func TestInboxBatchAppliesEachMessageOnce(t *testing.T) {
	t.Parallel()
	var failures atomic.Int32
	tr := newTreeSetup(t, nil, map[string]func(*cells.Service){
		cell1: func(s *cells.Service) {
			s.HandleCast(methodCounted, 1, 0, func(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
				var n note
				if err := json.Unmarshal(env.Payload, &n); err != nil {
					return wire.Errorf(wire.CodeBadMessage, "%v", err)
				}
				if _, err := tx.Exec(ctx, `INSERT INTO counted (msg_id, n) VALUES (?, ?)`, env.ID, n.N); err != nil {
					return err
				}
				// Note 3 fails in the batch and again alone under its
				// savepoint; its redelivery succeeds.
				if n.N == 3 && failures.Add(1) <= 2 {
					return errors.New("note 3 fails twice")
				}
				return nil
			})
		},
	}, api, cell1)
	c1 := tr.cell(cell1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if _, err := c1.db.Exec(ctx, `CREATE TABLE counted (msg_id TEXT NOT NULL, n INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	c1.stopService()

	envs := make(map[int]*wire.Envelope)
	for n := 1; n <= 5; n++ {
		env, err := cells.NewTargeted(api, cell1, methodCounted, fmt.Sprintf("req-batch-%d", n), note{N: n})
		if err != nil {
			t.Fatal(err)
		}
		envs[n] = env
	}
	// Note 4 was applied before (by a process that died before its ack).
	if err := c1.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := outbox.MarkApplied(ctx, tx, envs[4].ID, methodCounted)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Plain publishes, without Nats-Msg-Id: the broker keeps both copies of
	// note 2, as it would a redelivery.
	js, err := jetstream.New(c1.conn())
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, "CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	// deliver publishes notes while the cell's service is down, starts it,
	// and waits until its inbox is empty and what must have run ran.
	deliver := func(ns []int, done func() bool) {
		t.Helper()
		c1.stopService()
		for _, n := range ns {
			body, _ := json.Marshal(envs[n])
			if _, err := js.Publish(ctx, "cellcloud.api!cell1.in", body); err != nil {
				t.Fatalf("publish note %d: %v", n, err)
			}
		}
		c1.startService()
		testpoll.Eventually(t, wait, fmt.Sprintf("notes %v acknowledged", ns), func() (bool, string) {
			info, err := stream.Info(ctx)
			if err != nil {
				return false, fmt.Sprintf("stream info: %v", err)
			}
			return info.State.Msgs == 0 && done(), fmt.Sprintf("%d messages in the stream, note 3 run %d times", info.State.Msgs, failures.Load())
		})
	}
	// A batch that applies: one statement records its ids.
	deliver([]int{1, 2, 2, 4}, func() bool { return true })
	if got := counted(t, c1.db); !slices.Equal(got, []int{1, 2}) {
		t.Errorf("after the first batch, notes that took effect = %v, want [1 2] (each once; 4 was applied before)", got)
	}
	// A batch where one fails: it runs again, each under its savepoint.
	deliver([]int{3, 5}, func() bool { return failures.Load() >= 3 })

	got := counted(t, c1.db)
	if want := []int{1, 2, 3, 5}; !slices.Equal(got, want) {
		t.Errorf("notes that took effect = %v, want %v (each once; 4 was applied before)", got, want)
	}
	var want []string
	for _, env := range envs {
		want = append(want, env.ID)
	}
	slices.Sort(want)
	if ids := c1.appliedIDs(methodCounted); !slices.Equal(ids, want) {
		t.Errorf("applied_messages = %v, want %v", ids, want)
	}
	if n := len(tr.logs.find("applying a message failed; it will be retried", map[string]string{"msg_id": envs[3].ID})); n != 1 {
		t.Errorf("note 3's failure logged %d times, want 1", n)
	}
}

// counted returns the notes whose methodCounted handler took effect, in
// order.
func counted(t *testing.T, d *db.DB) []int {
	t.Helper()
	rows, err := d.Query(context.Background(), `SELECT n FROM counted ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestRelayBacklogLargerThanABatch: more messages queued than the relay
// reads at once (a burst, and a neighbour whose service was down) are all
// relayed, each applied once and in order per sender, to both neighbours:
// the relay reads them neighbour by neighbour while the backlog lasts and
// in one statement again once it is gone (a message sent afterwards
// arrives too).
func TestRelayBacklogLargerThanABatch(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1, cell2)
	root := tr.cell(api)
	tr.cell(cell2).stopService()
	const burst = 700 // to each child: 1,400 queued, over the relay's 512
	svc := root.service()
	ctx := context.Background()
	if err := root.db.InTx(ctx, func(tx *db.Tx) error {
		for n := range burst {
			for _, to := range []string{cell1, cell2} {
				if err := svc.Send(ctx, tx, to, methodNote, fmt.Sprintf("req-burst-%d", n), note{N: n}); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	notes := func(cell string) []int {
		var ns []int
		for _, a := range tr.appliedAt(cell) {
			ns = append(ns, a.N)
		}
		return ns
	}
	testpoll.Eventually(t, wait, "the burst applied at "+cell1, func() (bool, string) {
		return len(notes(cell1)) >= burst, fmt.Sprintf("%d of %d", len(notes(cell1)), burst)
	})
	tr.cell(cell2).startService()
	for _, cell := range []string{cell1, cell2} {
		testpoll.Eventually(t, wait, "the burst applied at "+cell, func() (bool, string) {
			return len(notes(cell)) >= burst, fmt.Sprintf("%d of %d", len(notes(cell)), burst)
		})
	}
	tr.delivered(api, cell2, burst)
	tr.waitOutboxesEmpty(wait)
	for _, cell := range []string{cell1, cell2} {
		got := notes(cell)
		if cell == cell2 {
			got = slices.DeleteFunc(got, func(n int) bool { return n == burst })
		}
		want := make([]int, burst)
		for n := range want {
			want[n] = n
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s applied %d notes, want 0..%d each once, in order", cell, len(got), burst-1)
		}
	}
}
