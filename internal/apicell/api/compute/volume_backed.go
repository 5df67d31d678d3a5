package compute

import (
	"context"
	"errors"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
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
