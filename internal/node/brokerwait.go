package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/tree/broker"
)

// How long a process waits at start for its own cell's broker, and how
// often it says it is still waiting.
const (
	brokerWaitDefault = 30 * time.Second
	brokerWaitLogEach = 5 * time.Second
)

// brokerWaiter watches the first connection of a process to its cell's
// broker: the connection is made with RetryOnFailedConnect, so nats.Connect
// returns at once and every failed attempt reaches failed.
type brokerWaiter struct {
	url string // redacted
	log *slog.Logger

	mu    sync.Mutex
	last  error
	tries int
	fail  chan struct{} // signalled (not closed) at each failed attempt
}

func newBrokerWaiter(url string, log *slog.Logger) *brokerWaiter {
	return &brokerWaiter{url: broker.Redact(url), log: log, fail: make(chan struct{}, 1)}
}

// option is the connection option that reports the failed attempts.
func (w *brokerWaiter) option() nats.Option {
	return nats.ReconnectErrHandler(func(_ *nats.Conn, err error) { w.failed(err) })
}

func (w *brokerWaiter) failed(err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	w.last, w.tries = err, w.tries+1
	w.mu.Unlock()
	select {
	case w.fail <- struct{}{}:
	default:
	}
}

func (w *brokerWaiter) lastErr() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.tries, w.last
}

// wait waits until nc is connected, for at most timeout. The first failed
// attempt is logged at once with the URL and its reason, then every
// brokerWaitLogEach while the process keeps trying; a broker that refuses
// the credentials fails the start at once. Every error names the URL.
func (w *brokerWaiter) wait(ctx context.Context, nc *nats.Conn, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var logged time.Time
	for {
		if nc.IsConnected() {
			if !logged.IsZero() {
				w.log.Info("reached the cell's broker", "url", w.url, "after", time.Since(start).Round(time.Millisecond))
			}
			return nil
		}
		if nc.IsClosed() {
			_, err := w.lastErr()
			if err == nil {
				err = nc.LastError()
			}
			if broker.Refused(err) {
				return fmt.Errorf("broker %s refused this cell's credentials: %w", w.url, err)
			}
			return fmt.Errorf("broker %s: connection closed: %w", w.url, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker %s: not connected: %w", w.url, ctx.Err())
		case <-deadline.C:
			tries, err := w.lastErr()
			if err == nil {
				err = errors.New("no answer")
			}
			return fmt.Errorf("broker %s: not reached in %s (%d attempts): %w", w.url, timeout, tries, err)
		case <-w.fail:
			tries, err := w.lastErr()
			if broker.Refused(err) {
				return fmt.Errorf("broker %s refused this cell's credentials: %w", w.url, err)
			}
			// The first attempt, inside nats.Connect, reports only "no
			// servers available"; the next (250 ms later) the dial's
			// reason, which is the one worth logging.
			if logged.IsZero() && errors.Is(err, nats.ErrNoServers) && time.Since(start) < 2*time.Second {
				continue
			}
			if logged.IsZero() {
				logged = time.Now()
				w.log.Warn("cannot reach the cell's broker; retrying", "url", w.url, "err", err, "gives_up_in", timeout)
			} else if time.Since(logged) >= brokerWaitLogEach {
				logged = time.Now()
				w.log.Warn("still cannot reach the cell's broker; retrying", "url", w.url, "err", err, "attempts", tries,
					"waited", time.Since(start).Round(time.Second), "gives_up_in", (timeout - time.Since(start)).Round(time.Second))
			}
		case <-tick.C:
		}
	}
}
