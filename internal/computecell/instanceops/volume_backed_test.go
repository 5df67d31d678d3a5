package instanceops

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// TestRebuildKeepsAVolumeBackedInstanceWithoutImage: the rebuild of an
// instance booted from a volume (image_ref "") with its root volume's own
// image leaves image_ref "" (the API cell lets no other image through); an
// instance booted from an image takes the image the rebuild names.
func TestRebuildKeepsAVolumeBackedInstanceWithoutImage(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newShelveCell(t, d, 0)
		c.act("rebuild", "req-1", &wire.ActionParams{ImageRef: "img-2"})
		c.work()
		c.is("rebuilt from an image", vmstate.Active, "", vmstate.Running, "h1")
		if in := c.instance(); in.ImageRef != "img-2" {
			t.Errorf("image-backed instance: image_ref %q after the rebuild, want img-2", in.ImageRef)
		}
		if _, err := d.Exec(context.Background(), `UPDATE instances SET image_ref = '' WHERE uuid = ?`, c.uuid); err != nil {
			t.Fatal(err)
		}
		c.act("rebuild", "req-2", &wire.ActionParams{ImageRef: "img-vol"})
		c.work()
		c.is("rebuilt volume-backed", vmstate.Active, "", vmstate.Running, "h1")
		if in := c.instance(); in.ImageRef != "" {
			t.Errorf("volume-backed instance: image_ref %q after the rebuild, want none", in.ImageRef)
		}
		if got, want := c.vms.done(), []string{"rebuild@h1", "rebuild@h1"}; !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}
	})
}

// TestShelveWithoutImageOffloadsAtOnce: a shelve that names no image (the
// API cell's shelve of a volume-backed server, Nova's direct
// shelve_offload_instance) takes no snapshot and sends no snapshot_done,
// and offloads at once even with an offload time above zero; the unshelve
// with no image boots it on the host the scheduler picks.
func TestShelveWithoutImageOffloadsAtOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newShelveCell(t, d, time.Hour)
		c.act("shelve", "req-1", &wire.ActionParams{})
		c.work()
		c.is("shelved without image", vmstate.ShelvedOffloaded, "", vmstate.Shutdown, "")
		if s := c.rec.snapshots(); len(s) != 0 {
			t.Errorf("snapshot_done sent: %+v, want none", s)
		}
		c.act("unshelve", "req-2", nil)
		c.work()
		c.is("unshelved", vmstate.Active, "", vmstate.Running, "h2")
		if got, want := c.vms.done(), []string{"shelve@h1", "spawn@h2"}; !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}
	})
}
