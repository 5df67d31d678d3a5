package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// imageReader reads an image of size bytes through image_read calls of at
// most wire.ImageChunkSize, in order.
type imageReader struct {
	ctx     context.Context
	images  Images
	imageID string
	size    int64
	off     int64
	buf     []byte
}

func (r *imageReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.off >= r.size {
			return 0, io.EOF
		}
		n := int(min(int64(wire.ImageChunkSize), r.size-r.off))
		c, err := r.images.ReadImage(r.ctx, r.imageID, r.off, n)
		switch {
		case err != nil:
			return 0, fmt.Errorf("reading image %s at %d: %w", r.imageID, r.off, err)
		case c.Size != r.size:
			return 0, fmt.Errorf("image %s is %d bytes, not the %d it was when the volume was asked for", r.imageID, c.Size, r.size)
		case len(c.Data) == 0 || len(c.Data) > n:
			return 0, fmt.Errorf("image %s: %d bytes read at %d, asked for %d", r.imageID, len(c.Data), r.off, n)
		}
		r.buf = c.Data
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.off += int64(n)
	return n, nil
}

// errImageGone is an upload whose image was deleted meanwhile.
var errImageGone = errors.New("the image is gone")

// upload writes the volume's bytes into image imageID with image_write
// calls: a begin, the chunks of wire.ImageChunkSize that are not all zero,
// and a final one with the size. An upload is done again from its begin
// after a restart. An image deleted meanwhile (Gone) ends the upload
// without a fault; any other failure tells the image store the upload
// failed (which deletes the image) and is returned.
func (m *Manager) upload(ctx context.Context, v *celldb.Volume, imageID string, log *slog.Logger) error {
	err := m.writeImage(ctx, v, imageID)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errImageGone):
		log.Info("image deleted during its upload: upload stopped", "image", imageID)
		return nil
	case ctx.Err() != nil:
		return err
	}
	if _, ferr := m.cfg.Images.WriteImage(ctx, &wire.ImageWrite{ImageID: imageID, VolumeID: v.ID, Failed: true}); ferr != nil {
		log.Warn("telling the image store an upload failed", "image", imageID, "err", ferr)
	}
	return err
}

func (m *Manager) writeImage(ctx context.Context, v *celldb.Volume, imageID string) error {
	rc, err := m.cfg.Backend.Open(ctx, v.ID)
	if err != nil {
		return err
	}
	defer rc.Close()
	write := func(w *wire.ImageWrite) error {
		w.ImageID, w.VolumeID = imageID, v.ID
		got, err := m.cfg.Images.WriteImage(ctx, w)
		if err != nil {
			return fmt.Errorf("writing image %s at %d: %w", imageID, w.Offset, err)
		}
		if got.Gone {
			return errImageGone
		}
		return nil
	}
	if err := write(&wire.ImageWrite{Begin: true}); err != nil {
		return err
	}
	buf := make([]byte, wire.ImageChunkSize)
	zero := make([]byte, wire.ImageChunkSize)
	var off int64
	for {
		n, rerr := io.ReadFull(rc, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if err := write(&wire.ImageWrite{Offset: off, Data: buf[:n]}); err != nil {
				return err
			}
		}
		off += int64(n)
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return fmt.Errorf("reading volume %s at %d: %w", v.ID, off, rerr)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return write(&wire.ImageWrite{Final: true, Size: off})
}
