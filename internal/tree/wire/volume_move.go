package wire

// Volume moves (docs/architecture.md §3.11). A server attaches only volumes
// of its own cell, so an attach of an available volume of another cell
// with the same availability zone moves the volume first, as Cinder's
// volume migration would: the server's cell (B) records the volume, the
// mapping and the attachment at once (attach_volume with MoveFrom), then
// its volume role imports the bytes from the volume's cell (A) with
// volume_export calls, claims the API cell's copy (a VolumeState with
// MovedFrom A) and tells A with volume_move_done, which deletes A's copy
// of the bytes and its row.
const (
	// MethodVolumeExport (targeted, cell to cell through their common
	// ancestor, call): the exporting side of a volume move. Begin checks
	// the volume (available, no attachments, no snapshots, no pending
	// action, no volume being made from it) and locks it for the move
	// (pending move_out toward the caller, keyed by MoveID; a repeat of
	// the same move answers as the first did), or refuses it (Refused);
	// then each call reads a chunk of its bytes. Answered with
	// VolumeExportAnswer.
	MethodVolumeExport = "volume_export"
	// MethodVolumeMoveDone (targeted, cell to cell, durable): the
	// importing cell's end of a move. Done: the exporting cell deletes
	// its copy of the bytes and its row, and sends nothing (the API
	// cell's copy belongs to the importing cell now). Failed: the
	// exporting cell unlocks the volume and, when it had locked it for
	// this move, sends its row at a version above Version with MovedFrom
	// the importing cell, which gives the copy back to it. A repeat, or
	// the end of a move the cell never locked for, changes nothing.
	MethodVolumeMoveDone = "volume_move_done"
)

// AttachReasonVolumeZone: the volume of another cell to move is in a
// storage zone the server's cell does not serve (the Compute API answers
// Nova's cross_az_attach 400).
const AttachReasonVolumeZone = "volume_zone"

// VolumeMove is what attach_volume carries when the volume is in another
// cell: what the importing cell records of it (the API cell's copy).
type VolumeMove struct {
	// From is the volume's cell; Version its copy's version.
	From    string `json:"from"`
	Version int64  `json:"version"`
	SizeGB  int    `json:"size_gb"`
	// AvailabilityZone is the volume's storage zone.
	AvailabilityZone string `json:"availability_zone"`
	TypeID           string `json:"type_id,omitempty"`
	TypeName         string `json:"type_name,omitempty"`
	ProjectID        string `json:"project_id"`
	UserID           string `json:"user_id"`
}

// VolumeExport is the request of volume_export.
type VolumeExport struct {
	VolumeID string `json:"volume_id"`
	// MoveID is the move's key (the attachment's id); To the importing
	// cell.
	MoveID string `json:"move_id"`
	To     string `json:"to"`
	// Begin checks and locks the volume; otherwise Length bytes (at most
	// ImageChunkSize) are read at Offset.
	Begin  bool  `json:"begin,omitempty"`
	Offset int64 `json:"offset,omitempty"`
	Length int   `json:"length,omitempty"`
}

// VolumeExportAnswer is the answer of volume_export.
type VolumeExportAnswer struct {
	// Refused is why the volume cannot move ("": it is locked for this
	// move). A refused move is ended by the importing cell.
	Refused string `json:"refused,omitempty"`
	// Begin's answer: the volume's version and size in the exporting
	// cell, and its size in bytes.
	Version int64 `json:"version,omitempty"`
	SizeGB  int   `json:"size_gb,omitempty"`
	Size    int64 `json:"size,omitempty"`
	// A chunk's answer: Data, or Zero with no data when the Length bytes
	// at Offset are all zero (they are skipped: the copy stays sparse);
	// then Next (when above Offset+Length) is where the next data may be:
	// the bytes up to it are zero too (a hole) and need no call.
	Data []byte `json:"data,omitempty"`
	Zero bool   `json:"zero,omitempty"`
	Next int64  `json:"next,omitempty"`
}

// VolumeMoveDone is the payload of volume_move_done.
type VolumeMoveDone struct {
	VolumeID string `json:"volume_id"`
	MoveID   string `json:"move_id"`
	// To is the importing cell.
	To string `json:"to"`
	// Failed: the import did not happen; Version is the importing cell's
	// last version of the volume.
	Failed  bool   `json:"failed,omitempty"`
	Version int64  `json:"version,omitempty"`
	Fault   string `json:"fault,omitempty"`
}
