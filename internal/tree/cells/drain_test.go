package cells_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// TestMovedCellGetsWhatItsOldBrokerHeld: cell1 moves from its broker A to
// a new broker B, as docs/operations.md tells (its process stops, starts
// on B, and its parent's cells table is pointed at B). The notes the
// parent sent while cell1 was down sit in cell1's stream on A; the drain
// moves them to B, where cell1 applies each once, and deletes A's stream.
//
//   - The receiver is down: notes 1-5 wait on A; cell1 is stopped again
//     while they are drained, and applies them when it is back.
//   - The sender dies halfway: note 1 was published to B before a drain
//     died (copied by hand here, under its message id), and is still on
//     A: the next drain moves it again, and it is applied once.
//   - A message sent to A after the drain (the parent's table still names
//     A): A refuses it, the parent keeps it, and delivers it to B once
//     its table is pointed there.
//   - A second drain finds nothing to do.
func TestMovedCellGetsWhatItsOldBrokerHeld(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1)
	tr.delivered(api, cell1, 100)
	c1 := tr.cell(cell1)
	c1.stopService()
	for n := 1; n <= 5; n++ {
		tr.cell(api).send(cell1, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	jsA, err := jetstream.New(c1.conn())
	if err != nil {
		t.Fatal(err)
	}
	oldStream, err := jsA.Stream(ctx, "CELLIN_api_cell1")
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "notes 1-5 in cell1's stream on A", func() (bool, string) {
		info, err := oldStream.Info(ctx)
		if err != nil {
			return false, err.Error()
		}
		return info.State.Msgs == 5, fmt.Sprintf("%d messages", info.State.Msgs)
	})
	first, err := oldStream.GetMsg(ctx, 0, jetstream.WithGetMsgSubject(">"))
	if err != nil {
		t.Fatal(err)
	}

	// Broker A stays up (an external broker the cell leaves); cell1's
	// process moves to broker B.
	c1.mu.Lock()
	a, ncA := c1.broker, c1.nc
	c1.broker, c1.nc = nil, nil
	c1.mu.Unlock()
	t.Cleanup(func() { ncA.Close(); a.Shutdown() })
	c1.storeDir = filepath.Join(t.TempDir(), "broker-b")
	c1.listen = "127.0.0.1:0"
	c1.startBroker()
	c1.startService()
	c1.stopService() // down while the drain runs
	jsB, err := jetstream.New(c1.conn())
	if err != nil {
		t.Fatal(err)
	}
	// A drain that died after publishing note 1 to B.
	dup := nats.NewMsg("cellcloud.api!cell1.in")
	dup.Data, dup.Header = first.Data, first.Header
	if _, err := jsB.PublishMsg(ctx, dup); err != nil {
		t.Fatal(err)
	}

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	moved, err := cells.DrainInbox(ctx, jsA, jsB, cells.Names{}, cell1, log)
	if err != nil {
		t.Fatal(err)
	}
	if moved != 5 {
		t.Errorf("moved %d messages, want 5", moved)
	}
	if _, err := jsA.Stream(ctx, "CELLIN_api_cell1"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("the old stream is still on A: %v", err)
	}
	if moved, err := cells.DrainInbox(ctx, jsA, jsB, cells.Names{}, cell1, log); err != nil || moved != 0 {
		t.Errorf("second drain: moved %d, %v", moved, err)
	}

	// The parent still names A: note 6 cannot go there now.
	tr.cell(api).send(cell1, 6)
	testpoll.Eventually(t, wait, "the parent to keep note 6", func() (bool, string) {
		n := len(tr.logs.find("neighbour unreachable; keeping its messages", map[string]string{"neighbour": cell1}))
		return n > 0, "not yet"
	})
	c1.startService()
	if err := cells.AddNeighbour(ctx, tr.cell(api).db, api, cells.Neighbour{Path: cell1, Relation: cells.Child, BrokerURL: c1.url(), WeightScale: 1}); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "notes 1-6 applied at cell1", func() (bool, string) {
		got := map[int]int{}
		for _, a := range tr.appliedAt(cell1) {
			got[a.N]++
		}
		return len(got) == 7, fmt.Sprint(got)
	})
	tr.waitOutboxesEmpty(wait)
	got := map[int]int{}
	for _, a := range tr.appliedAt(cell1) {
		got[a.N]++
	}
	for n := 1; n <= 6; n++ {
		if got[n] != 1 {
			t.Errorf("note %d applied %d times, want once", n, got[n])
		}
	}
}

// TestDrainRefusesTheSameBrokerAndAnotherTreesStream: a drain whose old
// and new broker are one would delete the cell's live stream; a stream
// whose metadata names another tree is not the cell's to drain.
func TestDrainRefusesTheSameBrokerAndAnotherTreesStream(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	js, err := jetstream.New(tr.cell(cell1).conn())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := cells.DrainInbox(ctx, js, js, cells.Names{}, cell1, log); err == nil {
		t.Fatal("a drain from a broker into itself was accepted")
	}
	if _, err := js.Stream(ctx, "CELLIN_api_cell1"); err != nil {
		t.Fatalf("the refused drain touched the live stream: %v", err)
	}
	other, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: "other", StoreDir: filepath.Join(t.TempDir(), "other")})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Shutdown()
	nc, err := nats.Connect(other.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	jsO, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jsO.CreateStream(ctx, jetstream.StreamConfig{Name: "CELLIN_api_cell1", Subjects: []string{"x.in"}, Metadata: map[string]string{"cellcloud_prefix": "tree-b"}}); err != nil {
		t.Fatal(err)
	}
	var conflict *cells.StreamConflictError
	if _, err := cells.DrainInbox(ctx, jsO, js, cells.Names{}, cell1, log); !errors.As(err, &conflict) || conflict.Have != "tree-b" {
		t.Fatalf("another tree's stream: %v", err)
	}
	if _, err := jsO.Stream(ctx, "CELLIN_api_cell1"); err != nil {
		t.Errorf("another tree's stream was touched: %v", err)
	}
}
