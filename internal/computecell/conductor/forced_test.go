package conductor_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// recordingScheduler passes requests on to a HostScheduler and keeps them.
type recordingScheduler struct {
	conductor.HostScheduler
	mu   sync.Mutex
	reqs []hostsched.Request
}

func (r *recordingScheduler) Select(ctx context.Context, req *hostsched.Request) ([]hostsched.Selection, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, *req)
	r.mu.Unlock()
	return r.HostScheduler.Select(ctx, req)
}

// TestForcedBuildIsNotRetried: a build forced to a host asks the host
// scheduler for that host with the instance's project, the flavor's extra
// specs and the image's properties (kept in the cell's record of the
// build), and when the spawn there fails the instance goes to ERROR with
// the host's reason, no other host tried (Nova does not reschedule a
// forced build).
func TestForcedBuildIsNotRetried(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1", "h2"}})
	comp := &unreachable{Service: e.compute, down: map[string]bool{"h2": true}}
	sched := &recordingScheduler{HostScheduler: e.sched}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: e.db, Sender: e.sent, Scheduler: sched, Network: e.network,
		Compute: comp, PollInterval: poll, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b := build(1, 0)
	b.Flavor.ExtraSpecs = map[string]string{"ssd": "true"}
	b.ForcedHost, b.ForcedNode = "h2", "h2"
	u := b.Instances[0].UUID
	accept(t, e.db, cd, "req-1", b)
	if in := get(t, e.db, u); in.Build.ForcedHost != "h2" || in.Build.ForcedNode != "h2" {
		t.Fatalf("recorded build %+v: forced host and node not kept", in.Build)
	}
	if err := cd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })

	testpoll.Eventually(t, wait, "the build to end", func() (bool, string) {
		in := get(t, e.db, u)
		return in.VMState == celldb.VMActive || in.VMState == celldb.VMError, fmt.Sprintf("vm %q task %q", in.VMState, in.TaskState)
	})
	in := get(t, e.db, u)
	comp.mu.Lock()
	tried := slices.Clone(comp.tried)
	comp.mu.Unlock()
	if in.VMState != celldb.VMError || in.Fault == nil || !strings.Contains(in.Fault.Message, "no responders for host h2") {
		t.Errorf("instance %s fault %+v, want ERROR with the host's reason", in.VMState, in.Fault)
	}
	if !slices.Equal(tried, []string{"h2"}) {
		t.Errorf("hosts tried %v, want only h2", tried)
	}
	sched.mu.Lock()
	reqs := slices.Clone(sched.reqs)
	sched.mu.Unlock()
	if len(reqs) == 0 {
		t.Fatal("the host scheduler was not asked")
	}
	for _, r := range reqs {
		if r.ProjectID != "p1" || !maps.Equal(r.ExtraSpecs, b.Flavor.ExtraSpecs) || !maps.Equal(r.ImageProperties, b.ImageProperties) ||
			r.ForcedHost != "h2" || r.ForcedNode != "h2" {
			t.Errorf("host request %+v: want project p1, the flavor's extra specs, the image's properties, forced to h2", r)
		}
	}
}
