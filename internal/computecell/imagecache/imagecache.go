// Package imagecache is a compute cell's side of image pre-caching
// (wire/imagecache.go, Compute API 2.81): it applies a cache_images
// message by recording, in the cell database, that each host it names that
// the cell has is to cache the images (celldb image_cache_requests). The
// compute agent of each host caches them when it runs (package compute,
// cache_pending.go) and deletes the rows: the rows are the work still to
// do, so a host whose agent is down caches when it is back, no agent is
// called inside the inbox's transaction, and the message is acknowledged
// at once. A repeat asks for nothing new. A host the cell no longer has
// (its service deleted) is skipped.
package imagecache

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Config configures the handler.
type Config struct {
	Cell string
	// OnRequest, if set, is called after a message that asked for
	// something new commits (this process's compute agent's wake; agents
	// of other processes find the rows when they next look).
	OnRequest func()
	Logger    *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Handler applies cache_images.
type Handler struct {
	cfg Config
	log *slog.Logger
}

// New validates the configuration.
func New(cfg Config) (*Handler, error) {
	if cfg.Cell == "" {
		return nil, errors.New("imagecache: cell is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "image cache")}, nil
}

// CacheImages is the cast handler of cache_images.
func (h *Handler) CacheImages(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.CacheImages
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "cache_images: %v", err)
	}
	if len(m.Hosts) == 0 || len(m.ImageIDs) == 0 || slices.Contains(m.ImageIDs, "") {
		return wire.Errorf(wire.CodeBadMessage, "cache_images needs hosts and image ids")
	}
	log := h.log.With("request_id", env.RequestID, "aggregate", m.AggregateID, "images", strings.Join(m.ImageIDs, ","))
	nodes, err := celldb.ListNodes(ctx, tx)
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		have[n.Host] = true
	}
	var hosts, skipped []string
	for _, host := range m.Hosts {
		if have[host] {
			hosts = append(hosts, host)
		} else {
			skipped = append(skipped, host)
		}
	}
	if len(skipped) > 0 {
		log.Warn("image pre-cache skips hosts this cell does not have", "hosts", strings.Join(skipped, ","))
	}
	added, err := celldb.RequestImageCache(ctx, tx, hosts, m.ImageIDs, m.AggregateID, h.cfg.Now())
	if err != nil {
		return err
	}
	log.Info("image pre-cache requested", "hosts", len(hosts), "new", added, "skipped", len(skipped))
	if added > 0 && h.cfg.OnRequest != nil {
		tx.AfterCommit(h.cfg.OnRequest)
	}
	return nil
}
