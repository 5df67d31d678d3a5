package db

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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
// On PostgreSQL, where transactions commit in parallel, Group is InTx.
func (d *DB) Group(ctx context.Context, f func(*Tx) error) error {
	g := d.group
	if g == nil || d.Dialect != SQLite {
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
	ctx = context.WithoutCancel(ctx)
	// First without savepoints, since the functions rarely fail: each
	// savepoint costs statements, and copies every page it first touches.
	err := d.InTx(ctx, func(tx *Tx) error {
		for _, op := range batch {
			op.err = op.ctx.Err()
			if op.err != nil {
				continue
			}
			if err := op.call(tx); err != nil {
				if retryable(err) && op.panicked == nil {
					return err // the whole group again
				}
				return errGroupMember
			}
		}
		return nil
	})
	if errors.Is(err, errGroupMember) {
		// One failed: all again, each under a savepoint, so that only the
		// ones that fail are undone. A function that panicked is not run
		// again.
		err = d.InTx(ctx, func(tx *Tx) error {
			for i, op := range batch {
				if op.panicked != nil {
					continue
				}
				op.err = op.ctx.Err()
				if op.err != nil {
					continue
				}
				sp := "grp" + strconv.Itoa(i)
				if err := tx.Savepoint(ctx, sp); err != nil {
					return err
				}
				if err := op.call(tx); err != nil {
					if retryable(err) && op.panicked == nil {
						return err // the whole group again
					}
					if rerr := tx.RollbackTo(ctx, sp); rerr != nil {
						return rerr
					}
					op.err = err
				}
				if err := tx.Release(ctx, sp); err != nil {
					return err
				}
			}
			return nil
		})
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

// errGroupMember ends a group's first attempt when one of its functions
// failed.
var errGroupMember = errors.New("database: a function of the group failed")

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
