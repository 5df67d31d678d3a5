package compute

import (
	"context"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/db"
)

// Image pre-caching (Compute API 2.81): the cell's cache_images handler
// records what each host is to cache (celldb image_cache_requests); this
// agent caches it for its own hosts, on a wake (a request handled in this
// process) and every heartbeat interval (one handled elsewhere, or this
// process restarted), and deletes the rows. As in Nova's compute manager,
// an image a host fails to cache is logged and not tried again.

// WakeImageCache makes the agent look for images to pre-cache now.
func (s *Service) WakeImageCache() {
	select {
	case s.cacheWake <- struct{}{}:
	default:
	}
}

func (s *Service) cacheLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		if err := s.CachePending(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("pre-caching images; tried again on the next tick", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.cacheWake:
		}
	}
}

// CachePending has each of the agent's hosts cache the images the cell
// asked it to and deletes those requests. With nothing asked, it is one
// read.
func (s *Service) CachePending(ctx context.Context) error {
	pending, err := celldb.PendingImageCache(ctx, s.cfg.DB, s.cfg.Hosts)
	if err != nil || len(pending) == 0 {
		return err
	}
	c, ok := s.cfg.Driver.(virt.ImageCacher)
	for _, host := range s.cfg.Hosts {
		images := pending[host]
		if len(images) == 0 {
			continue
		}
		var cached, existing, failed int
		for _, id := range images {
			if !ok {
				break
			}
			fresh, err := c.CacheImage(ctx, host, id)
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case err != nil:
				s.log.Warn("caching an image failed", "host", host, "image", id, "err", err)
				failed++
			case fresh:
				cached++
			default:
				existing++
			}
		}
		if err := s.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return celldb.ImageCacheDone(ctx, tx, host, images) }); err != nil {
			return err
		}
		s.log.Info("images pre-cached", "host", host, "cached", cached, "existing", existing, "errors", failed, "unsupported", !ok)
	}
	return nil
}

// CachedImages are the images host's driver has cached (none when it
// cannot say).
func (s *Service) CachedImages(host string) []string {
	if l, ok := s.cfg.Driver.(virt.ImageCacheLister); ok {
		return l.CachedImages(host)
	}
	return nil
}
