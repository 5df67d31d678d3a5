package cells

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// NewTargeted builds a targeted envelope from cell from to cell to.
func NewTargeted(from, to, method, requestID string, payload any) (*wire.Envelope, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", method, err)
	}
	dir := wire.Up
	if cellpath.IsAncestor(from, to) {
		dir = wire.Down
	}
	return &wire.Envelope{
		ID:        uuid.NewString(),
		Method:    method,
		Version:   wire.V1,
		Kind:      wire.Targeted,
		Direction: dir,
		Target:    to,
		Route:     []string{from},
		Sender:    from,
		RequestID: requestID,
		Payload:   b,
	}, nil
}

// Sender lets any role of a cell send durable messages: it writes them to
// the cell's outbox in the caller's transaction and, after commit, nudges
// the cells service to relay them. A process has one kind of sender: the
// cells service's own (Service.Sender) when the service runs in it, else
// one from NewSender that nudges the service over the cell's broker.
type Sender struct {
	path  string
	nudge func()
	// local applies a message for this cell inside the sender's
	// transaction; it is set when the cells service runs in this process.
	local func(ctx context.Context, tx *db.Tx, env *wire.Envelope) error
}

// NewSender returns the sender of a process of cell path that does not run
// the cell's cells service: after a commit that queued messages it wakes
// the service's relay by publishing on nc, the cell's own broker, under
// the tree's subject prefix ("" is DefaultPrefix). With a nil nc it wakes
// nobody: the relay finds the messages when it next polls.
func NewSender(prefix, path string, nc *nats.Conn) *Sender {
	nudge := func() {}
	if nc != nil {
		subj := Names{prefix}.Nudge(path)
		nudge = func() { _ = nc.Publish(subj, nil) }
	}
	return &Sender{path: path, nudge: nudge}
}

// Path is the sending cell.
func (s *Sender) Path() string { return s.path }

// Send enqueues a targeted durable message inside tx.
func (s *Sender) Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error {
	env, err := NewTargeted(s.path, to, method, requestID, payload)
	if err != nil {
		return err
	}
	return s.SendEnvelope(ctx, tx, env)
}

// SendEnvelope enqueues an envelope for its first hop inside tx. A message
// for this cell itself, sent through the sender of the cells service of
// this process, is applied at once inside tx instead: it takes effect if
// and only if tx commits, as a queued one would, without a trip through the
// outbox and the broker.
func (s *Sender) SendEnvelope(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	if env.Target == s.path && s.local != nil {
		return s.local(ctx, tx, env)
	}
	next := s.path
	if env.Target != s.path {
		next = cellpath.NextHop(s.path, env.Target)
		if next == "" {
			return wire.Errorf(wire.CodeNoRoute, "cell %q is not in the tree of cell %q", env.Target, s.path)
		}
	}
	if err := outbox.Enqueue(ctx, tx, next, env); err != nil {
		return err
	}
	tx.AfterCommit(s.nudge)
	return nil
}

// Sender returns the service's own sender, which wakes the relay directly
// and applies messages for this cell at once, in the sender's transaction.
func (s *Service) Sender() *Sender {
	return &Sender{path: s.path, nudge: s.Wake, local: s.applyLocal}
}

// applyLocal applies a cast this cell sends itself inside the sender's
// transaction: the handler's work and the message's cause commit together,
// so the message needs no id recorded against a repeat.
func (s *Service) applyLocal(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	h, err := s.castHandler(env)
	if err != nil {
		return err
	}
	return h(ctx, tx, env)
}

// Send enqueues a durable message from this cell inside tx.
func (s *Service) Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error {
	return s.Sender().Send(ctx, tx, to, method, requestID, payload)
}

func deadlineFrom(ctx context.Context, def time.Duration) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(def)
}
