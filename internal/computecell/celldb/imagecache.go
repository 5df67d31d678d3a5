package celldb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Images to pre-cache on the cell's hosts (Compute API 2.81): the
// cache_images handler records what each host is to cache, and the
// compute agent of the host caches it when it runs and deletes the row.
// The rows are the work still to do, so a host whose agent is down caches
// when it is back, and no message waits on it.

// RequestImageCache records that each of hosts is to cache each of images,
// in tx; a pair asked for already is kept as it was. It returns how many
// pairs are new.
func RequestImageCache(ctx context.Context, tx *db.Tx, hosts, images []string, aggregateID int64, now time.Time) (int, error) {
	type pair struct{ host, image string }
	var pairs []pair
	for _, h := range hosts {
		for _, i := range images {
			pairs = append(pairs, pair{h, i})
		}
	}
	added := 0
	for rest := pairs; len(rest) > 0; {
		n := min(len(rest), aggregateBatch)
		args := make([]any, 0, 4*n)
		for _, p := range rest[:n] {
			args = append(args, p.host, p.image, aggregateID, db.Micros(now))
		}
		res, err := tx.Exec(ctx, `INSERT INTO image_cache_requests (host, image_id, aggregate_id, requested_at) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", n), ", ")+` ON CONFLICT (host, image_id) DO NOTHING`, args...)
		if err != nil {
			return added, fmt.Errorf("request image cache: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return added, err
		}
		added += int(k)
		rest = rest[n:]
	}
	return added, nil
}

// PendingImageCache reads the images each of hosts is still to cache, in
// the order asked (then by id).
func PendingImageCache(ctx context.Context, q Querier, hosts []string) (map[string][]string, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	for rest := hosts; len(rest) > 0; {
		n := min(len(rest), aggregateBatch)
		args := make([]any, 0, n)
		for _, h := range rest[:n] {
			args = append(args, h)
		}
		rows, err := q.Query(ctx, `SELECT host, image_id FROM image_cache_requests WHERE host IN (`+
			strings.TrimSuffix(strings.Repeat("?, ", n), ", ")+`) ORDER BY host, requested_at, image_id`, args...)
		if err != nil {
			return nil, fmt.Errorf("pending image cache: %w", err)
		}
		for rows.Next() {
			var h, i string
			if err := rows.Scan(&h, &i); err != nil {
				rows.Close()
				return nil, err
			}
			out[h] = append(out[h], i)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		rest = rest[n:]
	}
	return out, nil
}

// ImageCacheDone deletes the requests of host for images (cached, or
// failed for good).
func ImageCacheDone(ctx context.Context, tx *db.Tx, host string, images []string) error {
	for _, i := range images {
		if _, err := tx.Exec(ctx, `DELETE FROM image_cache_requests WHERE host = ? AND image_id = ?`, host, i); err != nil {
			return fmt.Errorf("image cache done: %w", err)
		}
	}
	return nil
}
