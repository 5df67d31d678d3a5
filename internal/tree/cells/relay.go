package cells

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const relayBatch = 512

// relayLoop moves committed outbox messages to the brokers of the cells they
// go to next. A message leaves the outbox only once the receiving broker has
// stored it; a neighbour that is down keeps its messages until it returns.
func (s *Service) relayLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RelayInterval)
	defer t.Stop()
	var backlog bool
	for {
		for s.relayOnce(ctx, &backlog) && ctx.Err() == nil {
			// A full batch went out: there may be more.
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// relayOnce relays one batch per neighbour; it reports whether any batch
// was full. It reads the outbox in one statement (outbox.Unsent) while
// what is queued fits in a batch, the usual case; when more is (a
// neighbour down, a burst), it counts them per neighbour and reads a
// batch for each, and goes on so, through *backlog, until a count shows
// the backlog gone.
func (s *Service) relayOnce(ctx context.Context, backlog *bool) bool {
	var unsent map[string][]outbox.Entry
	var counts map[string]int
	var err error
	if !*backlog {
		var complete bool
		unsent, complete, err = outbox.Unsent(ctx, s.cfg.DB, relayBatch)
		if err == nil && complete {
			counts = make(map[string]int, len(unsent))
			for nb, es := range unsent {
				counts[nb] = len(es)
			}
		}
	}
	if err == nil && counts == nil {
		counts, err = outbox.Neighbours(ctx, s.cfg.DB)
		total := 0
		for _, n := range counts {
			total += n
		}
		*backlog = total > relayBatch
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("reading the outbox", "err", err)
		}
		return false
	}
	more := false
	now := s.now()
	defer s.sweepSent(ctx, now)
	defer s.checkLinks(ctx, counts, now)
	for nb := range counts {
		js, l := s.jsFor(nb)
		if js == nil {
			if s.warnOnce("orphan:"+nb, time.Minute) {
				s.log.Warn("messages queued for a cell that is not a neighbour; keeping them", "neighbour", nb, "queued", counts[nb])
			}
			continue
		}
		if l != nil && now.Before(l.backoffUntil) {
			s.replaceIfDue(ctx, nb, l, now)
			continue
		}
		if l != nil && !l.conn.nc.IsConnected() {
			// Its broker is unreachable: publishing now would only wait
			// for acks that cannot come, holding up every other neighbour.
			s.relayFailed(l, nb, counts[nb])
			s.replaceIfDue(ctx, nb, l, now)
			continue
		}
		entries, ok := unsent[nb]
		if !ok {
			if entries, err = outbox.Pending(ctx, s.cfg.DB, nb, relayBatch); err != nil {
				s.log.Error("reading the outbox", "neighbour", nb, "err", err)
				continue
			}
		}
		msgs := coalesce(entries, s.noteStates(nb))
		if s.faults != nil {
			msgs = s.injectFaults(ctx, nb, msgs)
		}
		sent, failed := s.publishBatch(ctx, js, nb, msgs)
		if len(sent) > 0 {
			s.relayed(ctx, nb, l, entries, sent)
		}
		if l != nil {
			// What the child's inbox took, or did not, says whether it
			// can be reached (checkLinks); messages the fault injection
			// held back say nothing.
			s.mu.Lock()
			if failed {
				setPubFailed(l, true, now)
			} else if len(sent) > 0 {
				setPubFailed(l, false, now)
			}
			s.mu.Unlock()
			if len(sent) < len(entries) {
				s.relayFailed(l, nb, counts[nb])
			} else {
				s.mu.Lock()
				if l.failures > 0 {
					s.log.Info("neighbour reachable again; relaying", "neighbour", nb)
				}
				l.failures = 0
				s.mu.Unlock()
			}
		}
		if len(entries) == relayBatch && len(sent) == len(entries) {
			more = true
		}
	}
	return more
}

// relayed clears from the outbox the messages nb's broker stored, but
// keeps the builds to a child, marked sent: a child whose processes died
// while its broker (an external one) lives would otherwise hold them for
// ever. sweepSent prunes them or places them elsewhere.
func (s *Service) relayed(ctx context.Context, nb string, l *link, entries []outbox.Entry, sent []int64) {
	var builds []int64
	child := false
	if l != nil {
		s.mu.Lock()
		child = l.n.Relation == Child
		s.mu.Unlock()
	}
	if child {
		isBuild := make(map[int64]bool)
		for _, e := range entries {
			if e.Method == wire.MethodBuildInstances {
				isBuild[e.Seq] = true
			}
		}
		if len(isBuild) > 0 {
			others := sent[:0:0]
			for _, seq := range sent {
				if isBuild[seq] {
					builds = append(builds, seq)
				} else {
					others = append(others, seq)
				}
			}
			sent = others
		}
	}
	if len(builds) > 0 {
		at := s.now() // once acknowledged: a batch may take seconds
		s.mu.Lock()
		l.kept, l.lastSent = true, at
		s.mu.Unlock()
		if err := outbox.MarkSent(ctx, s.cfg.DB, builds, at); err != nil {
			s.log.Error("marking relayed builds sent", "neighbour", nb, "err", err)
		}
	}
	if len(sent) > 0 {
		if err := outbox.Delete(ctx, s.cfg.DB, sent); err != nil {
			s.log.Error("clearing relayed messages", "neighbour", nb, "err", err)
		}
	}
}

// relayFailed backs off from relaying to a neighbour that did not take its
// messages.
func (s *Service) relayFailed(l *link, nb string, queued int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l.failures++
	wait := min(time.Duration(l.failures)*250*time.Millisecond, 5*time.Second)
	l.backoffUntil = time.Now().Add(wait)
	if l.failures == 1 || l.failures%20 == 0 {
		s.log.Warn("neighbour unreachable; keeping its messages", "neighbour", nb, "queued", queued, "retry_in", wait)
	}
}

// jsFor returns the JetStream handle that reaches nb's inbox.
func (s *Service) jsFor(nb string) (jetstream.JetStream, *link) {
	if nb == s.path {
		return s.js, nil
	}
	l, ok := s.neighbour(nb)
	if !ok {
		return nil, nil
	}
	return l.conn.js, l
}

// publishBatch publishes envelopes asynchronously and returns the outbox
// sequence numbers of those the broker acknowledged, and whether a
// publish failed (was refused, or not acknowledged in time).
func (s *Service) publishBatch(ctx context.Context, js jetstream.JetStream, nb string, msgs []outgoing) (sent []int64, failed bool) {
	type pending struct {
		seqs []int64
		f    jetstream.PubAckFuture
	}
	subj := s.names.In(nb)
	ps := make([]pending, 0, len(msgs))
	for _, o := range msgs {
		m := nats.NewMsg(subj)
		m.Data = o.body
		m.Header.Set(jetstream.MsgIDHeader, o.msgID)
		f, err := js.PublishMsgAsync(m)
		if err != nil {
			failed = true
			break
		}
		ps = append(ps, pending{o.seqs, f})
	}
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for _, p := range ps {
		select {
		case <-p.f.Ok():
			sent = append(sent, p.seqs...)
			s.published.durable.Add(1)
		case err := <-p.f.Err():
			s.log.Debug("relay publish failed", "neighbour", nb, "err", err)
			failed = true
		case <-timeout.C:
			return sent, true
		case <-ctx.Done():
			return sent, failed
		}
	}
	return sent, failed
}

func (s *Service) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := outbox.PruneApplied(ctx, s.cfg.DB, time.Now().Add(-s.cfg.AppliedRetention))
			if err != nil && ctx.Err() == nil {
				s.log.Error("pruning applied message ids", "err", err)
			} else if n > 0 {
				s.log.Debug("pruned applied message ids", "count", n)
			}
		}
	}
}

// warnOnce reports whether a warning with this key may be logged now: at
// most once per interval.
func (s *Service) warnOnce(key string, every time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.warned[key]; ok && time.Since(t) < every {
		return false
	}
	s.warned[key] = time.Now()
	return true
}
