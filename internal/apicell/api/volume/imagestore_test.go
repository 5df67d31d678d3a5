package volume_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// TestImageStore: the adapter on imagedb finds an image by id only for
// whom may see it, by name among those, and makes the queued image of an
// upload owned by the volume's project.
func TestImageStore(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, imagedb.MigrationSet, imagedb.Migrations); err != nil {
			t.Fatal(err)
		}
		st := &imagedb.Store{}
		const priv = "0f0e0d0c-0000-4000-8000-0000000000b1"
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return st.Create(ctx, tx, &imagedb.Image{ID: priv, Name: "mine", Status: imagedb.StatusActive, Visibility: imagedb.Private,
				Owner: "p1", Size: 10, MinDisk: 2, DiskFormat: "raw", ContainerFormat: "bare"})
		}); err != nil {
			t.Fatal(err)
		}
		s := volume.ImageStore{Store: st}
		img, err := s.Image(ctx, d, priv, "p1", false)
		if err != nil || img.Name != "mine" || img.Size != 10 || img.MinDisk != 2 || img.Status != "active" {
			t.Fatalf("owner's image %+v %v", img, err)
		}
		if _, err := s.Image(ctx, d, priv, "p2", false); !errors.Is(err, notfound.Err) {
			t.Errorf("another project's private image: %v", err)
		}
		if imgs, err := s.ImagesNamed(ctx, d, "mine", "p2", false); err != nil || len(imgs) != 0 {
			t.Errorf("by name for another project: %v %v", imgs, err)
		}
		if imgs, err := s.ImagesNamed(ctx, d, "mine", "p1", false); err != nil || len(imgs) != 1 || imgs[0].ID != priv {
			t.Errorf("by name for the owner: %v %v", imgs, err)
		}
		const up = "0f0e0d0c-0000-4000-8000-0000000000b2"
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return s.CreateImage(ctx, tx, &volume.Image{ID: up, Name: "upload", DiskFormat: "qcow2", ContainerFormat: "bare",
				Visibility: "private", Properties: map[string]string{"hw_disk_bus": "virtio"}}, "p1")
		}); err != nil {
			t.Fatal(err)
		}
		got, err := st.Get(ctx, d, up)
		if err != nil || got.Status != imagedb.StatusQueued || got.Owner != "p1" || got.DiskFormat != "qcow2" || got.Properties["hw_disk_bus"] != "virtio" {
			t.Errorf("uploaded image %+v %v", got, err)
		}
	})
}
