package testtree_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestRebuildReimagesBootVolume (compute API 2.93): a server booted from
// a volume made from image A and rebuilt with image B at 2.93 goes
// through REBUILD back to ACTIVE, and its boot volume — in its cell's
// backend — holds B's bytes byte for byte (then zeros, its size kept),
// in-use, with B's volume_image_metadata; the server's image stays "".
// At 2.92 another image is still Nova's 400; at 2.93 an image whose
// min_disk is above the volume's size is Nova's 400, and nothing changes
// (the server ACTIVE with no task, the volume A's bytes and metadata). A
// rebuild with the same image at 2.93 re-images the volume too (Nova
// passes reimage_boot_volume for every rebuild at 2.93), ending ACTIVE
// with the same bytes.
//
// The rebuild is a durable instance action of the server's cell: with the
// cell stopped right after a rebuild's 202 and started again, the server
// converges (ACTIVE, the new image's bytes and metadata). A cell process
// killed mid-copy (TestReimageBoot in package volume holds the copy there)
// finds the action pending and the volume downloading with its re-image
// pending, copies the image again from its start, and the rebuild, whose
// request the volume recorded, waits for that copy and goes on; nothing
// stays downloading.
func TestRebuildReimagesBootVolume(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	ctx := context.Background()
	cc, vc := tr.Compute(adminP), tr.Volume(adminP)
	cc.Microversion = "2.93"
	r := tr.Do(t, http.MethodGet, "/image/v2/images/"+up.DefaultImageID+"/file", adminP, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("image data: %s", r)
	}
	imageA := r.Body
	imageB := make([]byte, 700<<10)
	for i := range imageB {
		imageB[i] = byte(i*7 + 3)
	}
	idB := uploadImage(t, tr, adminP, imageB)

	s, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "bfv", FlavorRef: "1", Networks: "auto",
		BlockDevice: []servers.BlockDevice{{SourceType: servers.SourceImage, UUID: up.DefaultImageID,
			DestinationType: servers.DestinationVolume, VolumeSize: 1, BootIndex: 0, DeleteOnTermination: true}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitActive := func(what string) *servers.Server {
		t.Helper()
		var got *servers.Server
		testpoll.Eventually(t, 60*time.Second, what, func() (bool, string) {
			got, err = servers.Get(ctx, cc, s.ID).Extract()
			if err != nil {
				return false, err.Error()
			}
			if got.Status == "ERROR" {
				t.Fatalf("%s: the server went to ERROR: %+v", what, got.Fault)
			}
			return got.Status == "ACTIVE" && got.TaskState == "", got.Status + "/" + got.TaskState
		})
		return got
	}
	s = waitActive("the server ACTIVE")
	if len(s.AttachedVolumes) != 1 {
		t.Fatalf("volumes_attached %+v, want the boot volume", s.AttachedVolumes)
	}
	volID := s.AttachedVolumes[0].ID
	waitVolume(t, vc, volID, "in-use")
	cell, path := volumeCell(t, tr, volID, false)
	volumeBytes(t, path, imageA, gib)
	onHypervisor := func(what string) {
		t.Helper()
		in := settled(t, tr, s.ID)[0]
		testpoll.Eventually(t, 30*time.Second, what+": /dev/vda on the hypervisor", func() (bool, string) {
			d := cell.VolumeDisks(in.Host, s.ID)
			return d["/dev/vda"] == path, "disks " + mapString(d)
		})
	}
	onHypervisor("booted")

	rebuild := func(version, image string) *testtree.Response {
		t.Helper()
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+s.ID+"/action", adminP,
			map[string]any{"rebuild": map[string]any{"imageRef": image}}, "OpenStack-API-Version", "compute "+version)
	}
	unchanged := func(what string) {
		t.Helper()
		got, err := servers.Get(ctx, cc, s.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != "ACTIVE" || got.TaskState != "" {
			t.Errorf("%s: the server %s/%s, want ACTIVE with no task", what, got.Status, got.TaskState)
		}
		v, err := volumes.Get(ctx, vc, volID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != "in-use" || v.VolumeImageMetadata["image_id"] != up.DefaultImageID {
			t.Errorf("%s: the boot volume %s with image %q, want in-use with %s", what, v.Status, v.VolumeImageMetadata["image_id"], up.DefaultImageID)
		}
		volumeBytes(t, path, imageA, gib)
	}

	// 2.92: another image is refused, as below 2.93.
	if r := rebuild("2.92", idB); r.Status != http.StatusBadRequest ||
		r.Map(t)["badRequest"].(map[string]any)["message"] != fmt.Sprintf("Image %s is unacceptable: Unable to rebuild with a different image for a volume-backed server.", idB) {
		t.Errorf("rebuild at 2.92 with another image: %s, want Nova's 400", r)
	}
	unchanged("after the 2.92 refusal")

	// An image whose min_disk is above the volume's size.
	rc := tr.Do(t, http.MethodPost, "/image/v2/images", adminP, map[string]any{"name": "big", "disk_format": "raw",
		"container_format": "bare", "min_disk": 2})
	if rc.Status != http.StatusCreated {
		t.Fatalf("create image: %s", rc)
	}
	idBig := rc.Map(t)["id"].(string)
	if r := tr.Do(t, http.MethodPut, "/image/v2/images/"+idBig+"/file", adminP, []byte("big"), "Content-Type", "application/octet-stream"); r.Status != http.StatusNoContent {
		t.Fatalf("upload image: %s", r)
	}
	if r := rebuild("2.93", idBig); r.Status != http.StatusBadRequest ||
		r.Map(t)["badRequest"].(map[string]any)["message"] != "Volume is smaller than the minimum size specified in image metadata. Volume size is 1073741824 bytes, minimum size is 2147483648 bytes." {
		t.Errorf("rebuild with an image whose min_disk is above the volume: %s, want Nova's 400", r)
	}
	unchanged("after the min_disk refusal")

	// 2.93: the boot volume is re-imaged with B.
	if _, err := servers.Rebuild(ctx, cc, s.ID, servers.RebuildOpts{ImageRef: idB}).Extract(); err != nil {
		t.Fatal(err)
	}
	got := waitActive("the server ACTIVE after the rebuild")
	if len(got.Image) != 0 {
		t.Errorf("the rebuilt server's image %v, want \"\"", got.Image)
	}
	if raw := tr.Do(t, http.MethodGet, "/v2.1/servers/"+s.ID, adminP, nil).Map(t)["server"].(map[string]any)["image"]; raw != "" {
		t.Errorf("the rebuilt server's image %v, want \"\"", raw)
	}
	v := waitVolume(t, vc, volID, "in-use")
	if v.VolumeImageMetadata["image_id"] != idB || v.VolumeImageMetadata["size"] != fmt.Sprint(len(imageB)) || v.Size != 1 {
		t.Errorf("the re-imaged volume: size %d GiB, volume_image_metadata %v, want 1 GiB with image %s's", v.Size, v.VolumeImageMetadata, idB)
	}
	if len(v.Attachments) != 1 || v.Attachments[0].ServerID != s.ID || v.Attachments[0].Device != "/dev/vda" {
		t.Errorf("the re-imaged volume's attachments %+v, want the server's /dev/vda", v.Attachments)
	}
	volumeBytes(t, path, imageB, gib)
	onHypervisor("rebuilt")

	// The same image again at 2.93: re-imaged again (the volume's copy
	// goes through downloading and back: two versions more), same bytes.
	before := copyVersion(t, tr, volID)
	if _, err := servers.Rebuild(ctx, cc, s.ID, servers.RebuildOpts{ImageRef: idB}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitActive("the server ACTIVE after the same-image rebuild")
	testpoll.Eventually(t, 30*time.Second, "the volume re-imaged again", func() (bool, string) {
		after := copyVersion(t, tr, volID)
		return after >= before+2, fmt.Sprintf("version %d, was %d", after, before)
	})
	waitVolume(t, vc, volID, "in-use")
	volumeBytes(t, path, imageB, gib)

	// Back to A, the server's cell stopped right after the 202 — before
	// it took the action, or with the re-image under way — and started
	// again on the same database and backend: the action is queued (at
	// the API cell) or pending on the instance (in the cell), the
	// re-image pending on the volume; the restarted cell copies the
	// image again from its start, the rebuild waits for it, and the
	// server converges to ACTIVE with A's bytes and metadata (the volume
	// not left downloading).
	if _, err := servers.Rebuild(ctx, cc, s.ID, servers.RebuildOpts{ImageRef: up.DefaultImageID}).Extract(); err != nil {
		t.Fatal(err)
	}
	testtree.RestartCell(t, testtree.StopCell(t, tr.Cells[0]))
	waitActive("the server ACTIVE after its cell's restart mid-rebuild")
	v = waitVolume(t, vc, volID, "in-use")
	if v.VolumeImageMetadata["image_id"] != up.DefaultImageID {
		t.Errorf("after the restart: volume_image_metadata %v, want image %s's", v.VolumeImageMetadata, up.DefaultImageID)
	}
	volumeBytes(t, path, imageA, gib)
}

// copyVersion is the version of the API cell's copy of volume id.
func copyVersion(t *testing.T, tr *testtree.Tree, id string) int64 {
	t.Helper()
	v, err := voldb.Get(context.Background(), tr.API.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}
