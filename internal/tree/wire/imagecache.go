package wire

// Image pre-caching (Compute API 2.81, POST /os-aggregates/{id}/images):
// an operator asks the hosts of an aggregate to fetch images before any
// server needs them. The API cell checks the request and the images, and
// sends each cell with hosts in the aggregate one durable message naming
// its hosts; the cell has each of them cache the images (its hypervisor
// driver keeps them). Nothing comes back up: Nova reports the outcome only
// in notifications and logs, and so does the cell (its log).
const (
	// MethodCacheImages (targeted, down, durable): the target cell's
	// hosts Hosts cache the images ImageIDs. Applying it again caches
	// nothing new (a host that has an image answers "existing"). The cell
	// acknowledges it only once every host it has of Hosts has the
	// images: a host whose agent cannot be reached keeps the message
	// pending (retried by the inbox) until it can, so a host that was
	// down caches when it comes back. A host the cell does not have (its
	// service deleted since) is skipped.
	MethodCacheImages = "cache_images"
)

// CacheImages is the payload of cache_images.
type CacheImages struct {
	// AggregateID and AggregateUUID name the aggregate (for the logs).
	AggregateID   int64  `json:"aggregate_id"`
	AggregateUUID string `json:"aggregate_uuid"`
	// Hosts are the aggregate's hosts in the target cell, by their names
	// there, when the request was made.
	Hosts []string `json:"hosts"`
	// ImageIDs are the images to cache, in the order asked, each once.
	ImageIDs []string `json:"image_ids"`
}

// The outcome of caching one image on one host, as Nova's compute
// manager's cache_images reports it.
const (
	ImageCached      = "cached"
	ImageExisting    = "existing"
	ImageError       = "error"
	ImageUnsupported = "unsupported"
)
