package node

import (
	"context"
	"log/slog"
	"slices"
	"sync"
)

// component is a part of the node with a lifecycle: a role, or the
// process's broker or database.
type component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// role is a component under its name, for the log.
type role struct {
	name string
	c    component
}

// components is what the node started, in order.
type components struct {
	mu      sync.Mutex
	started []role
}

// start starts r and records it, also when it fails to start: a role that
// started halfway is shut down with the others.
func (cs *components) start(ctx context.Context, r role) error {
	cs.add(r)
	return r.c.Start(ctx)
}

// add records something already running, to be started with the rest.
func (cs *components) add(r role) {
	cs.mu.Lock()
	cs.started = append(cs.started, r)
	cs.mu.Unlock()
}

// stop shuts down what was recorded, last first.
func (cs *components) stop(ctx context.Context, log *slog.Logger) {
	cs.mu.Lock()
	rs := cs.started
	cs.started = nil
	cs.mu.Unlock()
	for _, r := range slices.Backward(rs) {
		if err := r.c.Shutdown(ctx); err != nil {
			log.Warn(r.name+" shutdown", "err", err)
		}
	}
}

// closer is something that only stops (the broker, the database).
type closer func(ctx context.Context) error

func (closer) Start(context.Context) error          { return nil }
func (f closer) Shutdown(ctx context.Context) error { return f(ctx) }
