package compute

import (
	"context"
	"errors"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// isVolumeBacked is Nova's compute_utils.is_volume_backed_instance as the
// API cell sees it: a server booted from a volume has no image_ref on its
// copy (its boot volume is its attachment with boot index 0).
func isVolumeBacked(in *apidb.Instance) bool { return in.ImageRef == "" }

// errNoRootBDM is Nova's NovaException of a volume-backed instance with no
// root block device mapping (an internal error, 500).
var errNoRootBDM = errors.New("Unable to find root block device mapping for volume-backed instance.")

// bootVolume is the boot volume of a volume-backed server (Nova's
// compute_utils.get_root_bdm and its volume), from the API cell's mirror
// of the volumes: the volume of the attachment with boot index 0.
func bootVolume(ctx context.Context, q db.Querier, in *apidb.Instance) (*voldb.Volume, error) {
	byInstance, err := voldb.AttachmentsByInstances(ctx, q, []string{in.UUID})
	if err != nil {
		return nil, err
	}
	for _, a := range byInstance[in.UUID] {
		if a.IsRoot() {
			return voldb.Get(ctx, q, a.VolumeID)
		}
	}
	return nil, errNoRootBDM
}

// checkRescueVolumeBacked is the part of Nova's API.rescue that concerns a
// volume-backed server, after its lock and state are checked: below 2.87
// it cannot be rescued; from 2.87 only when the rescue image (rescueRef,
// or with none the image metadata of its root volume, Nova's
// instance.image_meta) has the hw_rescue_bus and hw_rescue_device
// properties. Every host here counts as having COMPUTE_RESCUE_BFV (the
// drivers rescue any instance). A rescue image that cannot be read, or
// is a volume-backed server's snapshot (img_block_device_mapping), is Nova's
// UnsupportedRescueImage. Every refusal is a 400.
func checkRescueVolumeBacked(ctx context.Context, q db.Querier, in *apidb.Instance, rescueRef string, allowBFV bool) error {
	var props map[string]string
	if rescueRef != "" {
		c := httpkit.CallerFrom(ctx)
		img, err := (&imagedb.Store{}).GetWithProperties(ctx, q, rescueRef)
		if errors.Is(err, imagedb.ErrNotFound) || (err == nil && !img.VisibleTo(c.ProjectID, c.Admin)) {
			return bad("Requested rescue image '%s' is not supported", rescueRef)
		}
		if err != nil {
			return err
		}
		// Nova's ImageMetaProps reads the legacy block_device_mapping
		// property as img_block_device_mapping.
		if img.Properties["img_block_device_mapping"] != "" || img.Properties["block_device_mapping"] != "" {
			return bad("Requested rescue image '%s' is not supported", rescueRef)
		}
		props = img.Properties
	} else {
		vol, err := bootVolume(ctx, q, in)
		if err != nil {
			return err
		}
		props = vol.ImageMetadata
	}
	if err := checkVolumesInUseConflict(ctx, q, in); err != nil {
		return err
	}
	_, bus := props["hw_rescue_bus"]
	_, dev := props["hw_rescue_device"]
	if allowBFV && bus && dev {
		return nil
	}
	return bad("Instance %s cannot be rescued: Cannot rescue a volume-backed instance", in.UUID)
}

// checkVolumesInUse is Nova's _check_volume_status (rebuild, rescue):
// every volume attached to the server must be in-use. A volume that is not
// gives InvalidVolume's text as invalid (rebuild answers it 400, rescue
// 409); err is a failure to read.
func checkVolumesInUse(ctx context.Context, q db.Querier, in *apidb.Instance) (invalid string, err error) {
	byInstance, err := voldb.AttachmentsByInstances(ctx, q, []string{in.UUID})
	if err != nil {
		return "", err
	}
	for _, a := range byInstance[in.UUID] {
		v, err := voldb.Get(ctx, q, a.VolumeID)
		if err != nil {
			return "", err
		}
		if v.Status != voldb.StatusInUse {
			return fmt.Sprintf("Invalid volume: volume '%s' status must be 'in-use'. Currently in '%s' status", v.ID, v.Status), nil
		}
	}
	return "", nil
}

// checkVolumesInUseConflict is checkVolumesInUse as rescue answers it: a
// volume not in-use is a 409.
func checkVolumesInUseConflict(ctx context.Context, q db.Querier, in *apidb.Instance) error {
	msg, err := checkVolumesInUse(ctx, q, in)
	if err != nil || msg == "" {
		return err
	}
	return conflict("%s", msg)
}
