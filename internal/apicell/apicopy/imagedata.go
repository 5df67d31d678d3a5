package apicopy

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// ImageData is the image store's side of the volumes' image data: chunks
// read for a volume made from an image, and the chunked upload of a
// volume into an image (package image, volumes.go).
type ImageData interface {
	ReadChunk(ctx context.Context, id string, off int64, n int) ([]byte, int64, error)
	BeginVolume(ctx context.Context, id string) error
	WriteChunk(ctx context.Context, id string, off int64, data []byte) error
	FinishVolume(ctx context.Context, id string, size int64) error
	FailVolume(ctx context.Context, id string) error
}

// ImageDataHandlers answer the calls image_read and image_write of the
// compute cells' volume roles.
type ImageDataHandlers struct {
	Images ImageData
	Logger *slog.Logger
}

// Read is the call handler of image_read.
func (h *ImageDataHandlers) Read(ctx context.Context, env *wire.Envelope) (any, error) {
	var m wire.ImageRead
	if err := json.Unmarshal(env.Payload, &m); err != nil || m.ImageID == "" || m.Offset < 0 || m.Length <= 0 || m.Length > wire.ImageChunkSize {
		return nil, wire.Errorf(wire.CodeBadMessage, "image_read needs an image id, an offset and a length of at most %d", wire.ImageChunkSize)
	}
	data, size, err := h.Images.ReadChunk(ctx, m.ImageID, m.Offset, m.Length)
	if errors.Is(err, notfound.Err) {
		return nil, wire.Errorf(wire.CodeNotFound, "image %s: %v", m.ImageID, err)
	}
	if err != nil {
		return nil, err
	}
	return &wire.ImageChunk{Data: data, Size: size}, nil
}

// Write is the call handler of image_write: an image no longer being
// uploaded to answers Gone; an upload whose data a restart lost is a
// conflict (the sender begins again).
func (h *ImageDataHandlers) Write(ctx context.Context, env *wire.Envelope) (any, error) {
	var m wire.ImageWrite
	if err := json.Unmarshal(env.Payload, &m); err != nil || m.ImageID == "" || m.Offset < 0 || len(m.Data) > wire.ImageChunkSize {
		return nil, wire.Errorf(wire.CodeBadMessage, "image_write needs an image id, an offset and at most %d bytes", wire.ImageChunkSize)
	}
	log := h.Logger.With("request_id", env.RequestID, "image", m.ImageID, "volume", m.VolumeID, "from", env.Sender)
	var err error
	switch {
	case m.Failed:
		log.Warn("upload of a volume to an image failed in its cell; deleting the image")
		err = h.Images.FailVolume(ctx, m.ImageID)
	case m.Begin:
		log.Info("upload of a volume to an image begins")
		err = h.Images.BeginVolume(ctx, m.ImageID)
	case m.Final:
		err = h.Images.FinishVolume(ctx, m.ImageID, m.Size)
		if err == nil {
			log.Info("volume uploaded to the image", "bytes", m.Size)
		}
	default:
		err = h.Images.WriteChunk(ctx, m.ImageID, m.Offset, m.Data)
	}
	switch {
	case err == nil:
		return &wire.ImageWritten{}, nil
	case errors.Is(err, image.ErrNotUploading):
		log.Warn("upload of a volume: the image is no longer being uploaded to", "err", err)
		return &wire.ImageWritten{Gone: true}, nil
	case errors.Is(err, image.ErrUploadLost):
		return nil, wire.Errorf(wire.CodeConflict, "%v", err)
	}
	return nil, err
}
