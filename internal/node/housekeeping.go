package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/archive"
)

// ArchivePlan is what "cellcloud db archive" does in a cell's database: in
// the API cell, the API copy of the deleted servers (with their rows in
// the networking tables) and volumes, and the expired tokens; in a compute
// cell, its deleted instances and volumes (docs/operations.md,
// Housekeeping).
func ArchivePlan(root bool) archive.Plan {
	if !root {
		return celldb.ArchivePlan
	}
	return archive.Merge(apidb.ArchivePlan(netdb.ServerArchiveChildren...), voldb.ArchivePlan, identity.ArchivePlan)
}

// HousekeepingConfig configures a Housekeeper.
type HousekeepingConfig struct {
	DB   *db.DB
	Root bool
	// Cell names the cell in the logs.
	Cell     string
	Settings config.Housekeeping
	Logger   *slog.Logger
	Now      func() time.Time
	// Ran, if set, is called after each round with what it archived and
	// purged (for tests).
	Ran func(archived, purged archive.Counts, err error)
}

// Housekeeper is the periodic archive (and purge) of a cell's deleted rows
// (housekeeping.archive_interval): every interval, the rows deleted longer
// ago than archive_older_than move to the shadow tables, in batches until
// none is left, then the shadow rows older than purge_older_than (if set)
// are deleted. A round cut short by a shutdown leaves whole batches; the
// next round goes on.
type Housekeeper struct {
	cfg    HousekeepingConfig
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewHousekeeper checks cfg; Start runs it.
func NewHousekeeper(cfg HousekeepingConfig) (*Housekeeper, error) {
	if cfg.DB == nil || cfg.Settings.ArchiveInterval <= 0 || cfg.Settings.MaxRows <= 0 {
		return nil, errors.New("housekeeping: a database, a positive archive interval and max rows are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Housekeeper{cfg: cfg}, nil
}

// Start runs a round at once and then every interval, until Shutdown.
func (h *Housekeeper) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	s := h.cfg.Settings
	h.cfg.Logger.Info("periodic archive of deleted rows", "cell", h.cfg.Cell, "every", s.ArchiveInterval.D(),
		"archive_older_than", s.ArchiveOlderThan.D(), "purge_older_than", s.PurgeOlderThan.D(), "max_rows", s.MaxRows)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(h.cfg.Settings.ArchiveInterval.D())
		defer t.Stop()
		for {
			h.Once(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Shutdown stops the rounds and waits for the one in progress (it stops at
// its next batch).
func (h *Housekeeper) Shutdown(context.Context) error {
	if h.cancel != nil {
		h.cancel()
	}
	h.wg.Wait()
	return nil
}

// Once runs one round: archive until complete, then purge if configured.
func (h *Housekeeper) Once(ctx context.Context) (archived, purged archive.Counts, err error) {
	s := h.cfg.Settings
	now := h.cfg.Now()
	plan := ArchivePlan(h.cfg.Root)
	o := archive.Options{MaxRows: s.MaxRows, Before: now.Add(-s.ArchiveOlderThan.D()), UntilComplete: true}
	if s.TaskLog {
		o.Include = []string{"task_log"}
	}
	defer func() {
		if h.cfg.Ran != nil {
			h.cfg.Ran(archived, purged, err)
		}
	}()
	archived, err = archive.Archive(ctx, h.cfg.DB, plan, o)
	if n := archived.Total(); n > 0 {
		h.cfg.Logger.Info("deleted rows archived", "cell", h.cfg.Cell, "rows", n, "tables", archived)
	}
	if err != nil {
		if ctx.Err() == nil {
			h.cfg.Logger.Error("archiving deleted rows", "cell", h.cfg.Cell, "err", err)
		}
		return archived, nil, err
	}
	if s.PurgeOlderThan <= 0 {
		return archived, nil, nil
	}
	purged, err = archive.Purge(ctx, h.cfg.DB, plan, archive.PurgeOptions{Before: now.Add(-s.PurgeOlderThan.D()), MaxRows: s.MaxRows})
	if n := purged.Total(); n > 0 {
		h.cfg.Logger.Info("shadow rows purged", "cell", h.cfg.Cell, "rows", n, "tables", purged)
	}
	if err != nil && ctx.Err() == nil {
		h.cfg.Logger.Error("purging shadow rows", "cell", h.cfg.Cell, "err", err)
	}
	return archived, purged, err
}
