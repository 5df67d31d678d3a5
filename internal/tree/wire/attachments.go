package wire

import (
	"encoding/json"
	"time"
)

// Volume attachments (docs/architecture.md §3.11). A server attaches only
// volumes of its own cell (Nova's cross_az_attach = False), so the
// instance's cell holds both sides: the instance's block device mappings
// (Nova's BDMs, one row per device) and the volume's attachments
// (Cinder's), and changes them in one transaction. The API cell's copy
// of each volume mirrors its attachments from volume_update; no block
// device mapping is kept in the API cell.
const (
	// MethodAttachVolume (targeted, down, call): attach a volume of the
	// target cell to an instance of it (os-volume_attachments POST). The
	// cell checks the instance's state and the volume's status against
	// its own rows, reserves the device name, records the mapping and the
	// attachment (attaching), queues the attach on the instance's host,
	// and answers the device and the volume's new state in the answer
	// (AttachVolumeAnswer), all in one transaction. Applying it again
	// with the same AttachmentID answers the first's device and the
	// volume's state as it is. A refusal is an error with code conflict
	// and a Reason of the attach reasons below.
	MethodAttachVolume = "attach_volume"
	// MethodDetachVolume (targeted, down, durable): detach a volume from
	// an instance of the target cell (os-volume_attachments DELETE): the
	// attachment becomes detaching, the host detaches it, then the
	// mapping and the attachment go and the volume is available again
	// (volume_update). A repeat, or a volume not attached, changes
	// nothing.
	MethodDetachVolume = "detach_volume"
)

// The reasons an attach is refused (the Compute API turns each into
// Nova's status and message).
const (
	AttachReasonInstanceNotFound = "instance_not_found"
	AttachReasonInstanceState    = "instance_state"
	AttachReasonVolumeNotFound   = "volume_not_found"
	// AttachReasonVolumeStatus: the volume is not available (Cinder's
	// reserve error).
	AttachReasonVolumeStatus = "volume_status"
	// AttachReasonAlreadyAttached: the volume is attached (to this or to
	// another instance).
	AttachReasonAlreadyAttached = "already_attached"
	// AttachReasonDeviceInUse: the device name asked for is taken.
	AttachReasonDeviceInUse = "device_in_use"
	// AttachReasonTooManyDevices: no device name is left.
	AttachReasonTooManyDevices = "too_many_devices"
)

// AttachVolume is the request of attach_volume.
type AttachVolume struct {
	InstanceUUID string `json:"instance_uuid"`
	VolumeID     string `json:"volume_id"`
	// AttachmentID and BDMUUID are made by the API cell, so a repeated
	// request is recognised.
	AttachmentID string `json:"attachment_id"`
	BDMUUID      string `json:"bdm_uuid"`
	// Device is the device name asked for ("": the next free one).
	Device              string `json:"device,omitempty"`
	Tag                 string `json:"tag,omitempty"`
	DeleteOnTermination bool   `json:"delete_on_termination,omitempty"`
	UserID              string `json:"user_id"`
	ProjectID           string `json:"project_id"`
	// Move: the volume is of another cell and moves to this one first
	// (volume_move.go).
	Move *VolumeMove `json:"move,omitempty"`
}

// AttachVolumeAnswer is the answer of attach_volume.
type AttachVolumeAnswer struct {
	Device string `json:"device"`
	// Volume is the volume's state after the attach (volume_update's,
	// with its attachments), which the API cell applies to its copy by
	// version before it answers, so that the copy shows the attach at
	// once. Absent for a volume that moves in (the copy is still its old
	// cell's) and from a cell of an earlier release.
	Volume *VolumeState `json:"volume,omitempty"`
}

// DetachVolume is the payload of detach_volume.
type DetachVolume struct {
	InstanceUUID string `json:"instance_uuid"`
	VolumeID     string `json:"volume_id"`
	UserID       string `json:"user_id"`
	ProjectID    string `json:"project_id"`
}

// AttachmentState is one attachment of a volume as its cell holds it,
// carried in VolumeState.Attachments.
type AttachmentState struct {
	ID           string `json:"id"`
	InstanceUUID string `json:"instance_uuid"`
	// Status is Cinder's attach_status: reserved, attaching, attached,
	// detaching.
	Status string `json:"status"`
	// Device is the mountpoint (the device name in the guest).
	Device string `json:"device"`
	Mode   string `json:"mode"`
	// BDMUUID, Tag, DeleteOnTermination and BootIndex are the instance's
	// block device mapping of the volume (-1: not a boot device).
	BDMUUID             string    `json:"bdm_uuid"`
	Tag                 string    `json:"tag,omitempty"`
	DeleteOnTermination bool      `json:"delete_on_termination,omitempty"`
	BootIndex           int       `json:"boot_index"`
	AttachedAt          time.Time `json:"attached_at,omitzero"`
	// ConnectionInfo is the connection an attachment of the Block
	// Storage API's attachments (attachment_write) was given (Cinder's
	// connection_info; absent: none yet, or one the Compute API made).
	ConnectionInfo json.RawMessage `json:"connection_info,omitempty"`
}

// BlockDevice is one block device mapping of an instance to build
// (block_device_mapping_v2 of a boot from volume), as the API cell checked
// it. The cell that builds the instance makes the volumes marked New in
// its own volume role before the spawn, then attaches every volume (the
// boot volume at BootIndex 0) and records the mappings; no mapping is
// kept in the API cell.
type BlockDevice struct {
	// UUID is the mapping's uuid (bdm_uuid), made by the API cell.
	UUID string `json:"uuid"`
	// SourceType is image, volume, snapshot or blank; DestinationType is
	// volume or local.
	SourceType      string `json:"source_type"`
	DestinationType string `json:"destination_type"`
	// VolumeID is the volume attached: an existing one (source volume),
	// or the one the cell makes (New; its id made by the API cell, which
	// holds its copy in status creating).
	VolumeID string `json:"volume_id,omitempty"`
	New      bool   `json:"new,omitempty"`
	// AttachmentID is the attachment's id, made by the API cell.
	AttachmentID string `json:"attachment_id,omitempty"`
	SnapshotID   string `json:"snapshot_id,omitempty"`
	ImageID      string `json:"image_id,omitempty"`
	// ImageSize is the image's size in bytes (a volume made from it).
	ImageSize int64 `json:"image_size,omitempty"`
	// VolumeSize is the size in GiB of a volume to make.
	VolumeSize int `json:"volume_size,omitempty"`
	// VolumeTypeID and VolumeType are the type of a volume to make.
	VolumeTypeID        string `json:"volume_type_id,omitempty"`
	VolumeType          string `json:"volume_type,omitempty"`
	BootIndex           int    `json:"boot_index"`
	DeviceName          string `json:"device_name,omitempty"`
	DeleteOnTermination bool   `json:"delete_on_termination,omitempty"`
	Tag                 string `json:"tag,omitempty"`
	GuestFormat         string `json:"guest_format,omitempty"`
	DiskBus             string `json:"disk_bus,omitempty"`
	DeviceType          string `json:"device_type,omitempty"`
}
