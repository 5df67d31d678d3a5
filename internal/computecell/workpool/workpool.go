// Package workpool is the worker skeleton of a compute cell's drivers (the
// conductor and the instance operations): a loop that looks for work when
// woken or every poll interval, and at most N workers, each on one key (an
// instance) at a time, whose goroutines the pool owns: Shutdown cancels
// them and waits for them.
package workpool

import (
	"context"
	"sync"
	"time"
)

// Config configures a pool.
type Config struct {
	// Workers bounds the work running at once.
	Workers int
	// PollInterval is how often Poll runs without a wake-up.
	PollInterval time.Duration
	// Poll looks for work, takes the keys it starts (Take) and starts it
	// (Go). It runs on the loop's goroutine, once at start, then on every
	// wake-up and tick: each run is a round.
	Poll func(ctx context.Context)
}

// Pool is a work loop and its workers.
type Pool struct {
	cfg  Config
	wake chan struct{}
	sem  chan struct{}

	mu   sync.Mutex
	busy map[string]bool
	// ended holds the keys whose work ended during the round of Poll in
	// progress (inRound): what the round read may predate that end.
	ended   map[string]bool
	inRound bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a pool that has not started.
func New(cfg Config) *Pool {
	return &Pool{cfg: cfg, wake: make(chan struct{}, 1), sem: make(chan struct{}, max(cfg.Workers, 1)), busy: map[string]bool{}, ended: map[string]bool{}}
}

// Start runs the loop, and each of also on a goroutine of its own (a
// periodic job of the pool's owner), until Shutdown.
func (p *Pool) Start(also ...func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.wg.Add(1 + len(also))
	go func() { defer p.wg.Done(); p.loop(ctx) }()
	for _, f := range also {
		go func() { defer p.wg.Done(); f(ctx) }()
	}
}

// Shutdown stops the loop and waits for it and for the work in flight.
func (p *Pool) Shutdown() {
	if p.cancel != nil {
		p.cancel()
	}
	p.wg.Wait()
}

// Wake makes the loop look for work now.
func (p *Pool) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *Pool) loop(ctx context.Context) {
	t := time.NewTicker(p.cfg.PollInterval)
	defer t.Stop()
	for {
		p.round(true)
		p.cfg.Poll(ctx)
		p.round(false)
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.C:
		}
	}
}

// round marks the start or the end of a round of Poll.
func (p *Pool) round(start bool) {
	p.mu.Lock()
	clear(p.ended)
	p.inRound = start
	p.mu.Unlock()
}

// Take marks key busy and reports whether it was free: work on a key
// that is busy is left to the worker that has it. A key whose work ended
// during this round of Poll is not free either: Poll may have read
// the work before it ended (a delete listed while it was in flight, then
// taken once it was done), so it is left to the next round, which reads
// afresh. Take is for Poll, on the loop's goroutine.
func (p *Pool) Take(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.busy[key] || p.ended[key] {
		return false
	}
	p.busy[key] = true
	return true
}

// Done ends work on a key that made progress, and looks for more at once
// (a delete that waited for a build, say).
func (p *Pool) Done(key string) {
	p.Release(key)
	p.Wake()
}

// Release ends work on a key without waking the loop: work that failed is
// retried at the next poll, not at once, so that a service or database
// that is down is not hammered in a hot loop.
func (p *Pool) Release(key string) {
	p.mu.Lock()
	delete(p.busy, key)
	if p.inRound {
		p.ended[key] = true
	}
	p.mu.Unlock()
}

// Go runs work on a key the caller took, on a worker, once one is free.
// When work returns, the key is Done if it reports progress and Released
// if not. It reports false, with the key Done, when ctx ends before a
// worker is free.
func (p *Pool) Go(ctx context.Context, key string, work func(ctx context.Context) (progress bool)) bool {
	select {
	case p.sem <- struct{}{}:
	case <-ctx.Done():
		p.Done(key)
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.sem }()
		if work(ctx) {
			p.Done(key)
		} else {
			p.Release(key)
		}
	}()
	return true
}
