package image

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// imagesHandler is /v2/images: list (list.go), create, show, update by
// JSON patch (patch.go), delete; and the reading of an image the caller
// can see (or change) that the tags and data rooms use too.
type imagesHandler struct{ *base }

func (h *imagesHandler) register(rt *router) {
	rt.handle("GET /v2/images", h.listImages)
	rt.handle("POST /v2/images", h.createImage)
	rt.handle("GET /v2/images/{id}", h.showImage)
	rt.handle("PATCH /v2/images/{id}", h.updateImage)
	rt.handle("DELETE /v2/images/{id}", h.deleteImage)
}

// isoTime is Glance's timestamp format (timeutils.isotime).
func isoTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func imageHref(id string) string { return "/v2/images/" + id }

// view is an image as Glance shows it: custom properties as top-level
// keys, then the base attributes.
func view(img *imagedb.Image) map[string]any {
	v := make(map[string]any, len(img.Properties)+22)
	for k, p := range img.Properties {
		v[k] = p
	}
	v["id"] = img.ID
	v["name"] = nullIfEmpty(img.Name)
	v["status"] = img.Status
	v["visibility"] = img.Visibility
	v["protected"] = img.Protected
	v["os_hidden"] = img.Hidden
	v["owner"] = nullIfEmpty(img.Owner)
	v["disk_format"] = nullIfEmpty(img.DiskFormat)
	v["container_format"] = nullIfEmpty(img.ContainerFormat)
	v["min_ram"] = img.MinRAM
	v["min_disk"] = img.MinDisk
	v["size"], v["checksum"], v["os_hash_algo"], v["os_hash_value"] = nil, nil, nil, nil
	if img.HasData() {
		v["size"] = img.Size
		v["checksum"] = img.Checksum
		v["os_hash_algo"] = img.HashAlgo
		v["os_hash_value"] = img.HashValue
	}
	v["virtual_size"] = nil
	v["created_at"] = isoTime(img.CreatedAt)
	v["updated_at"] = isoTime(img.UpdatedAt)
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	v["tags"] = tags
	v["self"] = imageHref(img.ID)
	v["file"] = imageHref(img.ID) + "/file"
	v["schema"] = "/v2/schemas/image"
	return v
}

// notFound is Glance's answer for an image that does not exist or that the
// caller cannot see.
func notFound(id string) *httpkit.Fault {
	return errorf(http.StatusNotFound, "No image found with ID %s", id)
}

// visibleImage reads an image the caller can see.
func (h *imagesHandler) visibleImage(ctx context.Context, q db.Querier, id string) (*imagedb.Image, error) {
	img, err := h.store.Get(ctx, q, id)
	if err != nil {
		return nil, onImage(id, err)
	}
	c := httpkit.CallerFrom(ctx)
	if !img.VisibleTo(c.ProjectID, c.Admin) {
		return nil, notFound(id)
	}
	return img, nil
}

// mutableImage reads an image the caller can see and change; forbidden is
// the message when the caller can see it but not change it.
func (h *imagesHandler) mutableImage(ctx context.Context, q db.Querier, id, forbidden string) (*imagedb.Image, error) {
	img, err := h.visibleImage(ctx, q, id)
	if err != nil {
		return nil, err
	}
	c := httpkit.CallerFrom(ctx)
	if !img.MutableBy(c.ProjectID, c.Admin) {
		return nil, errorf(http.StatusForbidden, "%s", forbidden)
	}
	return img, nil
}

func (h *imagesHandler) showImage(w http.ResponseWriter, r *http.Request) {
	img, err := h.visibleImage(r.Context(), h.cfg.DB, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteMarshal(w, http.StatusOK, view(img))
}

// checkVisibility applies Glance's policies on setting a visibility:
// publicize_image is for admins only.
func checkVisibility(c httpkit.Caller, visibility string) error {
	if visibility == imagedb.Public && !c.Admin {
		return errorf(http.StatusForbidden, "You are not authorized to complete publicize_image action.")
	}
	return nil
}

// createImage answers POST /v2/images: a queued image with no data.
func (h *imagesHandler) createImage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	body, err := readJSON(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		h.fail(w, r, errorf(http.StatusBadRequest, "Provided object does not match schema 'image': %s is not of type 'object'", pyRepr(body)))
		return
	}
	img, err := newImage(c, fields)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := h.checkImageCount(ctx, tx, c.ProjectID); err != nil {
			return err
		}
		return h.store.Create(ctx, tx, img)
	})
	var f *httpkit.Fault
	if errors.As(err, &f) {
		h.log.Warn("image create over the project's image count quota", "request_id", httpkit.RequestID(ctx), "project", c.ProjectID)
		h.fail(w, r, f)
		return
	}
	if err != nil {
		h.fail(w, r, onImage(img.ID, err))
		return
	}
	h.log.Info("image created", "request_id", httpkit.RequestID(ctx), "image", img.ID, "owner", img.Owner, "visibility", img.Visibility)
	w.Header().Set("Location", baseURL(r)+imageHref(img.ID))
	httpkit.WriteMarshal(w, http.StatusCreated, view(img))
}

// newImage validates a create request as Glance does, in Glance's order:
// read-only attributes (403), the schema (400), custom property names
// (400/403), then ownership and visibility policy (403) and quotas (413).
func newImage(c httpkit.Caller, fields map[string]json.RawMessage) (*imagedb.Image, error) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if slices.Contains(readOnly, k) && k != "id" {
			return nil, errorf(http.StatusForbidden, "Attribute '%s' is read-only.", k)
		}
	}
	img := &imagedb.Image{
		Status: imagedb.StatusQueued, Visibility: imagedb.Shared, Owner: c.ProjectID,
		Properties: map[string]string{}, Tags: []string{},
	}
	ownerSet := false
	for _, k := range keys {
		raw := fields[k]
		switch {
		case k == "id":
			var id string
			if err := json.Unmarshal(raw, &id); err != nil {
				return nil, schemaError(k, pyRepr(raw)+" is not of type 'string'", raw)
			}
			if !uuidRE.MatchString(id) {
				return nil, schemaError(k, pyRepr(raw)+" does not match '"+uuidRE.String()+"'", raw)
			}
			img.ID = imagedb.NormalizeID(id)
		case slices.Contains(baseAttrs, k):
			if err := setAttr(img, k, raw); err != nil {
				return nil, err
			}
			ownerSet = ownerSet || k == "owner"
		case k == "locations":
			return nil, errorf(http.StatusForbidden, "Attribute '%s' is reserved.", k)
		default:
			v, err := customValue(k, raw)
			if err != nil {
				return nil, err
			}
			img.Properties[k] = v
		}
	}
	for _, k := range keys {
		if _, ok := img.Properties[k]; ok {
			if err := checkCustomKey(k); err != nil {
				return nil, err
			}
		}
	}
	if ownerSet && !c.Admin && img.Owner != c.ProjectID {
		return nil, errorf(http.StatusForbidden, "You are not permitted to create images owned by '%s'.", img.Owner)
	}
	if err := checkVisibility(c, img.Visibility); err != nil {
		return nil, err
	}
	if err := checkQuotas(img); err != nil {
		return nil, err
	}
	if img.ID == "" {
		img.ID = uuid.NewString()
	}
	return img, nil
}

// deleteImage answers DELETE /v2/images/{id}. A protected image is 403, as
// in Glance. The data file goes once the delete has committed.
func (h *imagesHandler) deleteImage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	var img *imagedb.Image
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		var err error
		img, err = h.mutableImage(ctx, tx, id, "You are not authorized to complete delete_image action.")
		if err != nil {
			return err
		}
		err = h.store.Delete(ctx, tx, img.ID)
		if errors.Is(err, imagedb.ErrProtected) {
			// Glance names the image as stored here, and as asked when
			// it is not found.
			return onImage(img.ID, err)
		}
		return onImage(id, err)
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.files.remove(img.ID); err != nil {
		h.log.Error("image deleted; its data file could not be removed (it goes at the next start)",
			"request_id", httpkit.RequestID(ctx), "image", img.ID, "err", err)
	}
	h.log.Info("image deleted", "request_id", httpkit.RequestID(ctx), "image", img.ID)
	w.WriteHeader(http.StatusNoContent)
}
