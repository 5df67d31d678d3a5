package celldb

import "encoding/json"

// ConnectionInfo is the connection_info of an attachment of the Block
// Storage API (wire.MethodAttachmentWrite) that its consumer connected,
// as Cinder's volume manager answers it (_connection_create: the driver's
// "data" flattened into the rest, with the access mode, the encrypted,
// cacheable and QoS fields of _parse_connection_options, the attachment's
// id and enforce_multipath): the file backend's volumes are local files,
// which os-brick's "local" connector opens by device_path. The connector's
// enforce_multipath is not kept (a file has no paths): false.
func ConnectionInfo(attachmentID, backing, mode string) json.RawMessage {
	access := "rw"
	if mode == "ro" {
		access = "ro"
	}
	// A map of strings, bools and a nil always marshals.
	b, _ := json.Marshal(map[string]any{"driver_volume_type": "local", "device_path": backing, "access_mode": access,
		"encrypted": false, "cacheable": false, "qos_specs": nil, "attachment_id": attachmentID, "enforce_multipath": false})
	return b
}
