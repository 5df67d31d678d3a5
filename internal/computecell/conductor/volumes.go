package conductor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/instancestate"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Boot from volume (docs/architecture.md §3.1, §3.11). An instance whose
// build maps volumes (wire.InstanceSpec.BlockDevices, kept in its build
// context) has, once its host is claimed and its network allocated, in one
// transaction, its new volumes made by the cell's volume role and its
// mappings and attachments recorded (Volumes.PrepareBuild), and waits in
// task state block_device_mapping, holding its claim, until every volume
// is made; the work loop looks at it every round (awaitVolumes). Then it
// is spawned; the volume role has the host attach its volumes once it is
// active. A volume that could not be made puts the instance in ERROR with
// Nova's fault; its mappings stay (its delete takes them).
//
// A volume-backed instance claims no root disk on its host
// (celldb.Instance.Need). A build with volumes in this cell (an existing
// volume, or new ones made already) is never handed back to another cell:
// when no host here has room it fails (failPinned).
//
// Restarts: the mappings are the record. An instance caught before the
// prepare commits is placed again and prepares then; one waiting in
// block_device_mapping is found by the next round; one caught in its spawn
// is placed again (recover) and finds its mappings made.

// prepareVolumes has the instance's volumes made and its mappings recorded
// (unless they are already), then tells whether they are ready for the
// spawn; when not, progress is what build reports.
func (c *Conductor) prepareVolumes(ctx context.Context, log *slog.Logger, in *celldb.Instance) (ready, progress bool) {
	if c.cfg.Volumes == nil {
		c.fail(ctx, log, in, 500, fmt.Sprintf("Build of instance %s aborted: Block Device Mapping is Invalid: cell %s has no volume service.",
			in.UUID, c.cfg.Cell))
		return false, true
	}
	bdm := celldb.TaskBlockDeviceMapping
	err := c.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if err := c.cfg.Volumes.PrepareBuild(ctx, tx, in, in.RequestID); err != nil {
			return err
		}
		// Placed: its task state is networking (instancestate.Place). The
		// API cell shows the wait (Nova's task state), so it is sent up.
		_, err := c.state.Transition(ctx, tx, in.UUID, instancestate.Task(celldb.TaskNetworking), celldb.Change{TaskState: &bdm})
		return err
	})
	var we *wire.Error
	switch {
	case err == nil:
		in.TaskState = bdm
	case errors.As(err, &we) && we.Code == wire.CodeInvalid:
		c.fail(ctx, log, in, 500, fmt.Sprintf("Build of instance %s aborted: %s", in.UUID, we.Message))
		return false, true
	case errors.Is(err, wire.ErrConflict):
		log.Info("instance moved on (deleted?) before its volumes were made")
		return false, true
	default:
		if ctx.Err() == nil {
			log.Error("making the build's volumes; will retry", "err", err)
		}
		return false, false
	}
	log.Info("waiting for the build's volumes")
	return c.checkVolumes(ctx, log, in)
}

// checkVolumes tells whether the instance's volumes are made; one that
// failed fails the build.
func (c *Conductor) checkVolumes(ctx context.Context, log *slog.Logger, in *celldb.Instance) (ready, progress bool) {
	st, err := c.cfg.Volumes.BuildVolumes(ctx, c.cfg.DB, in.UUID)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			log.Error("reading the build's volumes", "err", err)
		}
		return false, false
	case st.Failed != "":
		now := c.cfg.Now()
		attempts := 1 + int(now.Sub(st.Since)/c.cfg.PollInterval)
		c.fail(ctx, log, in, 500, st.Fault(in.UUID, now, max(attempts, 1)))
		return false, true
	case !st.Prepared:
		// Its mappings are gone: the instance was deleted meanwhile.
		return false, true
	}
	return st.Ready, false
}

// awaitVolumes spawns the instances whose volumes are made, and fails
// those one of whose volumes could not be made.
func (c *Conductor) awaitVolumes(ctx context.Context) {
	if c.cfg.Volumes == nil {
		return
	}
	insts, err := celldb.ListByTask(ctx, c.cfg.DB, celldb.TaskBlockDeviceMapping, 1000)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("reading instances waiting for volumes", "err", err)
		}
		return
	}
	for _, in := range insts {
		if !c.pool.Take(in.UUID) {
			continue
		}
		if !c.pool.Go(ctx, in.UUID, func(ctx context.Context) bool {
			log := c.log.With("request_id", in.RequestID, "instance", in.UUID)
			ready, progress := c.checkVolumes(ctx, log, in)
			if !ready {
				return progress
			}
			log.Info("the build's volumes are made: spawning", "host", in.Host)
			return c.spawn(ctx, log, in, in.Host, nil)
		}) {
			return
		}
	}
}

// failPinned fails, instead of handing back, the instances of insts whose
// build has volumes in this cell (an existing volume, or mappings made
// here), and returns the others.
func (c *Conductor) failPinned(ctx context.Context, log *slog.Logger, insts []*celldb.Instance, why error) []*celldb.Instance {
	var rest []*celldb.Instance
	for _, in := range insts {
		pinned, err := c.pinned(ctx, in)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("reading the build's volumes", "instance", in.UUID, "err", err)
			}
			c.pool.Release(in.UUID)
			continue
		}
		if !pinned {
			rest = append(rest, in)
			continue
		}
		log.Warn("no host for a build whose volumes are in this cell: it fails here", "instance", in.UUID, "reason", why)
		c.fail(ctx, log.With("instance", in.UUID), in, 500, fmt.Sprintf("No valid host was found. %v", why))
		c.pool.Done(in.UUID)
	}
	return rest
}

// pinned reports whether the instance's build has volumes in this cell.
func (c *Conductor) pinned(ctx context.Context, in *celldb.Instance) (bool, error) {
	maps := in.VolumeMappings()
	for _, b := range maps {
		if !b.New {
			return true, nil
		}
	}
	if len(maps) == 0 || c.cfg.Volumes == nil {
		return false, nil
	}
	st, err := c.cfg.Volumes.BuildVolumes(ctx, c.cfg.DB, in.UUID)
	return st.Prepared, err
}

// forgetVolumes gives back, in tx, what the API cell took for the volumes
// of a build that ends (fails, or is deleted) before they were made here:
// the volume role's ForgetBuild; a cell without one sends each new
// volume as deleted at version 1 itself (it never had it).
func (c *Conductor) forgetVolumes(ctx context.Context, tx *db.Tx, in *celldb.Instance, requestID string) error {
	maps := in.VolumeMappings()
	if len(maps) == 0 {
		return nil
	}
	if c.cfg.Volumes != nil {
		return c.cfg.Volumes.ForgetBuild(ctx, tx, in, requestID)
	}
	var u wire.VolumeUpdate
	for _, b := range maps {
		if b.New && b.VolumeID != "" {
			u.Volumes = append(u.Volumes, wire.VolumeState{ID: b.VolumeID, Cell: c.cfg.Cell, Version: 1,
				Status: "deleted", Deleted: true, UpdatedAt: c.cfg.Now()})
		}
	}
	if len(u.Volumes) == 0 {
		return nil
	}
	return c.cfg.Sender.Send(ctx, tx, cellpath.Root(c.cfg.Cell), wire.MethodVolumeUpdate, requestID, &u)
}
