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
	// q is GroupQuery's query, and fa its function (f is nil then).
	q   *Query
	fa  func(*Tx, Answer) error
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
	return d.group1(&groupOp{ctx: ctx, f: f})
}

// GroupQuery is Group for a transaction that begins with query q and
// goes on from its answer (f). The queries of the callers of a group go
// first, before any function of the group, together: on PostgreSQL in one
// round trip, where each would otherwise be a round trip of its own, one
// after another. So q's outcome must not depend on what the group's other
// functions write, nor f write, on the strength of q's answer, what they
// may have changed since: a statement that updates and returns a row
// that only the caller's stage changes (an instance moving from one task
// state to the next) is such a query; a function that finds nothing done
// by its query (a condition not met) and then looks again is fine too, as
// its query changed nothing. On the group's second attempt, with each
// function under its own savepoint, each query runs alone at the start of
// its function. A query's error is f's to return (Answer); on PostgreSQL
// it fails the rest of the group's first attempt, as any statement's does.
func (d *DB) GroupQuery(ctx context.Context, q Query, f func(*Tx, Answer) error) error {
	return d.group1(&groupOp{ctx: ctx, q: &q, fa: f})
}

// group1 runs op in the next group, or alone where there is no grouping.
func (d *DB) group1(op *groupOp) error {
	g := d.group
	if g == nil {
		return d.InTx(op.ctx, func(tx *Tx) error { return op.run(tx, nil) })
	}
	op.done, op.lead = make(chan struct{}), make(chan struct{}, 1)
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

// GroupWaiting is how many callers of Group and GroupQuery wait for the
// next group to be committed (a test lines them up with it).
func (d *DB) GroupWaiting() int {
	g := d.group
	if g == nil {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
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
		op := batch[0]
		op.err = d.InTx(op.ctx, func(tx *Tx) error { return op.call(tx, nil) })
		return
	}
	// GroupQuery's callers first, in the order they came, so that their
	// queries go together before any function runs.
	ordered := make([]*groupOp, 0, len(batch))
	var qs []Query
	for _, op := range batch {
		if op.q != nil {
			ordered = append(ordered, op)
			qs = append(qs, *op.q)
		}
	}
	for _, op := range batch {
		if op.q == nil {
			ordered = append(ordered, op)
		}
	}
	var answers []Answer
	fs := make([]func(*Tx) error, len(ordered))
	for i, op := range ordered {
		fs[i] = func(tx *Tx) error {
			var a *Answer
			if op.q != nil && !tx.Alone() {
				// The first function of every attempt, which runs
				// them all in turn without savepoints, sends the
				// queries.
				if i == 0 {
					answers = tx.QueryAll(context.WithoutCancel(op.ctx), qs)
				}
				a = &answers[i]
			}
			if op.panicked != nil {
				return errPanicked // not run again
			}
			if err := op.ctx.Err(); err != nil {
				return err
			}
			return op.call(tx, a)
		}
	}
	errs, err := d.InTxEach(context.WithoutCancel(ctx), fs)
	for i, op := range ordered {
		op.err = errs[i]
	}
	if err == nil {
		return
	}
	// The group did not commit: each on its own.
	for _, op := range ordered {
		if op.panicked == nil {
			op.err = d.InTx(op.ctx, func(tx *Tx) error { return op.call(tx, nil) })
		}
	}
}

// errPanicked stands for a function of a group that panicked: its panic
// goes to its caller.
var errPanicked = errors.New("database: a grouped transaction panicked")

// call runs the caller's function (run); a panic in it is kept for its
// caller, and undoes its part of the group like an error.
func (op *groupOp) call(tx *Tx, a *Answer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			op.panicked = r
			err = fmt.Errorf("database: a grouped transaction panicked: %v", r)
		}
	}()
	return op.run(tx, a)
}

// run runs the caller's function: GroupQuery's with its query's answer a,
// or with the query run now, alone, when a is nil.
func (op *groupOp) run(tx *Tx, a *Answer) error {
	if op.q == nil {
		return op.f(tx)
	}
	if a == nil {
		a = &tx.QueryAll(op.ctx, []Query{*op.q})[0]
	}
	return op.fa(tx, *a)
}
