package cells

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/tree/broker"
)

// linkInbox is the inbox prefix of the connections to a neighbour's
// broker: the JetStream acknowledgements of the relay come back on it.
const linkInbox = "_LINK"

// LinkPermissions are the subjects a neighbour may publish and subscribe to
// on cell path's broker (its broker's Link user, broker.Auth), for a tree
// with subject prefix prefix ("" is DefaultPrefix): it sends durable
// messages to the cell's inbox and calls and replies to its call subject,
// and receives the acknowledgements of the first on its own inbox prefix.
// It may not read the cell's traffic nor send anything else.
func LinkPermissions(prefix, path string) (publish, subscribe []string) {
	n := Names{prefix}
	return []string{n.In(path), n.Call(path)}, []string{linkInbox + ".>"}
}

// inboxConsumer is the durable consumer of a cell's inbox stream.
const inboxConsumer = "cells"

// conn is a connection to a broker, shared by the neighbours that use it.
type conn struct {
	url  string
	nc   *nats.Conn
	js   jetstream.JetStream
	refs int
}

// link is a neighbour and the connection that reaches it.
type link struct {
	n    Neighbour
	conn *conn
	// backoffUntil delays relaying after a failure.
	backoffUntil time.Time
	failures     int
	// replaceAt is when the outbox may next be searched for builds this
	// child has not taken in time (replace.go); zero: at the first failure.
	replaceAt time.Time
	// kept says builds sent to this child may be kept in the outbox
	// (sweepSent); lastSent is when the latest was sent. A new link
	// assumes some were, sent until now (a restart, a new broker URL).
	kept     bool
	lastSent time.Time
	// sweepAt is when sweepSent may next look at this child's kept builds.
	sweepAt time.Time
	// pubFailed says the child's inbox stream did not take the last
	// publish (or probe); unreachable is why this cell cannot reach the
	// child's inbox ("" when it can: liveness.go), and stored what the
	// cells table says of it.
	pubFailed bool
	// failingSince is when the current run of publishes (or probes) this
	// child's inbox did not take began (zero: the last one took).
	failingSince time.Time
	probing      bool
	unreachable  string
	stored       string
	// disconnectedSince is when this cell's connection to the child's
	// broker was first seen down in the current outage (zero: it is up).
	disconnectedSince time.Time
	// receivingAt is when the child last reported while it could
	// receive and this cell could reach it (zero: not since this link
	// was made): what its broker held before then, it took (sweepSent).
	receivingAt time.Time
}

func (s *Service) setupInbox(ctx context.Context) (jetstream.Consumer, error) {
	cons, stream, want, err := s.setupInboxConsumer(ctx)
	if err != nil {
		return nil, err
	}
	s.inboxStream, s.inboxWant = stream, want
	return cons, nil
}

func (s *Service) setupInboxConsumer(ctx context.Context) (jetstream.Consumer, jetstream.Stream, jetstream.ConsumerConfig, error) {
	stream, err := ensureStreamWait(ctx, s.js, s.names, s.path, s.cfg.Stream, streamWait, s.log)
	if err != nil {
		return nil, nil, jetstream.ConsumerConfig{}, err
	}
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	want := jetstream.ConsumerConfig{
		Durable:       inboxConsumer,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.InboxAckWait,
		MaxAckPending: 4096,
		FilterSubject: s.names.In(s.path),
	}
	// Messages delivered to an earlier process of this cell that died
	// before acknowledging them (a broker that outlives its cell: an
	// external one), and pull requests that process left waiting (which
	// would take messages for nobody), would hold those messages until the
	// ack wait ends. Only then is the consumer made anew: a new consumer
	// of the work queue starts from its first message not acknowledged,
	// at once, and a message applied already is skipped by its applied
	// id. The consumer's state is only its delivery position and
	// redelivery counts, and the stream keeps every message not
	// acknowledged, so this loses nothing; a consumer with nothing
	// outstanding (a clean shutdown, an embedded broker) is kept, and
	// updated in place when its settings changed.
	info, err := stream.Consumer(sctx, inboxConsumer)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
	case err != nil:
		return nil, nil, want, fmt.Errorf("cells: inbox consumer of %s: %w", s.names.Stream(s.path), err)
	default:
		ci := info.CachedInfo()
		if ci.NumAckPending > 0 || ci.NumWaiting > 0 {
			s.log.Info("inbox consumer made anew: an earlier process left messages unacknowledged or requests waiting",
				"stream", s.names.Stream(s.path), "ack_pending", ci.NumAckPending, "waiting", ci.NumWaiting)
			if err := stream.DeleteConsumer(sctx, inboxConsumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, nil, want, fmt.Errorf("cells: inbox consumer of %s: %w", s.names.Stream(s.path), err)
			}
		}
	}
	cons, err := stream.CreateOrUpdateConsumer(sctx, want)
	if err != nil {
		return nil, nil, want, fmt.Errorf("cells: inbox consumer of %s: %w", s.names.Stream(s.path), err)
	}
	return cons, stream, want, nil
}

// refreshNeighbours re-reads the cells table and brings connections in line:
// new neighbours are connected, removed ones dropped, changed URLs moved.
func (s *Service) refreshNeighbours(ctx context.Context) error {
	ns, err := ListNeighbours(ctx, s.cfg.DB)
	if err != nil {
		return err
	}
	want := map[string]Neighbour{}
	for _, n := range ns {
		if err := ValidateNeighbour(s.path, n); err != nil {
			s.log.Error("ignoring a bad row of the cells table", "neighbour", n.Path, "err", err)
			continue
		}
		want[n.Path] = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, l := range s.neighbours {
		n, ok := want[p]
		if !ok || n.BrokerURL != l.n.BrokerURL {
			s.release(l.conn)
			delete(s.neighbours, p)
			if !ok {
				s.log.Info("neighbour removed", "neighbour", p)
			}
		}
	}
	for p, n := range want {
		if l, ok := s.neighbours[p]; ok {
			if !reflect.DeepEqual(l.n.Capabilities, n.Capabilities) || l.n.WeightOffset != n.WeightOffset || l.n.WeightScale != n.WeightScale || l.n.Relation != n.Relation {
				s.log.Info("neighbour changed", "neighbour", p)
			}
			n.Unreachable = l.unreachable // this process's view, not the table's
			l.n = n
			continue
		}
		c, err := s.acquire(ctx, n.BrokerURL)
		if err != nil {
			s.log.Error("cannot connect to neighbour's broker", "neighbour", p, "url", broker.Redact(n.BrokerURL), "err", err)
			continue
		}
		stored := n.Unreachable
		n.Unreachable = "" // seen anew over the new connection (checkLinks)
		s.neighbours[p] = &link{n: n, conn: c, kept: n.Relation == Child, lastSent: s.now(), stored: stored}
		s.log.Info("neighbour added", "neighbour", p, "relation", n.Relation, "url", broker.Redact(n.BrokerURL))
	}
	return nil
}

// acquire returns a shared connection to url; s.mu is held.
func (s *Service) acquire(ctx context.Context, url string) (*conn, error) {
	if c, ok := s.conns[url]; ok {
		c.refs++
		return c, nil
	}
	var nc *nats.Conn
	if url == s.cfg.Conn.ConnectedUrl() || url == s.cfg.Conn.Opts.Url {
		nc = s.cfg.Conn
	} else {
		var err error
		opts := append([]nats.Option{nats.CustomInboxPrefix(linkInbox)}, s.cfg.LinkOptions...)
		nc, err = broker.Connect(ctx, url, "cellcloud cells "+s.path, s.log, opts...)
		if err != nil {
			return nil, err
		}
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return nil, err
	}
	c := &conn{url: url, nc: nc, js: js, refs: 1}
	s.conns[url] = c
	return c, nil
}

// release drops a reference to a connection; s.mu is held.
func (s *Service) release(c *conn) {
	c.refs--
	if c.refs > 0 {
		return
	}
	delete(s.conns, c.url)
	if c.nc != s.cfg.Conn {
		c.nc.Close()
	}
}

func (s *Service) refreshLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.refreshNeighbours(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("reading the cells table", "err", err)
			}
		}
	}
}

// neighbour returns the link to a neighbour, if the cells table has it.
func (s *Service) neighbour(path string) (*link, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.neighbours[path]
	return l, ok
}

// Neighbours returns a snapshot of the cells table as last loaded.
func (s *Service) Neighbours() []Neighbour {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Neighbour, 0, len(s.neighbours))
	for _, l := range s.neighbours {
		out = append(out, l.n)
	}
	slices.SortFunc(out, func(a, b Neighbour) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// children returns the child neighbours.
func (s *Service) children() []Neighbour {
	var out []Neighbour
	for _, n := range s.Neighbours() {
		if n.Relation == Child {
			out = append(out, n)
		}
	}
	return out
}

// publishCall sends an ephemeral message to a neighbour (or to this cell).
func (s *Service) publishCall(to string, env any) error {
	b, err := json.Marshal(env)
	if err != nil {
		return err
	}
	nc := s.cfg.Conn
	if to != s.path {
		l, ok := s.neighbour(to)
		if !ok {
			return fmt.Errorf("no neighbour %q in the cells table", to)
		}
		nc = l.conn.nc
	}
	if err := nc.Publish(s.names.Call(to), b); err != nil {
		return err
	}
	s.published.calls.Add(1)
	return nil
}

// RefreshNeighbours re-reads the cells table now, rather than at the next
// refresh interval.
func (s *Service) RefreshNeighbours(ctx context.Context) error { return s.refreshNeighbours(ctx) }
