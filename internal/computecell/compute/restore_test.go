package compute_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// slowDriver is the fake driver whose spawns of the held instances take
// until they are let go (or the spawn's context ends): a spawn latency as
// long as the test wants.
type slowDriver struct {
	*fake.Driver
	mu      sync.Mutex
	held    map[string]chan struct{}
	waiting map[string]bool
}

func newSlowDriver(t *testing.T, uuids ...string) *slowDriver {
	t.Helper()
	d, err := fake.New(fake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	s := &slowDriver{Driver: d, held: map[string]chan struct{}{}, waiting: map[string]bool{}}
	for _, u := range uuids {
		s.held[u] = make(chan struct{})
	}
	t.Cleanup(s.releaseAll)
	return s
}

func (s *slowDriver) Spawn(ctx context.Context, host string, in virt.Instance) error {
	s.mu.Lock()
	ch := s.held[in.UUID]
	s.waiting[in.UUID] = ch != nil
	s.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Driver.Spawn(ctx, host, in)
}

// spawning reports whether a spawn of uuid is waiting to be let go.
func (s *slowDriver) spawning(uuid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waiting[uuid]
}

func (s *slowDriver) release(uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.held[uuid]; ch != nil {
		close(ch)
		delete(s.held, uuid)
	}
}

func (s *slowDriver) releaseAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for u, ch := range s.held {
		close(ch)
		delete(s.held, u)
	}
}

// clock is a time the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// restart stops e's compute service and starts another over the same
// database with drv, a short heartbeat and the clock, in the background.
// It returns the service and the result of its Start.
func (e *env) restart(t *testing.T, drv *slowDriver, c *clock, hosts ...string) (*compute.Service, <-chan error) {
	t.Helper()
	if err := e.svc.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	s2, err := compute.New(compute.Config{Cell: cell, DB: e.db, Sender: e.sent, Driver: drv, Hosts: hosts,
		HeartbeatInterval: time.Millisecond, Logger: slog.New(slog.DiscardHandler), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		started <- s2.Start(ctx)
	}()
	t.Cleanup(func() {
		drv.releaseAll()
		cancel()
		<-done
		_ = s2.Shutdown(context.Background())
	})
	return s2, started
}

// waitStarted waits for Start to return, which it does while the restore
// is still under way.
func waitStarted(t *testing.T, started <-chan error) {
	t.Helper()
	testpoll.Eventually(t, 10*time.Second, "Start returned while restoring", func() (bool, string) {
		select {
		case err := <-started:
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			return true, ""
		default:
			return false, "Start has not returned"
		}
	})
}

// TestRestartKeepsHostsUpWhileRestoring: a restarted compute process whose
// instances take long to restore keeps its hosts' heartbeats fresh and
// starts meanwhile, so its scheduler never sees them down; the restore
// completes in the background.
func TestRestartKeepsHostsUpWhileRestoring(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{}, fake.Config{}, "h1", "h2")
	var uuids []string
	for i := range 6 {
		in := e.insert(t, uuidN(i+1), small, celldb.TaskNetworking)
		if err := e.svc.Spawn(ctx, []string{"h1", "h2"}[i%2], in.UUID); err != nil {
			t.Fatal(err)
		}
		uuids = append(uuids, in.UUID)
	}
	drv := newSlowDriver(t, uuids...)
	c := &clock{now: t0}
	_, started := e.restart(t, drv, c, "h1", "h2")

	// Time passes well beyond the scheduler's down time (60s) while every
	// restore is still under way.
	const downAfter = 60 * time.Second
	later := t0.Add(10 * time.Minute)
	c.set(later)
	testpoll.Eventually(t, 10*time.Second, "hosts up while restoring", func() (bool, string) {
		ns, err := celldb.ListNodes(ctx, e.db)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range ns {
			if later.Sub(n.HeartbeatAt) > downAfter {
				return false, fmt.Sprintf("host %s last heartbeat %v at %v: down", n.Host, n.HeartbeatAt, later)
			}
		}
		return true, ""
	})
	waitStarted(t, started)
	// Every restore gets under way (they start in the background, each in
	// its own time: poll), while the hosts stay up.
	testpoll.Eventually(t, 10*time.Second, "every instance being restored", func() (bool, string) {
		var waiting []string
		for _, u := range uuids {
			if !drv.spawning(u) {
				waiting = append(waiting, u)
			}
		}
		return len(waiting) == 0, fmt.Sprintf("not yet restoring %v", waiting)
	})

	drv.releaseAll()
	testpoll.Eventually(t, 10*time.Second, "every instance restored", func() (bool, string) {
		got := append(drv.List("h1"), drv.List("h2")...)
		slices.Sort(got)
		return slices.Equal(got, uuids), fmt.Sprintf("restored %v, want %v", got, uuids)
	})
}

// TestWorkWaitsForTheRestoreOfItsInstance: an action or console read of an
// instance still being restored waits for it and finds it; a destroy
// meanwhile is not undone by the restore.
func TestWorkWaitsForTheRestoreOfItsInstance(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{}, fake.Config{}, "h1")
	a := e.insert(t, uuidN(1), small, celldb.TaskNetworking)
	b := e.insert(t, uuidN(2), small, celldb.TaskNetworking)
	for _, in := range []string{a.UUID, b.UUID} {
		if err := e.svc.Spawn(ctx, "h1", in); err != nil {
			t.Fatal(err)
		}
	}
	drv := newSlowDriver(t, a.UUID, b.UUID)
	s2, started := e.restart(t, drv, &clock{now: t0}, "h1")
	waitStarted(t, started)
	testpoll.Eventually(t, 10*time.Second, "both restores under way", func() (bool, string) {
		return drv.spawning(a.UUID) && drv.spawning(b.UUID), "not yet"
	})

	console := make(chan error, 1)
	go func() {
		_, err := s2.ConsoleOutput(ctx, "h1", a.UUID)
		console <- err
	}()
	destroyed := make(chan error, 1)
	go func() { destroyed <- s2.Destroy(ctx, "h1", b.UUID) }()

	drv.release(a.UUID)
	if err := <-console; err != nil {
		t.Errorf("console output of an instance being restored: %v", err)
	}
	drv.release(b.UUID)
	if err := <-destroyed; err != nil {
		t.Errorf("Destroy of an instance being restored: %v", err)
	}
	if got := drv.List("h1"); !slices.Equal(got, []string{a.UUID}) {
		t.Errorf("on h1 after the restore: %v, want only [%s] (b was destroyed)", got, a.UUID)
	}
}
