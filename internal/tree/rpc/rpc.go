// Package rpc is request and reply between the roles of one cell (cells,
// scheduler, network, compute) over the cell's own broker, for when they
// run as separate processes. Errors keep their wire code across the hop.
package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

type reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wire.Error     `json:"error,omitempty"`
}

// Handler answers one request.
type Handler func(ctx context.Context, req json.RawMessage) (any, error)

// Server answers requests on subjects of one connection. It owns the
// goroutine of each request: Shutdown unsubscribes, cancels the requests in
// flight and waits for them, and no request starts after it.
type Server struct {
	nc     *nats.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	stopping bool
	subs     []*nats.Subscription
}

// NewServer returns a server of requests that arrive on nc.
func NewServer(nc *nats.Conn, log *slog.Logger) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{nc: nc, log: log, ctx: ctx, cancel: cancel}
}

// Handle answers requests on subject (in a queue group when queue is set)
// with h, each in its own goroutine.
func (s *Server) Handle(subject, queue string, h Handler) error {
	cb := func(m *nats.Msg) {
		if !s.track() {
			return
		}
		go func() {
			defer s.wg.Done()
			s.answer(subject, m, h)
		}()
	}
	var sub *nats.Subscription
	var err error
	if queue != "" {
		sub, err = s.nc.QueueSubscribe(subject, queue, cb)
	} else {
		sub, err = s.nc.Subscribe(subject, cb)
	}
	if err != nil {
		return fmt.Errorf("rpc: serve %s: %w", subject, err)
	}
	s.mu.Lock()
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	return nil
}

// Subjects is how many subjects the server answers on.
func (s *Server) Subjects() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

// track counts a request's goroutine unless shutdown has begun.
func (s *Server) track() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.wg.Add(1)
	return true
}

func (s *Server) answer(subject string, m *nats.Msg, h Handler) {
	var rep reply
	v, err := h(s.ctx, m.Data)
	if err != nil {
		rep.Error = wire.AsError(err)
	} else if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			rep.Error = wire.AsError(err)
		}
		rep.Result = b
	}
	b, _ := json.Marshal(rep)
	if err := m.Respond(b); err != nil {
		s.log.Warn("rpc reply not sent", "subject", subject, "err", err)
	}
}

// Shutdown stops taking requests, cancels those in flight and waits for
// them or for ctx. It is idempotent.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopping = true
	subs := s.subs
	s.subs = nil
	s.mu.Unlock()
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("rpc: shutdown: %w", ctx.Err())
	}
}

// Call sends a request and decodes the reply into out (which may be nil).
func Call(ctx context.Context, nc *nats.Conn, subject string, req, out any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpc: encode %s: %w", subject, err)
	}
	m, err := nc.RequestWithContext(ctx, subject, b)
	if err != nil {
		return fmt.Errorf("rpc: %s: %w", subject, err)
	}
	var rep reply
	if err := json.Unmarshal(m.Data, &rep); err != nil {
		return fmt.Errorf("rpc: %s: bad reply: %w", subject, err)
	}
	if rep.Error != nil {
		return rep.Error
	}
	if out != nil && len(rep.Result) > 0 {
		if err := json.Unmarshal(rep.Result, out); err != nil {
			return fmt.Errorf("rpc: %s: bad result: %w", subject, err)
		}
	}
	return nil
}
