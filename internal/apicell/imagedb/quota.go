package imagedb

import (
	"context"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/db"
)

// StorageUsage is the bytes a project's images hold, counted as Glance's
// user_get_storage_usage counts them: the size of each of the project's
// live images that has data (active or deactivated here: an image's size
// is recorded when its upload finishes), except the image except (the one
// whose data is being replaced; "" for none).
func (s *Store) StorageUsage(ctx context.Context, q db.Querier, owner, except string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT COALESCE(SUM(size), 0) FROM images
		WHERE owner = ? AND deleted = 0 AND id <> ? AND size > 0 AND status NOT IN (?, ?)`,
		owner, NormalizeID(except), StatusKilled, StatusDeleted).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("storage usage of %s: %w", owner, err)
	}
	return n, nil
}

// CountImages is how many live images a project owns, as Glance's
// user_get_image_count counts them for image_count_total.
func (s *Store) CountImages(ctx context.Context, q db.Querier, owner string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM images WHERE owner = ? AND deleted = 0 AND status NOT IN (?, ?)`,
		owner, StatusKilled, StatusDeleted).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("image count of %s: %w", owner, err)
	}
	return n, nil
}
