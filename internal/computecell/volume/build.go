package volume

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Boot from volume (docs/architecture.md §3.1, §3.11; the boot from volume
// contract). The conductor, once it has a host for an instance whose build
// maps volumes, has the manager, in its transaction:
//
//   - PrepareBuild: make the new volumes (rows in status creating with
//     their creation pending, for the worker: blank, from the image, from
//     a snapshot of this cell), take the existing ones (available, not
//     attached: attaching), and record the instance's block device
//     mappings and the volumes' attachments (attaching, no host work yet:
//     the instance has no VM). The boot volume is /dev/vda.
//   - BuildVolumes: tell whether the new volumes are made (the conductor
//     polls it while the instance waits in block_device_mapping), or one
//     failed.
//
// After the spawn the instance is active: the worker's poll finds its
// attachments still waiting for their host work (startBootAttachments)
// and asks for it, so the host attaches each volume (the boot volume at
// /dev/vda) and the volumes become in-use, sent up with their
// attachments. Every step is a row: a process that stops between two
// finds it where it stopped.

// PrepareBuild makes, in tx, the new volumes of the instance's build and
// records its mappings and their attachments (see above). It does nothing
// for an instance whose mappings are recorded already (a repeat after a
// restart). A mapping the cell cannot honour (an existing volume missing,
// attached or not available; a mapping without its ids) is an error with
// code invalid and Nova's or Cinder's message, which fails the build.
func (m *Manager) PrepareBuild(ctx context.Context, tx *db.Tx, in *celldb.Instance, requestID string) error {
	bdms, err := celldb.InstanceBDMs(ctx, tx, in.UUID)
	if err != nil || len(bdms) > 0 {
		return err
	}
	log := m.log.With("request_id", requestID, "instance", in.UUID)
	maps := in.VolumeMappings()
	// The boot volume first: it takes the root device.
	slices.SortStableFunc(maps, func(a, b wire.BlockDevice) int {
		return boolRank(a.BootIndex == 0) - boolRank(b.BootIndex == 0)
	})
	used := []string{rootDevice}
	now := m.cfg.Now()
	made := 0
	for _, b := range maps {
		if !backend.ValidID(b.VolumeID) || b.AttachmentID == "" || b.UUID == "" {
			return wire.Errorf(wire.CodeInvalid, "Block Device Mapping is Invalid: mapping %q of volume %q has no attachment.", b.UUID, b.VolumeID)
		}
		device := rootDevice
		if b.BootIndex != 0 {
			d, reason := nextDevice(used, validDevice(b.DeviceName), m.cfg.MaxDiskDevices)
			if reason == wire.AttachReasonDeviceInUse {
				d, reason = nextDevice(used, "", m.cfg.MaxDiskDevices)
			}
			if reason != "" {
				return wire.Errorf(wire.CodeInvalid, "The maximum allowed number of disk devices (%d) to attach to a single instance has been exceeded.", m.cfg.MaxDiskDevices)
			}
			device = d
			used = append(used, d)
		}
		var v *celldb.Volume
		if b.New {
			if v, err = m.newBuildVolume(ctx, tx, in, b, requestID, now); err != nil {
				return err
			}
			made++
		} else if v, err = m.takeBuildVolume(ctx, tx, b); err != nil {
			return err
		}
		boot := b.BootIndex
		if boot < 0 {
			boot = -1
		}
		size := b.VolumeSize
		if size == 0 {
			size = v.SizeGB
		}
		if err := celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: b.UUID, InstanceUUID: in.UUID, VolumeID: v.ID,
			AttachmentID: b.AttachmentID, DeviceName: device, BootIndex: boot, SourceType: b.SourceType,
			DestinationType: b.DestinationType, DeleteOnTermination: b.DeleteOnTermination, Tag: b.Tag,
			VolumeSize: size, VolumeType: b.VolumeType, ImageID: b.ImageID, SnapshotID: b.SnapshotID, CreatedAt: now}); err != nil {
			return err
		}
		if err := celldb.InsertAttachment(ctx, tx, &celldb.VolumeAttachment{ID: b.AttachmentID, VolumeID: v.ID,
			InstanceUUID: in.UUID, Status: attachAttaching, Mode: "rw", Mountpoint: device, RequestID: requestID}); err != nil {
			return err
		}
		if err := m.sendVolume(ctx, tx, requestID, v); err != nil {
			return err
		}
		log.Info("volume mapped for the build", "volume", v.ID, "device", device, "new", b.New, "status", v.Status)
	}
	if made > 0 {
		m.roomChanged(tx)
		tx.AfterCommit(m.Wake)
	}
	return nil
}

// newBuildVolume inserts a volume the build makes (status creating, its
// creation pending; from a snapshot that cannot be copied: error), or
// returns it when the cell has it.
func (m *Manager) newBuildVolume(ctx context.Context, tx *db.Tx, in *celldb.Instance, b wire.BlockDevice, requestID string, now time.Time) (*celldb.Volume, error) {
	if v, err := celldb.GetVolumeForUpdate(ctx, tx, b.VolumeID); err == nil {
		return v, nil
	} else if !errors.Is(err, celldb.ErrVolumeNotFound) {
		return nil, err
	}
	if b.VolumeSize < 1 || b.VolumeSize > backend.MaxSizeGiB {
		return nil, wire.Errorf(wire.CodeInvalid, "Block Device Mapping is Invalid: invalid volume_size %d for volume %s.", b.VolumeSize, b.VolumeID)
	}
	v := &celldb.Volume{ID: b.VolumeID, ProjectID: in.ProjectID, UserID: in.UserID, SizeGB: b.VolumeSize,
		Status: statusCreating, Version: 1, TypeID: b.VolumeTypeID, TypeName: b.VolumeType, AvailabilityZone: m.cfg.Zone,
		Action: pendingCreate, RequestID: requestID, CreatedAt: now, UpdatedAt: now}
	switch b.SourceType {
	case "image":
		v.ImageID, v.ImageSize = b.ImageID, b.ImageSize
	case "snapshot":
		v.SnapshotID = b.SnapshotID
	}
	fault, err := m.checkSource(ctx, tx, wire.VolumeSpec{ID: v.ID, SizeGB: v.SizeGB, SnapshotID: v.SnapshotID})
	if err != nil {
		return nil, err
	}
	if fault != "" {
		v.Status, v.Action, v.Fault = statusError, "", fault
	}
	if _, err := celldb.InsertVolume(ctx, tx, v); err != nil {
		return nil, err
	}
	return v, nil
}

// takeBuildVolume sets an existing volume of the build attaching: it must
// be in the cell, available and not attached.
func (m *Manager) takeBuildVolume(ctx context.Context, tx *db.Tx, b wire.BlockDevice) (*celldb.Volume, error) {
	v, err := celldb.GetVolumeForUpdate(ctx, tx, b.VolumeID)
	switch {
	case errors.Is(err, celldb.ErrVolumeNotFound):
		return nil, wire.Errorf(wire.CodeInvalid, "Volume %s could not be found.", b.VolumeID)
	case err != nil:
		return nil, err
	case v.Deleted:
		return nil, wire.Errorf(wire.CodeInvalid, "Volume %s could not be found.", b.VolumeID)
	}
	atts, err := celldb.VolumeAttachments(ctx, tx, v.ID)
	if err != nil {
		return nil, err
	}
	if len(atts) > 0 || v.Status != statusAvailable || v.Action != "" {
		return nil, wire.Errorf(wire.CodeInvalid, "Invalid volume: Volume %s status must be available to reserve, but the current status is %s.",
			v.ID, v.Status)
	}
	return celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{Status: ptr(statusAttaching)}, m.cfg.Now())
}

// BuildVolumes tells how the volumes of the instance's build stand, as q
// has them.
func (m *Manager) BuildVolumes(ctx context.Context, q db.Querier, instanceUUID string) (celldb.BuildVolumes, error) {
	var st celldb.BuildVolumes
	bdms, err := celldb.InstanceBDMs(ctx, q, instanceUUID)
	if err != nil || len(bdms) == 0 {
		return st, err
	}
	st.Prepared, st.Ready = true, true
	for _, b := range bdms {
		if b.VolumeID == "" {
			continue
		}
		if st.Since.IsZero() || b.CreatedAt.Before(st.Since) {
			st.Since = b.CreatedAt
		}
		v, err := celldb.GetVolume(ctx, q, b.VolumeID)
		if errors.Is(err, celldb.ErrVolumeNotFound) {
			st.Ready, st.Failed, st.FailedStatus = false, b.VolumeID, statusDeleted
			return st, nil
		}
		if err != nil {
			return st, err
		}
		switch {
		case v.Deleted:
			st.Ready, st.Failed, st.FailedStatus = false, v.ID, statusDeleted
			return st, nil
		case v.Status == statusCreating || v.Action == pendingCreate:
			st.Ready = false
		case v.Status != statusAvailable && v.Status != statusAttaching && v.Status != statusInUse:
			st.Ready, st.Failed, st.FailedStatus = false, v.ID, v.Status
			return st, nil
		}
	}
	return st, nil
}

// startBootAttachments asks for the host work of the attachments that
// builds recorded, once their instances are active: each becomes an
// attach pending for the worker (the volume attaching, sent up).
func (m *Manager) startBootAttachments(ctx context.Context) {
	atts, err := celldb.BootAttachmentsToStart(ctx, m.cfg.DB, pollLimit)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Error("reading the attachments of builds", "err", err)
		}
		return
	}
	for _, a := range atts {
		err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			if _, err := celldb.GetVolumeForUpdate(ctx, tx, a.VolumeID); err != nil {
				return err
			}
			none := ""
			_, err := celldb.UpdateAttachment(ctx, tx, a.ID, &none, a.RequestID, celldb.AttachmentChange{
				Pending: ptr(pendingAttach), RequestID: a.RequestID})
			if errors.Is(err, wire.ErrConflict) {
				return nil // the instance's delete took it meanwhile
			}
			if err != nil {
				return err
			}
			nv, err := celldb.UpdateVolume(ctx, tx, a.VolumeID, nil, celldb.VolumeChange{Status: ptr(statusAttaching)}, m.cfg.Now())
			if err != nil {
				return err
			}
			return m.sendVolume(ctx, tx, a.RequestID, nv)
		})
		if err != nil {
			if ctx.Err() == nil {
				m.log.Error("asking for the host work of a build's attachment", "request_id", a.RequestID,
					"instance", a.InstanceUUID, "volume", a.VolumeID, "err", err)
			}
			return
		}
		m.log.Info("build's volume to attach on the host", "request_id", a.RequestID, "instance", a.InstanceUUID,
			"volume", a.VolumeID, "device", a.Mountpoint)
	}
}

// validDevice is the device asked for when it is one ("" otherwise: the
// next free one is taken).
func validDevice(d string) string {
	if d != "" && deviceRE.MatchString(d) {
		return d
	}
	return ""
}

func boolRank(b bool) int {
	if b {
		return 0
	}
	return 1
}

// attachmentStatus reports whether a volume's status is its attachments'
// (Cinder's attach and detach statuses, and available).
func attachmentStatus(status string) bool {
	switch status {
	case statusAvailable, statusInUse, statusAttaching, statusDetaching, statusReserved:
		return true
	}
	return false
}

// ForgetBuild gives back, in tx, what the API cell took for a build that
// ends (fails or is deleted) before its volumes were made here
// (PrepareBuild never ran: no mapping recorded): each new volume, whose
// copy the API cell holds in status creating, is sent as deleted at
// version 1 (the cell never had it; a deletion is final), and each
// existing volume is sent as it is at a new version (its copy's reserved
// status goes). A build whose mappings are recorded keeps them: its
// delete takes them (InstanceGone).
func (m *Manager) ForgetBuild(ctx context.Context, tx *db.Tx, in *celldb.Instance, requestID string) error {
	bdms, err := celldb.InstanceBDMs(ctx, tx, in.UUID)
	if err != nil || len(bdms) > 0 {
		return err
	}
	now := m.cfg.Now()
	for _, b := range in.VolumeMappings() {
		if !backend.ValidID(b.VolumeID) {
			continue
		}
		v, err := celldb.GetVolumeForUpdate(ctx, tx, b.VolumeID)
		switch {
		case errors.Is(err, celldb.ErrVolumeNotFound):
			if !b.New {
				continue
			}
			if err := m.send(ctx, tx, requestID, &wire.VolumeUpdate{Volumes: []wire.VolumeState{{ID: b.VolumeID,
				Cell: m.cfg.Cell, Version: 1, Status: statusDeleted, Deleted: true, UpdatedAt: now}}}); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			nv, err := celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{}, now)
			if err != nil {
				return err
			}
			if err := m.sendVolume(ctx, tx, requestID, nv); err != nil {
				return err
			}
		}
		m.log.Info("volume of a build that ended before its volumes were made given back", "request_id", requestID,
			"instance", in.UUID, "volume", b.VolumeID, "new", b.New)
	}
	return nil
}
