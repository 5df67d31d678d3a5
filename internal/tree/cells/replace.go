package cells

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// FenceStep is how far a build's base version jumps when the build is
// placed again because the child it was sent to did not take it in time.
// That child may still get the first message (a publish whose ack was
// lost, an external broker that kept it) and build the instances: every
// version it can give them is then below the new placement's, so its
// updates lose at the API cell, which tells it to delete what it built
// (apicopy). A cell would have to change an instance 2^32 times to catch
// up.
const FenceStep int64 = 1 << 32

// replaceIfDue places elsewhere the builds queued for child nb longer
// than BuildAcceptTimeout, at most every quarter of that timeout, and, if
// nb is down, those sent to it longer ago than that. The relay calls it
// only for a neighbour it cannot relay to, in its own goroutine, so the
// relay is not publishing those messages meanwhile.
func (s *Service) replaceIfDue(ctx context.Context, nb string, l *link, now time.Time) {
	s.mu.Lock()
	due := l.n.Relation == Child && !now.Before(l.replaceAt)
	if due {
		l.replaceAt = now.Add(max(s.cfg.BuildAcceptTimeout/4, s.cfg.RelayInterval))
	}
	down := due && IsDown(l.n, now, s.cfg.DownAfter, s.startAt)
	s.mu.Unlock()
	if due {
		s.replaceStale(ctx, nb, now, down)
	}
}

// sweepSent looks, at most every quarter of BuildAcceptTimeout per child,
// at the builds kept after the child's broker stored them (relayed). Those
// sent more than BuildAcceptTimeout before the child's last capacity
// report are deleted, in one statement for every child: the child was
// alive well after its broker had them (for a child that is down because
// it cannot receive, its last report while it could). Those sent longer
// ago than that to a child that is down are placed elsewhere
// (replaceStale): its processes may have died with the build in its
// broker, or its broker with it. The others wait.
// The relay calls it after each round, in its own goroutine; it costs
// nothing while no build was sent since the children last proved alive.
func (s *Service) sweepSent(ctx context.Context, now time.Time) {
	timeout := s.cfg.BuildAcceptTimeout
	type swept struct {
		l        *link
		lastSent time.Time
	}
	prune := map[string]time.Time{}
	var pruned []swept         // all their kept builds go if the prune succeeds
	down := map[string]swept{} // down children
	s.mu.Lock()
	for nb, l := range s.neighbours {
		if !l.kept || l.n.Relation != Child || now.Before(l.sweepAt) {
			continue
		}
		l.sweepAt = now.Add(max(timeout/4, s.cfg.RelayInterval))
		if IsDown(l.n, now, s.cfg.DownAfter, s.startAt) {
			// A child that cannot receive now (liveness.go) may have been
			// receiving well after some of these were sent: it took those,
			// which are pruned, not placed elsewhere.
			if !l.receivingAt.IsZero() {
				prune[nb] = l.receivingAt.Add(-timeout)
			}
			down[nb] = swept{l, l.lastSent}
			continue
		}
		if l.n.LastSeen.IsZero() {
			continue
		}
		bound := l.n.LastSeen.Add(-timeout)
		prune[nb] = bound
		if l.lastSent.Before(bound) {
			pruned = append(pruned, swept{l, l.lastSent})
		}
	}
	s.mu.Unlock()
	settle := func(w swept) {
		s.mu.Lock()
		if w.l.lastSent.Equal(w.lastSent) {
			w.l.kept = false
		}
		s.mu.Unlock()
	}
	if len(prune) > 0 {
		n, err := outbox.PruneSent(ctx, s.cfg.DB, prune)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				s.log.Error("pruning the builds children took", "err", err)
			}
			// What a down child took must not be placed elsewhere: the
			// next sweep prunes it first.
			return
		default:
			if n > 0 {
				s.log.Debug("pruned the builds children took", "count", n)
			}
			for _, w := range pruned {
				settle(w)
			}
		}
	}
	for nb, w := range down {
		if s.replaceStale(ctx, nb, now, true) && w.lastSent.Before(now.Add(-timeout)) {
			settle(w)
		}
	}
}

// replaceStale places elsewhere, in one transaction, the builds queued for
// child nb longer than BuildAcceptTimeout and, if sent, those sent to it
// longer ago than that. It reports whether it succeeded.
func (s *Service) replaceStale(ctx context.Context, nb string, now time.Time, sent bool) bool {
	before := now.Add(-s.cfg.BuildAcceptTimeout)
	var sentBefore time.Time
	if sent {
		sentBefore = before
	}
	var n int
	err := s.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		es, err := outbox.TakeStale(ctx, tx, nb, wire.MethodBuildInstances, before, sentBefore)
		if err != nil {
			return err
		}
		n = len(es)
		for _, e := range es {
			if err := s.replace(ctx, tx, nb, e, now); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("placing elsewhere the builds a child did not take", "neighbour", nb, "err", err)
		}
		return false
	}
	if n > 0 {
		s.Wake()
	}
	return true
}

// replace places elsewhere, inside tx, one build that child nb did not
// take in time (at the root, unless its copy shows nb took it: then the
// build is dropped), as if nb had answered build_failed: nb joins the cells
// tried and an attempt is counted (past cells.max_build_attempts the
// build fails, at the root with "No valid host"). Its base version jumps
// by FenceStep.
func (s *Service) replace(ctx context.Context, tx *db.Tx, nb string, e outbox.Entry, now time.Time) error {
	env, err := wire.Decode(e.Body)
	if err != nil {
		return fmt.Errorf("queued build %s for %s: %w", e.MsgID, nb, err)
	}
	var b wire.BuildInstances
	if err := json.Unmarshal(env.Payload, &b); err != nil {
		return fmt.Errorf("queued build %s for %s: %w", e.MsgID, nb, err)
	}
	if env.Target != nb || b.Scheduler != s.path {
		// Not a build this cell placed on nb: not this cell's to move.
		s.log.Warn("a queued build this cell did not place is kept", "request_id", env.RequestID, "neighbour", nb, "target", env.Target)
		return outbox.Enqueue(ctx, tx, nb, env)
	}
	if s.placer != nil {
		// The root knows from its copy whether the child took it after all.
		taken, err := s.placer.Taken(ctx, tx, nb, &b)
		if err != nil {
			return fmt.Errorf("queued build %s for %s: %w", e.MsgID, nb, err)
		}
		if taken {
			s.log.Info("a build its cell did not confirm in time was taken by it (its instances were reported); not placed again",
				"request_id", env.RequestID, "neighbour", nb, "instances", len(b.Instances))
			return nil
		}
	}
	if s.placer == nil && s.took.sentAfter(nb, &b, e.CreatedAt) {
		// A routing cell knows it from the states nb sent up through it.
		s.log.Info("a build its cell did not confirm in time was taken by it (it sent its instances' states up); not placed again",
			"request_id", env.RequestID, "neighbour", nb, "instances", len(b.Instances))
		return nil
	}
	s.log.Warn("build not taken by its cell in time; placing it elsewhere", "request_id", env.RequestID, "neighbour", nb,
		"instances", len(b.Instances), "waited", now.Sub(e.CreatedAt).Round(time.Millisecond), "attempt", b.Attempts)
	// The versions nb could use start at BaseVersion+1 (whether or not the
	// root recorded that state); the build goes on past them all, and as a
	// build this cell has not recorded anywhere.
	b.BaseVersion += FenceStep
	b.Recorded = false
	return s.retry(ctx, tx, env, &wire.BuildFailed{Build: b, Cell: nb,
		Reason: fmt.Sprintf("cell %s did not take the build within %v", nb, s.cfg.BuildAcceptTimeout)})
}
