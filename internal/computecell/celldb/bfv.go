package celldb

import (
	"context"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Boot from volume (docs/architecture.md §3.11): an instance whose build
// maps its root disk to a volume (the mapping of boot index 0 with a
// volume destination) is volume-backed; its flavor's root disk is the
// volume, in the volume role, not on its host.

// VolumeBacked reports whether the instance boots from a volume (Nova's
// compute_utils.is_volume_backed_instance for a build: the boot device's
// destination is a volume).
func (in *Instance) VolumeBacked() bool {
	for _, b := range in.BlockDevices {
		if b.BootIndex == 0 && b.DestinationType == "volume" {
			return true
		}
	}
	return false
}

// VolumeMappings are the instance's mappings to volumes.
func (in *Instance) VolumeMappings() []wire.BlockDevice {
	var out []wire.BlockDevice
	for _, b := range in.BlockDevices {
		if b.DestinationType == "volume" {
			out = append(out, b)
		}
	}
	return out
}

// Need is what the instance asks of a host: its flavor's, without the
// root disk for a volume-backed instance (Nova's scheduler utils
// resources_from_request_spec: is_bfv, the root disk is not claimed).
func (in *Instance) Need() capacity.Flavor {
	f := in.Flavor.Need()
	if in.VolumeBacked() {
		f.DiskGB = max(f.DiskGB-in.Flavor.RootGB, 0)
	}
	return f
}

// BootAttachmentsToStart lists the attachments in status attaching with
// no host work pending (those a build records before its spawn) of live
// instances that are active with no task, oldest first.
func BootAttachmentsToStart(ctx context.Context, q Querier, limit int) ([]*VolumeAttachment, error) {
	// Driven by the attachments (few), each instance found by its key.
	return db.Collect(ctx, q, scanAttachment, `SELECT `+attachmentCols+` FROM volume_attachments
		WHERE deleted = 0 AND attach_status = 'attaching' AND pending = '' AND `+hasBDM+` AND EXISTS
		(SELECT 1 FROM instances i WHERE i.uuid = volume_attachments.instance_uuid AND i.deleted = 0 AND i.vm_state = ? AND i.task_state = '')
		ORDER BY id LIMIT ?`, VMActive, limit)
}

// BuildVolumes is how the volumes of a build stand (volume.Manager.BuildVolumes).
type BuildVolumes struct {
	// Prepared: the build's mappings are recorded (the volume role's PrepareBuild ran).
	Prepared bool
	// Ready: every volume is made (none creating).
	Ready bool
	// Failed is a volume that could not be made ("" none), in status
	// FailedStatus; Since is when the build began to wait for it.
	Failed       string
	FailedStatus string
	Since        time.Time
}

// Fault is Nova's fault of a build whose volume was not made
// (_await_block_device_map_created's VolumeNotCreated, as the build's
// abort reports it), after attempts checks, at now.
func (s BuildVolumes) Fault(instanceUUID string, now time.Time, attempts int) string {
	return fmt.Sprintf("Build of instance %s aborted: Volume %s did not finish being created even after we waited %d seconds or %d attempts. And its status is %s.",
		instanceUUID, s.Failed, int(now.Sub(s.Since).Seconds()), attempts, s.FailedStatus)
}
