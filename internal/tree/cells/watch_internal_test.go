package cells

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestInboxDeliveredToNobodyIsHadAgain: the broker counts a message as
// delivered to the cell (here a fetch that never acknowledges, as a
// delivery lost with a stopped server of a cluster), while the running
// cell never got it. The cell has it again, and applies it once, within a
// few seconds rather than after its ack wait (an hour here).
func TestInboxDeliveredToNobodyIsHadAgain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	js, nc := testJS(t)
	d := dbtest.Open(t, "sqlite")
	if err := d.Migrate(ctx, "outbox", outbox.Migrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, "cells", Migrations); err != nil {
		t.Fatal(err)
	}
	const path = "api"
	var logs logBuf
	s, err := New(Config{Path: path, DB: d, Conn: nc, Logger: logs.logger(), InboxAckWait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var applied atomic.Int32
	s.HandleCast("test_note", 1, 0, func(context.Context, *db.Tx, *wire.Envelope) error {
		applied.Add(1)
		return nil
	})
	cons, err := s.setupInbox(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env, err := NewTargeted(path, path, "test_note", "req-1", struct{}{})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(env)
	if _, err := js.Publish(ctx, s.names.In(path), body); err != nil {
		t.Fatal(err)
	}
	// Delivered to nobody: taken, never acknowledged nor refused.
	b, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range b.Messages() {
		n++
	}
	if n != 1 {
		t.Fatalf("fetched %d messages: %v", n, b.Error())
	}

	// The service's loops, as Start runs them (Start itself would make
	// the consumer anew at once, seeing the message awaiting its ack).
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.goLoop("inbox", func(ctx context.Context) { s.consumeInbox(ctx, cons) })
	s.goLoop("inbox watch", func(ctx context.Context) { s.watchInbox(ctx, s.inboxStream) })
	defer func() { s.cancel(); s.wg.Wait() }()

	testpoll.Eventually(t, 30*time.Second, "the message delivered to nobody applied", func() (bool, string) {
		return applied.Load() == 1, "not yet"
	})
	s.cancel()
	s.wg.Wait()
	if got := applied.Load(); got != 1 {
		t.Errorf("applied %d times, want once", got)
	}
	var msgs uint64
	if info, err := s.inboxStream.Info(ctx); err == nil {
		msgs = info.State.Msgs
	}
	if msgs != 0 {
		t.Errorf("%d messages left in the inbox", msgs)
	}
}
