package instanceops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
)

// A server's volumes follow it when it moves (docs/architecture.md §3.4,
// §3.11). Its attachments stay as they are in the cell's rows (the
// volume manager's; Nova keeps them in Cinder, a shelved-offloaded
// server's too); what moves is the hypervisor's side, a disk of the VM
// on the host it runs on:
//
//   - resize and migrate attach them on the destination once its copy is
//     up (a failure there fails the move and takes the copy away), then
//     detach them from the source copy, which stays until confirm or
//     revert;
//   - confirm detaches them from the source copy before it goes;
//   - revert attaches them on the source again before it destroys the
//     destination copy (whose detach comes first);
//   - shelve's offload detaches them before the VM leaves its host;
//   - unshelve of an offloaded server attaches them on the new host in
//     the compute agent's spawn, before it is active (compute.Spawn), and
//     a restarted compute agent attaches them on the copy where the
//     instance runs when it restores it.
//
// The host's attach of a disk it has and detach of one it has not do
// nothing, so a move resumed after a crash does them again safely. A
// detach from a host left that fails is logged: the copy it was on goes
// (confirm, revert) or stays powered off (a resize's source), and the
// move goes on.

// VolumeHosts attaches a volume as a disk of an instance's copy on a host,
// and detaches it (the compute agent's AttachVolume and DetachVolume,
// locally or over the compute role's subject).
type VolumeHosts interface {
	AttachVolume(ctx context.Context, host, uuid, device, path string) error
	DetachVolume(ctx context.Context, host, uuid, device string) error
}

// attachVolumes attaches on host the volumes the instance holds (its
// attachments attached, or being detached) at their devices.
func (o *Ops) attachVolumes(ctx context.Context, host, uuid string, log *slog.Logger) error {
	atts, err := celldb.HostAttachments(ctx, o.cfg.DB, uuid)
	if err != nil || len(atts) == 0 {
		return err
	}
	if o.cfg.Volumes == nil {
		log.Warn("no way to attach volumes on hosts: the instance's volumes are not attached", "host", host, "volumes", len(atts))
		return nil
	}
	for _, a := range atts {
		if a.Backing == "" {
			log.Warn("volume with no backing recorded: not attached", "host", host, "volume", a.VolumeID, "device", a.Mountpoint)
			continue
		}
		if err := o.cfg.Volumes.AttachVolume(ctx, host, uuid, a.Mountpoint, a.Backing); err != nil {
			return fmt.Errorf("attach volume %s at %s on %s: %w", a.VolumeID, a.Mountpoint, host, err)
		}
	}
	log.Info("volumes attached on the host", "host", host, "volumes", len(atts))
	return nil
}

// detachVolumes detaches from host every volume the instance has an
// attachment of (whatever its state: a detach of a disk the VM has not
// is nothing).
func (o *Ops) detachVolumes(ctx context.Context, host, uuid string, log *slog.Logger) error {
	if host == "" {
		return nil
	}
	atts, err := celldb.InstanceAttachments(ctx, o.cfg.DB, uuid)
	if err != nil || len(atts) == 0 {
		return err
	}
	if o.cfg.Volumes == nil {
		log.Warn("no way to detach volumes on hosts: the instance's volumes are left", "host", host, "volumes", len(atts))
		return nil
	}
	var errs []error
	for _, a := range atts {
		if a.Mountpoint == "" {
			continue
		}
		if err := o.cfg.Volumes.DetachVolume(ctx, host, uuid, a.Mountpoint); err != nil {
			errs = append(errs, fmt.Errorf("detach volume %s at %s on %s: %w", a.VolumeID, a.Mountpoint, host, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	log.Info("volumes detached from the host", "host", host, "volumes", len(atts))
	return nil
}

// leaveVolumes is detachVolumes from a host the instance left, whose
// failure is logged and does not stop the move.
func (o *Ops) leaveVolumes(ctx context.Context, host, uuid string, log *slog.Logger) {
	if err := o.detachVolumes(ctx, host, uuid, log); err != nil && ctx.Err() == nil {
		log.Warn("detaching the volumes from the host left failed", "host", host, "err", err)
	}
}
