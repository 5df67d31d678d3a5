package conductor

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// waitingBuilds are the builds that found no free address and wait for the
// address blocks the network service asked for: they are not placed again
// until the blocks come (BlocksArrived) or their wait is over. Only this
// process's loop reads it; after a restart each is tried once more, which
// asks again if need be.
type waitingBuilds struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (w *waitingBuilds) add(uuid string, until time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.until == nil {
		w.until = map[string]time.Time{}
	}
	w.until[uuid] = until
}

// waits reports whether uuid still waits at now (forgetting it if not).
func (w *waitingBuilds) waits(uuid string, now time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.until[uuid]
	if ok && !now.Before(t) {
		delete(w.until, uuid)
		return false
	}
	return ok
}

func (w *waitingBuilds) clear() {
	w.mu.Lock()
	defer w.mu.Unlock()
	clear(w.until)
}

// BlocksArrived is told that address blocks came from the API cell: the
// builds that wait for addresses are tried again now.
func (c *Conductor) BlocksArrived() {
	c.waiting.clear()
	c.Wake()
}

// waitForAddresses puts a build that found no free address back to
// waiting for a host, its claim given back (a host is not held for a build
// that cannot start), and leaves it alone until address blocks come or
// AddressWait is over. A process that dies before this leaves it in
// networking, which the next one's recovery puts back the same way.
func (c *Conductor) waitForAddresses(ctx context.Context, log *slog.Logger, in *celldb.Instance) {
	log.Info("no free address in this cell's blocks; the build waits for more")
	c.waiting.add(in.UUID, c.cfg.Now().Add(c.cfg.AddressWait))
	err := c.cfg.DB.Group(ctx, func(tx *db.Tx) error { return c.state.Unplace(ctx, tx, in.UUID, celldb.TaskNetworking) })
	if err != nil && !errors.Is(err, celldb.ErrGone) && ctx.Err() == nil {
		log.Error("putting a build that waits for addresses back; will retry", "err", err)
	}
}

// fullMessage is Nova's NoMoreFixedIps text out of a network-full error.
func fullMessage(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "No fixed IP addresses available"); i >= 0 {
		msg = msg[i:]
		if j := strings.Index(msg, ": network_full"); j >= 0 {
			msg = msg[:j]
		}
	}
	return msg
}
