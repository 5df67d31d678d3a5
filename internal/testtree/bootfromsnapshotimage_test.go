package testtree_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestBootFromVolumeBackedSnapshot: a volume-backed server's createImage
// makes an active image holding its mapping (a snapshot of its boot
// volume); a server booted from that image (imageRef alone, as Nova)
// is ACTIVE and volume-backed: its boot volume is a new volume made from
// the snapshot, in the snapshot's cell, holding the snapshot's bytes,
// at /dev/vda on its hypervisor; the server keeps the image as its image
// (Nova's image_ref). Its own createImage is again a volume-backed one
// (told by its root attachment, not by an empty image_ref), and deleted
// it takes the volume, as the mapping's delete_on_termination says.
// (The fake driver writes nothing to a guest's disk: the bytes are the
// first image's, copied twice.)
func TestBootFromVolumeBackedSnapshot(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	ctx := context.Background()
	cc, vc := tr.Compute(adminP), tr.Volume(adminP)
	cc.Microversion = "2.79"
	r := tr.Do(t, http.MethodGet, "/image/v2/images/"+up.DefaultImageID+"/file", adminP, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("image data: %s", r)
	}
	data := r.Body

	active := func(id string) *servers.Server {
		t.Helper()
		var got *servers.Server
		testpoll.Eventually(t, 60*time.Second, id+" ACTIVE", func() (bool, string) {
			var err error
			got, err = servers.Get(ctx, cc, id).Extract()
			if err != nil {
				return false, err.Error()
			}
			if got.Status == "ERROR" {
				t.Fatalf("%s went to ERROR: %+v", id, got.Fault)
			}
			return got.Status == "ACTIVE", got.Status
		})
		return got
	}
	// snapshotImage is the createImage of server id: the image and the
	// snapshot of its boot volume its mapping names, once available.
	snapshotImage := func(id string) (string, map[string]any) {
		t.Helper()
		imgID, err := servers.CreateImage(ctx, cc, id, servers.CreateImageOpts{Name: "snap of " + id}).ExtractImageID()
		if err != nil {
			t.Fatal(err)
		}
		img := tr.Do(t, http.MethodGet, "/image/v2/images/"+imgID, adminP, nil).Map(t)
		if img["status"] != "active" || img["bdm_v2"] != "True" || img["root_device_name"] != "/dev/vda" {
			t.Fatalf("the volume-backed snapshot image: %v", img)
		}
		var mapping []map[string]any
		if err := json.Unmarshal([]byte(img["block_device_mapping"].(string)), &mapping); err != nil || len(mapping) != 1 {
			t.Fatalf("its mapping %v: %v", img["block_device_mapping"], err)
		}
		waitSnapshot(t, vc, mapping[0]["snapshot_id"].(string), "available")
		return imgID, mapping[0]
	}

	a, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "a", FlavorRef: "1", Networks: "auto",
		BlockDevice: []servers.BlockDevice{{SourceType: servers.SourceImage, UUID: up.DefaultImageID, DestinationType: servers.DestinationVolume,
			VolumeSize: 1, BootIndex: 0, DeleteOnTermination: true}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	active(a.ID)
	imgID, root := snapshotImage(a.ID)
	if root["boot_index"] != 0.0 || root["delete_on_termination"] != true || root["volume_size"] != 1.0 || root["source_type"] != "snapshot" {
		t.Fatalf("the root mapping: %v", root)
	}
	snapID := root["snapshot_id"].(string)
	snapCell, snapPath := volumeCell(t, tr, snapID, true)
	volumeBytes(t, snapPath, data, gib)

	b, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "b", FlavorRef: "1", Networks: "auto", ImageRef: imgID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	got := active(b.ID)
	if len(got.AttachedVolumes) != 1 || got.AttachedVolumes[0].ID == "" {
		t.Fatalf("b's volumes_attached %+v, want its boot volume", got.AttachedVolumes)
	}
	if img, _ := tr.Do(t, http.MethodGet, "/v2.1/servers/"+b.ID, adminP, nil).Map(t)["server"].(map[string]any)["image"].(map[string]any); img["id"] != imgID {
		t.Errorf("b's image %v, want %s", img, imgID)
	}
	volID := got.AttachedVolumes[0].ID
	v := waitVolume(t, vc, volID, "in-use")
	if v.SnapshotID != snapID || v.Size != 1 || v.Bootable != "true" || len(v.Attachments) != 1 || v.Attachments[0].Device != "/dev/vda" {
		t.Errorf("b's boot volume: snapshot %q size %d bootable %q attachments %+v", v.SnapshotID, v.Size, v.Bootable, v.Attachments)
	}
	cell, path := volumeCell(t, tr, volID, false)
	in := settled(t, tr, b.ID)[0]
	if cell != snapCell || in.Cell != snapCell.Config().Cell {
		t.Errorf("the snapshot in %s, b's volume in %s, b in %s", snapCell.Config().Cell, cell.Config().Cell, in.Cell)
	}
	volumeBytes(t, path, data, gib)
	testpoll.Eventually(t, 30*time.Second, "/dev/vda on the hypervisor", func() (bool, string) {
		d := cell.VolumeDisks(in.Host, b.ID)
		return d["/dev/vda"] == path, "disks " + mapString(d)
	})

	// b is volume-backed: its createImage snapshots its volume (that
	// snapshot deleted, as Cinder would not delete a volume that has one).
	_, broot := snapshotImage(b.ID)
	bsnap, _ := broot["snapshot_id"].(string)
	if bsnap == snapID || broot["boot_index"] != 0.0 {
		t.Errorf("b's snapshot mapping: %v", broot)
	}
	if err := snapshots.Delete(ctx, vc, bsnap).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 60*time.Second, "b's snapshot gone", func() (bool, string) {
		_, err := snapshots.Get(ctx, vc, bsnap).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusNotFound), errString(err)
	})

	// Deleted, b takes its boot volume (the mapping's
	// delete_on_termination) and the volume's file.
	if err := servers.Delete(ctx, cc, b.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, vc, volID)
	testpoll.Eventually(t, 30*time.Second, "b's boot volume's file gone", func() (bool, string) {
		_, err := os.Stat(path)
		return os.IsNotExist(err), "still there"
	})
}
