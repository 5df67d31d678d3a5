package cells_test

// An in-process tree of cells for the routing tests: every cell has its own
// SQLite file, its own embedded NATS server and its own cells service, wired
// together through the cells tables exactly as in production.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Test methods every cell of a tree handles.
const (
	// methodNote is durable: its handler records the envelope.
	methodNote = "test_note"
	// methodEcho is a call: its handler answers with the cell and route.
	methodEcho = "test_echo"
)

// note is the payload of methodNote.
type note struct {
	N int `json:"n"`
}

// echo is the answer to methodEcho.
type echo struct {
	Cell  string   `json:"cell"`
	Route []string `json:"route"`
}

// applied is one run of a methodNote handler.
type applied struct {
	Cell  string
	ID    string
	Route []string
	N     int
}

type tree struct {
	t     testing.TB
	logs  *logSink
	cells map[string]*testCell

	mu      sync.Mutex
	applied []applied
}

// testCell is one cell of a tree.
type testCell struct {
	tr       *tree
	path     string
	db       *db.DB
	storeDir string
	listen   string // host:port the broker listens on, kept across restarts
	// external, when set, is the broker the cell uses instead of an
	// embedded one (URLs separated by commas: a cluster).
	external string

	// configure, when set, adjusts the service's configuration before New.
	configure func(*cells.Config)
	// setup, when set, registers on each new service before it starts.
	setup func(*cells.Service)

	mu     sync.Mutex
	broker *broker.Embedded
	nc     *nats.Conn
	svc    *cells.Service
}

// newTree builds and starts a tree of the given paths (parents before
// children). configure may adjust a cell's configuration; it may be nil.
func newTree(t testing.TB, configure map[string]func(*cells.Config), paths ...string) *tree {
	t.Helper()
	return newTreeSetup(t, configure, nil, paths...)
}

// newTreeSetup is newTree where setup, when it has a function for a cell,
// registers what the cell's roles offer (AcceptBuilds, RecordPlacements,
// ...) on each of its services before it starts.
func newTreeSetup(t testing.TB, configure map[string]func(*cells.Config), setup map[string]func(*cells.Service), paths ...string) *tree {
	t.Helper()
	return newTreeOn(t, "", configure, setup, paths...)
}

// newTreeOn is newTreeSetup where, when external is set (a broker URL, or
// several separated by commas: a NATS cluster), every cell uses that
// broker instead of an embedded one of its own.
func newTreeOn(t testing.TB, external string, configure map[string]func(*cells.Config), setup map[string]func(*cells.Service), paths ...string) *tree {
	t.Helper()
	tr := &tree{t: t, logs: newLogSink(t), cells: map[string]*testCell{}}
	ctx := context.Background()
	for _, p := range paths {
		c := &testCell{tr: tr, path: p, storeDir: filepath.Join(t.TempDir(), "broker"), listen: "127.0.0.1:0", external: external, configure: configure[p], setup: setup[p]}
		c.db = dbtest.Open(t, "sqlite")
		if err := c.db.Migrate(ctx, "outbox", outbox.Migrations); err != nil {
			t.Fatalf("%s: migrate outbox: %v", p, err)
		}
		if err := c.db.Migrate(ctx, "cells", cells.Migrations); err != nil {
			t.Fatalf("%s: migrate cells: %v", p, err)
		}
		tr.cells[p] = c
	}
	// Registered after the databases, so it runs before they are closed.
	t.Cleanup(tr.shutdown)
	for _, p := range paths {
		tr.cells[p].startBroker()
	}
	for _, p := range paths {
		parent, ok := tr.cells[cellpath.Parent(p)]
		if !ok {
			continue
		}
		child := tr.cells[p]
		if err := cells.AddNeighbour(ctx, parent.db, parent.path, cells.Neighbour{Path: p, Relation: cells.Child, BrokerURL: child.url(), WeightScale: 1}); err != nil {
			t.Fatalf("add child %s to %s: %v", p, parent.path, err)
		}
		if err := cells.AddNeighbour(ctx, child.db, p, cells.Neighbour{Path: parent.path, Relation: cells.Parent, BrokerURL: parent.url(), WeightScale: 1}); err != nil {
			t.Fatalf("add parent %s to %s: %v", parent.path, p, err)
		}
	}
	for _, p := range paths {
		tr.cells[p].startService()
	}
	return tr
}

func (tr *tree) cell(p string) *testCell {
	c, ok := tr.cells[p]
	if !ok {
		tr.t.Fatalf("no cell %q in the tree", p)
	}
	return c
}

// shutdown stops every service, then the connections and brokers.
func (tr *tree) shutdown() {
	tr.stopServices(slices.Collect(maps.Keys(tr.cells))...)
	for _, c := range tr.cells {
		c.stopBroker()
	}
}

// stopServices stops the services of cells at once: each may take up to a
// second, the longest wait of its inbox fetch.
func (tr *tree) stopServices(paths ...string) {
	var wg sync.WaitGroup
	for _, p := range paths {
		wg.Go(tr.cells[p].stopService)
	}
	wg.Wait()
}

// appliedAt returns the methodNote handler runs at cell p.
func (tr *tree) appliedAt(p string) []applied {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []applied
	for _, a := range tr.applied {
		if a.Cell == p {
			out = append(out, a)
		}
	}
	return out
}

func (tr *tree) allApplied() []applied {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.applied)
}

func (c *testCell) url() string {
	if c.external != "" {
		return c.external
	}
	return "nats://" + c.listen
}

// startBroker starts the cell's broker (on the port it had before, if it
// ran before) and connects to it.
func (c *testCell) startBroker() {
	t := c.tr.t
	t.Helper()
	if c.external != "" {
		c.connect(nil)
		return
	}
	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: c.path, Listen: c.listen, StoreDir: c.storeDir})
	if err != nil {
		t.Fatalf("%s: start broker: %v", c.path, err)
	}
	u, err := url.Parse(b.URL())
	if err != nil {
		b.Shutdown()
		t.Fatalf("%s: broker URL %q: %v", c.path, b.URL(), err)
	}
	c.listen = u.Host
	c.connect(b)
}

// connect connects to the cell's broker b (nil: its external broker).
func (c *testCell) connect(b *broker.Embedded) {
	t := c.tr.t
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := broker.Connect(ctx, c.url(), "test "+c.path, c.tr.logs.logger())
	if err == nil {
		err = broker.WaitConnected(ctx, nc)
	}
	if err != nil {
		if b != nil {
			b.Shutdown()
		}
		t.Fatalf("%s: connect: %v", c.path, err)
	}
	c.mu.Lock()
	c.broker, c.nc = b, nc
	c.mu.Unlock()
}

// stopBroker closes the cell's connection and stops its broker.
func (c *testCell) stopBroker() {
	c.mu.Lock()
	b, nc := c.broker, c.nc
	c.broker, c.nc = nil, nil
	c.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
	if b != nil {
		b.Shutdown()
	}
}

// startService builds, wires and starts the cell's cells service.
func (c *testCell) startService() {
	t := c.tr.t
	t.Helper()
	cfg := cells.Config{
		Path:            c.path,
		DB:              c.db,
		Conn:            c.conn(),
		Logger:          c.tr.logs.logger(),
		ReportInterval:  time.Hour,
		RefreshInterval: 200 * time.Millisecond,
		RelayInterval:   50 * time.Millisecond,
		CallTimeout:     5 * time.Second,
		// A refused publish counts (nearly) at once, as the liveness
		// tests expect; TestChildWhoseInboxRefusesPublishesBrieflyTakesBuilds
		// sets the grace itself.
		UnreachableAfter: 200 * time.Millisecond,
	}
	if c.configure != nil {
		c.configure(&cfg)
	}
	svc, err := cells.New(cfg)
	if err != nil {
		t.Fatalf("%s: new: %v", c.path, err)
	}
	tr := c.tr
	svc.HandleCast(methodNote, 1, 0, func(_ context.Context, _ *db.Tx, env *wire.Envelope) error {
		var n note
		if err := json.Unmarshal(env.Payload, &n); err != nil {
			return wire.Errorf(wire.CodeBadMessage, "%v", err)
		}
		tr.mu.Lock()
		tr.applied = append(tr.applied, applied{Cell: c.path, ID: env.ID, Route: slices.Clone(env.Route), N: n.N})
		tr.mu.Unlock()
		return nil
	})
	svc.HandleCall(methodEcho, 1, 0, func(_ context.Context, env *wire.Envelope) (any, error) {
		return echo{Cell: c.path, Route: env.Route}, nil
	})
	if c.setup != nil {
		c.setup(svc)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("%s: start: %v", c.path, err)
	}
	c.mu.Lock()
	c.svc = svc
	c.mu.Unlock()
}

// stopService shuts the cell's service down.
func (c *testCell) stopService() {
	c.mu.Lock()
	svc := c.svc
	c.svc = nil
	c.mu.Unlock()
	if svc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := svc.Shutdown(ctx); err != nil {
		c.tr.t.Errorf("%s: shutdown: %v", c.path, err)
	}
	// The service's inbox iterator unsubscribed its pull requests on a
	// connection that stays open (a process that dies closes its own):
	// the unsubscribe must reach the broker before a test sends the cell
	// anything, or the broker may hand a message to a pull request whose
	// taker is gone, to come back only after the consumer's ack wait.
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		if err := nc.FlushWithContext(ctx); err != nil {
			c.tr.t.Errorf("%s: flush after shutdown: %v", c.path, err)
		}
	}
}

func (c *testCell) service() *cells.Service {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.svc == nil {
		c.tr.t.Fatalf("%s: service is not running", c.path)
	}
	return c.svc
}

func (c *testCell) conn() *nats.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc == nil {
		c.tr.t.Fatalf("%s: broker is not running", c.path)
	}
	return c.nc
}

// send enqueues a methodNote message from this cell to target, durably.
func (c *testCell) send(target string, n int) {
	t := c.tr.t
	t.Helper()
	svc := c.service()
	err := c.db.InTx(context.Background(), func(tx *db.Tx) error {
		return svc.Send(context.Background(), tx, target, methodNote, fmt.Sprintf("req-%d", n), note{N: n})
	})
	if err != nil {
		t.Fatalf("send from %s to %s: %v", c.path, target, err)
	}
}

// outboxCounts reads the cell's outbox.
func (c *testCell) outboxCounts() map[string]int {
	m, err := outbox.Neighbours(context.Background(), c.db)
	if err != nil {
		c.tr.t.Fatalf("%s: outbox: %v", c.path, err)
	}
	return m
}

// appliedIDs reads the ids the cell recorded as applied, for one method.
func (c *testCell) appliedIDs(method string) []string {
	rows, err := c.db.Query(context.Background(), `SELECT msg_id FROM applied_messages WHERE method = ? ORDER BY msg_id`, method)
	if err != nil {
		c.tr.t.Fatalf("%s: applied_messages: %v", c.path, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			c.tr.t.Fatalf("%s: applied_messages: %v", c.path, err)
		}
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		c.tr.t.Fatalf("%s: applied_messages: %v", c.path, err)
	}
	return out
}

// waitOutboxesEmpty waits until no cell of the tree has anything queued.
func (tr *tree) waitOutboxesEmpty(timeout time.Duration) {
	tr.t.Helper()
	testpoll.Eventually(tr.t, timeout, "every outbox to empty", func() (bool, string) {
		for _, c := range tr.cells {
			if n := c.outboxCounts(); len(n) > 0 {
				return false, fmt.Sprintf("%s's outbox holds %v", c.path, n)
			}
		}
		return true, ""
	})
}

// logSink sends every cell's log lines to t.Log and keeps them for tests
// that wait for something to be logged. Lines logged after the test has
// ended are dropped.
type logSink struct {
	t testing.TB

	mu      sync.Mutex
	done    bool
	records []logRecord
}

type logRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func newLogSink(t testing.TB) *logSink {
	s := &logSink{t: t}
	t.Cleanup(func() {
		s.mu.Lock()
		s.done = true
		s.mu.Unlock()
	})
	return s
}

func (s *logSink) logger() *slog.Logger { return slog.New(&sinkHandler{sink: s}) }

// find returns the records with message msg whose attributes include attrs.
func (s *logSink) find(msg string, attrs map[string]string) []logRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []logRecord
next:
	for _, r := range s.records {
		if r.Msg != msg {
			continue
		}
		for k, v := range attrs {
			if r.Attrs[k] != v {
				continue next
			}
		}
		out = append(out, r)
	}
	return out
}

type sinkHandler struct {
	sink  *logSink
	attrs []slog.Attr
	group string
}

func (h *sinkHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *sinkHandler) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	add := func(a slog.Attr) {
		rec.Attrs[a.Key] = a.Value.String()
		fmt.Fprintf(&b, " %s=%q", a.Key, a.Value.String())
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(h.qualify(a)); return true })
	s := h.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return nil
	}
	s.records = append(s.records, rec)
	if r.Level >= slog.LevelInfo {
		s.t.Log(b.String())
	}
	return nil
}

func (h *sinkHandler) qualify(a slog.Attr) slog.Attr {
	if h.group != "" {
		a.Key = h.group + "." + a.Key
	}
	return a
}

func (h *sinkHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = slices.Clone(h.attrs)
	for _, a := range as {
		c.attrs = append(c.attrs, h.qualify(a))
	}
	return &c
}

func (h *sinkHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}
