package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Re-image of a volume-backed instance's boot volume (the rebuild at
// compute API 2.93; Cinder's os-reimage as Nova's compute manager calls
// it, with reimage_reserved). instanceops asks for it in its transaction
// (ReimageBoot) and waits (BootReimage); the worker writes the image over
// the volume:
//
//   - accepted: the volume's status is "downloading" (sent up) and the
//     re-image is its pending action, with the status to go back to;
//   - done: the status it had (in-use: the instance's attachment stays,
//     as Nova keeps the volume reserved for the instance throughout), the
//     new image's volume_image_metadata sent up with that state (the API
//     cell's copy replaces its own with it: Cinder's
//     _refresh_volume_glance_meta, after the copy);
//   - failed copy: status "error" with the fault (Cinder's manager);
//   - refused (Cinder's API checks: the status, more than one
//     attachment, an image larger than the volume or whose min_disk is):
//     nothing changes, the caller gets the message (code invalid).
//
// A process that stops mid-copy leaves the re-image pending and the
// volume downloading: the next Manager on the database writes the image
// again from its start (the backend's Reimage replaces the volume whole,
// so a half copy is never seen); the volume never stays downloading.

// pendingReimage is a volume's pending re-image.
const pendingReimage = "reimage"

// statusDownloading is Cinder's status of a volume being written from an
// image.
const statusDownloading = "downloading"

// ReimageRequest asks for the re-image of an instance's boot volume.
type ReimageRequest struct {
	InstanceUUID string
	ImageID      string
	// ImageSize is the image's size in bytes, ImageMinDisk its min_disk
	// in GiB, ImageMetadata its volume_image_metadata.
	ImageSize     int64
	ImageMinDisk  int
	ImageMetadata map[string]string
	RequestID     string
}

// reimageParams are a pending re-image's parameters.
type reimageParams struct {
	ImageID        string            `json:"image_id"`
	ImageSize      int64             `json:"image_size"`
	ImageMetadata  map[string]string `json:"image_metadata,omitempty"`
	PreviousStatus string            `json:"previous_status"`
}

// ReimageStatus is how far an instance's boot volume re-image is.
type ReimageStatus struct {
	// Done: it ended; Fault is why it failed ("" it did not).
	Done  bool
	Fault string
}

// bootVolume is the volume of the instance's root mapping.
func bootVolume(ctx context.Context, q celldb.Querier, instanceUUID string) (string, error) {
	bdms, err := celldb.InstanceBDMs(ctx, q, instanceUUID)
	if err != nil {
		return "", err
	}
	for _, b := range bdms {
		if b.BootIndex == 0 && b.VolumeID != "" && !b.Deleted {
			return b.VolumeID, nil
		}
	}
	return "", wire.Errorf(wire.CodeInvalid, "Unable to find root block device mapping for volume-backed instance.")
}

// ReimageBoot asks, in tx, for the re-image of the instance's boot volume
// with the image. A repeat of the request (a rebuild resumed after a
// restart) changes nothing. A refusal is an error with code invalid and
// Cinder's message, and changes nothing.
func (m *Manager) ReimageBoot(ctx context.Context, tx *db.Tx, r ReimageRequest) error {
	id, err := bootVolume(ctx, tx, r.InstanceUUID)
	if err != nil {
		return err
	}
	v, err := celldb.GetVolumeForUpdate(ctx, tx, id)
	if errors.Is(err, celldb.ErrVolumeNotFound) || (err == nil && v.Deleted) {
		return wire.Errorf(wire.CodeInvalid, "Volume %s could not be found.", id)
	}
	if err != nil {
		return err
	}
	log := m.log.With("request_id", r.RequestID, "volume", id, "instance", r.InstanceUUID, "image", r.ImageID)
	if r.RequestID != "" && v.RequestID == r.RequestID {
		log.Info("re-image repeated: accepted already")
		return nil
	}
	atts, err := celldb.VolumeAttachments(ctx, tx, id)
	if err != nil {
		return err
	}
	// Cinder's volume API reimage, then check_image_metadata.
	imageGB := (r.ImageSize + int64(1<<30) - 1) >> 30
	switch {
	case len(atts) > 1:
		return wire.Errorf(wire.CodeInvalid, "Cannot re-image a volume which is attached to more than one server.")
	case v.Action != "" || (v.Status != statusAvailable && v.Status != statusError && v.Status != statusInUse):
		// in-use stands for Cinder's reserved: the instance's attachment
		// is kept through the rebuild.
		status := v.Status
		if v.Action != "" {
			status = fmt.Sprintf("%s (%s pending)", v.Status, v.Action)
		}
		return wire.Errorf(wire.CodeInvalid, "Invalid volume: Volume %s status must be available or error or reserved, but current status is %s.", id, status)
	case imageGB > int64(v.SizeGB):
		return wire.Errorf(wire.CodeInvalid, "Invalid input received: Size of specified image %dGB is larger than volume size %dGB.", imageGB, v.SizeGB)
	case v.SizeGB < r.ImageMinDisk:
		return wire.Errorf(wire.CodeInvalid, "Invalid input received: Volume size %dGB cannot be smaller than the image minDisk size %dGB.", v.SizeGB, r.ImageMinDisk)
	}
	params, err := json.Marshal(reimageParams{ImageID: r.ImageID, ImageSize: r.ImageSize, ImageMetadata: r.ImageMetadata, PreviousStatus: v.Status})
	if err != nil {
		return err
	}
	status := statusDownloading
	nv, err := celldb.UpdateVolume(ctx, tx, id, nil, celldb.VolumeChange{Status: &status,
		Pending: &celldb.VolumePending{Action: pendingReimage, Params: params, RequestID: r.RequestID}}, m.cfg.Now())
	if err != nil {
		return err
	}
	if err := m.sendVolume(ctx, tx, r.RequestID, nv); err != nil {
		return err
	}
	tx.AfterCommit(m.Wake)
	log.Info("re-image accepted", "previous_status", v.Status)
	return nil
}

// BootReimage tells how far the re-image of the instance's boot volume
// that request asked for is.
func (m *Manager) BootReimage(ctx context.Context, q celldb.Querier, instanceUUID, requestID string) (ReimageStatus, error) {
	id, err := bootVolume(ctx, q, instanceUUID)
	if err != nil {
		return ReimageStatus{}, err
	}
	v, err := celldb.GetVolume(ctx, q, id)
	switch {
	case err != nil:
		return ReimageStatus{}, err
	case v.Deleted:
		return ReimageStatus{Done: true, Fault: fmt.Sprintf("Volume %s could not be found.", id)}, nil
	case v.RequestID != requestID:
		return ReimageStatus{Done: true, Fault: fmt.Sprintf("volume %s is not being re-imaged by request %s", id, requestID)}, nil
	case v.Action == pendingReimage:
		return ReimageStatus{}, nil
	case v.Status == statusError:
		fault := v.Fault
		if fault == "" {
			fault = "the re-image failed"
		}
		return ReimageStatus{Done: true, Fault: fault}, nil
	}
	return ReimageStatus{Done: true}, nil
}

// reimage writes the pending re-image's image over the volume (outside any
// transaction), then records its end: the status the volume had and the
// image's metadata, or error with the fault.
func (m *Manager) reimage(ctx context.Context, v *celldb.Volume, log *slog.Logger) error {
	var p reimageParams
	if err := json.Unmarshal(v.ActionParams, &p); err != nil {
		return m.finishVolume(ctx, v, outcome{status: statusError, fault: fmt.Sprintf("re-image parameters: %v", err)}, false, log)
	}
	r := &imageReader{ctx: ctx, images: m.cfg.Images, imageID: p.ImageID, size: p.ImageSize}
	err := m.cfg.Backend.Reimage(ctx, v.ID, r, p.ImageSize)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the re-image stays pending
	}
	if err != nil {
		return m.finishVolume(ctx, v, outcome{status: statusError, fault: err.Error()}, false, log)
	}
	meta := p.ImageMetadata
	if meta == nil {
		meta = map[string]string{"image_id": p.ImageID}
	}
	// The status it had; an attached one's is its attachments' now (the
	// instance may have been deleted meanwhile: InstanceGone took its
	// attachment and left the downloading volume to this end).
	return m.finishVolume(ctx, v, outcome{status: p.PreviousStatus, imageMetadata: meta, fromAttachments: attachmentStatus(p.PreviousStatus)}, false, log)
}
