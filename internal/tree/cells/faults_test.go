package cells_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// TestInjectedFaultsAreAppliedOnce runs a tree whose every relay publishes
// each message twice (the copy under another broker message id, so the
// broker keeps it), shuffles every batch and holds batches back: each
// message is still applied exactly once, at its target, through a routing
// cell in between; the copies are recognised as repeats.
func TestInjectedFaultsAreAppliedOnce(t *testing.T) {
	t.Parallel()
	faulty := func(c *cells.Config) {
		c.Faults = &cells.Faults{Duplicate: 1, Reorder: 1, Delay: 1, MaxDelay: 20 * time.Millisecond, Seed: 7}
	}
	tr := newTree(t, map[string]func(*cells.Config){api: faulty, cell1: faulty, cellA: faulty}, api, cell1, cellA)
	const n = 20
	for i := range n {
		tr.cell(api).send(cellA, i)
		tr.cell(cellA).send(api, n+i)
	}
	testpoll.Eventually(t, wait, "every message at its target", func() (bool, string) {
		return len(tr.appliedAt(cellA)) >= n && len(tr.appliedAt(api)) >= n,
			fmt.Sprintf("%d at %s, %d at %s", len(tr.appliedAt(cellA)), cellA, len(tr.appliedAt(api)), api)
	})
	tr.waitOutboxesEmpty(wait)
	// The copies were sent, and the receivers saw them as repeats.
	testpoll.Eventually(t, wait, "the copies to be ignored as repeats", func() (bool, string) {
		dups := len(tr.logs.find("message already applied; ignoring the repeat", nil))
		return dups >= 2*n, fmt.Sprintf("%d repeats ignored", dups)
	})
	if len(tr.logs.find("fault injection: duplicating messages", nil)) == 0 {
		t.Error("no duplication was logged")
	}

	for _, target := range []string{cellA, api} {
		var got []int
		for _, a := range tr.appliedAt(target) {
			got = append(got, a.N)
		}
		slices.Sort(got)
		if len(slices.Compact(slices.Clone(got))) != len(got) || len(got) != n {
			t.Errorf("applied at %s: %v, want each of %d messages once", target, got, n)
		}
	}
	if len(tr.appliedAt(cell1)) != 0 {
		t.Errorf("the routing cell applied %v", tr.appliedAt(cell1))
	}
}

func TestFaultInjectionIsValidated(t *testing.T) {
	tr := newTree(t, nil, api)
	_, err := cells.New(cells.Config{Path: api, DB: tr.cell(api).db, Conn: tr.cell(api).conn(), Faults: &cells.Faults{Duplicate: 1.5}})
	if err == nil {
		t.Error("a duplicate probability of 1.5 was accepted")
	}
}
