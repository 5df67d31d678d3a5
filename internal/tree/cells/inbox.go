package cells

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// consumeInbox takes durable messages from this cell's inbox stream, one
// batch at a time, and processes each; a message is acknowledged only after
// its effect has committed, so a crash leads to redelivery, and the applied
// id stops a redelivered message from taking effect twice.
func (s *Service) consumeInbox(ctx context.Context, cons jetstream.Consumer) {
	for ctx.Err() == nil {
		it, err := cons.Messages(jetstream.PullMaxMessages(256))
		if err != nil {
			s.log.Warn("reading the inbox", "err", err)
			sleepCtx(ctx, 250*time.Millisecond)
			continue
		}
		// Shutdown stops the iterator, which ends Next at once; messages
		// not yet acknowledged are redelivered after a restart. So does
		// watchInbox, to make the consumer anew.
		stop := context.AfterFunc(ctx, it.Stop)
		s.inboxMu.Lock()
		s.inboxStop = it.Stop
		s.inboxMu.Unlock()
		for {
			m, err := it.Next()
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					s.log.Warn("reading the inbox", "err", err)
				}
				break
			}
			s.inboxSeen.Store(time.Now().UnixNano())
			// Take what else is already waiting, and apply it all in one
			// transaction (a group commit).
			batch, size := []jetstream.Msg{m}, len(m.Data())
			for len(batch) < inboxBatch && size < inboxBatchBytes {
				m, err := it.Next(jetstream.NextMaxWait(time.Millisecond))
				if err != nil {
					break
				}
				batch, size = append(batch, m), size+len(m.Data())
			}
			s.inboxBusy.Add(int64(len(batch)))
			s.processBatch(ctx, batch)
			s.inboxBusy.Add(-int64(len(batch)))
			s.inboxSeen.Store(time.Now().UnixNano())
		}
		stop()
		it.Stop()
		s.inboxMu.Lock()
		s.inboxStop = nil
		s.inboxMu.Unlock()
		if s.inboxRemake.Swap(false) && ctx.Err() == nil {
			s.remakeConsumer(ctx)
		}
	}
}

// remakeConsumer deletes the inbox consumer and creates it again, between
// two iterators of consumeInbox: the new one starts from the first message
// not acknowledged, those delivered to nobody included.
func (s *Service) remakeConsumer(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := s.inboxStream.DeleteConsumer(cctx, inboxConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		s.log.Warn("making the inbox consumer anew", "err", err)
		return
	}
	if _, err := s.inboxStream.CreateOrUpdateConsumer(cctx, s.inboxWant); err != nil {
		s.log.Error("making the inbox consumer anew", "err", err)
	}
}

// inboxBatch and inboxBatchBytes bound the durable messages applied in one
// transaction: a group holds the database's write lock (on SQLite, the
// only one) while it is applied, so a large one would hold up every other
// writer, the API's creates among them.
const (
	inboxBatch      = 64
	inboxBatchBytes = 128 << 10
)

// processBatch applies several durable messages in one transaction. When
// one fails, the batch is applied again with each message under its own
// savepoint, so that the one that fails is undone alone and retried (or
// dropped) alone, while the others commit together. Messages are
// acknowledged after the commit.
func (s *Service) processBatch(ctx context.Context, msgs []jetstream.Msg) {
	if len(msgs) == 1 {
		s.processDurable(ctx, msgs[0])
		return
	}
	type item struct {
		m   jetstream.Msg
		env *wire.Envelope
		log *slog.Logger
		h   CastHandler
		d   decision
	}
	items := make([]item, 0, len(msgs))
	for _, m := range msgs {
		env, err := wire.Decode(m.Data())
		if err != nil {
			s.log.Error("dropping a malformed message", "err", err, "bytes", len(m.Data()))
			_ = m.Term()
			continue
		}
		it := item{m: m, env: env, log: s.log.With("request_id", env.RequestID, "msg_id", env.ID, "method", env.Method, "from", env.Last())}
		if it.d, err = s.route(env); err == nil && it.d.local {
			it.h, err = s.castHandler(env)
		}
		if err != nil {
			s.settle(ctx, m, err, it.log)
			continue
		}
		items = append(items, it)
	}
	// The first attempt records the batch's ids as applied in one
	// statement; the second, each message under its own savepoint,
	// records each id with its message, so that a message undone is
	// undone with its record.
	applied := make([]outbox.Applied, len(items))
	for i, it := range items {
		applied[i] = outbox.Applied{ID: it.env.ID, Method: it.env.Method}
	}
	var fresh []bool
	fs := make([]func(*db.Tx) error, len(items))
	for i := range items {
		it := &items[i]
		fs[i] = func(tx *db.Tx) error {
			if tx.Alone() {
				return s.applyIn(ctx, tx, it.env, it.h, it.d, it.log)
			}
			if i == 0 {
				var err error
				if fresh, err = outbox.MarkAppliedMany(ctx, tx, applied); err != nil {
					return err
				}
			}
			if !fresh[i] {
				it.log.Debug("message already applied; ignoring the repeat")
				return nil
			}
			return s.applyFresh(ctx, tx, it.env, it.h, it.d)
		}
	}
	errs, err := s.cfg.DB.InTxEach(ctx, fs)
	if err != nil {
		// The batch did not commit: each message on its own.
		if ctx.Err() != nil {
			return
		}
		for _, it := range items {
			s.processDurable(ctx, it.m)
		}
		return
	}
	for i, it := range items {
		s.settle(ctx, it.m, errs[i], it.log)
	}
}

// settle acknowledges a message that took effect, drops one that never
// can, and asks again later for the rest.
func (s *Service) settle(ctx context.Context, m jetstream.Msg, err error, log *slog.Logger) {
	switch {
	case err == nil:
		_ = m.Ack()
	case isPermanent(err):
		log.Error("dropping a message that cannot be applied", "err", err)
		_ = m.Term()
	default:
		if ctx.Err() != nil {
			return // shutting down: it will be redelivered
		}
		log.Warn("applying a message failed; it will be retried", "err", err)
		_ = m.NakWithDelay(time.Second)
	}
}

func (s *Service) processDurable(ctx context.Context, m jetstream.Msg) {
	env, err := wire.Decode(m.Data())
	if err != nil {
		s.log.Error("dropping a malformed message", "err", err, "bytes", len(m.Data()))
		_ = m.Term()
		return
	}
	log := s.log.With("request_id", env.RequestID, "msg_id", env.ID, "method", env.Method, "from", env.Last())
	s.settle(ctx, m, s.applyDurable(ctx, env, log), log)
}

// applyDurable routes a durable message and, when it is for this cell,
// applies it, all in one transaction with the record of it being applied.
func (s *Service) applyDurable(ctx context.Context, env *wire.Envelope, log *slog.Logger) error {
	d, err := s.route(env)
	if err != nil {
		return err
	}
	var h CastHandler
	if d.local {
		h, err = s.castHandler(env)
		if err != nil {
			return err
		}
	}
	return s.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return s.applyIn(ctx, tx, env, h, d, log) })
}

// applyIn records a durable message as applied and applies (or forwards)
// it inside tx, unless it was applied before.
func (s *Service) applyIn(ctx context.Context, tx *db.Tx, env *wire.Envelope, h CastHandler, d decision, log *slog.Logger) error {
	fresh, err := outbox.MarkApplied(ctx, tx, env.ID, env.Method)
	if err != nil {
		return err
	}
	if !fresh {
		log.Debug("message already applied; ignoring the repeat")
		return nil
	}
	return s.applyFresh(ctx, tx, env, h, d)
}

// applyFresh applies (or forwards) inside tx a durable message recorded
// as applied in it.
func (s *Service) applyFresh(ctx context.Context, tx *db.Tx, env *wire.Envelope, h CastHandler, d decision) error {
	if h != nil {
		if err := h(ctx, tx, env); err != nil {
			return err
		}
	}
	for _, f := range d.next {
		if err := outbox.Enqueue(ctx, tx, f.to, f.env); err != nil {
			return err
		}
		tx.AfterCommit(s.Wake)
	}
	return nil
}

func (s *Service) castHandler(env *wire.Envelope) (CastHandler, error) {
	major, minor, _ := wire.ParseVersion(env.Version)
	c, ok := s.casts[handlerKey{env.Method, major}]
	if !ok {
		if s.hasMethod(env.Method) {
			return nil, wire.Errorf(wire.CodeUnsupportedVersion, "cell %q does not support %s version %s", s.path, env.Method, env.Version)
		}
		return nil, wire.Errorf(wire.CodeUnknownMethod, "cell %q has no method %q", s.path, env.Method)
	}
	if minor > c.maxMinor {
		return nil, wire.Errorf(wire.CodeUnsupportedVersion, "cell %q supports %s up to %d.%d, not %s", s.path, env.Method, major, c.maxMinor, env.Version)
	}
	return c.h, nil
}

func (s *Service) hasMethod(method string) bool {
	for k := range s.casts {
		if k.method == method {
			return true
		}
	}
	for k := range s.calls {
		if k.method == method {
			return true
		}
	}
	return false
}

// isPermanent reports whether retrying cannot help: the message itself is
// wrong, or what it asks cannot be (invalid, conflict), now or ever.
func isPermanent(err error) bool {
	return errors.Is(err, wire.ErrBadMessage) || errors.Is(err, wire.ErrUnknownMethod) ||
		errors.Is(err, wire.ErrUnsupportedVersion) || errors.Is(err, wire.ErrNoRoute) || errors.Is(err, wire.ErrConflict) ||
		errors.Is(err, wire.ErrInvalid)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// orphanCheck is how often the inbox is checked for messages delivered to
// this process that it never got, and how long they must stay so.
const orphanCheck = 3 * time.Second

// watchInbox makes the inbox consumer anew when messages the broker
// counts as delivered to this process never reached it: the server that
// carried them stopped (a NATS cluster losing a node), and they would
// otherwise wait out the whole ack wait. It acts when, at two checks in a
// row, the consumer has messages awaiting acknowledgement, the ack floor
// has not moved, and this process has taken nothing from the inbox since
// the first check. A message the process was in fact applying is then
// delivered again and skipped by its applied id.
func (s *Service) watchInbox(ctx context.Context, stream jetstream.Stream) {
	if s.cfg.InboxAckWait <= 2*orphanCheck {
		return // the ack wait is as quick
	}
	t := time.NewTicker(orphanCheck)
	defer t.Stop()
	var suspect bool
	var floor uint64
	var at int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, orphanCheck)
		c, err := stream.Consumer(cctx, inboxConsumer)
		cancel()
		if err != nil {
			suspect = false
			continue
		}
		ci := c.CachedInfo()
		idle := s.inboxBusy.Load() == 0
		if !idle || ci.NumAckPending == 0 {
			suspect = false
			continue
		}
		if !suspect || ci.AckFloor.Consumer != floor || s.inboxSeen.Load() > at {
			suspect, floor, at = true, ci.AckFloor.Consumer, time.Now().UnixNano()
			continue
		}
		s.log.Warn("inbox messages delivered to this process never reached it (a broker server stopped?); making the consumer anew to have them again",
			"stream", s.names.Stream(s.path), "ack_pending", ci.NumAckPending)
		s.inboxRemake.Store(true)
		s.inboxMu.Lock()
		if s.inboxStop != nil {
			s.inboxStop()
		}
		s.inboxMu.Unlock()
		suspect = false
	}
}
