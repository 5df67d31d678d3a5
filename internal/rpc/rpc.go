// Package rpc is request and reply between the roles of one cell (cells,
// scheduler, network, compute) over the cell's own broker, for when they
// run as separate processes. Errors keep their wire code across the hop.
package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/wire"
)

type reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wire.Error     `json:"error,omitempty"`
}

// Handler answers one request.
type Handler func(ctx context.Context, req json.RawMessage) (any, error)

// Serve answers requests on subject (in a queue group when queue is set).
func Serve(ctx context.Context, nc *nats.Conn, subject, queue string, log *slog.Logger, h Handler) (*nats.Subscription, error) {
	cb := func(m *nats.Msg) {
		go func() {
			var rep reply
			v, err := h(ctx, m.Data)
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
				log.Warn("rpc reply not sent", "subject", subject, "err", err)
			}
		}()
	}
	var sub *nats.Subscription
	var err error
	if queue != "" {
		sub, err = nc.QueueSubscribe(subject, queue, cb)
	} else {
		sub, err = nc.Subscribe(subject, cb)
	}
	if err != nil {
		return nil, fmt.Errorf("rpc: serve %s: %w", subject, err)
	}
	return sub, nil
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
