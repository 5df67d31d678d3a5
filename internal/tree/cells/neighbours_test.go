package cells_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestCellsTableChangesApplyWithoutARestart: removing a child from a
// running cell's table cuts the route to it; adding it back restores it;
// neither restarts anything.
func TestCellsTableChangesApplyWithoutARestart(t *testing.T) {
	t.Parallel()
	tr := newTree(t, nil, api, cell1, cell2)
	parent := tr.cell(api)
	svc := parent.service()
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return svc.Call(ctx, cell2, methodEcho, "req-table", nil, nil)
	}
	if err := call(); err != nil {
		t.Fatalf("call before the change: %v", err)
	}
	if err := cells.RemoveNeighbour(context.Background(), parent.db, cell2); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "the removed child to become unreachable", func() (bool, string) {
		err := call()
		return errors.Is(err, wire.ErrNoRoute), fmt.Sprintf("call: %v", err)
	})
	if err := cells.AddNeighbour(context.Background(), parent.db, api, cells.Neighbour{
		Path: cell2, Relation: cells.Child, BrokerURL: tr.cell(cell2).url(), WeightScale: 1}); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, fmt.Sprintf("%s to be reachable again", cell2), func() (bool, string) {
		err := call()
		return err == nil, fmt.Sprintf("call: %v", err)
	})
	for _, n := range svc.Neighbours() {
		if n.Path == cell2 && n.Relation != cells.Child {
			t.Errorf("%s came back as %s", cell2, n.Relation)
		}
	}
}
