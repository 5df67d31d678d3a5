package image

import (
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// Image data to and from the compute cells' volumes: a volume made from an
// image reads the image's data in chunks (ReadChunk); a volume uploaded
// to an image (os-volume_upload_image) writes it in chunks (BeginVolume,
// WriteChunk, FinishVolume), into a temporary file of the image's own
// that a repeated chunk writes again at the same offset and that only the
// finish moves into place.

// ErrUploadLost is a chunk of an upload whose temporary file is gone (the
// API cell restarted since it began): the sender begins again.
var ErrUploadLost = errors.New("the upload's data was lost; begin again")

// ErrNotUploading is a chunk or a finish for an image that is not being
// uploaded to (deleted, killed, or made active by another upload).
var ErrNotUploading = errors.New("the image is not being uploaded to")

// ReadChunk reads at most n bytes of an active image's data from off, and
// gives the data's whole size.
func (a *API) ReadChunk(ctx context.Context, id string, off int64, n int) ([]byte, int64, error) {
	img, err := a.b.store.GetWithoutDetails(ctx, a.b.cfg.DB, id)
	if err != nil {
		return nil, 0, err
	}
	if img.Status != imagedb.StatusActive || !img.HasData() {
		return nil, 0, fmt.Errorf("image %s is %s, not active with data: %w", id, img.Status, imagedb.ErrNotFound)
	}
	f, err := os.Open(a.b.files.path(img.ID))
	if err != nil {
		return nil, 0, fmt.Errorf("image store: %w", err)
	}
	defer f.Close()
	if off < 0 || off > img.Size || n < 0 {
		return nil, 0, fmt.Errorf("image %s: read of %d bytes at %d out of its %d", id, n, off, img.Size)
	}
	buf := make([]byte, min(int64(n), img.Size-off))
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, fmt.Errorf("image store: %w", err)
	}
	return buf, img.Size, nil
}

// volumeTmp is the temporary file of image id's upload from a volume (a
// temporary file: the next start removes it).
func (s *fileStore) volumeTmp(id string) string { return s.path(tmpPrefix + "volume-" + id) }

// BeginVolume starts (or starts again) the upload of a volume's bytes into
// image id: a queued image becomes saving, a saving one stays so, and its
// temporary file starts empty. An image in another state (or gone) is
// ErrNotUploading.
func (a *API) BeginVolume(ctx context.Context, id string) error {
	id = imagedb.NormalizeID(id)
	err := a.b.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		err := a.b.store.BeginUpload(ctx, tx, id)
		var se *imagedb.StatusError
		if errors.As(err, &se) && se.From == imagedb.StatusSaving {
			return nil
		}
		return err
	})
	if err != nil {
		var se *imagedb.StatusError
		if errors.As(err, &se) || errors.Is(err, notfound.Err) {
			return fmt.Errorf("image %s: %w (%v)", id, ErrNotUploading, err)
		}
		return err
	}
	f, err := os.OpenFile(a.b.files.volumeTmp(id), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return f.Close()
}

// WriteChunk writes data at off into the upload of image id.
func (a *API) WriteChunk(ctx context.Context, id string, off int64, data []byte) error {
	id = imagedb.NormalizeID(id)
	if err := a.saving(ctx, id); err != nil {
		return err
	}
	f, err := os.OpenFile(a.b.files.volumeTmp(id), os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image %s: %w", id, ErrUploadLost)
	}
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer f.Close()
	if off < 0 || off > a.b.cfg.MaxImageSize {
		return fmt.Errorf("image %s: chunk at %d is out of range", id, off)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	return nil
}

// saving checks that image id is being uploaded to.
func (a *API) saving(ctx context.Context, id string) error {
	img, err := a.b.store.GetWithoutDetails(ctx, a.b.cfg.DB, id)
	if errors.Is(err, notfound.Err) {
		return fmt.Errorf("image %s: %w", id, ErrNotUploading)
	}
	if err != nil {
		return err
	}
	switch img.Status {
	case imagedb.StatusSaving:
		return nil
	case imagedb.StatusQueued:
		// Reset by a restart of the API cell: its data is gone.
		return fmt.Errorf("image %s: %w", id, ErrUploadLost)
	}
	return fmt.Errorf("image %s is %s: %w", id, img.Status, ErrNotUploading)
}

// FinishVolume ends the upload of image id at size bytes: the data is
// synced, hashed, moved into place and the image becomes active.
func (a *API) FinishVolume(ctx context.Context, id string, size int64) error {
	id = imagedb.NormalizeID(id)
	if err := a.saving(ctx, id); err != nil {
		return err
	}
	tmp := a.b.files.volumeTmp(id)
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image %s: %w", id, ErrUploadLost)
	}
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer f.Close()
	if size < 0 || size > a.b.cfg.MaxImageSize {
		return fmt.Errorf("image %s: size %d is out of range", id, size)
	}
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	sum, sha := md5.New(), sha512.New()
	if _, err := io.Copy(io.MultiWriter(sum, sha), f); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	d := imagedb.Data{Size: size, Checksum: hex.EncodeToString(sum.Sum(nil)), HashAlgo: imagedb.HashAlgo, HashValue: hex.EncodeToString(sha.Sum(nil))}
	return a.b.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := a.b.files.commit(tmp, id); err != nil {
			return err
		}
		return a.b.store.FinishUpload(ctx, tx, id, d)
	})
}

// FailVolume ends the upload of image id in failure: the image is deleted
// (Cinder deletes the image of an upload that failed) with its data.
func (a *API) FailVolume(ctx context.Context, id string) error {
	id = imagedb.NormalizeID(id)
	if err := os.Remove(a.b.files.volumeTmp(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image store: %w", err)
	}
	err := a.b.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return a.DeleteImage(ctx, tx, id) })
	if errors.Is(err, notfound.Err) {
		return nil
	}
	return err
}
