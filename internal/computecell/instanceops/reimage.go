package instanceops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// BootVolumes re-images a volume-backed instance's boot volume: the cell's
// volume role (volume.Manager's ReimageBoot and BootReimage).
type BootVolumes interface {
	ReimageBoot(ctx context.Context, tx *db.Tx, r volume.ReimageRequest) error
	BootReimage(ctx context.Context, q celldb.Querier, instanceUUID, requestID string) (volume.ReimageStatus, error)
}

// The task states of a rebuild after rebuilding (Nova's).
const (
	taskRebuildBDM      = "rebuild_block_device_mapping"
	taskRebuildSpawning = "rebuild_spawning"
)

// rebuildVolumeBacked is the rebuild of a volume-backed instance at
// compute API 2.93 (ActionParams.Reimage), as Nova's
// _rebuild_default_impl with reimage_boot_volume: in task state
// rebuilding the instance is powered off and its volumes detached from
// its host (their attachments stay: Nova keeps the boot volume reserved
// for the instance), its boot volume is re-imaged by the volume role
// (downloading) and waited for; then rebuild_block_device_mapping (the
// volumes attached on the host again), rebuild_spawning (the spawn), and
// ACTIVE; the instance keeps no image_ref. Nova re-images whether or not
// the image changes.
//
// A re-image refused or failed leaves the instance as Nova's manager
// does (BuildAbortException under _error_out_instance_on_exception):
// ERROR, no task state, the fault "Build of instance … aborted: Failed
// to rebuild volume backed instance.", the action's event in error; the
// volume as Cinder leaves it (error after a failed copy; as it was after
// a refusal).
//
// Restarts: the action stays pending on the instance and runs again from
// the task state it reached. In rebuilding, the request for the re-image
// is a repeat (the volume's row records the request), so it only waits
// again — for a copy the volume role resumes from its start if the
// process died mid-copy; past rebuilding, the re-image is done and the
// host work (attach, spawn) is done again, which changes nothing on a
// host that did it.
func (o *Ops) rebuildVolumeBacked(ctx context.Context, in *celldb.Instance, p celldb.Pending, rp wire.ActionParams, log *slog.Logger) error {
	rebuilding := vmstate.Actions["rebuild"].Task
	task := in.TaskState
	if task == rebuilding {
		if o.cfg.BootVolumes == nil {
			return o.reimageFailed(ctx, in, task, fmt.Errorf("cell %s has no volume service", o.cfg.Cell), log)
		}
		if err := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "power_off"); err != nil {
			return err
		}
		if err := o.detachVolumes(ctx, in.Host, in.UUID, log); err != nil {
			return err
		}
		req := volume.ReimageRequest{InstanceUUID: in.UUID, ImageID: rp.ImageRef, ImageSize: rp.Reimage.Size,
			ImageMinDisk: rp.Reimage.MinDisk, ImageMetadata: rp.Reimage.Metadata, RequestID: p.RequestID}
		err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return o.cfg.BootVolumes.ReimageBoot(ctx, tx, req) })
		var we *wire.Error
		if errors.As(err, &we) && we.Code == wire.CodeInvalid {
			return o.reimageFailed(ctx, in, task, err, log)
		}
		if err != nil {
			return err
		}
		log.Info("waiting for the boot volume's re-image", "image", rp.ImageRef)
		if err := o.awaitReimage(ctx, in, p.RequestID); err != nil {
			var rf reimageFault
			if errors.As(err, &rf) {
				return o.reimageFailed(ctx, in, task, err, log)
			}
			return err
		}
		if err := o.step(ctx, in.UUID, task, taskRebuildBDM); err != nil {
			return err
		}
		task = taskRebuildBDM
	}
	if task == taskRebuildBDM {
		if err := o.attachVolumes(ctx, in.Host, in.UUID, log); err != nil {
			return err
		}
		if err := o.step(ctx, in.UUID, task, taskRebuildSpawning); err != nil {
			return err
		}
		task = taskRebuildSpawning
	}
	if task != taskRebuildSpawning {
		return fmt.Errorf("rebuild of %s in task state %q: %w", in.UUID, task, wire.ErrConflict)
	}
	if err := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "rebuild"); err != nil {
		return err
	}
	vm, power := vmstate.Active, vmstate.Running
	return o.finish(ctx, in.UUID, task, celldb.Change{VMState: &vm, PowerState: &power}, nil)
}

// step moves the instance's task state from one to the next, sent up.
func (o *Ops) step(ctx context.Context, uuid, from, to string) error {
	return o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		_, err := o.state.Transition(ctx, tx, uuid, &from, celldb.Change{TaskState: &to})
		return err
	})
}

// reimageFault is a re-image that ended in failure.
type reimageFault string

func (f reimageFault) Error() string { return string(f) }

// awaitReimage polls the volume role until the re-image ends.
func (o *Ops) awaitReimage(ctx context.Context, in *celldb.Instance, requestID string) error {
	t := time.NewTicker(o.cfg.PollInterval)
	defer t.Stop()
	for {
		st, err := o.cfg.BootVolumes.BootReimage(ctx, o.cfg.DB, in.UUID, requestID)
		var we *wire.Error
		switch {
		case errors.As(err, &we) && we.Code == wire.CodeInvalid:
			return reimageFault(we.Message)
		case err != nil:
			return err
		case st.Done && st.Fault != "":
			return reimageFault(st.Fault)
		case st.Done:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// reimageFailed ends the rebuild as Nova's manager does when the boot
// volume could not be re-imaged: ERROR with its fault. It returns the
// failure, for the action's event.
func (o *Ops) reimageFailed(ctx context.Context, in *celldb.Instance, task string, why error, log *slog.Logger) error {
	log.Warn("re-imaging the boot volume failed", "err", why)
	vm, power := vmstate.Error, vmstate.Shutdown
	f := &wire.Fault{Code: 500, Message: fmt.Sprintf("Build of instance %s aborted: Failed to rebuild volume backed instance.", in.UUID),
		Details: why.Error(), Created: o.cfg.Now()}
	if err := o.finish(ctx, in.UUID, task, celldb.Change{VMState: &vm, PowerState: &power, Fault: f}, nil); err != nil {
		return errors.Join(why, err)
	}
	return fmt.Errorf("rebuild of volume-backed instance %s: %w", in.UUID, why)
}
