package cells_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// TestInboxTakenByADeadProcessIsDeliveredAtRestart: a cell's process takes
// a durable message from its broker and dies before acknowledging it (the
// broker, an external one, lives on). When the cell starts again the
// message is delivered at once, not when the broker's ack wait (an hour
// here) runs out; a message applied already before the death would be
// skipped by its applied id (TestDuplicateDeliveryIsAppliedOnce: the inbox's
// at-most-once).
func TestInboxTakenByADeadProcessIsDeliveredAtRestart(t *testing.T) {
	t.Parallel()
	tr := newTreeSetup(t, map[string]func(*cells.Config){
		cell1: func(c *cells.Config) { c.InboxAckWait = time.Hour },
	}, nil, api, cell1)
	tr.delivered(api, cell1, 1)

	c1 := tr.cell(cell1)
	c1.stopService()
	tr.cell(api).send(cell1, 2)
	js, err := jetstream.New(c1.conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stream, err := js.Stream(ctx, "CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	// The dead process's take: delivered, never acknowledged.
	cons, err := stream.Consumer(ctx, "cells")
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "note 2 taken from the inbox and not acknowledged", func() (bool, string) {
		b, err := cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for range b.Messages() {
			n++
		}
		return n == 1, fmt.Sprintf("%d fetched (%v)", n, b.Error())
	})

	c1.startService()
	testpoll.Eventually(t, wait, "note 2 applied after the restart", func() (bool, string) {
		for _, a := range tr.appliedAt(cell1) {
			if a.N == 2 {
				return true, ""
			}
		}
		return false, fmt.Sprint(tr.appliedAt(cell1))
	})
	if got := len(tr.appliedAt(cell1)); got != 2 {
		t.Errorf("%d notes applied at %s, want 2 (each once)", got, cell1)
	}
}
