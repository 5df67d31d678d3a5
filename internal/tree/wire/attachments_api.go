package wire

import "encoding/json"

// MethodAttachmentWrite (targeted, down, call): a write of the Block
// Storage API's attachments (Cinder's v3 attachments, 3.27+), made by a
// consumer other than the Compute API, to the volume's cell, which holds
// the attachments. Op says which:
//
//   - AttachmentCreate: reserve the volume for a new attachment (Cinder's
//     attachment_create: status reserved, the volume reserved), and with a
//     Connector make its connection at once (as AttachmentUpdate).
//   - AttachmentUpdate: make the connection of an attachment to
//     Connector (attaching, the volume attaching; connection_info).
//   - AttachmentComplete: the consumer is connected (attached, the volume
//     in-use; os-complete, 3.44).
//   - AttachmentDelete: the attachment goes; the volume takes its status
//     from those left (available when none).
//
// In one transaction of its own the cell checks the request against its
// rows, writes the attachment and the volume at a new version, queues
// volume_update with the volume's attachments and answers the volume's
// new state (AttachmentWritten), which the API cell applies to its copy
// by version before it answers, so the next read shows it. No block
// device mapping is made, and the hosts do no work: the consumer connects
// the volume itself. The attachment id is made by the API cell: a repeat
// of a create, an update to the same connector, a complete of an attached
// attachment and a delete of one gone write nothing and answer the state
// as it is. A refusal is an error: not_found (the volume, or the
// attachment, is not in the cell), invalid (Cinder's 400: the volume's
// status; the message is Cinder's reason), conflict (Cinder's 409: the
// message is Cinder's reason, or AttachmentOfInstance for an attachment
// the Compute API made, which only a detach through it may take away).
const MethodAttachmentWrite = "attachment_write"

// The operations of attachment_write.
const (
	AttachmentCreate   = "create"
	AttachmentUpdate   = "update"
	AttachmentComplete = "complete"
	AttachmentDelete   = "delete"
)

// AttachmentOfInstance is the start of the message of attachment_write's
// conflict for an attachment the Compute API made (it has a block device
// mapping); the instance's UUID follows it.
const AttachmentOfInstance = "attachment of instance "

// AttachmentWrite is the request of attachment_write.
type AttachmentWrite struct {
	Op           string `json:"op"`
	AttachmentID string `json:"attachment_id"`
	VolumeID     string `json:"volume_id"`
	// InstanceUUID is the consumer's id (create; "" none).
	InstanceUUID string `json:"instance_uuid,omitempty"`
	// Connector is the consumer's connector (a JSON object; create and
	// update), absent for a create that only reserves.
	Connector json.RawMessage `json:"connector,omitempty"`
	// Mode is the attach mode asked for at create (3.54: rw, ro); "" is
	// Cinder's "null" (the connector's mode decides).
	Mode string `json:"mode,omitempty"`
	// ReadOnly: the volume's admin metadata has readonly (create: the
	// mode is ro whatever was asked).
	ReadOnly bool `json:"read_only,omitempty"`
	// Multiattach is the volume's multiattach (of its type), which the
	// API cell's copy holds.
	Multiattach bool   `json:"multiattach,omitempty"`
	UserID      string `json:"user_id"`
	ProjectID   string `json:"project_id"`
}

// AttachmentWritten is the answer of attachment_write: the volume's state
// after the write (volume_update's state, with its attachments, each
// with its connection_info).
type AttachmentWritten struct {
	Volume VolumeState `json:"volume"`
}
