package volume

import (
	"context"

	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
)

// What the volumes and snapshots need from the rest of the API cell, as
// small interfaces (the node wires them): the cells service's outbox, the
// volume types and quotas (package voltypes), the image store and the
// storage zones.

// Sender sends a durable message inside a transaction (the cells
// service's Send): it leaves only if tx commits.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, target, method, requestID string, payload any) error
}

// TypeStore finds volume types (voltypes.Store).
type TypeStore interface {
	// Type finds a type by id or name visible to project (admin: all),
	// with the notfound convention.
	Type(ctx context.Context, q db.Querier, idOrName, project string, admin bool) (*voltypes.Type, error)
	// Default is the default type (default_volume_type).
	Default(ctx context.Context, q db.Querier) (*voltypes.Type, error)
}

// QuotaStore reads the volume quota limits (voltypes.Store).
type QuotaStore interface {
	// Limits are the project's hard limits by Cinder key (volumes,
	// gigabytes, snapshots, per_volume_gigabytes, volumes_<type>,
	// gigabytes_<type>, snapshots_<type>, backups, backup_gigabytes,
	// groups); -1 is unlimited, a key not there is unlimited.
	Limits(ctx context.Context, q db.Querier, project string) (map[string]int64, error)
}

// Image is what the volumes need to know of an image.
type Image struct {
	ID, Name, Status            string
	Size                        int64
	MinDisk, MinRAM             int
	DiskFormat, ContainerFormat string
	Checksum                    string
	// Visibility is public, private, shared or community.
	Visibility string
	Protected  bool
	Properties map[string]string
}

// Images is the image store as the volumes use it: the image a volume is
// made from, and the image os-volume_upload_image makes.
type Images interface {
	// Image finds an image visible to project (admin: any) by id, with the
	// notfound convention.
	Image(ctx context.Context, q db.Querier, id, project string, admin bool) (*Image, error)
	// ImagesNamed lists the images visible to project with that name.
	ImagesNamed(ctx context.Context, q db.Querier, name, project string, admin bool) ([]*Image, error)
	// CreateImage makes, in tx, a queued image owned by owner from img
	// (its ID chosen by the caller), for the bytes the volume's cell
	// writes with image_write.
	CreateImage(ctx context.Context, tx *db.Tx, img *Image, owner string) error
}
