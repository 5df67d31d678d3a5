package cells_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// neighbourRow reads one row of a cell's cells table.
func neighbourRow(t *testing.T, c *testCell, path string) cells.Neighbour {
	t.Helper()
	ns, err := cells.ListNeighbours(context.Background(), c.db)
	if err != nil {
		t.Fatalf("%s: list neighbours: %v", c.path, err)
	}
	for _, n := range ns {
		if n.Path == path {
			return n
		}
	}
	t.Fatalf("%s: no row for %s", c.path, path)
	return cells.Neighbour{}
}

// capacityFunc is a cell's own hosts, as a test sizes them.
type capacityFunc func() capacity.Report

func (f capacityFunc) Capacity(context.Context, cells.Querier) (capacity.Report, error) {
	return f(), nil
}

func TestCapacityReportsReachTheParent(t *testing.T) {
	t.Parallel()
	hosts := func(n int) capacity.Report {
		return capacity.Report{
			Hosts: n, TotalVCPUs: 8 * n, FreeVCPUs: 8 * n, TotalRAMMB: 16384 * int64(n), FreeRAMMB: 16384 * int64(n),
			Slots: []capacity.Slot{{VCPUs: 8, RAMMB: 16384, DiskGB: 100, Count: n}},
		}
	}
	var aHosts atomic.Int64
	aHosts.Store(3)
	configure := map[string]func(*cells.Config){
		// a reports often; cell1 only at start and on significant change,
		// so what reaches api after a change went up because it mattered.
		cellA: func(c *cells.Config) {
			c.ReportInterval = 100 * time.Millisecond
			c.Capacity = capacityFunc(func() capacity.Report { return hosts(int(aHosts.Load())) })
		},
		cell1: func(c *cells.Config) {
			c.Capacity = capacityFunc(func() capacity.Report { return hosts(2) })
		},
		cell2: func(c *cells.Config) { c.ReportInterval = 200 * time.Millisecond },
	}
	start := time.Now()
	tr := newTree(t, configure, api, cell1, cellA, cell2)
	a1, ap := tr.cell(cell1), tr.cell(api)

	testpoll.Eventually(t, wait, "a's report at cell1", func() (bool, string) {
		n := neighbourRow(t, a1, cellA)
		return n.Report != nil && n.Report.Hosts == 3, fmt.Sprintf("report %+v", n.Report)
	})
	testpoll.Eventually(t, wait, "cell1's report, its own hosts and a's, at api", func() (bool, string) {
		n := neighbourRow(t, ap, cell1)
		return n.Report != nil && n.Report.Hosts == 5, fmt.Sprintf("report %+v", n.Report)
	})
	row := neighbourRow(t, ap, cell1)
	if row.LastSeen.Before(start.Add(-time.Second)) || row.LastSeen.After(time.Now().Add(time.Second)) {
		t.Errorf("last seen %v, want about now", row.LastSeen)
	}
	if got := row.Report.Fits(capacity.Flavor{VCPUs: 4, RAMMB: 8192}); got != 10 {
		t.Errorf("cell1's report fits %d instances of half a host, want 10", got)
	}
	// A cell without hosts reports too, so its parent knows it is alive.
	testpoll.Eventually(t, wait, "cell2's report at api", func() (bool, string) {
		return !neighbourRow(t, ap, cell2).LastSeen.IsZero(), "never seen"
	})
	if r := neighbourRow(t, ap, cell2).Report; r == nil || r.Hosts != 0 {
		t.Errorf("cell2's report = %+v, want an empty one", r)
	}
	// A parent row holds no report.
	if r := neighbourRow(t, a1, api).Report; r != nil {
		t.Errorf("cell1's parent row holds report %+v", r)
	}
	// The service's own report sums its children.
	r, err := ap.service().Report(context.Background())
	if err != nil || r.Hosts != 5 {
		t.Errorf("api's report = %+v (%v), want 5 hosts", r, err)
	}

	// a gains a host: a significant change, passed up at once rather than
	// at cell1's next (hourly) report.
	aHosts.Store(4)
	testpoll.Eventually(t, wait, "a's new host to reach api", func() (bool, string) {
		n := neighbourRow(t, ap, cell1)
		return n.Report != nil && n.Report.Hosts == 6, fmt.Sprintf("report %+v", n.Report)
	})
}

func TestSignificant(t *testing.T) {
	t.Parallel()
	base := capacity.Report{Hosts: 10, TotalRAMMB: 1000, FreeRAMMB: 500, TotalVCPUs: 100, FreeVCPUs: 50}
	with := func(f func(*capacity.Report)) capacity.Report {
		r := base
		f(&r)
		return r
	}
	cases := []struct {
		name string
		a, b capacity.Report
		want bool
	}{
		{"same", base, base, false},
		{"a host came", base, with(func(r *capacity.Report) { r.Hosts++ }), true},
		{"a host went", base, with(func(r *capacity.Report) { r.Hosts-- }), true},
		{"ram down a tenth exactly", base, with(func(r *capacity.Report) { r.FreeRAMMB -= 100 }), false},
		{"ram down over a tenth", base, with(func(r *capacity.Report) { r.FreeRAMMB -= 101 }), true},
		{"ram up over a tenth", base, with(func(r *capacity.Report) { r.FreeRAMMB += 101 }), true},
		{"ram down a little", base, with(func(r *capacity.Report) { r.FreeRAMMB -= 5 }), false},
		{"vcpus down a tenth exactly", base, with(func(r *capacity.Report) { r.FreeVCPUs -= 10 }), false},
		{"vcpus down over a tenth", base, with(func(r *capacity.Report) { r.FreeVCPUs -= 11 }), true},
		{"vcpus up over a tenth", base, with(func(r *capacity.Report) { r.FreeVCPUs += 11 }), true},
		{"total grows, free moves within a tenth of it", base, with(func(r *capacity.Report) { r.TotalRAMMB = 2000; r.FreeRAMMB = 650 }), false},
		{"empty cells", capacity.Report{}, capacity.Report{}, false},
		{"no totals", capacity.Report{FreeRAMMB: 10}, capacity.Report{FreeRAMMB: 900}, false},
		{"instances alone do not count", base, with(func(r *capacity.Report) { r.Instances += 100 }), false},
		{"a zone came", base, with(func(r *capacity.Report) { r.AvailabilityZones = []string{"az1"} }), true},
		{"the aggregates' capabilities changed", with(func(r *capacity.Report) { r.Aggregates = &capacity.Aggregates{OpenToAll: true} }),
			with(func(r *capacity.Report) {
				r.Aggregates = &capacity.Aggregates{OpenToAll: true, Metadata: map[string][]string{"ssd": {"true"}}}
			}), true},
		{"the same aggregates", with(func(r *capacity.Report) { r.Aggregates = &capacity.Aggregates{OpenToAll: true} }),
			with(func(r *capacity.Report) { r.Aggregates = &capacity.Aggregates{OpenToAll: true} }), false},
	}
	for _, c := range cases {
		if got := cells.Significant(c.a, c.b); got != c.want {
			t.Errorf("%s: Significant = %v, want %v", c.name, got, c.want)
		}
		if got := cells.Significant(c.b, c.a); got != c.want {
			t.Errorf("%s (reversed): Significant = %v, want %v", c.name, got, c.want)
		}
	}
}
