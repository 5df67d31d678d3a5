package volume

import (
	"context"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// ImageStore is Images on the API cell's image store (imagedb), for the
// node to wire: what a volume is made from, and the queued image that
// os-volume_upload_image makes (its data then comes by image_write).
type ImageStore struct {
	Store *imagedb.Store
}

var _ Images = ImageStore{}

func imageOf(i *imagedb.Image) *Image {
	return &Image{ID: i.ID, Name: i.Name, Status: i.Status, Size: i.Size, MinDisk: i.MinDisk, MinRAM: i.MinRAM,
		DiskFormat: i.DiskFormat, ContainerFormat: i.ContainerFormat, Checksum: i.Checksum, Visibility: i.Visibility,
		Protected: i.Protected, Properties: i.Properties}
}

// Image reads an image the caller may see (imagedb's not-found
// otherwise).
func (s ImageStore) Image(ctx context.Context, q db.Querier, id, project string, admin bool) (*Image, error) {
	img, err := s.Store.Get(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if !img.VisibleTo(project, admin) {
		return nil, imagedb.ErrNotFound
	}
	return imageOf(img), nil
}

// ImagesNamed lists the images the caller may see that have the name.
func (s ImageStore) ImagesNamed(ctx context.Context, q db.Querier, name, project string, admin bool) ([]*Image, error) {
	imgs, err := s.Store.List(ctx, q, imagedb.ListOptions{Project: project, Admin: admin, Names: []string{name}})
	if err != nil {
		return nil, err
	}
	out := make([]*Image, 0, len(imgs))
	for _, i := range imgs {
		out = append(out, imageOf(i))
	}
	return out, nil
}

// CreateImage makes the queued image of an upload, owned by owner.
func (s ImageStore) CreateImage(ctx context.Context, tx *db.Tx, img *Image, owner string) error {
	return s.Store.Create(ctx, tx, &imagedb.Image{ID: img.ID, Name: img.Name, Status: imagedb.StatusQueued,
		Visibility: img.Visibility, Protected: img.Protected, Owner: owner, DiskFormat: img.DiskFormat,
		ContainerFormat: img.ContainerFormat, Properties: img.Properties})
}
