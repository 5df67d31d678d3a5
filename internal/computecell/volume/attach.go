package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// Volume attachments (docs/architecture.md §3.11, the attachments
// contract). The manager owns the volumes' attachments and writes the
// instances' block device mappings with them, in one transaction:
//
//   - attach_volume (AttachVolume, a call) checks the instance and the
//     volume against the cell's rows, picks the device, records the
//     mapping and the attachment (attaching, attach pending), sets the
//     volume attaching (a new version, sent up with its attachments),
//     records the instance action attach_volume and answers the device.
//   - detach_volume (DetachVolume, a durable cast) sets the attachment
//     and the volume detaching, with the detach pending, and records the
//     instance action detach_volume.
//   - The worker does the pending host work through Hosts (the compute
//     agent of the instance's host; an instance with no VM on a host —
//     shelved_offloaded — needs none), then in one transaction
//     ends it: attach done, the attachment attached and the volume
//     in-use; detach done, the attachment and the mapping go and the
//     volume is available; an attach that failed goes as a detach does
//     (Nova destroys the mapping), a detach that failed leaves the volume
//     attached; the instance action's event records the result.
//   - InstanceGone (the conductor's delete of an instance) takes the
//     instance's attachments and mappings away in the delete's
//     transaction; each volume is available again, or is deleted when its
//     mapping says delete_on_termination.

// Hosts reaches the compute agent of an instance's host (locally or over
// the cell's broker).
type Hosts interface {
	AttachVolume(ctx context.Context, host, uuid, device, path string) error
	DetachVolume(ctx context.Context, host, uuid, device string) error
}

// volumePather is a backend that can name a volume's backing for a
// hypervisor (backend.File).
type volumePather interface {
	VolumePath(id string) (string, error)
}

// The attach statuses (Cinder's attach_status) and the pending host work
// of an attachment.
const (
	attachAttaching = "attaching"
	attachAttached  = "attached"
	attachDetaching = "detaching"
	attachDetached  = "detached"

	pendingAttach = "attach"
	pendingDetach = "detach"

	statusAttaching = "attaching"
	statusDetaching = "detaching"
)

// rootDevice is the instance's root disk, before any volume.
const rootDevice = "/dev/vda"

// deviceRE is Nova's block_device.match_device (and the Compute API's
// device pattern): a prefix and the device's letters.
var deviceRE = regexp.MustCompile(`^(/dev/x?[a-z]?d?)([a-z]+)[0-9]*$`)

// attachable reports whether an instance in vm state and task state may
// have a volume attached or detached (Nova's compute API attach_volume and
// detach_volume: these vm states, no task; a locked instance is the API's
// check).
func attachable(vm, task string) bool {
	switch vm {
	case vmstate.Active, vmstate.Paused, vmstate.Stopped, vmstate.Resized, vmstate.SoftDeleted,
		vmstate.Shelved, vmstate.ShelvedOffloaded:
		return task == vmstate.None
	}
	return false
}

// refuseAttach is an attach refused for reason (one of wire's
// AttachReason constants).
func refuseAttach(log *slog.Logger, reason, why string) error {
	log.Info("attach refused by the cell", "reason", reason, "why", why)
	return wire.Errorf(wire.CodeConflict, "%s", reason)
}

// AttachVolume is the call handler of attach_volume. In one transaction of
// its own it checks the instance (its vm and task state) and the volume
// (not attached, available) against the cell's rows, picks the device
// (the one asked for when it is free), records the block device mapping
// and the attachment (attaching, the attach pending for the worker), sets
// the volume attaching at a new version (sent up with its attachments),
// records the instance action attach_volume and answers the device and
// the volume's new state, which the API cell applies to its copy before
// it answers (the update sent up may be late). A refusal is a conflict
// whose message is the reason (wire.AttachReason…). A repeat with the
// same attachment id answers the device of the first and the volume's
// state as it is, and writes nothing.
func (m *Manager) AttachVolume(ctx context.Context, env *wire.Envelope) (any, error) {
	var req wire.AttachVolume
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return nil, wire.Errorf(wire.CodeBadMessage, "attach_volume: %v", err)
	}
	switch {
	case req.InstanceUUID == "" || req.AttachmentID == "" || req.BDMUUID == "":
		return nil, wire.Errorf(wire.CodeBadMessage, "attach_volume needs an instance, an attachment id and a mapping uuid")
	case !backend.ValidID(req.VolumeID):
		return nil, wire.Errorf(wire.CodeBadMessage, "attach_volume: invalid volume id %q", req.VolumeID)
	case req.Device != "" && !deviceRE.MatchString(req.Device):
		return nil, wire.Errorf(wire.CodeInvalid, "The supplied device path (%s) is invalid.", req.Device)
	}
	log := m.log.With("request_id", env.RequestID, "instance", req.InstanceUUID, "volume", req.VolumeID,
		"attachment", req.AttachmentID)
	var ans wire.AttachVolumeAnswer
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		var err error
		ans, err = m.attach(ctx, tx, env, &req, log)
		return err
	})
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			return nil, we
		}
		return nil, err
	}
	return ans, nil
}

// attach is AttachVolume's transaction; it returns the answer.
func (m *Manager) attach(ctx context.Context, tx *db.Tx, env *wire.Envelope, req *wire.AttachVolume, log *slog.Logger) (wire.AttachVolumeAnswer, error) {
	if a, err := celldb.GetAttachment(ctx, tx, req.AttachmentID); err == nil {
		if a.VolumeID != req.VolumeID || a.InstanceUUID != req.InstanceUUID {
			return wire.AttachVolumeAnswer{}, wire.Errorf(wire.CodeBadMessage, "attach_volume: attachment %s is of volume %s and instance %s",
				a.ID, a.VolumeID, a.InstanceUUID)
		}
		log.Info("attach_volume repeated: answered with the attachment's device", "device", a.Mountpoint)
		return m.attachRepeated(ctx, tx, a)
	} else if !errors.Is(err, celldb.ErrAttachmentNotFound) {
		return wire.AttachVolumeAnswer{}, err
	}
	device, st, err := m.attachNew(ctx, tx, env, req, log)
	return wire.AttachVolumeAnswer{Device: device, Volume: st}, err
}

// attachRepeated answers a repeat of attach_volume: the attachment's
// device and the volume's state as it is now (the API cell applies it by
// version, so a state newer than the first answer's is as good); no
// state while the volume moves in, as the first answer had none.
func (m *Manager) attachRepeated(ctx context.Context, tx *db.Tx, a *celldb.VolumeAttachment) (wire.AttachVolumeAnswer, error) {
	ans := wire.AttachVolumeAnswer{Device: a.Mountpoint}
	v, err := celldb.GetVolume(ctx, tx, a.VolumeID)
	switch {
	case errors.Is(err, celldb.ErrVolumeNotFound):
		return ans, nil
	case err != nil:
		return ans, err
	case v.Deleted || v.Action == pendingImport:
		return ans, nil
	}
	st, err := m.volumeState(ctx, tx, v)
	if err != nil {
		return ans, err
	}
	ans.Volume = &st
	return ans, nil
}

// attachNew is the attach of a new attachment id; it returns the device
// and the volume's new state (nil for a volume that moves in).
func (m *Manager) attachNew(ctx context.Context, tx *db.Tx, env *wire.Envelope, req *wire.AttachVolume, log *slog.Logger) (string, *wire.VolumeState, error) {
	in, err := celldb.GetForUpdate(ctx, tx, req.InstanceUUID)
	switch {
	case errors.Is(err, celldb.ErrNotFound):
		return "", nil, refuseAttach(log, wire.AttachReasonInstanceNotFound, "the cell does not have the instance")
	case err != nil:
		return "", nil, err
	case in.Deleted:
		return "", nil, refuseAttach(log, wire.AttachReasonInstanceNotFound, "the instance is deleted")
	case !attachable(in.VMState, in.TaskState):
		return "", nil, refuseAttach(log, wire.AttachReasonInstanceState, fmt.Sprintf("vm_state %s, task_state %q", in.VMState, in.TaskState))
	}
	v, err := celldb.GetVolumeForUpdate(ctx, tx, req.VolumeID)
	switch {
	case errors.Is(err, celldb.ErrVolumeNotFound) && req.Move != nil:
		device, err := m.attachMoving(ctx, tx, env, req, in, log)
		return device, nil, err
	case errors.Is(err, celldb.ErrVolumeNotFound):
		return "", nil, refuseAttach(log, wire.AttachReasonVolumeNotFound, "the cell does not have the volume")
	case err != nil:
		return "", nil, err
	case v.Deleted:
		return "", nil, refuseAttach(log, wire.AttachReasonVolumeNotFound, "the volume is deleted")
	}
	atts, err := celldb.VolumeAttachments(ctx, tx, v.ID)
	if err != nil {
		return "", nil, err
	}
	if len(atts) > 0 {
		return "", nil, refuseAttach(log, wire.AttachReasonAlreadyAttached, "attached to instance "+atts[0].InstanceUUID)
	}
	if v.Status != statusAvailable || v.Action != "" {
		return "", nil, refuseAttach(log, wire.AttachReasonVolumeStatus, fmt.Sprintf("status %s, pending %q", v.Status, v.Action))
	}
	device, err := m.pickDevice(ctx, tx, in.UUID, req.Device, log)
	if err != nil {
		return "", nil, err
	}
	backing, err := m.backing(v.ID)
	if err != nil {
		return "", nil, err
	}
	now := m.cfg.Now()
	if err := celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: req.BDMUUID, InstanceUUID: in.UUID, VolumeID: v.ID,
		AttachmentID: req.AttachmentID, DeviceName: device, BootIndex: -1, SourceType: "volume", DestinationType: "volume",
		DeleteOnTermination: req.DeleteOnTermination, Tag: req.Tag, VolumeSize: v.SizeGB, CreatedAt: now}); err != nil {
		return "", nil, err
	}
	if err := celldb.InsertAttachment(ctx, tx, &celldb.VolumeAttachment{ID: req.AttachmentID, VolumeID: v.ID,
		InstanceUUID: in.UUID, Status: attachAttaching, Mode: "rw", Mountpoint: device, Pending: pendingAttach,
		RequestID: env.RequestID, Backing: backing}); err != nil {
		return "", nil, err
	}
	nv, err := celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{Status: ptr(statusAttaching)}, now)
	if err != nil {
		return "", nil, err
	}
	st, err := m.volumeState(ctx, tx, nv)
	if err != nil {
		return "", nil, err
	}
	if err := m.send(ctx, tx, env.RequestID, &wire.VolumeUpdate{Volumes: []wire.VolumeState{st}}); err != nil {
		return "", nil, err
	}
	record := wire.ActionRecord{UUID: in.UUID, Action: "attach_volume", RequestID: env.RequestID, UserID: req.UserID,
		ProjectID: req.ProjectID, StartTime: now}
	if err := celldb.StartActionWithEvent(ctx, tx, record, "compute_attach_volume", in.Host, now); err != nil {
		return "", nil, err
	}
	tx.AfterCommit(m.Wake)
	log.Info("volume attach accepted", "device", device)
	return device, &st, nil
}

// nextDevice picks the device of a new volume of an instance whose
// devices are used (the root among them), as Nova's get_next_device_name
// does: the device asked for, under the root's prefix (/dev/sdc is
// /dev/vdc), when its letters are free (else AttachReasonDeviceInUse),
// or the first free letters (b, c, …, z, aa, …). With maxDevices above
// zero, no more than that many devices (the root counted) are allowed
// (AttachReasonTooManyDevices).
func nextDevice(used []string, requested string, maxDevices int) (string, string) {
	prefix := deviceRE.FindStringSubmatch(rootDevice)[1]
	letters := make(map[string]bool, len(used))
	for _, d := range used {
		letters[deviceLetters(d)] = true
	}
	if maxDevices > 0 && len(letters)+1 > maxDevices {
		return "", wire.AttachReasonTooManyDevices
	}
	if requested != "" {
		l := deviceRE.FindStringSubmatch(requested)[2]
		if letters[l] {
			return "", wire.AttachReasonDeviceInUse
		}
		return prefix + l, ""
	}
	for i := 0; ; i++ {
		if l := deviceLetter(i); !letters[l] {
			return prefix + l, ""
		}
	}
}

// devicePrefix is Nova's block_device _pref: the disk kind of a device
// name without /dev/.
var devicePrefix = regexp.MustCompile(`^((x?v|s|h)d)`)

// deviceLetters is Nova's get_device_letter: the device's letters, without
// /dev/, its kind and a partition number.
func deviceLetters(device string) string {
	s := devicePrefix.ReplaceAllString(strings.TrimPrefix(device, "/dev/"), "")
	return strings.TrimFunc(s, func(r rune) bool { return r >= '0' && r <= '9' })
}

// deviceLetter is Nova's generate_device_letter: a, b, …, z, aa, ab, ….
func deviceLetter(i int) string {
	var b []byte
	for i >= 0 {
		b = append(b, byte('a'+i%26))
		i = i/26 - 1
	}
	slices.Reverse(b)
	return string(b)
}

// DetachVolume is the durable cast handler of detach_volume: the
// instance's attachment of the volume becomes detaching with the detach
// pending for the worker, the volume detaching at a new version (sent
// up), and the instance action detach_volume is recorded. A detach the
// cell refuses (the volume is not attached to the instance, or its
// attachment is not attached, the instance's state does not allow it,
// the root device) sends the volume as it is at a new version, which puts
// back the status the API cell set. A repeat (the detach pending) changes
// nothing.
func (m *Manager) DetachVolume(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var req wire.DetachVolume
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "detach_volume: %v", err)
	}
	if req.InstanceUUID == "" || req.VolumeID == "" {
		return wire.Errorf(wire.CodeBadMessage, "detach_volume needs an instance and a volume")
	}
	log := m.log.With("request_id", env.RequestID, "instance", req.InstanceUUID, "volume", req.VolumeID)
	in, err := celldb.GetForUpdate(ctx, tx, req.InstanceUUID)
	if err != nil && !errors.Is(err, celldb.ErrNotFound) {
		return err
	}
	v, err := celldb.GetVolumeForUpdate(ctx, tx, req.VolumeID)
	switch {
	case errors.Is(err, celldb.ErrVolumeNotFound):
		log.Warn("detach of a volume this cell does not have: dropped")
		return nil
	case err != nil:
		return err
	case v.Deleted:
		log.Warn("detach of a deleted volume: dropped")
		return nil
	}
	refuse := func(why string) error {
		log.Warn("detach refused by the cell: the volume is sent as it is", "why", why, "status", v.Status)
		nv, err := celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{}, m.cfg.Now())
		if err != nil {
			return err
		}
		return m.sendVolume(ctx, tx, env.RequestID, nv)
	}
	atts, err := celldb.VolumeAttachments(ctx, tx, v.ID)
	if err != nil {
		return err
	}
	// The instance's attachment with its block device mapping (one of the
	// Block Storage API's, with none, may name the instance too).
	var a *celldb.VolumeAttachment
	var bdm *celldb.BDM
	for _, x := range atts {
		if x.InstanceUUID != req.InstanceUUID {
			continue
		}
		b, err := celldb.BDMOfAttachment(ctx, tx, x.ID)
		if errors.Is(err, celldb.ErrAttachmentNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		a, bdm = x, b
		break
	}
	if a == nil {
		return refuse("the volume is not attached to the instance")
	}
	switch {
	case a.Pending == pendingDetach:
		log.Info("detach_volume repeated: the detach is pending already")
		return nil
	case a.Status != attachAttached || a.Pending != "":
		return refuse(fmt.Sprintf("the attachment is %s", a.Status))
	case v.Status != statusInUse:
		// Cinder's begin_detaching: an in-use volume only (not one being
		// extended attached, say; the API checked its copy already).
		return refuse(fmt.Sprintf("the volume is %s", v.Status))
	case in == nil || in.Deleted:
		return refuse("the instance is deleted")
	case !attachable(in.VMState, in.TaskState):
		return refuse(fmt.Sprintf("instance in vm_state %s, task_state %q", in.VMState, in.TaskState))
	}
	if bdm.BootIndex == 0 {
		return refuse("Cannot detach a root device volume")
	}
	if _, err := celldb.UpdateAttachment(ctx, tx, a.ID, nil, "", celldb.AttachmentChange{Status: ptr(attachDetaching),
		Pending: ptr(pendingDetach), RequestID: env.RequestID}); err != nil {
		return err
	}
	now := m.cfg.Now()
	nv, err := celldb.UpdateVolume(ctx, tx, v.ID, nil, celldb.VolumeChange{Status: ptr(statusDetaching)}, now)
	if err != nil {
		return err
	}
	if err := m.sendVolume(ctx, tx, env.RequestID, nv); err != nil {
		return err
	}
	record := wire.ActionRecord{UUID: in.UUID, Action: "detach_volume", RequestID: env.RequestID, UserID: req.UserID,
		ProjectID: req.ProjectID, StartTime: now}
	if err := celldb.StartActionWithEvent(ctx, tx, record, "compute_detach_volume", in.Host, now); err != nil {
		return err
	}
	tx.AfterCommit(m.Wake)
	log.Info("volume detach accepted", "device", a.Mountpoint)
	return nil
}

// backing is the volume's backing as a hypervisor opens it: the
// backend's path, or the volume id for a backend that names none.
func (m *Manager) backing(volumeID string) (string, error) {
	if p, ok := m.cfg.Backend.(volumePather); ok {
		return p.VolumePath(volumeID)
	}
	return volumeID, nil
}

// fillBackings records the backing of the live attachments that have none
// (made before celldb migration 14), so that the compute agents can
// attach them again after a move or a restart. It runs at the start, in
// batches; a crash halfway leaves the rest for the next start.
func (m *Manager) fillBackings(ctx context.Context) error {
	const batch = 500
	for {
		atts, err := celldb.AttachmentsWithoutBacking(ctx, m.cfg.DB, batch)
		if err != nil || len(atts) == 0 {
			return err
		}
		err = m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			for _, a := range atts {
				path, err := m.backing(a.VolumeID)
				if err != nil {
					return err
				}
				if _, err := celldb.UpdateAttachment(ctx, tx, a.ID, nil, "", celldb.AttachmentChange{Backing: &path}); err != nil &&
					!errors.Is(err, wire.ErrConflict) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("recording the backings of attachments: %w", err)
		}
		m.log.Info("backings of attachments recorded", "attachments", len(atts))
		if len(atts) < batch {
			return nil
		}
	}
}

// statusOf is a volume's status from its live attachments, as Cinder
// takes the "highest" remaining one: any attached (or detaching back to
// attached) is in-use; else attaching; else detaching; else reserved (an
// attachment of the Block Storage API not connected yet); else
// available.
func statusOf(atts []*celldb.VolumeAttachment) string {
	has := func(s string) bool {
		return slices.ContainsFunc(atts, func(a *celldb.VolumeAttachment) bool { return a.Status == s })
	}
	switch {
	case has(attachAttached):
		return statusInUse
	case has(attachAttaching):
		return statusAttaching
	case has(attachDetaching):
		return statusDetaching
	case has(attachReserved):
		return statusReserved
	}
	return statusAvailable
}

// runAttachment does an attachment's pending host work, outside any
// transaction, then records its end. An instance with no VM on a host
// (shelved_offloaded: Nova completes the attachment with no connector)
// needs no host work, nor does one when the manager has no Hosts; a
// shelved one's VM is on its host, powered off, and has it done there.
func (m *Manager) runAttachment(ctx context.Context, v *celldb.Volume, a *celldb.VolumeAttachment) error {
	log := m.log.With("request_id", a.RequestID, "volume", v.ID, "instance", a.InstanceUUID, "attachment", a.ID,
		"action", a.Pending+"_volume", "device", a.Mountpoint)
	in, err := celldb.Get(ctx, m.cfg.DB, a.InstanceUUID)
	if err != nil && !errors.Is(err, celldb.ErrNotFound) {
		return err
	}
	host := ""
	if in != nil && !in.Deleted && in.VMState != vmstate.ShelvedOffloaded {
		// A shelved instance's VM is on its host, powered off: its
		// volumes are attached there, as Nova's (only an offloaded one
		// has none to attach to).
		host = in.Host
	}
	onHost := host != "" && m.cfg.Hosts != nil
	log.Info("volume attachment work started", "host", host)
	var opErr error
	switch a.Pending {
	case pendingAttach:
		switch {
		case in == nil || in.Deleted:
			opErr = fmt.Errorf("instance %s is gone", a.InstanceUUID)
		case onHost:
			path := a.Backing
			if path == "" {
				if path, opErr = m.backing(v.ID); opErr != nil {
					break
				}
			}
			opErr = m.cfg.Hosts.AttachVolume(ctx, host, a.InstanceUUID, a.Mountpoint, path)
		}
	case pendingDetach:
		if onHost {
			opErr = m.cfg.Hosts.DetachVolume(ctx, host, a.InstanceUUID, a.Mountpoint)
		}
	default:
		opErr = fmt.Errorf("unknown attachment work %q", a.Pending)
	}
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: the work stays pending
	}
	return m.finishAttachment(ctx, v.ID, a, host, opErr, log)
}

// finishAttachment records the end of an attachment's pending work in one
// transaction: the attachment must still have that work pending (else
// the instance's delete or a newer request took it, and nothing is
// written); the volume takes its new status at a new version and is sent
// up; the instance action's event is closed with the result.
func (m *Manager) finishAttachment(ctx context.Context, volumeID string, a *celldb.VolumeAttachment, host string, opErr error, log *slog.Logger) error {
	now := m.cfg.Now()
	gone := a.Pending == pendingDetach && opErr == nil || a.Pending == pendingAttach && opErr != nil
	c := celldb.AttachmentChange{Status: ptr(attachAttached), ClearPending: true}
	switch {
	case gone:
		c = celldb.AttachmentChange{Status: ptr(attachDetached), ClearPending: true, DetachedAt: &now, Deleted: true}
	case a.Pending == pendingAttach:
		c.AttachedAt = &now
	}
	result, traceback := "Success", ""
	if opErr != nil {
		result, traceback = "Error", opErr.Error()
	}
	moved := false
	err := m.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		moved = false
		// The volume's row first, as the handlers take it (after the
		// instance's), so that two transactions cannot wait on each other.
		if _, err := celldb.GetVolumeForUpdate(ctx, tx, volumeID); err != nil {
			return err
		}
		if _, err := celldb.UpdateAttachment(ctx, tx, a.ID, &a.Pending, a.RequestID, c); errors.Is(err, wire.ErrConflict) {
			moved = true
			return nil
		} else if err != nil {
			return err
		}
		if gone {
			if err := celldb.DeleteBDMsOfAttachment(ctx, tx, a.ID); err != nil {
				return err
			}
		}
		atts, err := celldb.VolumeAttachments(ctx, tx, volumeID)
		if err != nil {
			return err
		}
		nv, err := celldb.UpdateVolume(ctx, tx, volumeID, nil, celldb.VolumeChange{Status: ptr(statusOf(atts))}, now)
		if err != nil {
			return err
		}
		if err := m.sendVolume(ctx, tx, a.RequestID, nv); err != nil {
			return err
		}
		return celldb.FinishAction(ctx, tx, a.InstanceUUID, a.RequestID, result, traceback, host, now)
	})
	if err != nil {
		return fmt.Errorf("recording the end of the %s of attachment %s: %w", a.Pending, a.ID, err)
	}
	switch {
	case moved:
		log.Info("attachment moved on meanwhile (instance deleted?): its end is not recorded")
	case opErr != nil:
		log.Warn("volume attachment work failed", "err", opErr)
	default:
		log.Info("volume attachment work done")
	}
	return nil
}

// InstanceGone takes away, in tx (the transaction that marks the instance
// deleted), the instance's volume attachments and block device mappings
// (its host's side went with the VM): each volume is available again, at
// a new version sent up, or, when its mapping says delete_on_termination
// (and it has no snapshots, which Cinder's delete would refuse), is queued
// for deletion (deleting, its delete pending for the worker). requestID
// is the delete's.
func (m *Manager) InstanceGone(ctx context.Context, tx *db.Tx, instanceUUID, requestID string) error {
	atts, err := celldb.InstanceAttachments(ctx, tx, instanceUUID)
	if err != nil || len(atts) == 0 {
		return err
	}
	log := m.log.With("request_id", requestID, "instance", instanceUUID)
	now := m.cfg.Now()
	wake := false
	for _, a := range atts {
		// The volume's row before the attachment's, in the order the
		// worker takes them.
		v, err := celldb.GetVolumeForUpdate(ctx, tx, a.VolumeID)
		if err != nil && !errors.Is(err, celldb.ErrVolumeNotFound) {
			return err
		}
		bdm, err := celldb.BDMOfAttachment(ctx, tx, a.ID)
		if errors.Is(err, celldb.ErrAttachmentNotFound) {
			// One of the Block Storage API's attachments, which only names
			// the instance: its consumer deletes it, as Cinder keeps it.
			continue
		}
		if err != nil {
			return err
		}
		if _, err := celldb.UpdateAttachment(ctx, tx, a.ID, nil, "", celldb.AttachmentChange{Status: ptr(attachDetached),
			ClearPending: true, DetachedAt: &now, Deleted: true}); err != nil {
			return err
		}
		if err := celldb.DeleteBDMsOfAttachment(ctx, tx, a.ID); err != nil {
			return err
		}
		if v == nil || v.Deleted {
			continue
		}
		rest, err := celldb.VolumeAttachments(ctx, tx, v.ID)
		if err != nil {
			return err
		}
		// The attachments set the status of an attached volume; one a
		// build was still making, or in error, keeps its own.
		change := celldb.VolumeChange{}
		if attachmentStatus(v.Status) {
			change.Status = ptr(statusOf(rest))
		}
		// A volume still being made may be deleted too: its creation's end
		// finds the delete pending and leaves it (build.go).
		if bdm.DeleteOnTermination && len(rest) == 0 && (v.Action == "" || v.Action == pendingCreate) {
			snaps, err := celldb.SnapshotsOfVolume(ctx, tx, v.ID)
			if err != nil {
				return err
			}
			if len(snaps) == 0 {
				params, err := json.Marshal(wire.VolumeAction{VolumeID: v.ID, Action: wire.VolumeDelete})
				if err != nil {
					return err
				}
				change = celldb.VolumeChange{Status: ptr(statusDeleting),
					Pending: &celldb.VolumePending{Action: wire.VolumeDelete, Params: params, RequestID: requestID}}
				wake = true
			} else {
				log.Warn("volume to delete on termination has snapshots: left available", "volume", v.ID, "snapshots", len(snaps))
			}
		}
		nv, err := celldb.UpdateVolume(ctx, tx, v.ID, nil, change, now)
		if err != nil {
			return err
		}
		if err := m.sendVolume(ctx, tx, requestID, nv); err != nil {
			return err
		}
		log.Info("volume detached from the deleted instance", "volume", v.ID, "status", nv.Status, "attachment", a.ID)
	}
	if wake {
		tx.AfterCommit(m.Wake)
	}
	return nil
}

// pickDevice is the device an attach to the instance gets: the one asked
// for, or the next free one after the instance's mappings (refused with
// the attach reason when taken, or when none is left).
func (m *Manager) pickDevice(ctx context.Context, tx *db.Tx, instanceUUID, asked string, log *slog.Logger) (string, error) {
	bdms, err := celldb.InstanceBDMs(ctx, tx, instanceUUID)
	if err != nil {
		return "", err
	}
	used := []string{rootDevice}
	for _, b := range bdms {
		if b.DeviceName != "" {
			used = append(used, b.DeviceName)
		}
	}
	device, reason := nextDevice(used, asked, m.cfg.MaxDiskDevices)
	if reason != "" {
		return "", refuseAttach(log, reason, fmt.Sprintf("device %q asked, %v in use", asked, used))
	}
	return device, nil
}
