package instanceops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// Moves are the actions that take or give back room on a host: shelve,
// unshelve, rebuild, resize and cold migration with their confirm and
// revert. They run the same way as the others (a pending action on the
// instance row, carried out by the worker), but the state around the VM
// primitives is kept here.

// VMs are the hypervisor primitives of the cell's hosts.
type VMs interface {
	VMSpawn(ctx context.Context, host, uuid string, f wire.Flavor) error
	VMDestroy(ctx context.Context, host, uuid string) error
	VMOp(ctx context.Context, host, uuid, op string) error
	// Spawn claims room on host and starts the instance there, ending
	// ACTIVE (as a build does).
	Spawn(ctx context.Context, host, uuid string) error
}

// HostScheduler picks hosts.
type HostScheduler interface {
	Select(ctx context.Context, req *hostsched.Request) ([]hostsched.Selection, error)
}

var moves = map[string]func(o *Ops, ctx context.Context, in *celldb.Instance, p celldb.Pending) error{
	"shelve":         (*Ops).shelve,
	"shelve_offload": (*Ops).shelveOffload,
	"unshelve":       (*Ops).unshelve,
	"rebuild":        (*Ops).rebuild,
	"resize":         (*Ops).resize,
	"migrate":        (*Ops).resize,
	"confirm_resize": (*Ops).confirmResize,
	"create_image":   (*Ops).createImage,
	"revert_resize":  (*Ops).revertResize,
}

// finish commits the end of a move: the change (checked against the
// action's task state), the pending action cleared, and the update up.
func (o *Ops) finish(ctx context.Context, uuid, task string, c celldb.Change, extra func(tx *db.Tx) error) error {
	none := ""
	c.TaskState, c.Action = &none, &celldb.PendingAction{}
	return o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if extra != nil {
			if err := extra(tx); err != nil {
				return err
			}
		}
		_, err := o.state.Transition(ctx, tx, uuid, &task, c)
		return err
	})
}

// shelve powers the instance off and snapshots it into the image the API
// cell created (snapshot_done carries the data up), as Nova's
// shelve_instance; it ends SHELVED on its host, or, when the cell offloads
// at once (ShelvedOffloadTime 0), SHELVED_OFFLOADED off it. A failed
// snapshot tells the API cell, which deletes the image, and leaves the
// instance as it was (powered on again if it ran). A shelve without an
// image (from an API cell that names none) offloads without a snapshot.
//
// The new state and snapshot_done go in one transaction: a process that
// dies before it commits finds the action pending and shelves again (a
// second power off and snapshot); a root that is down gets both from the
// outbox later, and a second copy of snapshot_done finds the image no
// longer queued and changes nothing. A process that dies between a failed
// snapshot's snapshot_done and the end of the action shelves again: if
// the snapshot then succeeds its data finds the image deleted, and the
// server is shelved without an image (unshelve boots it all the same).
func (o *Ops) shelve(ctx context.Context, in *celldb.Instance, p celldb.Pending) error {
	var ap wire.ActionParams
	if len(p.Params) > 0 {
		if err := json.Unmarshal(p.Params, &ap); err != nil {
			return wire.Errorf(wire.CodeBadMessage, "shelve: %v", err)
		}
	}
	task := vmstate.Actions["shelve"].Task
	log := o.moveLog(in, p)
	if ap.ImageRef == "" {
		return o.offload(ctx, in, task, nil, log)
	}
	if err := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "power_off"); err != nil {
		return err
	}
	if err := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "snapshot"); err != nil {
		if in.PowerState == vmstate.Running {
			if perr := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "power_on"); perr != nil {
				err = errors.Join(err, perr)
			}
		}
		return errors.Join(err, o.snapshotFailed(ctx, in, p, ap.ImageRef))
	}
	done := func(tx *db.Tx) error {
		return o.cfg.Sender.Send(ctx, tx, cellpath.Root(o.cfg.Cell), wire.MethodSnapshotDone, p.RequestID,
			&wire.SnapshotDone{ImageID: ap.ImageRef, UUID: in.UUID, Data: snapshotData(in)})
	}
	if o.cfg.ShelvedOffloadTime == 0 {
		return o.offload(ctx, in, task, done, log)
	}
	vm, power := vmstate.Shelved, vmstate.Shutdown
	return o.finish(ctx, in.UUID, task, celldb.Change{VMState: &vm, PowerState: &power}, done)
}

// shelveOffload takes a SHELVED instance off its host (the shelveOffload
// action, and the offload after ShelvedOffloadTime).
func (o *Ops) shelveOffload(ctx context.Context, in *celldb.Instance, p celldb.Pending) error {
	return o.offload(ctx, in, vmstate.Actions["shelve_offload"].Task, nil, o.moveLog(in, p))
}

// offload removes the instance from its host and gives its claim back:
// SHELVED_OFFLOADED, with no host; extra runs in the same transaction.
// Its volumes are detached from the host first (a failure stops the
// offload, the instance stays where it is); their attachments stay, as
// Nova keeps them in Cinder, and an unshelve attaches them on its new
// host.
func (o *Ops) offload(ctx context.Context, in *celldb.Instance, task string, extra func(tx *db.Tx) error, log *slog.Logger) error {
	if err := o.detachVolumes(ctx, in.Host, in.UUID, log); err != nil {
		return err
	}
	if err := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "shelve"); err != nil {
		return err
	}
	vm, power, noHost := vmstate.ShelvedOffloaded, vmstate.Shutdown, ""
	return o.finish(ctx, in.UUID, task, celldb.Change{VMState: &vm, PowerState: &power, Host: &noHost},
		func(tx *db.Tx) error {
			if extra != nil {
				if err := extra(tx); err != nil {
					return err
				}
			}
			return o.state.Release(ctx, tx, in.UUID)
		})
}

// unshelve powers a SHELVED instance on where it is, or boots an offloaded
// one on a host the scheduler picks, from the shelved image the API cell
// names (the fake driver boots anything; the image is logged). An
// offloaded instance is scheduled in the zone the action names (2.77), or
// its own, among this cell's hosts; with no valid host it stays
// SHELVED_OFFLOADED with its zone unchanged and the action in error.
func (o *Ops) unshelve(ctx context.Context, in *celldb.Instance, p celldb.Pending) error {
	if in.VMState == vmstate.Shelved && in.Host != "" {
		if err := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "power_on"); err != nil {
			return err
		}
		vm, power := vmstate.Active, vmstate.Running
		return o.finish(ctx, in.UUID, vmstate.Actions["unshelve"].Task, celldb.Change{VMState: &vm, PowerState: &power}, nil)
	}
	var ap wire.ActionParams
	if len(p.Params) > 0 {
		if err := json.Unmarshal(p.Params, &ap); err != nil {
			return wire.Errorf(wire.CodeBadMessage, "unshelve: %v", err)
		}
	}
	if ap.ImageMissing {
		return o.unshelveWithoutImage(ctx, in, ap.ImageRef)
	}
	if ap.ImageRef != "" {
		o.log.Info("unshelving from the shelved image", "request_id", p.RequestID, "instance", in.UUID, "image", ap.ImageRef)
	}
	// An unshelve resumed after a restart may hold a claim from its first
	// try: give it back, the scheduler chooses again.
	if err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return o.state.Release(ctx, tx, in.UUID) }); err != nil {
		return err
	}
	// A zone asked for (2.77) replaces the instance's own, among this
	// cell's hosts only: an instance stays in its cell.
	zone := in.AvailabilityZone
	if ap.AvailabilityZone != "" {
		zone = ap.AvailabilityZone
	}
	req := moveRequest(in, in.Flavor)
	req.AvailabilityZone = zone
	sels, err := o.cfg.Scheduler.Select(ctx, req)
	if err != nil {
		// Nova's conductor: no valid host leaves the instance offloaded,
		// its task state cleared (the worker does it), and the action's
		// event in error.
		return fmt.Errorf("%s %w", noValidHost, err)
	}
	if zone != in.AvailabilityZone {
		// The instance's zone is its host's from here on, as Nova's
		// conductor sets it once the scheduler chose; the spawn's update
		// carries it up.
		task := vmstate.Actions["unshelve"].Task
		if err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			return o.state.Step(ctx, tx, in.UUID, &task, celldb.Change{AvailabilityZone: &zone})
		}); err != nil {
			return err
		}
	}
	var last error
	for _, h := range append([]string{sels[0].Host}, sels[0].Alternates...) {
		if last = o.cfg.VMs.Spawn(ctx, h, in.UUID); last == nil {
			return o.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return o.state.ClearAction(ctx, tx, in.UUID) })
		}
		if errors.Is(last, celldb.ErrGone) {
			return last
		}
	}
	return last
}

// unshelveWithoutImage is the unshelve of an offloaded instance whose
// shelved image is gone: ERROR, with Nova's fault (its conductor's).
func (o *Ops) unshelveWithoutImage(ctx context.Context, in *celldb.Instance, image string) error {
	msg := fmt.Sprintf("Unshelve attempted but the image %s cannot be found.", image)
	vm := vmstate.Error
	f := &wire.Fault{Code: 404, Message: msg, Created: o.cfg.Now()}
	if err := o.finish(ctx, in.UUID, vmstate.Actions["unshelve"].Task, celldb.Change{VMState: &vm, Fault: f}, nil); err != nil {
		return err
	}
	return errors.New(msg)
}

// rebuild rebuilds the instance on its host from the image the action
// names, which becomes its image_ref (a volume-backed one keeps its own).
func (o *Ops) rebuild(ctx context.Context, in *celldb.Instance, p celldb.Pending) error {
	var rp wire.ActionParams
	if err := json.Unmarshal(p.Params, &rp); err != nil || rp.ImageRef == "" {
		return wire.Errorf(wire.CodeBadMessage, "rebuild needs an image")
	}
	if err := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "rebuild"); err != nil {
		return err
	}
	vm, power := vmstate.Active, vmstate.Running
	ch := celldb.Change{VMState: &vm, PowerState: &power, ImageRef: &rp.ImageRef}
	if in.ImageRef == "" || in.VolumeBacked() {
		// A volume-backed instance (booted from a volume, no image of its
		// own, or from an image whose mappings gave it a boot volume): the
		// API cell lets only its root volume's own image through (Nova
		// below 2.93), and the instance keeps its image_ref.
		ch.ImageRef = nil
	}
	return o.finish(ctx, in.UUID, vmstate.Actions["rebuild"].Task, ch, nil)
}

// resize (and migrate, which keeps the flavor) claims room on another host
// of the cell, starts the instance there with its volumes and leaves it
// VERIFY_RESIZE; the source copy (its volumes detached) and claim stay
// until confirm or revert.
func (o *Ops) resize(ctx context.Context, in *celldb.Instance, p celldb.Pending) error {
	flavor := in.Flavor
	kind := "migration"
	if p.Action == "resize" {
		var rp wire.ActionParams
		if err := json.Unmarshal(p.Params, &rp); err != nil || rp.Flavor == nil {
			return wire.Errorf(wire.CodeBadMessage, "resize needs a flavor")
		}
		flavor, kind = *rp.Flavor, "resize"
	}
	// A resize resumed after a restart may have claimed a destination and
	// recorded a migration already: undo both, the scheduler chooses again.
	err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if m, err := celldb.ActiveMigration(ctx, tx, in.UUID); err == nil && m.Status == "migrating" {
			if err := celldb.SetMigrationStatus(ctx, tx, m.ID, "error", o.cfg.Now()); err != nil {
				return err
			}
		}
		return o.state.Release(ctx, tx, celldb.DestClaimKey(in.UUID))
	})
	if err != nil {
		return err
	}
	req := moveRequest(in, flavor)
	req.IgnoreHosts = []string{in.Host}
	sels, err := o.cfg.Scheduler.Select(ctx, req)
	if err != nil {
		return fmt.Errorf("%s %w", noValidHost, err)
	}
	task := vmstate.Actions[p.Action].Task
	var dest string
	var migID int64
	for _, h := range append([]string{sels[0].Host}, sels[0].Alternates...) {
		err = o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			if err := o.state.Claim(ctx, tx, celldb.DestClaimKey(in.UUID), h, flavor.Need()); err != nil {
				return err
			}
			id, err := celldb.CreateMigration(ctx, tx, celldb.Migration{InstanceUUID: in.UUID, Type: kind, SourceHost: in.Host,
				DestHost: h, OldFlavor: in.Flavor, NewFlavor: flavor, OldVMState: in.VMState, Status: "migrating"}, o.cfg.Now())
			migID = id
			return err
		})
		if err == nil {
			dest = h
			break
		}
		if !errors.Is(err, celldb.ErrClaimFailed) {
			return err
		}
	}
	if dest == "" {
		return fmt.Errorf("%s %w", noValidHost, err)
	}
	failed := func(err error) error {
		_ = o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			if err := celldb.SetMigrationStatus(ctx, tx, migID, "error", o.cfg.Now()); err != nil {
				return err
			}
			return o.state.Release(ctx, tx, celldb.DestClaimKey(in.UUID))
		})
		return err
	}
	if err := o.cfg.VMs.VMSpawn(ctx, dest, in.UUID, flavor); err != nil {
		return failed(err)
	}
	log := o.moveLog(in, p)
	if err := o.attachVolumes(ctx, dest, in.UUID, log); err != nil {
		// The destination cannot have the volumes: its copy goes, the
		// instance stays on the source with them.
		if derr := o.cfg.VMs.VMDestroy(ctx, dest, in.UUID); derr != nil {
			err = errors.Join(err, derr)
		}
		return failed(err)
	}
	o.leaveVolumes(ctx, in.Host, in.UUID, log)
	vm, power := vmstate.Resized, vmstate.Running
	if in.VMState == vmstate.Stopped {
		power = vmstate.Shutdown
	}
	return o.finish(ctx, in.UUID, task, celldb.Change{VMState: &vm, PowerState: &power, Host: &dest, Flavor: &flavor},
		func(tx *db.Tx) error { return celldb.SetMigrationStatus(ctx, tx, migID, "finished", o.cfg.Now()) })
}

func (o *Ops) confirmResize(ctx context.Context, in *celldb.Instance, p celldb.Pending) error {
	m, err := celldb.OpenMigration(ctx, o.cfg.DB, in.UUID)
	if err != nil {
		return err
	}
	o.leaveVolumes(ctx, m.SourceHost, in.UUID, o.moveLog(in, p))
	if err := o.cfg.VMs.VMDestroy(ctx, m.SourceHost, in.UUID); err != nil {
		return err
	}
	vm := m.OldVMState
	return o.finish(ctx, in.UUID, vmstate.Actions["confirm_resize"].Task, celldb.Change{VMState: &vm}, func(tx *db.Tx) error {
		if err := o.state.Release(ctx, tx, in.UUID); err != nil {
			return err
		}
		if err := o.state.MoveClaim(ctx, tx, celldb.DestClaimKey(in.UUID), in.UUID); err != nil {
			return err
		}
		return celldb.SetMigrationStatus(ctx, tx, m.ID, "confirmed", o.cfg.Now())
	})
}

func (o *Ops) revertResize(ctx context.Context, in *celldb.Instance, p celldb.Pending) error {
	m, err := celldb.OpenMigration(ctx, o.cfg.DB, in.UUID)
	if err != nil {
		return err
	}
	// The volumes go back to the source copy before the destination's
	// goes: a source that cannot have them leaves the resize as it was.
	log := o.moveLog(in, p)
	if err := o.attachVolumes(ctx, m.SourceHost, in.UUID, log); err != nil {
		return err
	}
	o.leaveVolumes(ctx, m.DestHost, in.UUID, log)
	if err := o.cfg.VMs.VMDestroy(ctx, m.DestHost, in.UUID); err != nil {
		return err
	}
	vm, power := m.OldVMState, vmstate.Running
	if vm == vmstate.Stopped {
		power = vmstate.Shutdown
	}
	return o.finish(ctx, in.UUID, vmstate.Actions["revert_resize"].Task,
		celldb.Change{VMState: &vm, PowerState: &power, Host: &m.SourceHost, Flavor: &m.OldFlavor}, func(tx *db.Tx) error {
			if err := o.state.Release(ctx, tx, celldb.DestClaimKey(in.UUID)); err != nil {
				return err
			}
			return celldb.SetMigrationStatus(ctx, tx, m.ID, "reverted", o.cfg.Now())
		})
}

// runMove carries out a move and logs its failure.
func (o *Ops) runMove(ctx context.Context, in *celldb.Instance, p celldb.Pending, log *slog.Logger) error {
	err := moves[p.Action](o, ctx, in, p)
	if err != nil && !errors.Is(err, celldb.ErrGone) && ctx.Err() == nil {
		log.Warn("server action failed", "err", err)
	}
	return err
}

// moveLog is the logger of a move of in.
func (o *Ops) moveLog(in *celldb.Instance, p celldb.Pending) *slog.Logger {
	return o.log.With("request_id", p.RequestID, "instance", in.UUID, "action", p.Action)
}

// noValidHost starts the message of a move that found no host, as Nova's.
const noValidHost = "No valid host was found."

// createImage snapshots the instance on its host and sends the image data
// up to the API cell's image store; the instance keeps its state.
func (o *Ops) createImage(ctx context.Context, in *celldb.Instance, p celldb.Pending) error {
	var ap wire.ActionParams
	if err := json.Unmarshal(p.Params, &ap); err != nil || ap.ImageRef == "" {
		return wire.Errorf(wire.CodeBadMessage, "create_image needs the image id")
	}
	if err := o.cfg.VMs.VMOp(ctx, in.Host, in.UUID, "snapshot"); err != nil {
		return errors.Join(err, o.snapshotFailed(ctx, in, p, ap.ImageRef))
	}
	return o.finish(ctx, in.UUID, vmstate.Actions["create_image"].Task, celldb.Change{}, func(tx *db.Tx) error {
		return o.cfg.Sender.Send(ctx, tx, cellpath.Root(o.cfg.Cell), wire.MethodSnapshotDone, p.RequestID,
			&wire.SnapshotDone{ImageID: ap.ImageRef, UUID: in.UUID, Data: snapshotData(in)})
	})
}

// snapshotFailed tells the API cell that the snapshot into image could not
// be taken: it deletes the queued image, as Nova does.
func (o *Ops) snapshotFailed(ctx context.Context, in *celldb.Instance, p celldb.Pending, image string) error {
	return o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		return o.cfg.Sender.Send(ctx, tx, cellpath.Root(o.cfg.Cell), wire.MethodSnapshotDone, p.RequestID,
			&wire.SnapshotDone{ImageID: image, UUID: in.UUID, Failed: true})
	})
}

// snapshotData is the fake hypervisor's disk: a few bytes naming what it
// was made of.
func snapshotData(in *celldb.Instance) []byte {
	return fmt.Appendf(nil, "cellcloud fake snapshot of instance %s (image %s, flavor %s)\n", in.UUID, in.ImageRef, in.Flavor.Name)
}

// moveRequest is what the host scheduler is asked for a move of in to a
// host that takes flavor: the instance's zone, and what the aggregate
// filters match (its project, the flavor's extra specs, the properties of
// the image it was built from). A move is never forced to a host.
func moveRequest(in *celldb.Instance, flavor wire.Flavor) *hostsched.Request {
	return &hostsched.Request{Flavor: flavor.Need(), NumInstances: 1, AvailabilityZone: in.AvailabilityZone,
		ProjectID: in.ProjectID, ExtraSpecs: flavor.ExtraSpecs, ImageProperties: in.Build.ImageProps}
}
