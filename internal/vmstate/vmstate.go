// Package vmstate is the instance state machine, shared by the API cell
// (which checks a request against its copy) and the compute cell (which
// checks it again against the truth and carries it out): Nova's vm_state,
// task_state and power_state values, which states each server action is
// allowed from, the task state it runs under, and the API status mapping.
// It is pure data and logic.
package vmstate

import (
	"fmt"
	"slices"
)

// VM states (Nova's vm_states).
const (
	Building         = "building"
	Active           = "active"
	Stopped          = "stopped"
	Paused           = "paused"
	Suspended        = "suspended"
	Rescued          = "rescued"
	Resized          = "resized"
	Shelved          = "shelved"
	ShelvedOffloaded = "shelved_offloaded"
	Error            = "error"
	Deleted          = "deleted"
	// SoftDeleted is a server deleted while a reclaim interval is set:
	// stopped, restorable until the interval has passed.
	SoftDeleted = "soft-delete"
)

// Power states (Nova's power_state).
const (
	NoState   = 0
	Running   = 1
	PausedPwr = 3
	Shutdown  = 4
	Crashed   = 6
	Suspend   = 7
)

// None is "no task".
const None = ""

// Action describes one server action.
type Action struct {
	// Name is the action's name in os-instance-actions (Nova's instance
	// action names: stop, start, reboot, ...).
	Name string
	// VMStates the action is allowed from.
	VMStates []string
	// TaskStates the action is allowed from; nil means only "no task".
	TaskStates []string
	// Task is the task state while it runs.
	Task string
	// Result is the vm_state and power state when it is done.
	ResultVM    string
	ResultPower int
	// HostOp is the driver operation on the instance's host ("" for none).
	HostOp string
}

// allowReboot is Nova's task_states.ALLOW_REBOOT: a hard reboot may
// interrupt these.
var allowReboot = []string{None, "rebooting", "reboot_pending", "reboot_started", "resuming", "rebooting_hard", "unpausing", "pausing", "suspending"}

// Actions are the server actions that a compute cell carries out on its
// own (no second host involved), by the key the API and the wire use.
// shelve snapshots the instance and ends SHELVED, or SHELVED_OFFLOADED
// when its cell offloads at once (compute.shelved_offload_time 0);
// shelve_offload takes a SHELVED instance off its host; unshelve powers a
// SHELVED one on, or boots an offloaded one from its snapshot.
var Actions = map[string]Action{
	"stop":         {Name: "stop", VMStates: []string{Active, Error}, Task: "powering-off", ResultVM: Stopped, ResultPower: Shutdown, HostOp: "power_off"},
	"start":        {Name: "start", VMStates: []string{Stopped}, Task: "powering-on", ResultVM: Active, ResultPower: Running, HostOp: "power_on"},
	"reboot_soft":  {Name: "reboot", VMStates: []string{Active}, Task: "rebooting", ResultVM: Active, ResultPower: Running, HostOp: "reboot"},
	"reboot_hard":  {Name: "reboot", VMStates: []string{Active, Stopped, Paused, Suspended, Error}, TaskStates: allowReboot, Task: "rebooting_hard", ResultVM: Active, ResultPower: Running, HostOp: "reboot"},
	"pause":        {Name: "pause", VMStates: []string{Active}, Task: "pausing", ResultVM: Paused, ResultPower: PausedPwr, HostOp: "pause"},
	"unpause":      {Name: "unpause", VMStates: []string{Paused}, Task: "unpausing", ResultVM: Active, ResultPower: Running, HostOp: "unpause"},
	"suspend":      {Name: "suspend", VMStates: []string{Active}, Task: "suspending", ResultVM: Suspended, ResultPower: Suspend, HostOp: "suspend"},
	"resume":       {Name: "resume", VMStates: []string{Suspended}, Task: "resuming", ResultVM: Active, ResultPower: Running, HostOp: "resume"},
	"rescue":       {Name: "rescue", VMStates: []string{Active, Stopped, Error}, Task: "rescuing", ResultVM: Rescued, ResultPower: Running, HostOp: "rescue"},
	"unrescue":     {Name: "unrescue", VMStates: []string{Rescued}, Task: "unrescuing", ResultVM: Active, ResultPower: Running, HostOp: "unrescue"},
	"rebuild":      {Name: "rebuild", VMStates: []string{Active, Stopped, Error}, Task: "rebuilding", ResultVM: Active, ResultPower: Running, HostOp: "rebuild"},
	"create_image": {Name: "createImage", VMStates: []string{Active, Stopped, Paused, Suspended}, Task: "image_snapshot", HostOp: "snapshot"},
	// soft_delete is a delete with a reclaim interval set (Nova's
	// soft_delete, recorded as "delete"); restore brings the server back.
	"soft_delete":    {Name: "delete", VMStates: []string{Active, Stopped, Paused, Suspended, Rescued, Error}, Task: "soft-deleting", ResultVM: SoftDeleted, ResultPower: Shutdown, HostOp: "power_off"},
	"restore":        {Name: "restore", VMStates: []string{SoftDeleted}, Task: "restoring", ResultVM: Active, ResultPower: Running, HostOp: "power_on"},
	"shelve":         {Name: "shelve", VMStates: []string{Active, Stopped, Paused, Suspended}, Task: "shelving", ResultVM: ShelvedOffloaded, ResultPower: Shutdown, HostOp: "shelve"},
	"shelve_offload": {Name: "shelveOffload", VMStates: []string{Shelved}, Task: "shelving_offloading", ResultVM: ShelvedOffloaded, ResultPower: Shutdown},
	"unshelve":       {Name: "unshelve", VMStates: []string{Shelved, ShelvedOffloaded}, Task: "unshelving", ResultVM: Active, ResultPower: Running},
	"resize":         {Name: "resize", VMStates: []string{Active, Stopped}, Task: "resize_prep", ResultVM: Resized},
	"migrate":        {Name: "migrate", VMStates: []string{Active, Stopped}, Task: "resize_prep", ResultVM: Resized},
	"confirm_resize": {Name: "confirmResize", VMStates: []string{Resized}, Task: "resize_confirming"},
	"revert_resize":  {Name: "revertResize", VMStates: []string{Resized}, Task: "resize_reverting"},
}

// ConflictError is an action asked for in the wrong state: a 409 with
// Nova's message.
type ConflictError struct {
	UUID, Action, Attr, State string
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("Cannot '%s' instance %s while it is in %s %s", e.Action, e.UUID, e.Attr, e.State)
}

// Check reports whether the action is allowed in the given states, with
// Nova's InstanceInvalidState message when it is not.
func (a Action) Check(uuid, vm, task string) error {
	if !slices.Contains(a.VMStates, vm) {
		return &ConflictError{UUID: uuid, Action: a.Name, Attr: "vm_state", State: vm}
	}
	allowed := a.TaskStates
	if allowed == nil {
		allowed = []string{None}
	}
	if !slices.Contains(allowed, task) {
		shown := task
		if shown == "" {
			shown = "None"
		}
		return &ConflictError{UUID: uuid, Action: a.Name, Attr: "task_state", State: shown}
	}
	return nil
}

// Status maps vm_state and task_state to the API's status, as Nova's
// nova/api/openstack/common.py does.
func Status(vm, task string) string {
	if s, ok := byTask[vm][task]; ok {
		return s
	}
	if s, ok := byVM[vm]; ok {
		return s
	}
	return "UNKNOWN"
}

var byVM = map[string]string{
	Building: "BUILD", Active: "ACTIVE", Stopped: "SHUTOFF", Paused: "PAUSED", Suspended: "SUSPENDED",
	Resized: "VERIFY_RESIZE", Rescued: "RESCUE", Shelved: "SHELVED", ShelvedOffloaded: "SHELVED_OFFLOADED",
	SoftDeleted: "SOFT_DELETED", Error: "ERROR", Deleted: "DELETED",
}

var activeTasks = map[string]string{
	"rebooting": "REBOOT", "reboot_pending": "REBOOT", "reboot_started": "REBOOT",
	"rebooting_hard": "HARD_REBOOT", "reboot_pending_hard": "HARD_REBOOT", "reboot_started_hard": "HARD_REBOOT",
	"updating_password": "PASSWORD", "rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD",
	"rebuild_spawning": "REBUILD", "migrating": "MIGRATING", "resize_prep": "RESIZE", "resize_migrating": "RESIZE",
	"resize_migrated": "RESIZE", "resize_finish": "RESIZE",
}

var resizeOrRebuild = map[string]string{
	"resize_prep": "RESIZE", "resize_migrating": "RESIZE", "resize_migrated": "RESIZE", "resize_finish": "RESIZE",
	"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD",
}

var byTask = map[string]map[string]string{
	Active:  activeTasks,
	Stopped: resizeOrRebuild,
	Resized: {"resize_reverting": "REVERT_RESIZE"},
	Paused:  {"migrating": "MIGRATING"},
	Error:   {"rebuilding": "REBUILD", "rebuild_block_device_mapping": "REBUILD", "rebuild_spawning": "REBUILD"},
}
