package image

import (
	"context"
	"net/http"
	"strconv"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/db"
)

// Per-project quotas, as Glance keeps them.
//
// The storage quota is Glance's user_storage_quota: the bytes a project's
// images may hold together. An upload is checked before it begins against
// the size it declares (or, of unknown size, refused only when nothing is
// left), limited while it streams to what is left, and checked again when
// it is complete, in the transaction that records it, since two uploads
// may have run at once (glance/quota/__init__.py ImageProxy.set_data,
// glance/api/common.py check_quota). The project is the caller's, as
// Glance's context.owner.
//
// The count quota is Glance's unified-limits image_count_total: creating
// an image is refused when the project already owns that many
// (glance/api/v2/images.py create, glance/quota/keystone.py).

// storageQuotaFull is Glance's answer to an upload over the storage quota
// (glance/api/v2/image_data.py upload: StorageQuotaFull); size < 0 is an
// upload of unknown size, which Glance names None.
func storageQuotaFull(size, remaining int64) *httpkit.Fault {
	s := "None"
	if size >= 0 {
		s = strconv.FormatInt(size, 10)
	}
	return errorf(http.StatusRequestEntityTooLarge,
		"Image exceeds the storage quota: The size of the data %s will exceed the limit. %d bytes remaining.", s, remaining)
}

// remainingStorage is what project may still store, not counting the data
// of image id (Glance's get_remaining_quota); ok is false when there is no
// storage quota. It may be negative when the project is already over.
func (b *base) remainingStorage(ctx context.Context, q db.Querier, project, id string) (remaining int64, ok bool, err error) {
	if b.cfg.StorageQuota <= 0 {
		return 0, false, nil
	}
	used, err := b.store.StorageUsage(ctx, q, project, id)
	if err != nil {
		return 0, true, err
	}
	return b.cfg.StorageQuota - used, true, nil
}

// checkImageCount refuses a new image of project when it already owns
// CountQuota images, with Glance's answer (LimitExceeded carrying
// oslo.limit's ProjectOverLimit).
func (b *base) checkImageCount(ctx context.Context, q db.Querier, project string) error {
	if b.cfg.CountQuota <= 0 {
		return nil
	}
	n, err := b.store.CountImages(ctx, q, project)
	if err != nil {
		return err
	}
	if n+1 <= b.cfg.CountQuota {
		return nil
	}
	return errorf(http.StatusRequestEntityTooLarge, "The request returned a 413 Request Entity Too Large. This generally means "+
		"that rate limiting or a quota threshold was breached.\n\nThe response body:\nProject %s is over a limit for "+
		"[Resource image_count_total is over limit of %d due to current usage %d and delta 1]", project, b.cfg.CountQuota, n)
}
