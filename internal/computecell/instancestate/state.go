// Package instancestate is the one owner of an instance's state in a
// compute cell. Every change to an instance row (its creation, each change
// of state, its pending server action, its removal when a build is handed
// back) and every instance_update the cell sends up go through an Owner,
// inside the caller's transaction; the claims an instance holds on hosts
// are taken and given back here too (claims.go).
//
// DESIGN's rule, "every change bumps the version and goes up", holds by
// construction: the Owner's writes bump the version (celldb's update does
// it in the same statement), and a Transition queues the instance's new
// state for the API cell in the same transaction, so the update leaves if
// and only if the change commits. A Step is a change the API cell does not
// need at once (a host chosen, a spawn begun on the boot path): it bumps
// the version too, and the next Transition of the instance, or the heal,
// carries it up. Steps keep the boot path at one update per instance.
package instancestate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Sender sends a durable message from this cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// Owner writes a compute cell's instances and sends their updates up.
type Owner struct {
	cell   string
	sender Sender
	now    func() time.Time
}

// New returns the owner of the instances of cell, which sends their
// updates through sender; now is the clock (time.Now when nil).
func New(cell string, sender Sender, now func() time.Time) (*Owner, error) {
	if sender == nil {
		return nil, errors.New("instancestate: a sender is required")
	}
	if err := cellpath.Validate(cell); err != nil {
		return nil, fmt.Errorf("instancestate: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &Owner{cell: cell, sender: sender, now: now}, nil
}

// Task is an expected task state for Transition and Step.
func Task(t string) *string { return &t }

// Create records new instances being built, each with its first action
// (celldb.InsertStarting), and, when announce is set, tells the API cell
// where they are, all in one message.
func (o *Owner) Create(ctx context.Context, tx *db.Tx, insts []celldb.Instance, first celldb.FirstAction, requestID string, announce bool) error {
	now := o.now()
	if err := celldb.InsertStarting(ctx, tx, insts, now, first); err != nil {
		return err
	}
	if !announce {
		return nil
	}
	states := make([]wire.InstanceState, 0, len(insts))
	for _, in := range insts {
		states = append(states, wire.InstanceState{UUID: in.UUID, Cell: o.cell, Version: max(in.Version, 1),
			VMState: in.VMState, TaskState: in.TaskState, UpdatedAt: now})
	}
	return o.send(ctx, tx, requestID, &wire.InstanceUpdate{Instances: states})
}

// Transition changes an instance's state in tx and queues its new state
// for the API cell in tx: expectTask, when not nil, must be the current
// task state (otherwise wire.ErrConflict, and nothing is written or sent);
// the version goes up by one. It returns the instance as it now is.
func (o *Owner) Transition(ctx context.Context, tx *db.Tx, uuid string, expectTask *string, c celldb.Change) (*celldb.Instance, error) {
	in, _, err := o.TransitionState(ctx, tx, uuid, expectTask, c)
	return in, err
}

// TransitionState is Transition that also returns the state sent up (the
// instance's addresses with it, read once for both).
func (o *Owner) TransitionState(ctx context.Context, tx *db.Tx, uuid string, expectTask *string, c celldb.Change) (*celldb.Instance, wire.InstanceState, error) {
	in, st, err := celldb.UpdateState(ctx, tx, o.cell, uuid, expectTask, c, o.now())
	if err != nil {
		return nil, wire.InstanceState{}, err
	}
	return in, st, o.send(ctx, tx, in.RequestID, &wire.InstanceUpdate{Instances: []wire.InstanceState{st}})
}

// TransitionQuery is the first statement of TransitionState on the engine
// dialect, for a caller that runs it with others' (db.GroupQuery): the
// change, made if the instance is in the task state expected.
// TransitionStateFrom goes on from its answer.
func (o *Owner) TransitionQuery(dialect db.Dialect, uuid string, expectTask *string, c celldb.Change) db.Query {
	return celldb.UpdateStateQuery(dialect, uuid, expectTask, c, o.now())
}

// TransitionStateFrom is TransitionState from the answer a of its first
// statement (TransitionQuery of the same instance, task state and change).
func (o *Owner) TransitionStateFrom(ctx context.Context, tx *db.Tx, uuid string, expectTask *string, c celldb.Change, a db.Answer) (*celldb.Instance, wire.InstanceState, error) {
	in, st, err := celldb.UpdateStateFrom(ctx, tx, o.cell, uuid, expectTask, c, a)
	if err != nil {
		return nil, wire.InstanceState{}, err
	}
	return in, st, o.send(ctx, tx, in.RequestID, &wire.InstanceUpdate{Instances: []wire.InstanceState{st}})
}

// Step is Transition for a state the API cell learns later (from the
// next Transition or the heal): the version goes up, nothing is sent, and
// the row is not read back.
func (o *Owner) Step(ctx context.Context, tx *db.Tx, uuid string, expectTask *string, c celldb.Change) error {
	return celldb.Set(ctx, tx, uuid, expectTask, c, o.now())
}

// Announce queues an instance's state, as read in tx, for the API cell.
func (o *Owner) Announce(ctx context.Context, tx *db.Tx, in *celldb.Instance) error {
	_, err := o.announce(ctx, tx, in)
	return err
}

func (o *Owner) announce(ctx context.Context, tx *db.Tx, in *celldb.Instance) (wire.InstanceState, error) {
	st, err := celldb.State(ctx, tx, o.cell, in)
	if err != nil {
		return st, err
	}
	return st, o.send(ctx, tx, in.RequestID, &wire.InstanceUpdate{Instances: []wire.InstanceState{st}})
}

// ClearAction removes an instance's pending server action and leaves its
// state (and version) as they are.
func (o *Owner) ClearAction(ctx context.Context, tx *db.Tx, uuid string) error {
	return celldb.ClearAction(ctx, tx, uuid)
}

// Purge removes outright the instances of uuids still waiting for a host
// (a build handed back to the parent, which the API cell learns from the
// build_failed the caller sends), with any claim they hold, and returns
// those it removed. An instance deleted or being deleted meanwhile is not
// removed: its delete goes on. The caller frees their fixed IPs (the
// network service's) before, so that a purge never leaves one held: an
// instance whose addresses were freed but whose purge did not commit is
// still waiting for a host, and is placed or handed back again.
func (o *Owner) Purge(ctx context.Context, tx *db.Tx, uuids []string) ([]string, error) {
	purged, err := celldb.Purge(ctx, tx, uuids, celldb.TaskScheduling)
	if err != nil {
		return nil, err
	}
	for _, u := range purged {
		for _, key := range []string{u, celldb.DestClaimKey(u)} {
			if err := o.Release(ctx, tx, key); err != nil {
				return nil, err
			}
		}
	}
	return purged, nil
}

// Heal sends the instances changed since now-window up again, healPage
// per message, reading them a page at a time (a cell that changed many
// instances in the window does not hold them all in memory at once).
func (o *Owner) Heal(ctx context.Context, d *db.DB, window time.Duration) error {
	at, after := o.now().Add(-window), ""
	for {
		var n int
		var nextAt time.Time
		var nextAfter string
		err := d.InTx(ctx, func(tx *db.Tx) error {
			page, err := celldb.ListChangedAfter(ctx, tx, at, after, healPage)
			if err != nil || len(page) == 0 {
				n = 0
				return err
			}
			sts, err := celldb.States(ctx, tx, o.cell, page)
			if err != nil {
				return err
			}
			n = len(page)
			nextAt, nextAfter = page[n-1].UpdatedAt, page[n-1].UUID
			return o.send(ctx, tx, "", &wire.InstanceUpdate{Heal: true, Instances: sts})
		})
		if err != nil || n < healPage {
			return err
		}
		at, after = nextAt, nextAfter
	}
}

// healPage is the number of instances per heal message.
const healPage = 500

// send is the one place an instance_update leaves a compute cell.
func (o *Owner) send(ctx context.Context, tx *db.Tx, requestID string, u *wire.InstanceUpdate) error {
	return o.sender.Send(ctx, tx, cellpath.Root(o.cell), wire.MethodInstanceUpdate, requestID, u)
}
