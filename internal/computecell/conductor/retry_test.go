package conductor_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const poll = 50 * time.Millisecond

// checkRate fails when calls happened faster than one per poll interval
// (with slack for the wake-ups that start the loop): failed work must be
// retried at the next poll, not in a hot loop.
func checkRate(t *testing.T, what string, calls int, since time.Time) {
	t.Helper()
	if limit := int(time.Since(since)/poll) + 4; calls > limit {
		t.Errorf("%s was tried %d times in %v with a poll interval of %v: a hot retry loop", what, calls, time.Since(since).Round(time.Millisecond), poll)
	}
}

func TestFailingSchedulerIsRetriedAtThePollInterval(t *testing.T) {
	d := openCellDB(t)
	var down atomic.Bool
	down.Store(true)
	sched := &fakeScheduler{fn: func(req *hostsched.Request) ([]hostsched.Selection, error) {
		if down.Load() {
			return nil, errors.New("scheduler down")
		}
		return []hostsched.Selection{{Host: "h1"}}, nil
	}}
	if err := celldb.RegisterNode(context.Background(), d, celldb.Node{Host: "h1", VCPUs: 4, RAMMB: 8192, DiskGB: 100,
		CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	sent := &recorder{}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: sent, Scheduler: sched, Network: fakeNetwork{}, Compute: fakeCompute{},
		PollInterval: poll, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b := build(1, 0)
	accept(t, d, cd, "req-1", b)
	start := time.Now()
	if err := cd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })

	// It keeps trying...
	testpoll.Eventually(t, wait, "the scheduler asked several times", func() (bool, string) {
		n := sched.count()
		return n >= 4, fmt.Sprintf("asked %d times", n)
	})
	// ...but not faster than it polls.
	checkRate(t, "a failing scheduler", sched.count(), start)
	if in := get(t, d, b.Instances[0].UUID); in.TaskState != celldb.TaskScheduling {
		t.Errorf("task %q while the scheduler is down, want scheduling", in.TaskState)
	}
	// Once the scheduler is back, the build goes on without a wake-up.
	down.Store(false)
	testpoll.Eventually(t, wait, "the instance placed", func() (bool, string) {
		h := get(t, d, b.Instances[0].UUID).Host
		return h == "h1", fmt.Sprintf("host %q", h)
	})
}

// flakyCompute fails to destroy until told otherwise.
type flakyCompute struct {
	mu       sync.Mutex
	failing  bool
	destroys int
}

func (f *flakyCompute) Spawn(context.Context, string, string) error { return nil }
func (f *flakyCompute) Destroy(context.Context, string, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.destroys++
	if f.failing {
		return errors.New("compute host unreachable")
	}
	return nil
}

func (f *flakyCompute) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.destroys
}

func TestFailingDestroyIsRetriedAtThePollInterval(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: uuidN(1), Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i", CreatedAt: t0},
		Flavor: small, VMState: celldb.VMActive, TaskState: celldb.TaskDeleting, Host: "h1", Version: 5}
	if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, t0) }); err != nil {
		t.Fatal(err)
	}
	comp := &flakyCompute{failing: true}
	sent := &recorder{}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: sent, Scheduler: &fakeScheduler{}, Network: fakeNetwork{}, Compute: comp,
		PollInterval: poll, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })

	testpoll.Eventually(t, wait, "the destroy tried several times", func() (bool, string) {
		n := comp.count()
		return n >= 4, fmt.Sprintf("tried %d times", n)
	})
	checkRate(t, "a failing destroy", comp.count(), start)
	if got := get(t, d, in.UUID); got.Deleted || got.TaskState != celldb.TaskDeleting {
		t.Errorf("instance %+v while its host is unreachable, want still deleting", got)
	}
	comp.mu.Lock()
	comp.failing = false
	comp.mu.Unlock()
	testpoll.Eventually(t, wait, "the instance deleted", func() (bool, string) {
		got := get(t, d, in.UUID)
		return got.Deleted, fmt.Sprintf("vm %q task %q", got.VMState, got.TaskState)
	})
}

// unreachable is a Compute whose agents for some hosts cannot be reached:
// a spawn there fails before it gets to the host (as a remote call with no
// responder does), and the rest go to the real compute service.
type unreachable struct {
	*compute.Service
	down map[string]bool
	mu   sync.Mutex
	// tried lists the hosts spawns were asked of, in order.
	tried []string
}

func (u *unreachable) Spawn(ctx context.Context, host, uuid string) error {
	u.mu.Lock()
	u.tried = append(u.tried, host)
	u.mu.Unlock()
	if u.down[host] {
		return errors.New("rpc: no responders for host " + host)
	}
	return u.Service.Spawn(ctx, host, uuid)
}

func TestSpawnThatNeverReachedTheHostMovesOn(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1", "h2"}})
	comp := &unreachable{Service: e.compute, down: map[string]bool{"h1": true}}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: e.db, Sender: e.sent, Scheduler: e.sched, Network: e.network,
		Compute: comp, PollInterval: poll, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b := build(1, 0)
	u := b.Instances[0].UUID
	accept(t, e.db, cd, "req-1", b)
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
	if len(tried) == 0 || tried[0] != "h1" {
		t.Fatalf("hosts tried %v, want h1 (the scheduler's first choice) first", tried)
	}
	if in.VMState != celldb.VMActive || in.Host != "h2" {
		t.Errorf("instance %s on %q (fault %+v) after trying %v; want ACTIVE on h2, the alternate", in.VMState, in.Host, in.Fault, tried)
	}
	if c := claims(t, e.db); len(c) != 1 || c[u] != "h2" {
		t.Errorf("claims %v, want only the instance's on h2", c)
	}
}
