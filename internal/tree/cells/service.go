// Package cells is the cells service: it routes messages between a cell and
// its neighbours, schedules builds across child cells, reports capacity to
// the parent, and hands each message that is for this cell to the handler
// registered for its method. Handlers for the cell's own work (the API
// cell's copy of instances, a compute cell's builds) are registered by the
// roles that own that work; this package knows the machinery only.
package cells

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cellsched"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Config is the cells service's configuration.
type Config struct {
	// Path is this cell's path.
	Path string
	// Prefix begins every subject and stream name of the tree on its
	// brokers (default DefaultPrefix); every cell of a tree has the same.
	Prefix string
	// Stream is the storage of the cell's inbox stream.
	Stream StreamSettings
	DB     *db.DB
	// Conn is the connection to this cell's own broker.
	Conn   *nats.Conn
	Logger *slog.Logger
	// LinkOptions are added to the connections to neighbours' brokers
	// (the tree CA to verify them against); the user comes in each
	// neighbour's broker URL.
	LinkOptions []nats.Option

	// ReportInterval is how often capacity goes to the parent (default 10s).
	ReportInterval time.Duration
	// RefreshInterval is how often the cells table is re-read (default 2s).
	RefreshInterval time.Duration
	// RelayInterval is how often the outbox is polled when nothing woke
	// the relay (default 200ms).
	RelayInterval time.Duration
	// MuteAfter is how long a silent child keeps its weight (default 300s).
	MuteAfter time.Duration
	// DownAfter is how long a child may go without a capacity report
	// before it counts as down: builds go to other cells, and its capacity
	// leaves this cell's report (default three report intervals, at least
	// 3s).
	DownAfter time.Duration
	// UnreachableAfter is how long a child's inbox stream may refuse this
	// cell's publishes, or this cell's own inbox stream be unreadable,
	// before the child (or this cell) counts as unable to receive
	// (default 15s). On a NATS cluster a stream whose leader's server is
	// lost takes a few seconds (up to the servers' 9 s election timeout)
	// to elect another: a build placed meanwhile waits in the outbox and is
	// delivered then, rather than fail for want of another cell. A
	// connection to the broker that is down counts after
	// reconnectGrace(UnreachableAfter): a client moves to another server
	// of its cluster within milliseconds.
	UnreachableAfter time.Duration
	// MaxBuildAttempts bounds cell-level retries of a build (default 3).
	MaxBuildAttempts int
	// BuildAcceptTimeout is how long a build sent to a child may wait in
	// the outbox while the child cannot be reached (its broker does not
	// take messages, or it is down) before it is placed elsewhere, fenced
	// against the child building it too (replace.go; default 20s).
	BuildAcceptTimeout time.Duration
	// CallTimeout is the default deadline of a call or gather (default 10s).
	CallTimeout time.Duration
	// AppliedRetention is how long applied message ids are kept (default 24h).
	AppliedRetention time.Duration
	// InboxAckWait is how long the broker waits for this cell to
	// acknowledge a durable message it delivered before delivering it
	// again (default 60s). What an earlier process of the cell took and
	// did not acknowledge is delivered again at once when the service
	// starts, not after this wait.
	InboxAckWait time.Duration

	// Capacity reports this cell's own hosts; nil for a cell without hosts.
	// The roles that take builds for those hosts, and the API cell's
	// record of builds, need the service's Sender, so they are registered
	// after New and before Start (AcceptBuilds, RecordPlacements,
	// RecordBuildErrors).
	Capacity CapacityReporter
	// Scheduler is the cell scheduler; nil means cellsched.Default().
	Scheduler *cellsched.Scheduler
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Faults, for fault testing only (never in production), makes the
	// relay duplicate, delay and reorder messages; nil injects nothing.
	Faults *Faults
}

func (c *Config) defaults() error {
	if err := cellpath.Validate(c.Path); err != nil {
		return fmt.Errorf("cells: %w", err)
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if err := cellpath.ValidPrefix(c.Prefix); err != nil {
		return fmt.Errorf("cells: %w", err)
	}
	if c.Stream.Replicas < 0 || c.Stream.Replicas > 5 || c.Stream.MaxBytes < 0 || c.Stream.MaxMsgs < 0 || c.Stream.MaxAge < 0 {
		return fmt.Errorf("cells: bad inbox stream settings %+v", c.Stream)
	}
	if c.DB == nil || c.Conn == nil {
		return errors.New("cells: a database and a broker connection are required")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.ReportInterval, 10*time.Second)
	def(&c.RefreshInterval, 2*time.Second)
	def(&c.RelayInterval, 200*time.Millisecond)
	def(&c.MuteAfter, 300*time.Second)
	def(&c.DownAfter, max(3*c.ReportInterval, 3*time.Second))
	def(&c.CallTimeout, 10*time.Second)
	def(&c.AppliedRetention, 24*time.Hour)
	def(&c.InboxAckWait, 60*time.Second)
	def(&c.BuildAcceptTimeout, 20*time.Second)
	def(&c.UnreachableAfter, 15*time.Second)
	if c.MaxBuildAttempts <= 0 {
		c.MaxBuildAttempts = 3
	}
	if c.Scheduler == nil {
		c.Scheduler = cellsched.Default()
		for i, w := range c.Scheduler.Weighers {
			if _, ok := w.Weigher.(cellsched.MuteChildWeigher); ok {
				c.Scheduler.Weighers[i].Weigher = cellsched.MuteChildWeigher{MuteAfter: c.MuteAfter}
			}
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Faults != nil {
		return c.Faults.validate()
	}
	return nil
}

// CapacityReporter is what a cell with hosts offers for capacity reports
// and the cell scheduler: the capacity of its own hosts, read through q
// (the caller's transaction, when there is one).
type CapacityReporter interface {
	Capacity(ctx context.Context, q Querier) (capacity.Report, error)
}

// BuildAcceptor is what a cell with hosts offers to take a build for them
// (a compute cell's conductor): it records the build inside tx, the
// transaction that applies the build message.
type BuildAcceptor interface {
	AcceptBuild(ctx context.Context, tx *db.Tx, env *wire.Envelope, b *wire.BuildInstances) error
}

// Placer is what the root cell (the API cell, which keeps the copy of
// every instance) offers to record, inside tx and right after a build is
// sent, that the child cell now holds b's instances at version
// b.BaseVersion+1: the state the child would otherwise send up as soon as
// it accepts them. With a Placer, the builds the cell sends are marked
// Recorded.
//
// Taken reports, inside tx, whether cells in child's subtree have sent up
// a state of b's instances newer than the placement recorded for child:
// the child took the build. A build sent to a child that then went down is
// placed elsewhere only if the child had not taken it (the sent build is
// kept until the child proves alive, and a child that dies within
// cells.build_accept_timeout of taking a build has not yet proved it by
// its reports).
type Placer interface {
	Placed(ctx context.Context, tx *db.Tx, child, requestID string, b *wire.BuildInstances) error
	Taken(ctx context.Context, tx *db.Tx, child string, b *wire.BuildInstances) (bool, error)
}

// BuildErrorHandler is what the root cell offers to record, inside tx,
// that a build found no cell at all.
type BuildErrorHandler interface {
	BuildError(ctx context.Context, tx *db.Tx, b *wire.BuildInstances, reason string) error
}

// CastHandler applies a durable message inside tx, the transaction that
// also records the message as applied. It may enqueue further messages in tx.
type CastHandler func(ctx context.Context, tx *db.Tx, env *wire.Envelope) error

// CallHandler answers a call (or takes a best-effort one-way message, whose
// answer is dropped).
type CallHandler func(ctx context.Context, env *wire.Envelope) (any, error)

type handlerKey struct {
	method string
	major  int
}

type casts struct {
	maxMinor int
	h        CastHandler
}

type calls struct {
	maxMinor int
	h        CallHandler
}

// Service is a running cells service.
type Service struct {
	cfg  Config
	log  *slog.Logger
	path string

	casts map[handlerKey]casts
	calls map[handlerKey]calls
	// builds, placer and buildErrors are what the cell's roles offered
	// before Start; nil when no role did.
	builds      BuildAcceptor
	placer      Placer
	buildErrors BuildErrorHandler
	volumes     VolumeAcceptor

	js    jetstream.JetStream // own broker
	inbox jetstream.Consumer  // own inbox, once started
	// reportMu orders the writes of a child's report column: a report
	// that came and a change of what this cell sees of the child's inbox.
	reportMu sync.Mutex
	names    Names
	// inboxStream and inboxWant are the inbox stream and its consumer's
	// settings; inboxSeen (unix ns) is when the inbox last gave this
	// process a message or it finished a batch, inboxBusy how many it is
	// applying (watchInbox).
	inboxStream jetstream.Stream
	inboxWant   jetstream.ConsumerConfig
	inboxSeen   atomic.Int64
	inboxBusy   atomic.Int64
	// inboxStop stops consumeInbox's current iterator (nil between two);
	// inboxRemake asks it to make the consumer anew before the next.
	inboxMu     sync.Mutex
	inboxStop   func()
	inboxRemake atomic.Bool

	mu         sync.Mutex
	neighbours map[string]*link // by path
	conns      map[string]*conn // by broker URL
	pending    map[string]chan *wire.Envelope
	// took is what a routing cell's children sent up (took.go).
	took *tookStates
	// inflight is what this cell has sent each child to build since the
	// child's last capacity report, so that builds between reports spread
	// over the children instead of all going to the one that looked best.
	inflight  map[string]capacity.Report
	warned    map[string]time.Time
	reportNow chan struct{}
	// notReceiving is why this cell could not receive at its last
	// report ("" when it could).
	notReceiving string
	// disconnectedSince is when this cell's connection to its own broker
	// was first seen down in the current outage (zero: it is up).
	disconnectedSince time.Time
	// unreadableSince is when this cell's own inbox stream was first
	// found unreadable in the current run of failures (zero: readable).
	unreadableSince time.Time

	wake     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	started  bool
	startAt  time.Time
	stopping bool // set under mu by Shutdown: no new goroutines after it
	stopOnce sync.Once
	subs     []*nats.Subscription
	ready    chan struct{}

	// published counts the envelopes this cell put on a broker: durable
	// messages relayed from the outbox, and calls, notifications and
	// responses.
	published struct{ durable, calls atomic.Int64 }

	// faults is the relay's fault injection; nil (always, in production)
	// injects nothing.
	faults *faultInjector
}

// Published is how many envelopes the cell has put on brokers since it
// started: durable messages (relayed from the outbox and acknowledged),
// and calls, notifications and responses.
func (s *Service) Published() (durable, calls int64) {
	return s.published.durable.Load(), s.published.calls.Load()
}

// New validates the configuration and builds a service; Start runs it.
func New(cfg Config) (*Service, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	js, err := jetstream.New(cfg.Conn, jetstream.WithPublishAsyncTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("cells: jetstream: %w", err)
	}
	s := &Service{
		cfg:        cfg,
		log:        cfg.Logger.With("cell", cfg.Path, "role", "cells"),
		path:       cfg.Path,
		casts:      map[handlerKey]casts{},
		calls:      map[handlerKey]calls{},
		js:         js,
		names:      Names{cfg.Prefix},
		neighbours: map[string]*link{},
		conns:      map[string]*conn{},
		pending:    map[string]chan *wire.Envelope{},
		inflight:   map[string]capacity.Report{},
		warned:     map[string]time.Time{},
		reportNow:  make(chan struct{}, 1),
		wake:       make(chan struct{}, 1),
		ready:      make(chan struct{}),
		faults:     newFaultInjector(cfg.Faults),
		took:       newTookStates(tookWindow(cfg)),
	}
	s.HandleCast(wire.MethodBuildInstances, 1, 0, s.handleBuild)
	s.HandleCast(wire.MethodBuildFailed, 1, 0, s.handleBuildFailed)
	s.HandleCast(wire.MethodVolumeCreate, 1, 0, s.handleVolumeCreate)
	s.HandleCall(wire.MethodCapacityReport, 1, 0, s.handleCapacityReport)
	return s, nil
}

// Path is the cell's path.
func (s *Service) Path() string { return s.path }

// HandleCast registers the handler of a durable method at major version
// major, accepting minor versions up to maxMinor. Register before Start.
func (s *Service) HandleCast(method string, major, maxMinor int, h CastHandler) {
	s.casts[handlerKey{method, major}] = casts{maxMinor, h}
}

// HandleCall registers the handler of a call method.
func (s *Service) HandleCall(method string, major, maxMinor int, h CallHandler) {
	s.calls[handlerKey{method, major}] = calls{maxMinor, h}
}

// AcceptBuilds makes a the taker of builds for this cell's own hosts (with
// Config.Capacity, the cell is then a candidate of its own scheduler).
// Register before Start.
func (s *Service) AcceptBuilds(a BuildAcceptor) { s.builds = a }

// RecordPlacements makes p the recorder of builds sent to children; only
// the root cell registers one. Register before Start.
func (s *Service) RecordPlacements(p Placer) { s.placer = p }

// RecordBuildErrors makes h the recorder of builds that found no cell;
// only the root cell registers one. Register before Start.
func (s *Service) RecordBuildErrors(h BuildErrorHandler) { s.buildErrors = h }

// Start sets up the inbox stream, subscribes, loads the cells table, and
// starts the loops. It returns once the service is ready.
func (s *Service) Start(ctx context.Context) error {
	if s.started {
		return errors.New("cells: already started")
	}
	s.started = true
	s.startAt = s.now()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.refreshNeighbours(ctx); err != nil {
		return err
	}
	cons, err := s.setupInbox(ctx)
	if err != nil {
		return err
	}
	sub, err := s.cfg.Conn.Subscribe(s.names.Call(s.path), s.onCall)
	if err != nil {
		return fmt.Errorf("cells: subscribe: %w", err)
	}
	nudge, err := s.cfg.Conn.Subscribe(s.names.Nudge(s.path), func(*nats.Msg) { s.Wake() })
	if err != nil {
		return fmt.Errorf("cells: subscribe: %w", err)
	}
	s.subs = append(s.subs, sub, nudge)
	if err := s.cfg.Conn.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("cells: flush: %w", err)
	}
	s.inbox = cons
	s.goLoop("inbox", func(ctx context.Context) { s.consumeInbox(ctx, cons) })
	s.goLoop("inbox watch", func(ctx context.Context) { s.watchInbox(ctx, s.inboxStream) })
	s.goLoop("relay", s.relayLoop)
	s.goLoop("neighbours", s.refreshLoop)
	s.goLoop("report", s.reportLoop)
	if cellpath.Parent(s.path) != "" {
		s.goLoop("own broker", s.watchOwnConn)
	}
	s.goLoop("prune", s.pruneLoop)
	close(s.ready)
	s.log.Info("cells service started", "neighbours", len(s.neighbours))
	return nil
}

// Ready is closed once Start has finished.
func (s *Service) Ready() <-chan struct{} { return s.ready }

func (s *Service) goLoop(name string, f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
		s.log.Debug("loop stopped", "loop", name)
	}()
}

// Shutdown stops the loops and closes neighbour connections. It is
// idempotent; it waits for the loops or for ctx.
func (s *Service) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.stopping = true
		s.mu.Unlock()
		if s.cancel != nil {
			s.cancel()
		}
		for _, sub := range s.subs {
			_ = sub.Unsubscribe()
		}
	})
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("cells: shutdown: %w", ctx.Err())
	}
	s.mu.Lock()
	for _, c := range s.conns {
		if c.nc != s.cfg.Conn {
			c.nc.Close()
		}
	}
	s.conns = map[string]*conn{}
	s.neighbours = map[string]*link{}
	s.mu.Unlock()
	return nil
}

// track registers a goroutine the service owns, unless shutdown has begun;
// the caller must call s.wg.Done when it returns true.
func (s *Service) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.wg.Add(1)
	return true
}

// Wake makes the outbox relay look at the outbox now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) now() time.Time { return s.cfg.Now() }

// Down reports whether a child is down (IsDown): it cannot receive, or
// it has stopped reporting.
func (s *Service) Down(n Neighbour) bool {
	return IsDown(n, s.now(), s.cfg.DownAfter, s.startAt)
}

// childDown reports whether the child at path is down, as last loaded.
func (s *Service) childDown(path string) bool {
	s.mu.Lock()
	l, ok := s.neighbours[path]
	var n Neighbour
	if ok {
		n = l.n
	}
	s.mu.Unlock()
	return ok && s.Down(n)
}

// IsDown is the one definition of a child that is down, for the cell
// scheduler, the capacity reports and the operator views (os-cells and
// cellcloud status, os-services, os-hypervisors) alike. A child is down
// when it cannot receive, which counts at once: it said so in its last
// report (NotReceiving), or this cell cannot reach its inbox
// (Unreachable); or when it has stopped reporting: its last report is
// older than downAfter, or it never reported since since.
func IsDown(n Neighbour, now time.Time, downAfter time.Duration, since time.Time) bool {
	if n.Relation != Child {
		return false
	}
	if NotReceiving(n) != "" {
		return true
	}
	seen := n.LastSeen
	if seen.IsZero() {
		seen = since
	}
	return now.Sub(seen) > downAfter
}

// NotReceiving says why a child cannot receive now: this cell cannot
// reach its inbox, or the child said it cannot read it; "" when neither.
func NotReceiving(n Neighbour) string {
	if n.Unreachable != "" {
		return n.Unreachable
	}
	if n.Report != nil {
		return n.Report.NotReceiving
	}
	return ""
}

// DownCells lists the cells below that are down, as the cells table of
// this cell tells: children that are down (IsDown: they cannot receive or
// stopped reporting), and the cells their live siblings' reports say are
// down.
func DownCells(ctx context.Context, q Querier, now time.Time, downAfter time.Duration, since time.Time) ([]string, error) {
	ns, err := ListNeighbours(ctx, q)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range ns {
		switch {
		case n.Relation != Child:
		case IsDown(n, now, downAfter, since):
			out = append(out, n.Path)
		case n.Report != nil:
			out = append(out, n.Report.DownCells...)
		}
	}
	return out, nil
}
