package wire

import "time"

// Volumes (the Block Storage API, docs/architecture.md §3.11). A volume
// belongs to one compute cell: the cell's volume role keeps its row (the
// truth of its status and size) and its bytes (its backend). The API cell
// keeps a copy of every volume and snapshot for lists and checks, and owns
// what only the API changes: name, description, metadata, bootable, the
// type, the zone asked for, the sources. The cell's side reaches the copy
// as volume_update, ordered per volume (and per snapshot) by version as
// instance_update is (§2.6).
const (
	// MethodVolumeCreate (targeted, down, durable): make this volume. The
	// API cell sends it to its own cell, and each cell with children
	// passes it to the child whose last report has room for it in its zone
	// (most free GiB first), until it reaches a cell with a volume role,
	// which makes the volume. A volume made from a snapshot or another
	// volume has TargetCell set (the source's cell) and goes straight
	// there. A cell that finds no child with room sends volume_update
	// with the volume in status "error" and no cell to the root. Applying
	// it again for a volume the cell has changes nothing.
	MethodVolumeCreate = "volume_create"
	// MethodVolumeAction (targeted, down, durable): carry out an action on
	// a volume (or its snapshot) of the target cell. The cell checks it
	// against its own row; one it refuses is answered by volume_update
	// with its row as it is (which replaces the status the API cell set
	// when it accepted the action). Applying it again changes nothing
	// (each action names what it expects: a snapshot id that exists, an
	// image already uploaded, a size already reached, a volume gone).
	MethodVolumeAction = "volume_action"
	// MethodVolumeUpdate (targeted to the root, up, durable): the owning
	// cell's state of volumes and snapshots, each with its version. The
	// API cell applies a state only when its version is newer than its
	// copy's, or it is a deletion from the copy's cell. Sent in the
	// transaction of every change, and every heal interval (Heal) for
	// what changed in the heal window.
	MethodVolumeUpdate = "volume_update"
	// MethodImageRead (targeted to the root, up, call): a chunk of an
	// image's data from the API cell's image store, for a volume made
	// from an image. Answered with ImageChunk.
	MethodImageRead = "image_read"
	// MethodImageWrite (targeted to the root, up, call): a chunk of a
	// volume's bytes for an image being uploaded from it
	// (os-volume_upload_image). Answered with ImageWritten.
	MethodImageWrite = "image_write"
)

// The actions of volume_action.
const (
	// VolumeDelete deletes the volume's bytes and its row (Cascade: its
	// snapshots first). A volume the cell does not have is answered with
	// a deletion at version 1, so the API copy does not wait for ever.
	VolumeDelete = "delete"
	// VolumeExtend grows the volume to SizeGB.
	VolumeExtend = "extend"
	// VolumeResetStatus sets the volume's (or SnapshotID's) status to
	// Status without touching its bytes (os-reset_status).
	VolumeResetStatus = "reset_status"
	// VolumeUploadImage writes the volume's bytes into the image ImageID
	// (image_write calls), then goes back to "available".
	VolumeUploadImage = "upload_image"
	// SnapshotCreate copies the volume's bytes into snapshot SnapshotID.
	SnapshotCreate = "snapshot_create"
	// SnapshotDelete deletes snapshot SnapshotID.
	SnapshotDelete = "snapshot_delete"
)

// VolumeCreate is the payload of volume_create.
type VolumeCreate struct {
	Volume VolumeSpec `json:"volume"`
	// TargetCell is the cell that must make it ("" : any with room).
	TargetCell string `json:"target_cell,omitempty"`
	// Tried are the cells that could not (reserved for retries).
	Tried []string `json:"tried,omitempty"`
}

// VolumeSpec is one volume to make.
type VolumeSpec struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	SizeGB    int    `json:"size_gb"`
	// AvailabilityZone is the storage zone asked for ("": any).
	AvailabilityZone string `json:"availability_zone,omitempty"`
	// TypeID and TypeName are the volume type; ExtraSpecs its extra specs
	// (volume_backend_name picks a backend).
	TypeID     string            `json:"type_id"`
	TypeName   string            `json:"type_name"`
	ExtraSpecs map[string]string `json:"extra_specs,omitempty"`
	// At most one source: an image (its size in bytes, read with
	// image_read), a snapshot or a volume of the target cell.
	ImageID        string    `json:"image_id,omitempty"`
	ImageSize      int64     `json:"image_size,omitempty"`
	SnapshotID     string    `json:"snapshot_id,omitempty"`
	SourceVolumeID string    `json:"source_volid,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// VolumeAction is the payload of volume_action.
type VolumeAction struct {
	VolumeID string `json:"volume_id"`
	Action   string `json:"action"`
	// SizeGB: extend's new size.
	SizeGB int `json:"size_gb,omitempty"`
	// Attached: extend an in-use volume (Cinder 3.42) under its
	// attachments; it goes back to in-use (available when its last
	// attachment went meanwhile).
	Attached bool `json:"attached,omitempty"`
	// SnapshotID: the snapshot of snapshot_create, snapshot_delete and a
	// snapshot's reset_status.
	SnapshotID string `json:"snapshot_id,omitempty"`
	// Status: reset_status's new status.
	Status string `json:"status,omitempty"`
	// ImageID: upload_image's image.
	ImageID string `json:"image_id,omitempty"`
	// Cascade: delete the volume's snapshots with it.
	Cascade bool `json:"cascade,omitempty"`
	// CreatedAt: the snapshot's creation time (snapshot_create).
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Force: snapshot_create of a volume that may be in-use (Cinder's
	// force; a volume-backed server's createImage).
	Force bool `json:"force,omitempty"`
}

// VolumeUpdate is the payload of volume_update.
type VolumeUpdate struct {
	Volumes   []VolumeState   `json:"volumes,omitempty"`
	Snapshots []SnapshotState `json:"snapshots,omitempty"`
	Heal      bool            `json:"heal,omitempty"`
}

// VolumeState is the owning cell's state of one volume.
type VolumeState struct {
	ID string `json:"id"`
	// Cell is the owning cell ("" : the volume found no cell; it is in
	// status "error" and the API cell alone deletes it).
	Cell    string `json:"cell"`
	Version int64  `json:"version"`
	Status  string `json:"status"`
	SizeGB  int    `json:"size_gb"`
	// Fault is why the last operation failed (logged by the API cell;
	// Cinder shows none).
	Fault     string    `json:"fault,omitempty"`
	Deleted   bool      `json:"deleted,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	// Attachments are the volume's attachments (none: not attached).
	Attachments []AttachmentState `json:"attachments,omitempty"`
	// ImageMetadata, when not nil, replaces the volume's
	// volume_image_metadata (and makes it bootable): the state that ends
	// a re-image (a volume-backed rebuild at 2.93) carries the new
	// image's, as Cinder's reimage refreshes it once the copy is done.
	// Absent: unchanged.
	ImageMetadata map[string]string `json:"image_metadata,omitempty"`
	// MovedFrom is the cell the volume moved from (volume_move.go): the
	// API cell's copy of that cell takes the state (when newer) and
	// changes its cell to Cell.
	MovedFrom string `json:"moved_from,omitempty"`
}

// SnapshotState is the owning cell's state of one snapshot.
type SnapshotState struct {
	ID       string `json:"id"`
	VolumeID string `json:"volume_id"`
	Cell     string `json:"cell"`
	Version  int64  `json:"version"`
	Status   string `json:"status"`
	// Progress is Cinder's "os-extended-snapshot-attributes:progress"
	// ("0%" … "100%").
	Progress  string    `json:"progress"`
	SizeGB    int       `json:"size_gb"`
	Fault     string    `json:"fault,omitempty"`
	Deleted   bool      `json:"deleted,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ImageChunkSize is the most image_read returns and image_write carries in
// one message (its base64 stays well inside MaxSize).
const ImageChunkSize = 512 << 10

// ImageRead is the request of image_read.
type ImageRead struct {
	ImageID string `json:"image_id"`
	Offset  int64  `json:"offset"`
	Length  int    `json:"length"`
}

// ImageChunk is the answer of image_read: Data from Offset; Size is the
// image's whole size, so EOF is Offset+len(Data) == Size.
type ImageChunk struct {
	Data []byte `json:"data"`
	Size int64  `json:"size"`
}

// ImageWrite is the request of image_write: Data at Offset of the image
// being uploaded from volume VolumeID. Offset 0 with Begin starts (again)
// from nothing; a chunk of zeros may be left out (the file stays sparse);
// Final (with no data) ends the upload at Size bytes and makes the image
// active. A repeat of a chunk writes the same bytes again.
type ImageWrite struct {
	ImageID  string `json:"image_id"`
	VolumeID string `json:"volume_id"`
	Begin    bool   `json:"begin,omitempty"`
	Offset   int64  `json:"offset"`
	Data     []byte `json:"data,omitempty"`
	Final    bool   `json:"final,omitempty"`
	Size     int64  `json:"size,omitempty"`
	// Failed ends the upload in failure: the image is deleted.
	Failed bool `json:"failed,omitempty"`
}

// ImageWritten is the answer of image_write.
type ImageWritten struct {
	// Gone: the image is no longer there (deleted meanwhile); the
	// upload stops and the volume goes back to available.
	Gone bool `json:"gone,omitempty"`
}

// MethodVolumeServices (broadcast, down, call): each cell with a volume
// role answers its cinder-volume service, for the Block Storage API's
// os-services. Answered with a list of VolumeService.
const MethodVolumeServices = "volume_services"

// VolumeService is one Block Storage service as os-services shows it.
type VolumeService struct {
	Binary string `json:"binary"`
	// Host is Cinder's host@backend.
	Host      string    `json:"host"`
	Zone      string    `json:"zone"`
	Disabled  bool      `json:"disabled,omitempty"`
	Up        bool      `json:"up"`
	UpdatedAt time.Time `json:"updated_at"`
	// BackendUp is Cinder's backend_state (3.49): the backend answered.
	BackendUp bool `json:"backend_up"`
}
