package compute

import (
	"context"
	"slices"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// CacheImages has host's driver fetch the images into its cache, as
// Nova's compute manager's cache_images does, and returns each image's
// outcome (wire.ImageCached, ImageExisting, ImageError, or
// ImageUnsupported for every image when the driver has no cache). A
// failure to cache one image is its outcome, not an error, as in Nova; the
// error is for a host this agent does not run.
func (s *Service) CacheImages(ctx context.Context, host string, images []string) (map[string]string, error) {
	if !slices.Contains(s.cfg.Hosts, host) {
		return nil, wire.Errorf(wire.CodeNotFound, "compute: host %s is not run by this agent", host)
	}
	out := make(map[string]string, len(images))
	c, ok := s.cfg.Driver.(virt.ImageCacher)
	for _, id := range images {
		if !ok {
			out[id] = wire.ImageUnsupported
			continue
		}
		fresh, err := c.CacheImage(ctx, host, id)
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil:
			s.log.Warn("caching an image failed", "host", host, "image", id, "err", err)
			out[id] = wire.ImageError
		case fresh:
			out[id] = wire.ImageCached
		default:
			out[id] = wire.ImageExisting
		}
	}
	return out, nil
}

// CachedImages are the images host's driver has cached (none when it
// cannot say).
func (s *Service) CachedImages(host string) []string {
	if l, ok := s.cfg.Driver.(virt.ImageCacheLister); ok {
		return l.CachedImages(host)
	}
	return nil
}
