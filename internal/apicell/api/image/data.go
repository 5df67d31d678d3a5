package image

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
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

// uploadData answers PUT /v2/images/{id}/file. The image goes queued →
// saving → active. The data is written to a temporary file, renamed into
// place when complete, and only then recorded with its size and hashes; an
// upload that fails for any reason puts the image back to queued and
// leaves no file.
func (a *API) uploadData(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/octet-stream" {
		a.fail(w, r, errorf(http.StatusUnsupportedMediaType, "Invalid content type %s", contentTypeRepr(r)))
		return
	}
	declared := r.ContentLength
	if h := r.Header.Get("X-Openstack-Image-Size"); h != "" {
		if declared, err = strconv.ParseInt(h, 10, 64); err != nil || declared < 0 {
			a.fail(w, r, errorf(http.StatusBadRequest, "Invalid or missing image size in request headers."))
			return
		}
	}
	img, err := a.mutableImage(ctx, a.cfg.DB, id, "Not allowed to upload image data for image "+id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if declared > a.cfg.MaxImageSize {
		a.fail(w, r, tooLarge(declared, a.cfg.MaxImageSize))
		return
	}
	err = a.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return a.store.BeginUpload(ctx, tx, img.ID) })
	if err != nil {
		a.fail(w, r, uploadError(id, err))
		return
	}
	log := a.log.With("request_id", httpkit.RequestID(ctx), "image", img.ID)
	tmp, d, err := a.files.receive(r.Body, a.cfg.MaxImageSize)
	if err != nil {
		a.abortUpload(ctx, log, img.ID)
		var re *readError
		switch {
		case errors.Is(err, errTooLarge):
			a.fail(w, r, tooLarge(-1, a.cfg.MaxImageSize))
		case errors.As(err, &re):
			log.Warn("image upload cut off; image back to queued", "err", err)
			a.fail(w, r, errorf(http.StatusBadRequest, "Failed to read the image data: %v", re.err))
		case errors.Is(err, syscall.ENOSPC):
			log.Error("image store is full", "err", err)
			a.fail(w, r, errorf(http.StatusRequestEntityTooLarge, "Image storage media is full: %v", err))
		default:
			a.fail(w, r, err)
		}
		return
	}
	if err := a.files.commit(tmp, img.ID); err != nil {
		if rerr := a.files.remove(img.ID); rerr != nil {
			log.Error("removing the data of a failed upload", "err", rerr)
		}
		a.abortUpload(ctx, log, img.ID)
		a.fail(w, r, err)
		return
	}
	err = a.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return a.store.FinishUpload(ctx, tx, img.ID, d) })
	if err != nil {
		if rerr := a.files.remove(img.ID); rerr != nil {
			log.Error("removing the data of a failed upload", "err", rerr)
		}
		if errors.Is(err, imagedb.ErrNotFound) {
			a.fail(w, r, errorf(http.StatusGone, "Image %s could not be found after upload. The image may have been deleted "+
				"during the upload, cleaning up the chunks uploaded.", img.ID))
			return
		}
		a.abortUpload(ctx, log, img.ID)
		a.fail(w, r, uploadError(id, err))
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

// uploadError turns the store's refusals of an upload into Glance's
// answers.
func uploadError(id string, err error) error {
	var se *imagedb.StatusError
	switch {
	case errors.Is(err, imagedb.ErrNotFound):
		return notFound(id)
	case errors.As(err, &se):
		return errorf(http.StatusConflict, "%s", se.Error())
	case errors.Is(err, imagedb.ErrNoFormats):
		return errorf(http.StatusBadRequest, "Properties disk_format, container_format must be set prior to saving data.")
	}
	return err
}

// abortUpload puts an image whose upload failed back to queued, even if
// the client has gone.
func (a *API) abortUpload(ctx context.Context, log *slog.Logger, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return a.store.AbortUpload(ctx, tx, id) })
	var se *imagedb.StatusError
	if err != nil && !errors.Is(err, imagedb.ErrNotFound) && !errors.As(err, &se) {
		log.Error("putting the image back to queued after a failed upload (the next start does it)", "err", err)
	}
}

// downloadData answers GET /v2/images/{id}/file: the data, with ranges
// (206) as Glance serves them, or 204 when the image has no data.
func (a *API) downloadData(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	img, err := a.visibleImage(ctx, a.cfg.DB, r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if img.Status == imagedb.StatusDeactivated && !httpkit.CallerFrom(ctx).Admin {
		a.fail(w, r, errorf(http.StatusForbidden, "The requested image has been deactivated. Image data download is prohibited."))
		return
	}
	if !img.HasData() {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	f, err := a.files.open(img.ID)
	if errors.Is(err, fs.ErrNotExist) {
		a.log.Error("image is active but its data file is missing", "request_id", httpkit.RequestID(ctx), "image", img.ID)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	if r.Header.Get("Range") == "" {
		w.Header().Set("Content-MD5", img.Checksum)
	}
	http.ServeContent(w, r, "", time.Time{}, f)
}

// recoverStore undoes what a stopped process left half done: images left
// saving go back to queued, temporary files go, and so do data files that
// no active image owns.
func (a *API) recoverStore(ctx context.Context) error {
	var reset []string
	err := a.cfg.DB.InTx(ctx, func(tx *db.Tx) (err error) {
		reset, err = a.store.ResetUploads(ctx, tx)
		return err
	})
	if err != nil {
		return err
	}
	if len(reset) > 0 {
		a.log.Warn("uploads left unfinished by a previous process; images back to queued", "images", reset)
	}
	ids, tmps, err := a.files.entries()
	if err != nil {
		return err
	}
	for _, t := range tmps {
		if err := os.Remove(t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("image store: %w", err)
		}
	}
	removed := 0
	for _, id := range ids {
		keep, err := a.store.HasDataFile(ctx, a.cfg.DB, id)
		if err != nil {
			return err
		}
		if !keep {
			if err := a.files.remove(id); err != nil {
				return err
			}
			removed++
		}
	}
	if len(tmps)+removed > 0 {
		a.log.Info("image store cleaned", "partial_uploads", len(tmps), "orphaned_files", removed)
		return a.files.syncDir()
	}
	return nil
}
