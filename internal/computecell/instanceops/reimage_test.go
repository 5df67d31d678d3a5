package instanceops

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// bootVolumes is the volume role as a volume-backed rebuild reaches it:
// refuse refuses the re-image (Cinder's API check), fault ends it in
// failure; otherwise it is done at the first look.
type bootVolumes struct {
	mu      sync.Mutex
	refuse  string
	fault   string
	asked   []volume.ReimageRequest
	watched int
}

func (b *bootVolumes) ReimageBoot(_ context.Context, _ *db.Tx, r volume.ReimageRequest) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refuse != "" {
		return wire.Errorf(wire.CodeInvalid, "%s", b.refuse)
	}
	b.asked = append(b.asked, r)
	return nil
}

func (b *bootVolumes) BootReimage(_ context.Context, _ celldb.Querier, _, _ string) (volume.ReimageStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.watched++
	return volume.ReimageStatus{Done: true, Fault: b.fault}, nil
}

// volumeBacked makes the shelve cell's instance volume-backed (no
// image_ref) and gives its operations the volume role bv.
func (c *shelveCell) volumeBacked(bv *bootVolumes) {
	c.t.Helper()
	if _, err := c.d.Exec(context.Background(), `UPDATE instances SET image_ref = '' WHERE uuid = ?`, c.uuid); err != nil {
		c.t.Fatal(err)
	}
	c.o.cfg.BootVolumes = bv
}

var reimageB = &wire.ActionParams{ImageRef: "img-b", Reimage: &wire.ReimageImage{Size: 100, Metadata: map[string]string{"image_id": "img-b"}}}

// TestRebuildReimagesTheBootVolume: a 2.93 rebuild of a volume-backed
// instance powers it off, detaches its volumes from the host, has the
// volume role re-image its boot volume with the image (its size,
// min_disk and metadata passed on), then goes through
// rebuild_block_device_mapping and rebuild_spawning (each sent up) to
// ACTIVE, keeping image_ref "". A rebuild resumed in rebuild_spawning
// (the process died after the re-image) only spawns.
func TestRebuildReimagesTheBootVolume(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newShelveCell(t, d, 0)
		bv := &bootVolumes{}
		c.volumeBacked(bv)
		c.act("rebuild", "req-1", reimageB)
		c.work()
		c.is("rebuilt", vmstate.Active, "", vmstate.Running, "h1")
		if in := c.instance(); in.ImageRef != "" {
			t.Errorf("image_ref %q after the rebuild, want none", in.ImageRef)
		}
		if len(bv.asked) != 1 || bv.asked[0].ImageID != "img-b" || bv.asked[0].ImageSize != 100 || bv.asked[0].RequestID != "req-1" ||
			bv.asked[0].InstanceUUID != c.uuid || bv.asked[0].ImageMetadata["image_id"] != "img-b" {
			t.Errorf("re-images asked for %+v, want img-b's for req-1", bv.asked)
		}
		var tasks []string
		for _, u := range c.rec.updates() {
			tasks = append(tasks, u.TaskState)
		}
		if want := []string{"rebuild_block_device_mapping", "rebuild_spawning", ""}; !slices.Equal(tasks, want) {
			t.Errorf("task states sent %q, want %q", tasks, want)
		}
		if got, want := c.vms.done(), []string{"power_off@h1", "rebuild@h1"}; !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}

		// Resumed past the re-image: the spawn only.
		c.act("rebuild", "req-2", reimageB)
		spawning := taskRebuildSpawning
		if err := d.InTx(context.Background(), func(tx *db.Tx) error {
			return c.o.state.Step(context.Background(), tx, c.uuid, nil, celldb.Change{TaskState: &spawning})
		}); err != nil {
			t.Fatal(err)
		}
		c.work()
		c.is("resumed", vmstate.Active, "", vmstate.Running, "h1")
		if len(bv.asked) != 1 {
			t.Errorf("a resumed rebuild past the re-image asked again: %+v", bv.asked)
		}
		if got, want := c.vms.done(), []string{"power_off@h1", "rebuild@h1", "rebuild@h1"}; !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}
	})
}

// TestRebuildReimageFails: a re-image refused by the volume role (an
// image larger than the volume: Cinder's check) or whose copy fails puts
// the instance in ERROR with no task state and Nova's fault (its
// manager's BuildAbortException), the action's event in error; the
// instance keeps image_ref "".
func TestRebuildReimageFails(t *testing.T) {
	for _, c := range []struct {
		name string
		bv   *bootVolumes
	}{
		{"refused", &bootVolumes{refuse: "Invalid input received: Size of specified image 2GB is larger than volume size 1GB."}},
		{"copy failed", &bootVolumes{fault: "reading image img-b at 0: not found"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
				cell := newShelveCell(t, d, 0)
				cell.volumeBacked(c.bv)
				cell.act("rebuild", "req-1", reimageB)
				cell.work()
				cell.is("after the failure", vmstate.Error, "", vmstate.Shutdown, "h1")
				in := cell.instance()
				want := "Build of instance " + cell.uuid + " aborted: Failed to rebuild volume backed instance."
				if in.Fault == nil || in.Fault.Code != 500 || in.Fault.Message != want {
					t.Errorf("fault %+v, want 500 %q", in.Fault, want)
				}
				if in.ImageRef != "" {
					t.Errorf("image_ref %q, want none", in.ImageRef)
				}
				acts, err := celldb.ListActions(context.Background(), d, cell.uuid, "req-1")
				if err != nil || len(acts) != 1 || len(acts[0].Events) != 1 || acts[0].Events[0].Result != "Error" ||
					!strings.Contains(acts[0].Events[0].Traceback, "image") {
					t.Errorf("actions %+v (%v), want the rebuild's event in error", acts, err)
				}
			})
		})
	}
}
