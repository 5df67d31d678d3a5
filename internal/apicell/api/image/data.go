package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// cleanupTimeout bounds the database work that undoes a failed upload,
// which runs even when the client has gone.
const cleanupTimeout = 10 * time.Second

// dataHandler is /v2/images/{id}/file: an image's data, uploaded and
// downloaded.
type dataHandler struct {
	*base
	images *imagesHandler
}

func (h *dataHandler) register(rt *router) {
	rt.handle("PUT /v2/images/{id}/file", h.uploadData)
	rt.handle("GET /v2/images/{id}/file", h.downloadData)
}

// uploadData answers PUT /v2/images/{id}/file. The image goes queued →
// saving → active. The data is written to a temporary file, renamed into
// place when complete, and only then recorded with its size and hashes; an
// upload that fails for any reason puts the image back to queued and
// leaves no file.
func (h *dataHandler) uploadData(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/octet-stream" {
		h.fail(w, r, errorf(http.StatusUnsupportedMediaType, "Invalid content type %s", contentTypeRepr(r)))
		return
	}
	declared := r.ContentLength
	if size := r.Header.Get("X-Openstack-Image-Size"); size != "" {
		if declared, err = strconv.ParseInt(size, 10, 64); err != nil || declared < 0 {
			h.fail(w, r, errorf(http.StatusBadRequest, "Invalid or missing image size in request headers."))
			return
		}
	}
	img, err := h.images.mutableImage(ctx, h.cfg.DB, id, "Not allowed to upload image data for image "+id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if declared > h.cfg.MaxImageSize {
		h.fail(w, r, tooLarge(declared, h.cfg.MaxImageSize))
		return
	}
	log := h.log.With("request_id", httpkit.RequestID(ctx), "image", img.ID)
	project := httpkit.CallerFrom(ctx).ProjectID
	limit := h.cfg.MaxImageSize
	remaining, quota, err := h.remainingStorage(ctx, h.cfg.DB, project, img.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if quota {
		// Glance's check_quota: a known size must fit; an unknown one is
		// refused only when nothing is left, and cut off when it crosses.
		// An image that is not queued gets BeginUpload's 409, as in
		// Glance, which changes the status before it checks the quota.
		over := declared > remaining || declared < 0 && remaining <= 0
		if over && img.Status == imagedb.StatusQueued {
			log.Warn("image upload over the project's storage quota", "project", project, "size", declared, "remaining", remaining)
			h.fail(w, r, storageQuotaFull(declared, remaining))
			return
		}
		limit = min(limit, remaining)
	}
	h.extendDeadlines(w, true)
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return h.store.BeginUpload(ctx, tx, img.ID) })
	if err != nil {
		h.fail(w, r, onImage(id, err))
		return
	}
	tmp, d, err := h.files.receive(r.Body, limit)
	if err != nil {
		h.abortUpload(ctx, log, img.ID)
		var re *readError
		switch {
		case errors.Is(err, errTooLarge) && limit < h.cfg.MaxImageSize:
			log.Warn("image upload cut off at the project's storage quota; image back to queued", "project", project, "remaining", remaining)
			h.fail(w, r, storageQuotaFull(-1, remaining))
		case errors.Is(err, errTooLarge):
			h.fail(w, r, tooLarge(-1, h.cfg.MaxImageSize))
		case errors.As(err, &re):
			log.Warn("image upload cut off; image back to queued", "err", err)
			h.fail(w, r, errorf(http.StatusBadRequest, "Failed to read the image data: %v", re.err))
		case errors.Is(err, syscall.ENOSPC):
			log.Error("image store is full", "err", err)
			h.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "Image storage media is full: %v", err))
		default:
			h.fail(w, r, err)
		}
		return
	}
	if err := h.files.commit(tmp, img.ID); err != nil {
		if rerr := h.files.remove(img.ID); rerr != nil {
			log.Error("removing the data of a failed upload", "err", rerr)
		}
		h.abortUpload(ctx, log, img.ID)
		h.fail(w, r, err)
		return
	}
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		// Again with the size known, as Glance does: another upload of
		// the project may have finished meanwhile.
		if left, quota, err := h.remainingStorage(ctx, tx, project, img.ID); err != nil {
			return err
		} else if quota && d.Size > left {
			return storageQuotaFull(d.Size, left)
		}
		return h.store.FinishUpload(ctx, tx, img.ID, d)
	})
	if err != nil {
		if rerr := h.files.remove(img.ID); rerr != nil {
			log.Error("removing the data of a failed upload", "err", rerr)
		}
		var f *httpkit.Fault
		if errors.As(err, &f) {
			log.Warn("image upload over the project's storage quota once complete; image back to queued", "project", project, "size", d.Size)
			h.abortUpload(ctx, log, img.ID)
			h.fail(w, r, f)
			return
		}
		if errors.Is(err, imagedb.ErrNotFound) {
			h.fail(w, r, onImage(img.ID, fmt.Errorf("%w: %w", errGoneDuringUpload, err)))
			return
		}
		h.abortUpload(ctx, log, img.ID)
		h.fail(w, r, onImage(id, err))
		return
	}
	log.Info("image data uploaded", "size", d.Size, "checksum", d.Checksum)
	w.WriteHeader(http.StatusNoContent)
}

func contentTypeRepr(r *http.Request) string {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		return ct
	}
	return "None"
}

func tooLarge(size, max int64) *httpkit.Fault {
	if size >= 0 {
		return errorf(http.StatusRequestEntityTooLarge, "The incoming image is too large: %d bytes; the limit is %d bytes.", size, max)
	}
	return errorf(http.StatusRequestEntityTooLarge, "The incoming image is too large: the limit is %d bytes.", max)
}

// abortUpload puts an image whose upload failed back to queued, even if
// the client has gone.
func (h *dataHandler) abortUpload(ctx context.Context, log *slog.Logger, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := h.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return h.store.AbortUpload(ctx, tx, id) })
	var se *imagedb.StatusError
	if err != nil && !errors.Is(err, imagedb.ErrNotFound) && !errors.As(err, &se) {
		log.Error("putting the image back to queued after a failed upload (the next start does it)", "err", err)
	}
}

// extendDeadlines gives an upload (read too) or a download the data
// timeout in place of the server's short deadlines. A writer that cannot
// set deadlines (not a server's connection) keeps none to extend.
func (h *dataHandler) extendDeadlines(w http.ResponseWriter, read bool) {
	if h.cfg.DataTimeout <= 0 {
		return
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(h.cfg.DataTimeout)
	if read {
		_ = rc.SetReadDeadline(deadline)
	}
	_ = rc.SetWriteDeadline(deadline)
}

// downloadData answers GET /v2/images/{id}/file: the data, with ranges
// (206) as Glance serves them, or 204 when the image has no data.
func (h *dataHandler) downloadData(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	img, err := h.images.visibleImage(ctx, h.cfg.DB, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if img.Status == imagedb.StatusDeactivated && !httpkit.CallerFrom(ctx).Admin {
		h.fail(w, r, errorf(http.StatusForbidden, "The requested image has been deactivated. Image data download is prohibited."))
		return
	}
	if !img.HasData() {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	f, err := h.files.open(img.ID)
	if errors.Is(err, fs.ErrNotExist) {
		h.log.Error("image is active but its data file is missing", "request_id", httpkit.RequestID(ctx), "image", img.ID)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	defer f.Close()
	h.extendDeadlines(w, false)
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.Header.Get("Range") == "" {
		w.Header().Set("Content-MD5", img.Checksum)
	}
	http.ServeContent(w, r, "", time.Time{}, f)
}
