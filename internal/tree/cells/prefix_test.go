package cells_test

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// TestTreeUnderItsOwnPrefix: a tree whose cells all have the prefix
// "tree-b" sends durable messages both ways under it (the relay publishes
// into the neighbour's inbox under the tree's prefix), in streams named by
// it; the default names are not used. A clean restart keeps the inbox
// consumer (nothing was left unacknowledged), and a message sent while
// the receiver was down arrives, once, when it is back.
func TestTreeUnderItsOwnPrefix(t *testing.T) {
	t.Parallel()
	prefixed := func(c *cells.Config) { c.Prefix = "tree-b" }
	tr := newTree(t, map[string]func(*cells.Config){api: prefixed, cell1: prefixed}, api, cell1)
	tr.delivered(api, cell1, 1)
	tr.delivered(cell1, api, 2)

	c1 := tr.cell(cell1)
	js, err := jetstream.New(c1.conn())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	stream, err := js.Stream(ctx, "tree-b_CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	if subj := stream.CachedInfo().Config.Subjects; len(subj) != 1 || subj[0] != "tree-b.api!cell1.in" {
		t.Errorf("subjects %v", subj)
	}
	if _, err := js.Stream(ctx, "CELLIN_api_cell1"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the default stream name is in use: %v", err)
	}
	cons, err := stream.Consumer(ctx, "cells")
	if err != nil {
		t.Fatal(err)
	}
	created := cons.CachedInfo().Created

	c1.stopService()
	c1.startService()
	cons, err = stream.Consumer(ctx, "cells")
	if err != nil {
		t.Fatal(err)
	}
	if !cons.CachedInfo().Created.Equal(created) {
		t.Errorf("a clean restart made the inbox consumer anew (created %v, was %v)", cons.CachedInfo().Created, created)
	}

	// The receiver is down: the message waits in the stream (or, taken
	// by the stopped process's last pull request, is delivered again at
	// the start, when the consumer is made anew).
	c1.stopService()
	tr.cell(api).send(cell1, 3)
	c1.startService()
	tr.delivered(api, cell1, 4)
	got := map[int]int{}
	for _, a := range tr.appliedAt(cell1) {
		got[a.N]++
	}
	if got[1] != 1 || got[3] != 1 || got[4] != 1 || len(got) != 3 {
		t.Errorf("applied at %s: %v, want notes 1, 3 and 4 once each", cell1, got)
	}
}
