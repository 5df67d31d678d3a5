package cells

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Calls are messages that want an answer before a deadline. They travel on
// the brokers' plain subjects, not the durable inbox: a call to a cell that
// is down should fail at its deadline, not be answered next week.

// Each level of a broadcast gives up on its children a margin before its
// own deadline, so that its partial answer still reaches the level above in
// time: a fifth of the time it has left, kept between these bounds. A fixed
// margin was too little under load at the first level of a long deadline
// and too much at the last level of a short one.
const (
	minGatherMargin = 50 * time.Millisecond
	maxGatherMargin = 2 * time.Second
)

// gatherMargin is how much earlier than a deadline with left remaining
// the level below must answer.
func gatherMargin(left time.Duration) time.Duration {
	return min(max(left/5, minGatherMargin), maxGatherMargin)
}

// Call sends a targeted call and waits for the answer, decoding it into out
// (which may be nil).
func (s *Service) Call(ctx context.Context, target, method, requestID string, payload, out any) error {
	env, err := NewTargeted(s.path, target, method, requestID, payload)
	if err != nil {
		return err
	}
	env.WantResponse = true
	env.Deadline = deadlineFrom(ctx, s.cfg.CallTimeout)
	ctx, cancel := context.WithDeadline(ctx, env.Deadline)
	defer cancel()
	ch := s.expect(env.ID, 1)
	defer s.forget(env.ID)
	if err := s.dispatchCall(ctx, env); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if len(r.Results) != 1 {
			return wire.Errorf(wire.CodeBadMessage, "answer to %s from %q holds %d results", method, target, len(r.Results))
		}
		if r.Results[0].Error != nil {
			return r.Results[0].Error
		}
		if out != nil {
			if err := json.Unmarshal(r.Results[0].Payload, out); err != nil {
				return wire.Errorf(wire.CodeBadMessage, "answer to %s from %q: %v", method, target, err)
			}
		}
		return nil
	case <-ctx.Done():
		return wire.Errorf(wire.CodeTimeout, "cell %q did not answer %s before the deadline", target, method)
	}
}

// Notify sends a best-effort targeted message that wants no answer.
func (s *Service) Notify(ctx context.Context, target, method, requestID string, payload any) error {
	env, err := NewTargeted(s.path, target, method, requestID, payload)
	if err != nil {
		return err
	}
	env.Deadline = deadlineFrom(ctx, s.cfg.CallTimeout)
	return s.dispatchCall(ctx, env)
}

// Gather broadcasts a call down (or up) the tree within hopLimit hops,
// includes this cell's own answer, and waits until every cell has answered
// or the deadline passes. It returns the answers and the cells that did not
// answer in time.
func (s *Service) Gather(ctx context.Context, dir wire.Direction, hopLimit int, method, requestID string, payload any) ([]wire.Result, []string, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, nil, err
	}
	env := &wire.Envelope{
		ID: uuid.NewString(), Method: method, Version: wire.V1, Kind: wire.Broadcast,
		Direction: dir, HopLimit: hopLimit, Route: []string{s.path}, Sender: s.path,
		RequestID: requestID, WantResponse: true, Payload: b,
		Deadline: deadlineFrom(ctx, s.cfg.CallTimeout),
	}
	res := s.gatherAt(ctx, env)
	return res.Results, res.Missing, nil
}

// onCall receives every ephemeral message addressed to this cell's broker.
func (s *Service) onCall(m *nats.Msg) {
	env, err := wire.Decode(m.Data)
	if err != nil {
		s.log.Error("dropping a malformed call", "err", err, "bytes", len(m.Data))
		return
	}
	if env.Kind == wire.Response && env.Target == s.path {
		s.deliver(env)
		return
	}
	ctx, cancel := context.WithDeadline(s.ctx, env.Deadline)
	if env.Deadline.IsZero() {
		ctx, cancel = context.WithTimeout(s.ctx, s.cfg.CallTimeout)
	}
	if !s.track() {
		cancel()
		return // shutting down
	}
	go func() {
		defer s.wg.Done()
		defer cancel()
		if err := s.dispatchCall(ctx, env); err != nil {
			s.log.Warn("call failed", "request_id", env.RequestID, "method", env.Method, "from", env.Last(), "err", err)
		}
	}()
}

// dispatchCall routes an ephemeral message: answers it here, passes it on,
// or (for a broadcast) both, gathering the answers of the cells below.
func (s *Service) dispatchCall(ctx context.Context, env *wire.Envelope) error {
	if env.Kind == wire.Broadcast {
		res := s.gatherAt(ctx, env)
		if env.Sender == s.path && len(env.Route) == 1 {
			return nil // originated here; Gather has the answer
		}
		return s.respond(env, env.Last(), res)
	}
	d, err := s.route(env)
	if err != nil {
		if env.WantResponse && env.Kind != wire.Response {
			return s.respond(env, env.Sender, &wire.Envelope{Results: []wire.Result{{Cell: s.path, Error: wire.AsError(err)}}})
		}
		return err
	}
	if !d.local {
		for _, f := range d.next {
			if err := s.publishCall(f.to, f.env); err != nil {
				if env.WantResponse && env.Kind != wire.Response {
					return s.respond(env, env.Sender, &wire.Envelope{Results: []wire.Result{{Cell: s.path,
						Error: wire.Errorf(wire.CodeNoRoute, "cannot reach %q: %v", f.to, err)}}})
				}
				return err
			}
		}
		return nil
	}
	if env.Kind == wire.Response {
		s.deliver(env)
		return nil
	}
	r := s.answerLocal(ctx, env)
	if !env.WantResponse {
		if r.Error != nil {
			return r.Error
		}
		return nil
	}
	return s.respond(env, env.Sender, &wire.Envelope{Results: []wire.Result{r}})
}

// gatherAt answers a broadcast here and collects the answers of the cells
// it goes on to.
func (s *Service) gatherAt(ctx context.Context, env *wire.Envelope) *wire.Envelope {
	d, err := s.route(env)
	if err != nil {
		return &wire.Envelope{Results: []wire.Result{{Cell: s.path, Error: wire.AsError(err)}}}
	}
	// Give the level below less time than this level has.
	left := time.Until(env.Deadline)
	margin := gatherMargin(left)
	childDeadline := env.Deadline.Add(-margin)
	if left < 2*margin {
		childDeadline = env.Deadline
	}
	var ch chan *wire.Envelope
	if len(d.next) > 0 {
		ch = s.expect(env.ID, len(d.next))
		defer s.forget(env.ID)
	}
	waiting := map[string]bool{}
	out := &wire.Envelope{}
	for _, f := range d.next {
		// A child known to be down is missing at once: the answer does not
		// wait for it.
		if env.Direction == wire.Down && s.childDown(f.to) {
			out.Missing = append(out.Missing, f.to)
			continue
		}
		f.env.Deadline = childDeadline
		if err := s.publishCall(f.to, f.env); err != nil {
			s.log.Debug("cannot reach a cell for a broadcast", "cell", f.to, "err", err)
		}
		waiting[f.to] = true
	}
	local := make(chan wire.Result, 1)
	if s.track() {
		go func() {
			defer s.wg.Done()
			local <- s.answerLocal(ctx, env)
		}()
	} else {
		local <- wire.Result{Cell: s.path, Error: wire.Errorf(wire.CodeTimeout, "cell %q is shutting down", s.path)}
	}
	timer := time.NewTimer(time.Until(childDeadline))
	defer timer.Stop()
	for len(waiting) > 0 {
		select {
		case r := <-ch:
			from := r.Sender
			if !waiting[from] {
				continue
			}
			delete(waiting, from)
			out.Results = append(out.Results, r.Results...)
			out.Missing = append(out.Missing, r.Missing...)
		case <-timer.C:
			for c := range waiting {
				out.Missing = append(out.Missing, c)
			}
			waiting = nil
		}
	}
	select {
	case r := <-local:
		out.Results = append(out.Results, r)
	case <-time.After(time.Until(env.Deadline)):
		out.Missing = append(out.Missing, s.path)
	}
	slices.SortFunc(out.Results, func(a, b wire.Result) int {
		switch {
		case a.Cell < b.Cell:
			return -1
		case a.Cell > b.Cell:
			return 1
		}
		return 0
	})
	slices.Sort(out.Missing)
	return out
}

// answerLocal runs this cell's handler for a call.
func (s *Service) answerLocal(ctx context.Context, env *wire.Envelope) wire.Result {
	r := wire.Result{Cell: s.path}
	major, minor, _ := wire.ParseVersion(env.Version)
	c, ok := s.calls[handlerKey{env.Method, major}]
	switch {
	case !ok && s.hasMethod(env.Method):
		r.Error = wire.Errorf(wire.CodeUnsupportedVersion, "cell %q does not support %s version %s", s.path, env.Method, env.Version)
	case !ok:
		r.Error = wire.Errorf(wire.CodeUnknownMethod, "cell %q has no method %q", s.path, env.Method)
	case minor > c.maxMinor:
		r.Error = wire.Errorf(wire.CodeUnsupportedVersion, "cell %q supports %s up to %d.%d, not %s", s.path, env.Method, major, c.maxMinor, env.Version)
	default:
		v, err := c.h(ctx, env)
		if err != nil {
			r.Error = wire.AsError(err)
			break
		}
		if v != nil {
			b, err := json.Marshal(v)
			if err != nil {
				r.Error = wire.AsError(fmt.Errorf("encode answer: %w", err))
				break
			}
			r.Payload = b
		}
	}
	return r
}

// respond sends an answer back to a cell, hop by hop.
func (s *Service) respond(req *wire.Envelope, to string, ans *wire.Envelope) error {
	resp := &wire.Envelope{
		ID: uuid.NewString(), Method: req.Method, Version: req.Version, Kind: wire.Response,
		Target: to, Route: []string{s.path}, Sender: s.path, Deadline: req.Deadline,
		RequestID: req.RequestID, InReplyTo: req.ID, Results: ans.Results, Missing: ans.Missing,
	}
	if to == s.path {
		s.deliver(resp)
		return nil
	}
	d, err := s.route(resp)
	if err != nil {
		return err
	}
	for _, f := range d.next {
		if err := s.publishCall(f.to, f.env); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) expect(id string, n int) chan *wire.Envelope {
	ch := make(chan *wire.Envelope, n)
	s.mu.Lock()
	s.pending[id] = ch
	s.mu.Unlock()
	return ch
}

func (s *Service) forget(id string) {
	s.mu.Lock()
	delete(s.pending, id)
	s.mu.Unlock()
}

func (s *Service) deliver(resp *wire.Envelope) {
	s.mu.Lock()
	ch, ok := s.pending[resp.InReplyTo]
	s.mu.Unlock()
	if !ok {
		s.log.Debug("late or unexpected answer", "in_reply_to", resp.InReplyTo, "from", resp.Sender)
		return
	}
	select {
	case ch <- resp:
	default:
		s.log.Warn("extra answer dropped", "in_reply_to", resp.InReplyTo, "from", resp.Sender)
	}
}
