// Package hostaggs is a compute cell's side of the host aggregates
// (wire/aggregates.go): it applies the snapshots the API cell sends
// (host_aggregates) to the cell database, where the claims, the host
// scheduler and the capacity reports read them, and asks for one when the
// cell starts and every heal interval (host_aggregates_sync), so that a
// snapshot lost on the way, or a database restored from a backup, heals.
package hostaggs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Sender sends a durable message from the cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// Config configures the service.
type Config struct {
	// Cell is the cell's path.
	Cell   string
	DB     *db.DB
	Sender Sender
	Logger *slog.Logger
	// HealInterval is how often the cell sends its sync (default 1m; the
	// node gives the cells' heal interval).
	HealInterval time.Duration
	// OnChange, if set, is called after a snapshot that changed what the
	// cell holds commits (the node asks for a capacity report at once).
	OnChange func()
}

// Service applies and asks for the cell's aggregate snapshots.
type Service struct {
	cfg  Config
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}
}

// New returns the service.
func New(cfg Config) (*Service, error) {
	if cfg.Cell == "" || cfg.DB == nil || cfg.Sender == nil {
		return nil, errors.New("hostaggs: cell, database and sender are required")
	}
	if cfg.HealInterval <= 0 {
		cfg.HealInterval = time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "host aggregates")}, nil
}

// HostAggregates is the cast handler of host_aggregates: the snapshot
// replaces what the cell holds when it is newer (a repeat or a late copy
// changes nothing).
func (s *Service) HostAggregates(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.HostAggregates
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "host_aggregates: %v", err)
	}
	if m.Version <= 0 || m.DefaultZone == "" {
		return wire.Errorf(wire.CodeBadMessage, "host_aggregates: version %d and default zone %q", m.Version, m.DefaultZone)
	}
	applied, err := celldb.ApplyHostAggregates(ctx, tx, &m)
	if err != nil {
		return err
	}
	s.log.Info("host aggregates", "request_id", env.RequestID, "version", m.Version, "aggregates", len(m.Aggregates), "applied", applied)
	if applied && s.cfg.OnChange != nil {
		tx.AfterCommit(s.cfg.OnChange)
	}
	return nil
}

// Sync sends the root the version the cell holds, in a transaction of its
// own.
func (s *Service) Sync(ctx context.Context) error {
	return s.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		v, zone, err := celldb.HostAggregatesState(ctx, tx)
		if err != nil {
			return err
		}
		m := &wire.HostAggregatesSync{Version: v, DefaultZone: zone}
		if err := s.cfg.Sender.Send(ctx, tx, cellpath.Root(s.cfg.Cell), wire.MethodHostAggregatesSync, "req-"+uuid.NewString(), m); err != nil {
			return fmt.Errorf("host aggregates sync: %w", err)
		}
		return nil
	})
}

// Start sends a sync at once and then every heal interval.
func (s *Service) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.cfg.HealInterval)
		defer t.Stop()
		for {
			if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("host aggregates sync; tried again on the next tick", "err", err)
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

// Shutdown stops the loop and waits for it. It is idempotent.
func (s *Service) Shutdown(context.Context) error {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	return nil
}
