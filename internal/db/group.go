package db

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// groupMax bounds the transactions committed together by Group.
const groupMax = 64

// groupCommit gathers the transactions that goroutines hand to Group while
// another group is committing, and commits them together.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupOp
	leading bool
}

// groupOp is one caller's transaction function waiting in a group.
type groupOp struct {
	ctx context.Context
	f   func(*Tx) error
	err error
	// panicked is what f panicked with, raised again in its caller.
	panicked any
	done     chan struct{}
	// lead tells a waiting caller to commit the next group itself.
	lead chan struct{}
}

// Group runs f in a transaction like InTx, but on SQLite, where writers
// take turns on one lock anyway, the transactions of goroutines that call
// Group at about the same time are committed together: one transaction
// holds up to 64 of them. When one of them fails, the group is run again
// with each function under its own savepoint, so that the one that fails
// is undone alone (its AfterCommit functions with it) and its error goes
// to its caller, while the rest commit once. A group that fails to commit
// as a whole is run again one transaction at a time. f must be safe to run
// again, as with InTx, and must not wait for another caller of Group.
//
// On PostgreSQL too, where transactions could commit in parallel, one
// transaction for many saves each its begin and commit round trips and
// its own commit's flush of the write-ahead log (docs/benchmarks.md).
func (d *DB) Group(ctx context.Context, f func(*Tx) error) error {
	g := d.group
	if g == nil {
		return d.InTx(ctx, f)
	}
	op := &groupOp{ctx: ctx, f: f, done: make(chan struct{}), lead: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, op)
	if g.leading {
		g.mu.Unlock()
		select {
		case <-op.done:
			if op.panicked != nil {
				panic(op.panicked)
			}
			return op.err
		case <-op.lead:
			// The last leader handed over: this caller is first in the
			// queue and commits the next group.
		}
	} else {
		g.leading = true
		g.mu.Unlock()
	}
	d.leadGroup(op)
	<-op.done
	if op.panicked != nil {
		panic(op.panicked)
	}
	return op.err
}

// leadGroup commits the next group, which holds me, then hands the lead to
// the first caller still waiting, or gives it up when none is.
func (d *DB) leadGroup(me *groupOp) {
	g := d.group
	for {
		g.mu.Lock()
		if len(g.queue) == 0 {
			g.leading = false
			g.mu.Unlock()
			return
		}
		select {
		case <-me.done:
			next := g.queue[0]
			g.mu.Unlock()
			next.lead <- struct{}{}
			return
		default:
		}
		n := min(len(g.queue), groupMax)
		batch := g.queue[:n:n]
		g.queue = append([]*groupOp(nil), g.queue[n:]...)
		g.mu.Unlock()
		d.commitGroup(me.ctx, batch)
	}
}

// commitGroup runs a group's functions in one transaction and tells each
// caller its outcome.
func (d *DB) commitGroup(ctx context.Context, batch []*groupOp) {
	defer func() {
		for _, op := range batch {
			close(op.done)
		}
	}()
	if len(batch) == 1 {
		batch[0].err = d.InTx(batch[0].ctx, batch[0].call)
		return
	}
	fs := make([]func(*Tx) error, len(batch))
	for i, op := range batch {
		fs[i] = func(tx *Tx) error {
			if op.panicked != nil {
				return errPanicked // not run again
			}
			if err := op.ctx.Err(); err != nil {
				return err
			}
			return op.call(tx)
		}
	}
	errs, err := d.InTxEach(context.WithoutCancel(ctx), fs)
	for i, op := range batch {
		op.err = errs[i]
	}
	if err == nil {
		return
	}
	// The group did not commit: each on its own.
	for _, op := range batch {
		if op.panicked == nil {
			op.err = d.InTx(op.ctx, op.call)
		}
	}
}

// errPanicked stands for a function of a group that panicked: its panic
// goes to its caller.
var errPanicked = errors.New("database: a grouped transaction panicked")

// call runs the caller's function; a panic in it is kept for its caller,
// and undoes its part of the group like an error.
func (op *groupOp) call(tx *Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			op.panicked = r
			err = fmt.Errorf("database: a grouped transaction panicked: %v", r)
		}
	}()
	return op.f(tx)
}
