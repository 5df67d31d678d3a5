// Package imagecache is a compute cell's side of image pre-caching
// (wire/imagecache.go, Compute API 2.81): it applies a cache_images
// message by having each host it names, that the cell has, cache the
// images through its compute agent.
//
// The message is its own record of the work still to do: the handler
// succeeds, and the message is acknowledged, only once every such host
// has answered; while an agent cannot be reached (its process down, or
// the cell's compute role restarting) the handler fails, the cells
// service's inbox retries it, and the host caches when it comes back.
// Hosts answered before are asked again on a retry and answer "existing".
// An image a host fails to cache is logged and not retried (Nova reports
// it as an error and moves on). A host the cell no longer has (its service
// deleted) is skipped.
//
// The agents are called from inside the inbox's transaction: caching
// into the fake driver takes no time, each call has a short deadline, and
// an agent that is gone answers at once (no responders), so the database
// is not held for long; a cell whose hypervisors fetch real images would
// record the work and let the agents do it outside the transaction.
package imagecache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Hosts reaches the compute agents of the cell's hosts.
type Hosts interface {
	CacheImages(ctx context.Context, host string, images []string) (map[string]string, error)
}

// Config configures the handler.
type Config struct {
	Cell  string
	Hosts Hosts
	// CallTimeout bounds each agent's answer (default 10s).
	CallTimeout time.Duration
	Logger      *slog.Logger
}

// Handler applies cache_images.
type Handler struct {
	cfg Config
	log *slog.Logger
}

// New validates the configuration.
func New(cfg Config) (*Handler, error) {
	if cfg.Cell == "" || cfg.Hosts == nil {
		return nil, errors.New("imagecache: cell and hosts are required")
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
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
	// Nova's conductor's tally: per image, and the hosts left out.
	var cached, existing, failed, unsupported int
	var skipped, pending []string
	var errs []error
	for _, host := range m.Hosts {
		if !have[host] {
			skipped = append(skipped, host)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, h.cfg.CallTimeout)
		res, err := h.cfg.Hosts.CacheImages(cctx, host, m.ImageIDs)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			pending = append(pending, host)
			errs = append(errs, fmt.Errorf("%s: %w", host, err))
			continue
		}
		for _, st := range res {
			switch st {
			case wire.ImageCached:
				cached++
			case wire.ImageExisting:
				existing++
			case wire.ImageError:
				failed++
			default:
				unsupported++
			}
		}
	}
	if len(skipped) > 0 {
		log.Warn("image pre-cache skips hosts this cell does not have", "hosts", strings.Join(skipped, ","))
	}
	if len(pending) > 0 {
		// Undone with the transaction, and retried: the hosts that
		// answered answer "existing" next time.
		return fmt.Errorf("image pre-cache waits for hosts %s: %w", strings.Join(pending, ","), errors.Join(errs...))
	}
	log.Info("image pre-cache done", "hosts", len(m.Hosts)-len(skipped), "cached", cached, "existing", existing,
		"errors", failed, "unsupported", unsupported, "skipped", len(skipped))
	return nil
}
