// Package reclaim deletes for good, in the API cell, the servers that have
// been soft-deleted for longer than the reclaim interval (Nova's periodic
// _reclaim_queued_deletes, with reclaim_instance_interval). The API cell's
// copy says which servers those are; each goes through the ordinary
// delete to the cell that holds it.
package reclaim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// Config configures a Reclaimer.
type Config struct {
	DB     *db.DB
	Sender apicopy.Sender
	// Interval is how long a server stays soft-deleted (above zero); the
	// reclaim looks every Interval, at most every minute.
	Interval time.Duration
	Logger   *slog.Logger
	Now      func() time.Time
}

// Reclaimer is the periodic reclaim.
type Reclaimer struct {
	cfg    Config
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a reclaimer; Start runs it.
func New(cfg Config) (*Reclaimer, error) {
	if cfg.DB == nil || cfg.Sender == nil || cfg.Interval <= 0 {
		return nil, errors.New("reclaim: a database, a sender and a positive interval are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Reclaimer{cfg: cfg}, nil
}

// Start runs the reclaim until Shutdown.
func (r *Reclaimer) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	every := min(r.cfg.Interval, time.Minute)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if _, err := r.Once(ctx); err != nil && ctx.Err() == nil {
				r.cfg.Logger.Error("reclaiming soft-deleted servers", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Shutdown stops the reclaim and waits for a round in progress.
func (r *Reclaimer) Shutdown(context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
	return nil
}

// Once deletes for good the servers soft-deleted longer than the interval
// ago, and returns how many. Each is checked again in its own transaction
// (a restore, or another API process, may have been first): run twice, or
// by two processes at once, it deletes each server once.
func (r *Reclaimer) Once(ctx context.Context) (int, error) {
	now := r.cfg.Now()
	uuids, err := apidb.SoftDeletedBefore(ctx, r.cfg.DB, now.Add(-r.cfg.Interval), 500)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range uuids {
		rid := "req-reclaim-" + u
		done := false
		err := r.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			cur, err := apidb.Get(ctx, tx, u)
			if err != nil {
				return err
			}
			if cur.Deleted || cur.DeleteRequested || cur.VMState != vmstate.SoftDeleted || cur.TaskState != "" {
				return nil
			}
			done = true
			return apicopy.Delete(ctx, tx, r.cfg.Sender, cur, rid, now)
		})
		if err != nil {
			return n, fmt.Errorf("reclaim %s: %w", u, err)
		}
		if done {
			n++
			r.cfg.Logger.Info("soft-deleted server reclaimed", "request_id", rid, "instance", u)
		}
	}
	return n, nil
}
