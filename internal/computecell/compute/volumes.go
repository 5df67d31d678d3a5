package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// An instance's volumes are disks of its VM on the host it runs on. The
// volume manager attaches and detaches them as they are asked for
// (AttachVolume, DetachVolume); the compute agent attaches them again
// when it puts the VM on a host anew: a spawn of an instance that has
// attached volumes already (an unshelve of an offloaded instance), and a
// restart's restore of the copy where the instance runs (not the source
// copy a resize keeps, whose volumes the resize detached). The cell's
// rows say which: the attachments attached (or being detached) with
// their devices and the backing recorded by the volume manager.

// attachInstanceVolumes attaches on host the volumes the instance holds
// by the cell's rows. An attachment with no backing recorded yet (one
// made before celldb migration 14, until the volume manager records it)
// is left out, with a warning. Attaching a disk the VM has already does
// nothing.
func (s *Service) attachInstanceVolumes(ctx context.Context, host, uuid string, log *slog.Logger) error {
	atts, err := celldb.HostAttachments(ctx, s.cfg.DB, uuid)
	if err != nil || len(atts) == 0 {
		return err
	}
	va, ok := s.cfg.Driver.(virt.VolumeAttacher)
	if !ok {
		log.Warn("the driver cannot attach volumes: the instance's volumes are not attached", "volumes", len(atts))
		return nil
	}
	var errs []error
	for _, a := range atts {
		if a.Backing == "" {
			log.Warn("volume with no backing recorded: not attached", "volume", a.VolumeID, "device", a.Mountpoint)
			continue
		}
		if err := va.AttachVolume(ctx, host, uuid, a.Mountpoint, a.Backing); err != nil {
			errs = append(errs, fmt.Errorf("attach volume %s at %s: %w", a.VolumeID, a.Mountpoint, err))
			continue
		}
		log.Info("volume attached", "volume", a.VolumeID, "device", a.Mountpoint)
	}
	return errors.Join(errs...)
}

// restoreVolumes attaches the volumes of a restored copy when it is the
// one the instance runs on.
func (s *Service) restoreVolumes(ctx context.Context, k vmKey) {
	log := s.log.With("instance", k.uuid, "host", k.host)
	in, err := celldb.Get(ctx, s.cfg.DB, k.uuid)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("reading a restored instance for its volumes", "err", err)
		}
		return
	}
	if in.Host != k.host {
		return // a resize's source copy: its volumes are on the destination
	}
	if err := s.attachInstanceVolumes(ctx, k.host, k.uuid, log.With("request_id", in.RequestID)); err != nil && ctx.Err() == nil {
		log.Warn("attaching the volumes of a restored instance", "err", err)
	}
}

// A build that maps volumes (boot from volume) has its attachments
// recorded, attaching, before the spawn (the volume role's PrepareBuild,
// with their backing). As Nova's _prep_block_device, the spawn attaches
// them on the host before the instance is active (attachBuildVolumes),
// and the transaction that makes it active makes them attached and
// their volumes in-use, sent up with the instance (bootAttached): a
// client that sees the server ACTIVE sees its volumes in-use. An
// attachment with no backing recorded is left to the volume role, which
// attaches the rest of a build's attachments once the instance is active.

// attachBuildVolumes attaches on host the volumes the instance's build
// recorded, and returns the attachments it attached.
func (s *Service) attachBuildVolumes(ctx context.Context, host, uuid string, log *slog.Logger) ([]*celldb.VolumeAttachment, error) {
	atts, err := celldb.BuildAttachments(ctx, s.cfg.DB, uuid)
	if err != nil || len(atts) == 0 {
		return nil, err
	}
	va, ok := s.cfg.Driver.(virt.VolumeAttacher)
	if !ok {
		return nil, nil
	}
	var done []*celldb.VolumeAttachment
	for _, a := range atts {
		if a.Backing == "" {
			continue
		}
		if err := va.AttachVolume(ctx, host, uuid, a.Mountpoint, a.Backing); err != nil {
			return nil, fmt.Errorf("attach volume %s at %s: %w", a.VolumeID, a.Mountpoint, err)
		}
		log.Info("build's volume attached", "volume", a.VolumeID, "device", a.Mountpoint)
		done = append(done, a)
	}
	return done, nil
}

// bootAttached records in tx that the attachments atts are attached (each
// still as the build recorded it: one the instance's delete or the volume
// role took meanwhile is left), their volumes in-use at a new version,
// and sends each volume's state up.
func (s *Service) bootAttached(ctx context.Context, tx *db.Tx, requestID string, atts []*celldb.VolumeAttachment, now time.Time) error {
	none, attached, inUse := "", "attached", "in-use"
	for _, a := range atts {
		// The volume's row first, as the volume role takes it.
		if _, err := celldb.GetVolumeForUpdate(ctx, tx, a.VolumeID); err != nil {
			return err
		}
		if _, err := celldb.UpdateAttachment(ctx, tx, a.ID, &none, a.RequestID, celldb.AttachmentChange{Status: &attached,
			AttachedAt: &now}); errors.Is(err, wire.ErrConflict) {
			continue
		} else if err != nil {
			return err
		}
		v, err := celldb.UpdateVolume(ctx, tx, a.VolumeID, nil, celldb.VolumeChange{Status: &inUse}, now)
		if err != nil {
			return err
		}
		st := v.State(s.cfg.Cell)
		states, err := celldb.AttachmentStates(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		st.Attachments = states[v.ID]
		if err := s.cfg.Sender.Send(ctx, tx, cellpath.Root(s.cfg.Cell), wire.MethodVolumeUpdate, requestID,
			&wire.VolumeUpdate{Volumes: []wire.VolumeState{st}}); err != nil {
			return err
		}
	}
	return nil
}
