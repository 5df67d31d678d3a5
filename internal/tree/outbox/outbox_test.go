package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func migrated(t *testing.T, d *db.DB) {
	t.Helper()
	for range 2 { // migrations are idempotent
		if err := d.Migrate(context.Background(), "outbox", outbox.Migrations); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
}

func envelope(id string) *wire.Envelope {
	return &wire.Envelope{ID: id, Method: "test_note", Version: wire.V1, Kind: wire.Targeted,
		Target: "api!cell1", Route: []string{"api"}, Sender: "api", Payload: json.RawMessage(`{"n":1}`)}
}

func enqueue(t *testing.T, d *db.DB, neighbour string, ids ...string) {
	t.Helper()
	err := d.InTx(context.Background(), func(tx *db.Tx) error {
		for _, id := range ids {
			if err := outbox.Enqueue(context.Background(), tx, neighbour, envelope(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
}

func TestOutboxQueuesInTheCallersTransaction(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)

		// A rolled-back transaction leaves nothing to send.
		rollback := errors.New("roll back")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := outbox.Enqueue(ctx, tx, "api!cell1", envelope("lost")); err != nil {
				return err
			}
			return rollback
		})
		if !errors.Is(err, rollback) {
			t.Fatalf("InTx = %v", err)
		}
		if n, err := outbox.Neighbours(ctx, d); err != nil || len(n) != 0 {
			t.Fatalf("after rollback: %v, %v", n, err)
		}

		enqueue(t, d, "api!cell1", "a1", "a2", "a3")
		enqueue(t, d, "api!cell2", "b1")
		enqueue(t, d, "api!cell1", "a4")
		n, err := outbox.Neighbours(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(n) != 2 || n["api!cell1"] != 4 || n["api!cell2"] != 1 {
			t.Fatalf("Neighbours = %v", n)
		}

		// Oldest first, limited, and each body is the envelope as queued.
		es, err := outbox.Pending(ctx, d, "api!cell1", 3)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i, e := range es {
			ids = append(ids, e.MsgID)
			if e.Neighbour != "api!cell1" || e.CreatedAt.IsZero() || (i > 0 && e.Seq <= es[i-1].Seq) {
				t.Errorf("entry %d: %+v", i, e)
			}
			env, err := wire.Decode(e.Body)
			if err != nil || env.ID != e.MsgID {
				t.Errorf("entry %d body: %+v, %v", i, env, err)
			}
		}
		if strings.Join(ids, ",") != "a1,a2,a3" {
			t.Errorf("Pending = %v, want a1,a2,a3", ids)
		}

		// Delete removes exactly the relayed entries.
		if err := outbox.Delete(ctx, d, []int64{es[0].Seq, es[1].Seq}); err != nil {
			t.Fatal(err)
		}
		es, err = outbox.Pending(ctx, d, "api!cell1", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 || es[0].MsgID != "a3" || es[1].MsgID != "a4" {
			t.Errorf("after delete: %+v", es)
		}
		if err := outbox.Delete(ctx, d, nil); err != nil {
			t.Errorf("Delete(nil): %v", err)
		}
		if n, _ := outbox.Neighbours(ctx, d); n["api!cell2"] != 1 {
			t.Errorf("another neighbour's queue changed: %v", n)
		}
	})
}

// TestUnsentReadsEveryNeighbourAtOnceOrNothing: Unsent returns what
// Neighbours and Pending would, for every neighbour in one statement,
// while all that is queued and not sent fits in its limit; a message
// marked sent is not among them. Past the limit it returns nothing and
// says so.
func TestUnsentReadsEveryNeighbourAtOnceOrNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		enqueue(t, d, "api!cell1", "a1", "a2")
		enqueue(t, d, "api!cell2", "b1")
		enqueue(t, d, "api!cell1", "a3")
		enqueue(t, d, "api", "sent")
		kept, err := outbox.Pending(ctx, d, "api", 10)
		if err != nil || len(kept) != 1 {
			t.Fatalf("Pending(api) = %+v, %v", kept, err)
		}
		if err := outbox.MarkSent(ctx, d, []int64{kept[0].Seq}, time.Now()); err != nil {
			t.Fatal(err)
		}

		got, complete, err := outbox.Unsent(ctx, d, 4)
		if err != nil || !complete {
			t.Fatalf("Unsent(4) complete=%v, %v; want the 4 unsent", complete, err)
		}
		counts, err := outbox.Neighbours(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(counts) {
			t.Errorf("Unsent has %d neighbours, Neighbours %v", len(got), counts)
		}
		for nb, n := range counts {
			want, err := outbox.Pending(ctx, d, nb, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(want) != n || !reflect.DeepEqual(got[nb], want) {
				t.Errorf("Unsent[%s] = %+v, want %+v (count %d)", nb, got[nb], want, n)
			}
		}
		var ids []string
		for _, e := range got["api!cell1"] {
			ids = append(ids, e.MsgID)
		}
		if want := []string{"a1", "a2", "a3"}; !slices.Equal(ids, want) {
			t.Errorf("Unsent[api!cell1] ids = %v, want %v, oldest first", ids, want)
		}

		got, complete, err = outbox.Unsent(ctx, d, 3)
		if err != nil || complete || got != nil {
			t.Fatalf("Unsent(3) = %v, complete=%v, %v; want nothing, not complete", got, complete, err)
		}
	})
}

func TestOutboxDeleteManyAndTooBig(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		ids := make([]string, 1203) // more than one DELETE's worth
		for i := range ids {
			ids[i] = fmt.Sprintf("m%04d", i)
		}
		enqueue(t, d, "api", ids...)
		es, err := outbox.Pending(ctx, d, "api", 2000)
		if err != nil || len(es) != len(ids) {
			t.Fatalf("Pending = %d entries, %v", len(es), err)
		}
		seqs := make([]int64, 0, len(es)-1)
		for _, e := range es[:len(es)-1] {
			seqs = append(seqs, e.Seq)
		}
		if err := outbox.Delete(ctx, d, seqs); err != nil {
			t.Fatal(err)
		}
		left, err := outbox.Pending(ctx, d, "api", 10)
		if err != nil || len(left) != 1 || left[0].MsgID != ids[len(ids)-1] {
			t.Fatalf("left %+v, %v", left, err)
		}

		big := envelope("big")
		big.Payload = json.RawMessage(`"` + strings.Repeat("x", wire.MaxSize) + `"`)
		err = d.InTx(ctx, func(tx *db.Tx) error { return outbox.Enqueue(ctx, tx, "api", big) })
		if err == nil {
			t.Fatal("an envelope over wire.MaxSize was queued")
		}
	})
}

func TestMarkAppliedOncePerID(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		mark := func(id string) bool {
			t.Helper()
			var fresh bool
			err := d.InTx(ctx, func(tx *db.Tx) error {
				var err error
				fresh, err = outbox.MarkApplied(ctx, tx, id, "test_note")
				return err
			})
			if err != nil {
				t.Fatalf("mark %s: %v", id, err)
			}
			return fresh
		}
		if !mark("x") {
			t.Fatal("first mark of x was not fresh")
		}
		if mark("x") {
			t.Fatal("second mark of x was fresh")
		}
		if !mark("y") {
			t.Fatal("first mark of y was not fresh")
		}

		// A mark in a rolled-back transaction does not count.
		rollback := errors.New("roll back")
		_ = d.InTx(ctx, func(tx *db.Tx) error {
			if fresh, err := outbox.MarkApplied(ctx, tx, "z", "test_note"); err != nil || !fresh {
				t.Errorf("mark z: %v, %v", fresh, err)
			}
			return rollback
		})
		if !mark("z") {
			t.Fatal("z was remembered from a rolled-back transaction")
		}

		// Pruning forgets old ids only.
		if n, err := outbox.PruneApplied(ctx, d, time.Now().Add(-time.Hour)); err != nil || n != 0 {
			t.Fatalf("prune old: %d, %v", n, err)
		}
		if mark("x") {
			t.Fatal("x was forgotten by a prune of older ids")
		}
		if n, err := outbox.PruneApplied(ctx, d, time.Now().Add(time.Second)); err != nil || n != 3 {
			t.Fatalf("prune all: %d, %v; want 3", n, err)
		}
		if !mark("x") {
			t.Fatal("x was remembered after pruning")
		}
	})
}

// TestMarkAppliedManyOncePerID: one statement records a batch's ids and
// says which are fresh: not an id applied before, nor a repeat of an
// earlier id in the same batch; a batch rolled back records nothing.
func TestMarkAppliedManyOncePerID(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		mark := func(ids ...string) []bool {
			t.Helper()
			ms := make([]outbox.Applied, len(ids))
			for i, id := range ids {
				ms[i] = outbox.Applied{ID: id, Method: "test_note"}
			}
			var fresh []bool
			if err := d.InTx(ctx, func(tx *db.Tx) error {
				var err error
				fresh, err = outbox.MarkAppliedMany(ctx, tx, ms)
				return err
			}); err != nil {
				t.Fatalf("mark %v: %v", ids, err)
			}
			return fresh
		}
		if got := mark(); len(got) != 0 {
			t.Errorf("mark of none = %v", got)
		}
		if !mark("a")[0] {
			t.Fatal("first mark of a was not fresh")
		}
		if got, want := mark("b", "a", "c", "b", "d"), []bool{true, false, true, false, true}; !slices.Equal(got, want) {
			t.Fatalf("mark b a c b d = %v, want %v", got, want)
		}
		rollback := errors.New("roll back")
		_ = d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := outbox.MarkAppliedMany(ctx, tx, []outbox.Applied{{ID: "e", Method: "test_note"}}); err != nil {
				t.Errorf("mark e: %v", err)
			}
			return rollback
		})
		if got, want := mark("e", "d"), []bool{true, false}; !slices.Equal(got, want) {
			t.Fatalf("mark e d after a rolled-back mark of e = %v, want %v", got, want)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM applied_messages WHERE method = 'test_note'`).Scan(&n); err != nil || n != 5 {
			t.Fatalf("%d applied ids (%v), want 5", n, err)
		}
	})
}

// TestTakeStaleTakesEachMessageOnce: TakeStale removes and returns the
// messages of one method for one neighbour queued before a time, oldest
// first, and nothing else. A message the relay deleted first (its broker
// stored it) is not taken; one taken is not there for the relay to delete
// (Delete of it is a no-op), and a rolled-back take leaves it queued.
func TestTakeStaleTakesEachMessageOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		enqueue(t, d, "api!cell1", "a", "b", "c")
		enqueue(t, d, "api!cell2", "other-cell")
		// Those were queued a minute ago.
		if _, err := d.Exec(ctx, `UPDATE outbox SET created_at = created_at - 60000000`); err != nil {
			t.Fatal(err)
		}
		cut := time.Now().Add(-30 * time.Second)
		enqueue(t, d, "api!cell1", "young")
		err := d.InTx(ctx, func(tx *db.Tx) error {
			return outbox.Enqueue(ctx, tx, "api!cell1", &wire.Envelope{ID: "build", Method: wire.MethodBuildInstances, Version: wire.V1,
				Kind: wire.Targeted, Target: "api!cell1", Route: []string{"api"}, Sender: "api", Payload: json.RawMessage(`{}`)})
		})
		if err != nil {
			t.Fatal(err)
		}
		pending, err := outbox.Pending(ctx, d, "api!cell1", 10)
		if err != nil {
			t.Fatal(err)
		}
		// The relay stored "b" on the neighbour's broker and deletes it.
		if err := outbox.Delete(ctx, d, []int64{pending[1].Seq}); err != nil {
			t.Fatal(err)
		}
		take := func(method string, before time.Time, rollback bool) []string {
			t.Helper()
			var ids []string
			errRollback := errors.New("roll back")
			err := d.InTx(ctx, func(tx *db.Tx) error {
				es, err := outbox.TakeStale(ctx, tx, "api!cell1", method, before, time.Time{})
				for _, e := range es {
					ids = append(ids, e.MsgID)
				}
				if err == nil && rollback {
					return errRollback
				}
				return err
			})
			if err != nil && !errors.Is(err, errRollback) {
				t.Fatal(err)
			}
			return ids
		}
		if got := take("test_note", cut, true); strings.Join(got, ",") != "a,c" {
			t.Errorf("take (rolled back) = %v, want a,c", got)
		}
		if got := take("test_note", cut, false); strings.Join(got, ",") != "a,c" {
			t.Errorf("take = %v, want a,c: the old ones of that method for that cell, not b (relayed)", got)
		}
		if got := take("test_note", cut, false); len(got) != 0 {
			t.Errorf("a second take = %v, want nothing", got)
		}
		// The relay's late delete of a taken message changes nothing.
		if err := outbox.Delete(ctx, d, []int64{pending[0].Seq}); err != nil {
			t.Fatal(err)
		}
		left, err := outbox.Pending(ctx, d, "api!cell1", 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range left {
			ids = append(ids, e.MsgID)
		}
		if strings.Join(ids, ",") != "young,build" {
			t.Errorf("left queued: %v, want young,build", ids)
		}
		if got := take(wire.MethodBuildInstances, time.Now().Add(time.Second), false); strings.Join(got, ",") != "build" {
			t.Errorf("take of builds = %v, want build", got)
		}
	})
}

// TestSentMessagesAreKeptNotRelayed: a message marked sent stays in the
// outbox but is neither pending nor counted, so the relay never publishes
// it again; PruneSent removes, in one statement for several neighbours,
// those sent before each neighbour's bound; TakeStale takes sent ones only
// when asked to (sentBefore), and unsent ones by their queue time. A late
// MarkSent of a message taken changes nothing.
func TestSentMessagesAreKeptNotRelayed(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		enqueue(t, d, "api!cell1", "a", "b", "c")
		enqueue(t, d, "api!cell2", "x", "y")
		p1, err := outbox.Pending(ctx, d, "api!cell1", 10)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := outbox.Pending(ctx, d, "api!cell2", 10)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now().Add(-time.Minute)
		if err := outbox.MarkSent(ctx, d, []int64{p1[0].Seq, p1[1].Seq}, t0); err != nil {
			t.Fatal(err)
		}
		if err := outbox.MarkSent(ctx, d, []int64{p2[0].Seq}, t0.Add(10*time.Second)); err != nil {
			t.Fatal(err)
		}
		ids := func(nb string) string {
			t.Helper()
			es, err := outbox.Pending(ctx, d, nb, 10)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range es {
				out = append(out, e.MsgID)
			}
			return strings.Join(out, ",")
		}
		if got := ids("api!cell1"); got != "c" {
			t.Errorf("pending for cell1 = %q, want c (a and b are sent)", got)
		}
		if n, err := outbox.Neighbours(ctx, d); err != nil || n["api!cell1"] != 1 || n["api!cell2"] != 1 {
			t.Errorf("Neighbours = %v, %v; want one unsent message each", n, err)
		}
		total := func() int {
			t.Helper()
			var n int
			if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM outbox`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if got := total(); got != 5 {
			t.Fatalf("%d rows, want 5 (sent ones kept)", got)
		}

		// Not sent before the bounds: nothing pruned.
		if n, err := outbox.PruneSent(ctx, d, map[string]time.Time{"api!cell1": t0, "api!cell2": t0.Add(10 * time.Second)}); err != nil || n != 0 {
			t.Fatalf("prune at the send times = %d, %v; want 0", n, err)
		}
		// cell2's sent message is past its bound, cell1's are not.
		if n, err := outbox.PruneSent(ctx, d, map[string]time.Time{"api!cell1": t0, "api!cell2": t0.Add(11 * time.Second)}); err != nil || n != 1 {
			t.Fatalf("prune = %d, %v; want 1", n, err)
		}
		if n, err := outbox.PruneSent(ctx, d, nil); err != nil || n != 0 {
			t.Fatalf("prune of nothing = %d, %v", n, err)
		}
		if got := total(); got != 4 || ids("api!cell2") != "y" {
			t.Fatalf("%d rows, cell2 pending %q; want 4 and y (an unsent message is never pruned)", got, ids("api!cell2"))
		}

		take := func(before, sentBefore time.Time) string {
			t.Helper()
			var out []string
			err := d.InTx(ctx, func(tx *db.Tx) error {
				es, err := outbox.TakeStale(ctx, tx, "api!cell1", "test_note", before, sentBefore)
				for _, e := range es {
					out = append(out, e.MsgID)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(out, ",")
		}
		// Sent ones are not taken without sentBefore, however old.
		if got := take(time.Now().Add(-time.Hour), time.Time{}); got != "" {
			t.Errorf("take of old unsent = %q, want nothing", got)
		}
		// Sent ones only when sent before sentBefore; c is too young.
		if got := take(time.Now().Add(-time.Hour), t0.Add(time.Second)); got != "a,b" {
			t.Errorf("take of sent = %q, want a,b", got)
		}
		if got := take(time.Now().Add(time.Second), time.Time{}); got != "c" {
			t.Errorf("take of unsent = %q, want c", got)
		}
		// The relay's late MarkSent of a taken message changes nothing.
		if err := outbox.MarkSent(ctx, d, []int64{p1[2].Seq}, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := total(); got != 1 {
			t.Errorf("%d rows, want 1 (cell2's y)", got)
		}
	})
}
