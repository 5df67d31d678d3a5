package compute

import (
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Image pre-caching (2.81), Nova's aggregates.py images(): POST
// /os-aggregates/{id}/images {"cache": [{"id": IMAGE}, ...]} asks the
// aggregate's hosts to fetch the images. Checked in Nova's order: the body
// (400), the rule compute:aggregates:images (403), the id (400), duplicate
// images (400), the aggregate (404), then each image (400 when the image
// store has no such image, as Nova's conductor API's image_api.get). The
// API cell then sends each cell with hosts in the aggregate one durable
// cache_images naming its hosts, in one transaction, and answers 202 at
// once: the outcome shows nowhere in the API (Nova's goes to notifications
// and logs), only in the cells' logs and their hypervisors' caches.

// ruleAggregateImages is Nova's compute:aggregates:images.
const ruleAggregateImages = "compute:aggregates:images"

// v281 brings POST /os-aggregates/{id}/images.
const v281 = 81

// checkImageCache checks Nova's aggregate_images schema and returns the
// image ids in the order given.
func checkImageCache(body map[string]any) ([]string, error) {
	raw, ok := body["cache"]
	if !ok {
		return nil, bad("'cache' is a required property")
	}
	if err := noOtherKeys(body, "", "cache"); err != nil {
		return nil, err
	}
	list, isList := raw.([]any)
	if !isList {
		return nil, invalid("cache", raw, "%s is not of type 'array'", pyRepr(raw))
	}
	if len(list) == 0 {
		return nil, invalid("cache", raw, "%s should be non-empty", pyRepr(raw))
	}
	ids := make([]string, 0, len(list))
	for i, item := range list {
		m, isObj := item.(map[string]any)
		if !isObj {
			return nil, invalid(strconv.Itoa(i), item, "%s is not of type 'object'", pyRepr(item))
		}
		v, has := m["id"]
		if has {
			s, isStr := v.(string)
			if !isStr {
				return nil, invalid("id", v, "%s is not of type 'string'", pyRepr(v))
			}
			if !uuidRE.MatchString(s) {
				return nil, invalid("id", v, "%s is not a 'uuid'", pyRepr(v))
			}
		}
		if err := noOtherKeys(m, strconv.Itoa(i), "id"); err != nil {
			return nil, err
		}
		if !has {
			return nil, invalid(strconv.Itoa(i), m, "'id' is a required property")
		}
		ids = append(ids, v.(string))
	}
	return ids, nil
}

func (h *aggregatesHandler) cacheImages(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if !atLeast(r, v281) {
		h.fail(w, r, notFound("The resource could not be found."))
		return
	}
	body, err := readObject(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ids, err := checkImageCache(body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.authorize(ctx, ruleAggregateImages, nil); err != nil {
		h.fail(w, r, err)
		return
	}
	raw := r.PathValue("id")
	if _, _, err := aggregateID(raw); err != nil {
		h.fail(w, r, err)
		return
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			h.fail(w, r, bad("Duplicate images in request"))
			return
		}
		seen[id] = true
	}
	c := httpkit.CallerFrom(ctx)
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		a, err := h.getAggregate(ctx, tx, raw)
		if err != nil {
			return err
		}
		// The images, as the image store names them, each once.
		var images []string
		for _, id := range ids {
			img, err := (&imagedb.Store{}).GetWithoutDetails(ctx, tx, id)
			if errors.Is(err, imagedb.ErrNotFound) || (err == nil && !img.VisibleTo(c.ProjectID, c.Admin)) {
				return bad("Image %s could not be found.", id)
			}
			if err != nil {
				return err
			}
			if !slices.Contains(images, img.ID) {
				images = append(images, img.ID)
			}
		}
		byCell := map[string][]string{}
		var cells []string
		for _, x := range a.Hosts {
			if _, ok := byCell[x.Cell]; !ok {
				cells = append(cells, x.Cell)
			}
			byCell[x.Cell] = append(byCell[x.Cell], x.Host)
		}
		slices.Sort(cells)
		for _, cell := range cells {
			m := &wire.CacheImages{AggregateID: a.ID, AggregateUUID: a.UUID, Hosts: byCell[cell], ImageIDs: images}
			if err := h.cfg.Sender.Send(ctx, tx, cell, wire.MethodCacheImages, httpkit.RequestID(ctx), m); err != nil {
				return err
			}
		}
		h.log.Info("image pre-cache requested", "request_id", httpkit.RequestID(ctx), "aggregate", a.ID, "images", len(images),
			"hosts", len(a.Hosts), "cells", len(cells))
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
