package cells

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A cell counts as up for its parent (IsDown) only while it can receive:
// while messages published to its inbox reach it. Two sides see it:
//
//   - the cell itself: its connection to its own broker, and whether its
//     inbox consumer can be read (receiving). Its capacity reports go to
//     the parent over the parent's broker, so they still arrive when its
//     own broker is down; they say so (capacity.Report.NotReceiving), and
//     a change is reported at once (watchOwnConn).
//   - the parent: its connection to the child's broker, and whether the
//     child's inbox stream took its last publish (checkLinks). It keeps
//     that in Neighbour.Unreachable, in memory for its scheduler and in
//     the cells table for the operator views.

// receiving says why this cell cannot receive now: its connection to its
// own broker is down, or its inbox consumer cannot be read (JetStream
// does not answer, or the consumer is gone). "" when it can.
func (s *Service) receiving(ctx context.Context) string {
	if why := s.ownConn(s.cfg.Conn.IsConnected(), s.now()); why != "" {
		return why
	}
	if s.inbox == nil {
		return ""
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := s.inbox.Info(ictx)
	if err != nil && ctx.Err() != nil {
		return ""
	}
	return s.inboxRead(err, s.now())
}

// reconnectGrace is how long a connection to a broker may be down before
// the cell at its other end counts as unable to receive: a NATS client
// whose server is lost moves to another server of its cluster within
// milliseconds, and a build placed meanwhile waits in the outbox. Two
// seconds, or unreachable_after when that is shorter.
func reconnectGrace(unreachableAfter time.Duration) time.Duration {
	return min(unreachableAfter, 2*time.Second)
}

// ownConn records whether this cell's connection to its own broker is up
// now and says why the cell cannot receive: "" while it is up, and while
// it has been down for less than reconnectGrace.
func (s *Service) ownConn(connected bool, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if connected {
		s.disconnectedSince = time.Time{}
		return ""
	}
	if s.disconnectedSince.IsZero() {
		s.disconnectedSince = now
	}
	if now.Sub(s.disconnectedSince) < reconnectGrace(s.cfg.UnreachableAfter) {
		return ""
	}
	return "its connection to its own broker is down since " + s.disconnectedSince.UTC().Format(time.RFC3339)
}

// inboxRead records whether this cell's own inbox could be read now (err
// from reading it) and says why it cannot receive: "" while it can, and
// while it has been unreadable for less than cells.unreachable_after. A
// stream electing a leader (a NATS server of its cluster lost) answers
// "temporarily unavailable" for a few seconds: not yet a reason to take
// no builds.
func (s *Service) inboxRead(err error, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.unreadableSince = time.Time{}
		return ""
	}
	if s.unreadableSince.IsZero() {
		s.unreadableSince = now
	}
	if now.Sub(s.unreadableSince) < s.cfg.UnreachableAfter {
		s.log.Debug("this cell's inbox cannot be read; within unreachable_after", "err", err, "since", s.unreadableSince)
		return ""
	}
	return fmt.Sprintf("its inbox cannot be read since %s: %v", s.unreadableSince.UTC().Format(time.RFC3339), err)
}

// noteReceiving logs when this cell stops or starts being able to
// receive, once per change.
func (s *Service) noteReceiving(why string) {
	s.mu.Lock()
	was := s.notReceiving
	s.notReceiving = why
	s.mu.Unlock()
	switch {
	case why != "" && was == "":
		s.log.Warn("this cell cannot receive; telling the parent, which sends it nothing new until it can", "reason", why)
	case why == "" && was != "":
		s.log.Info("this cell can receive again; telling the parent")
	}
}

// watchOwnConn asks for a capacity report whenever the connection to this
// cell's own broker comes back, and once it has been down for
// reconnectGrace, so that the parent learns then that this cell cannot
// (or can again) receive.
func (s *Service) watchOwnConn(ctx context.Context) {
	ch := s.cfg.Conn.StatusChanged(nats.CONNECTED, nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer s.cfg.Conn.RemoveStatusListener(ch)
	grace := time.NewTimer(0)
	<-grace.C
	defer grace.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case st := <-ch:
			s.ownConn(st == nats.CONNECTED, s.now())
			if st == nats.CONNECTED {
				grace.Stop()
				s.ReportSoon()
			} else {
				// A little after the grace, so that the report sees it
				// ended.
				grace.Reset(reconnectGrace(s.cfg.UnreachableAfter) + 10*time.Millisecond)
			}
		case <-grace.C:
			s.ReportSoon()
		}
	}
}

// linkUnreachable says why this cell cannot reach child l's inbox now:
// its connection to the child's broker (connected says whether it is up)
// has been down for reconnectGrace(grace), or the child's inbox stream has not taken the
// parent's publishes (no JetStream responders, a timeout) for grace or
// longer; "" when it can. It records when the connection went down. s.mu
// is held.
func linkUnreachable(l *link, connected bool, now time.Time, grace time.Duration) string {
	if connected {
		l.disconnectedSince = time.Time{}
	} else if l.disconnectedSince.IsZero() {
		l.disconnectedSince = now
	}
	switch {
	case !l.disconnectedSince.IsZero() && now.Sub(l.disconnectedSince) >= reconnectGrace(grace):
		return "the parent's connection to its broker is down since " + l.disconnectedSince.UTC().Format(time.RFC3339)
	case l.pubFailed && !l.failingSince.IsZero() && now.Sub(l.failingSince) >= grace:
		return "its inbox stream has not taken the parent's publishes since " + l.failingSince.UTC().Format(time.RFC3339)
	}
	return ""
}

// setPubFailed records whether child l's inbox took the last publish (or
// probe), and since when it has not. s.mu is held.
func setPubFailed(l *link, failed bool, now time.Time) {
	l.pubFailed = failed
	switch {
	case !failed:
		l.failingSince = time.Time{}
	case l.failingSince.IsZero():
		l.failingSince = now
	}
}

// checkLinks brings what this cell sees of each child's inbox up to date:
// in memory at once (the cell scheduler reads it for every build), and in
// the cells table (the operator views read it there). A child whose
// inbox did not take a publish, and to which nothing is queued that would
// show it takes them again, is probed, in a goroutine of its own: a
// broker that does not answer holds up no other neighbour. The relay
// calls it after each round; queued is what that round found in the
// outbox.
func (s *Service) checkLinks(ctx context.Context, queued map[string]int, now time.Time) {
	type probe struct {
		path string
		l    *link
		js   jetstream.JetStream
	}
	var probes []probe
	s.mu.Lock()
	for p, l := range s.neighbours {
		if l.n.Relation == Child && l.pubFailed && !l.probing && queued[p] == 0 && l.conn.nc.IsConnected() && !now.Before(l.backoffUntil) {
			l.probing = true
			probes = append(probes, probe{p, l, l.conn.js})
		}
	}
	s.mu.Unlock()
	for _, pr := range probes {
		if !s.track() {
			break
		}
		go func() {
			defer s.wg.Done()
			ok := s.probeInbox(ctx, pr.js, pr.path)
			s.mu.Lock()
			pr.l.probing = false
			if ok {
				setPubFailed(pr.l, false, s.now())
				pr.l.failures = 0
			}
			s.mu.Unlock()
			if !ok {
				s.relayFailed(pr.l, pr.path, 0)
			}
			s.Wake() // checkLinks records the change
		}()
	}
	type change struct {
		path string
		l    *link
	}
	var changes []change
	s.mu.Lock()
	for p, l := range s.neighbours {
		if l.n.Relation != Child {
			continue
		}
		why := linkUnreachable(l, l.conn.nc.IsConnected(), now, s.cfg.UnreachableAfter)
		if why != l.unreachable {
			if why != "" {
				s.log.Warn("cannot reach a child's inbox; it takes no new builds until it can", "neighbour", p, "reason", why)
			} else {
				s.log.Info("a child's inbox is reachable again", "neighbour", p)
			}
			l.unreachable, l.n.Unreachable = why, why
		}
		if why != l.stored {
			changes = append(changes, change{p, l})
		}
	}
	s.mu.Unlock()
	for _, c := range changes {
		s.storeUnreachable(ctx, c.path, c.l)
	}
	if len(changes) > 0 {
		// The parent learns at once that this cell's capacity report no
		// longer (or again) holds the child's.
		s.ReportSoon()
	}
}

// storeUnreachable writes what this cell sees of child l's inbox to the
// cells table, with the child's last report; a failure is tried again
// after the next relay round.
func (s *Service) storeUnreachable(ctx context.Context, path string, l *link) {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	s.mu.Lock()
	why, rep := l.unreachable, l.n.Report
	s.mu.Unlock()
	if err := recordUnreachable(ctx, s.cfg.DB, path, rep, why); err != nil {
		if ctx.Err() == nil {
			s.log.Error("recording whether a child's inbox is reachable", "neighbour", path, "err", err)
		}
		return
	}
	s.mu.Lock()
	l.stored = why
	s.mu.Unlock()
}

// probeMsgID is the last message id a probe expects a child's inbox
// stream to hold; no message ever carries it, so the stream refuses the
// probe and stores nothing.
const probeMsgID = "cellcloud-liveness-probe"

// jsWrongLastMsgID is JetStream's error code for a publish whose expected
// last message id is not the stream's.
const jsWrongLastMsgID jetstream.ErrorCode = 10070

// probeInbox reports whether child nb's inbox stream answers a publish,
// without storing anything: the probe expects a last message id the
// stream never has, so the stream refuses it, and that refusal is the
// stream's answer. No responders or a timeout: it does not answer.
func (s *Service) probeInbox(ctx context.Context, js jetstream.JetStream, nb string) bool {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := js.PublishMsg(pctx, nats.NewMsg(s.names.In(nb)), jetstream.WithExpectLastMsgID(probeMsgID))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsWrongLastMsgID {
		return true
	}
	if err == nil {
		// Only if a message carried probeMsgID: the child drops the
		// empty message as malformed.
		s.log.Warn("a liveness probe was stored in a child's inbox", "neighbour", nb)
		return true
	}
	s.log.Debug("a child's inbox did not answer the liveness probe", "neighbour", nb, "err", err)
	return false
}
