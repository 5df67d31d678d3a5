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
func (a *API) visibleImage(ctx context.Context, q db.Querier, id string) (*imagedb.Image, error) {
	img, err := a.store.Get(ctx, q, id)
	if errors.Is(err, imagedb.ErrNotFound) {
		return nil, notFound(id)
	}
	if err != nil {
		return nil, err
	}
	c := httpkit.CallerFrom(ctx)
	if !img.VisibleTo(c.ProjectID, c.Admin) {
		return nil, notFound(id)
	}
	return img, nil
}

// mutableImage reads an image the caller can see and change; forbidden is
// the message when the caller can see it but not change it.
func (a *API) mutableImage(ctx context.Context, q db.Querier, id, forbidden string) (*imagedb.Image, error) {
	img, err := a.visibleImage(ctx, q, id)
	if err != nil {
		return nil, err
	}
	c := httpkit.CallerFrom(ctx)
	if !img.MutableBy(c.ProjectID, c.Admin) {
		return nil, errorf(http.StatusForbidden, "%s", forbidden)
	}
	return img, nil
}

func (a *API) showImage(w http.ResponseWriter, r *http.Request) {
	img, err := a.visibleImage(r.Context(), a.cfg.DB, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
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
func (a *API) createImage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	body, err := readJSON(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		a.fail(w, r, errorf(http.StatusBadRequest, "Provided object does not match schema 'image': %s is not of type 'object'", pyRepr(body)))
		return
	}
	img, err := newImage(c, fields)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	err = a.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return a.store.Create(ctx, tx, img) })
	if errors.Is(err, imagedb.ErrDuplicate) {
		a.fail(w, r, errorf(http.StatusConflict, "Image with identifier %s already exists!", img.ID))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("image created", "request_id", httpkit.RequestID(ctx), "image", img.ID, "owner", img.Owner, "visibility", img.Visibility)
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
func (a *API) deleteImage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	var img *imagedb.Image
	err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		var err error
		img, err = a.mutableImage(ctx, tx, id, "You are not authorized to complete delete_image action.")
		if err != nil {
			return err
		}
		err = a.store.Delete(ctx, tx, img.ID)
		if errors.Is(err, imagedb.ErrProtected) {
			return errorf(http.StatusForbidden, "Image %s is protected and cannot be deleted.", img.ID)
		}
		if errors.Is(err, imagedb.ErrNotFound) {
			return notFound(id)
		}
		return err
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if err := a.files.remove(img.ID); err != nil {
		a.log.Error("image deleted; its data file could not be removed (it goes at the next start)",
			"request_id", httpkit.RequestID(ctx), "image", img.ID, "err", err)
	}
	a.log.Info("image deleted", "request_id", httpkit.RequestID(ctx), "image", img.ID)
	w.WriteHeader(http.StatusNoContent)
}

// addTag answers PUT /v2/images/{id}/tags/{tag}.
func (a *API) addTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	if err := checkTag(tag); err != nil {
		a.fail(w, r, err)
		return
	}
	a.changeTags(w, r, "Not allowed to update tags for image %s.", func(img *imagedb.Image) error {
		img.Tags = imagedb.SortTags(append(img.Tags, tag))
		return checkQuotas(img)
	})
}

// deleteTag answers DELETE /v2/images/{id}/tags/{tag}.
func (a *API) deleteTag(w http.ResponseWriter, r *http.Request) {
	tag := r.PathValue("tag")
	a.changeTags(w, r, "Not allowed to delete tags for image %s.", func(img *imagedb.Image) error {
		i := slices.Index(img.Tags, tag)
		if i < 0 {
			return errorf(http.StatusNotFound, "Tag %s not found on image %s.", tag, img.ID)
		}
		img.Tags = slices.Delete(img.Tags, i, i+1)
		return nil
	})
}

func (a *API) changeTags(w http.ResponseWriter, r *http.Request, forbidden string, change func(*imagedb.Image) error) {
	ctx := r.Context()
	id := r.PathValue("id")
	err := a.retryStale(ctx, func(tx *db.Tx) error {
		img, err := a.visibleImage(ctx, tx, id)
		var ae *httpkit.Fault
		if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
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
		return a.store.Update(ctx, tx, img)
	})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
