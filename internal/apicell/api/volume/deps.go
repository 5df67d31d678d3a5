package volume

import (
	"context"

	"github.com/cellcloud/cellcloud/internal/db"
)

// What the volumes and snapshots need from the rest of the API cell, as
// small interfaces (the node wires them): the cells service's outbox and
// the image store. The types and quotas are typestores.go's.

// Sender sends a durable message inside a transaction (the cells
// service's Send): it leaves only if tx commits.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, target, method, requestID string, payload any) error
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

// Caller makes a call to one cell and decodes its answer into out (the
// cells service's Call): the attachments API's writes, which the volume's
// cell makes.
type Caller interface {
	Call(ctx context.Context, target, method, requestID string, payload, out any) error
}

// DownCells says which cells below the API cell are down now.
type DownCells interface {
	Down(ctx context.Context) ([]string, error)
}
