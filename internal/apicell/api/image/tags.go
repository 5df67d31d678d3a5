package image

import (
	"net/http"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// tagsHandler is /v2/images/{id}/tags/{tag}: an image's tags one by one.
type tagsHandler struct {
	*base
	images *imagesHandler
}

func (h *tagsHandler) register(rt *router) {
	rt.handle("PUT /v2/images/{id}/tags/{tag}", h.addTag)
	rt.handle("DELETE /v2/images/{id}/tags/{tag}", h.deleteTag)
}

// addTag answers PUT /v2/images/{id}/tags/{tag}.
func (h *tagsHandler) addTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	if err := checkTag(tag); err != nil {
		h.fail(w, r, err)
		return
	}
	h.changeTags(w, r, "Not allowed to update tags for image %s.", func(img *imagedb.Image) error {
		img.Tags = imagedb.SortTags(append(img.Tags, tag))
		return checkQuotas(img)
	})
}

// deleteTag answers DELETE /v2/images/{id}/tags/{tag}.
func (h *tagsHandler) deleteTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	h.changeTags(w, r, "Not allowed to delete tags for image %s.", func(img *imagedb.Image) error {
		i := slices.Index(img.Tags, tag)
		if i < 0 {
			return errorf(http.StatusNotFound, "Tag %s not found on image %s.", tag, img.ID)
		}
		img.Tags = slices.Delete(img.Tags, i, i+1)
		return nil
	})
}

func (h *tagsHandler) changeTags(w http.ResponseWriter, r *http.Request, forbidden string, change func(*imagedb.Image) error) {
	ctx := r.Context()
	id := r.PathValue("id")
	err := h.images.retryStale(ctx, func(tx *db.Tx) error {
		img, err := h.images.visibleImage(ctx, tx, id)
		if f, ok := h.kit.Fault(err); ok && f.Status == http.StatusNotFound {
			// Glance's tags say it in their own words.
			return errorf(http.StatusNotFound, "Image %s not found.", id)
		}
		if err != nil {
			return err
		}
		if c := httpkit.CallerFrom(ctx); !img.MutableBy(c.ProjectID, c.Admin) {
			return errorf(http.StatusForbidden, forbidden, img.ID)
		}
		if err := change(img); err != nil {
			return err
		}
		return h.store.Update(ctx, tx, img)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
