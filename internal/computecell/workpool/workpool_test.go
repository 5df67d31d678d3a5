package workpool

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// TestPoolRunsEachKeyOnceAndBoundsWorkers starts work on more keys than
// workers, with a repeated key, and checks that a key is never run twice
// at once, that no more than Workers run together, and that Shutdown
// waits for the work in flight.
func TestPoolRunsEachKeyOnceAndBoundsWorkers(t *testing.T) {
	var mu sync.Mutex
	running, peak, ran := 0, 0, map[string]int{}
	release := make(chan struct{})
	started := make(chan string, 16)
	var p *Pool
	polled := false
	p = New(Config{Workers: 2, PollInterval: time.Hour, Poll: func(ctx context.Context) {
		if polled {
			return
		}
		polled = true
		for _, k := range []string{"a", "b", "a", "c"} {
			if !p.Take(k) {
				continue
			}
			p.Go(ctx, k, func(ctx context.Context) bool {
				mu.Lock()
				running++
				peak = max(peak, running)
				ran[k]++
				mu.Unlock()
				started <- k
				<-release
				mu.Lock()
				running--
				mu.Unlock()
				return false
			})
		}
	}})
	p.Start()
	<-started
	<-started
	close(release)
	<-started
	p.Shutdown()
	if peak > 2 {
		t.Errorf("%d workers ran at once, want at most 2", peak)
	}
	if ran["a"] != 1 || ran["b"] != 1 || ran["c"] != 1 {
		t.Errorf("ran %v, want each key once", ran)
	}
	if running != 0 {
		t.Errorf("Shutdown returned with %d workers running", running)
	}
	if !p.Take("a") {
		t.Error("a key whose work ended is still busy")
	}
}

// TestShutdownCancelsWork checks that work sees its context end at
// Shutdown, and that periodic jobs given to Start stop too.
func TestShutdownCancelsWork(t *testing.T) {
	in := make(chan struct{})
	var p *Pool
	once := false
	p = New(Config{Workers: 1, PollInterval: time.Hour, Poll: func(ctx context.Context) {
		if once {
			return
		}
		once = true
		p.Take("k")
		p.Go(ctx, "k", func(ctx context.Context) bool {
			close(in)
			<-ctx.Done()
			return true
		})
	}})
	jobStopped := make(chan struct{})
	p.Start(func(ctx context.Context) { <-ctx.Done(); close(jobStopped) })
	<-in
	p.Shutdown()
	select {
	case <-jobStopped:
	default:
		t.Error("Shutdown returned before the periodic job stopped")
	}
}

// TestAKeyThatEndedDuringARoundIsLeftToTheNext: a round reads its work
// while the work on "a" is in flight, and gets to take "a" only after that
// work ended: its read is stale for "a", so Take refuses it. The next
// round (the one the end woke), which reads afresh, takes it.
func TestAKeyThatEndedDuringARoundIsLeftToTheNext(t *testing.T) {
	inFlight, release := make(chan struct{}), make(chan struct{})
	listed, proceed := make(chan struct{}), make(chan struct{})
	took := make(chan bool, 2)
	var p *Pool
	round := 0
	p = New(Config{Workers: 2, PollInterval: time.Hour, Poll: func(ctx context.Context) {
		round++
		switch round {
		case 1:
			p.Take("a")
			p.Go(ctx, "a", func(ctx context.Context) bool {
				close(inFlight)
				<-release
				return true
			})
		case 2:
			close(listed) // the round has read its work: "a" among it
			<-proceed
			took <- p.Take("a")
		case 3:
			took <- p.Take("a")
			p.Release("a")
		}
	}})
	p.Start()
	t.Cleanup(p.Shutdown)
	<-inFlight
	p.Wake()
	<-listed
	close(release)
	testpoll.Eventually(t, 5*time.Second, "the work on a to end", func() (bool, string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		return !p.busy["a"], "a still busy"
	})
	close(proceed)
	if <-took {
		t.Error("the round that read a while its work was in flight took it after that work ended")
	}
	if !<-took {
		t.Error("the next round could not take a")
	}
}
