package wire

// MethodUpdateVolumeAttachment (targeted, down, call): change the
// delete_on_termination of an instance's attachment of a volume of the
// target cell (Compute API 2.85 PUT /servers/{id}/os-volume_attachments/
// {volume_id}). In one transaction the cell sets the flag on the
// instance's block device mapping of the volume, raises the volume's
// version and queues volume_update with its attachments, and answers the
// volume's new state (UpdateVolumeAttachmentAnswer), which the API cell
// applies to its copy by version before it answers, so the next read
// shows the flag. A repeat (the flag is already so) changes nothing and
// answers the state as it is. not_found when the cell does not hold the
// instance (or it is deleted), the volume, or an attachment of the
// volume to the instance.
const MethodUpdateVolumeAttachment = "update_volume_attachment"

// UpdateVolumeAttachment is the request of update_volume_attachment.
type UpdateVolumeAttachment struct {
	InstanceUUID        string `json:"instance_uuid"`
	VolumeID            string `json:"volume_id"`
	DeleteOnTermination bool   `json:"delete_on_termination"`
	UserID              string `json:"user_id"`
	ProjectID           string `json:"project_id"`
}

// UpdateVolumeAttachmentAnswer is the answer of update_volume_attachment:
// the volume's state after the change (volume_update's state, with its
// attachments).
type UpdateVolumeAttachmentAnswer struct {
	Volume VolumeState `json:"volume"`
}
