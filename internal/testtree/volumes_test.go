package testtree_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	volumeapi "github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

const gib = 1 << 30

// volumeFile is the file of volume (or, with snap, snapshot) id in cell
// n's backend, "" when n has none.
func volumeFile(n *node.Node, id string, snap bool) string {
	dir := "volumes"
	if snap {
		dir = "snapshots"
	}
	p := filepath.Join(n.Config().Volume.Dir, dir, id+".raw")
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	return p
}

// volumeCell is the one compute cell whose backend holds volume id.
func volumeCell(t *testing.T, tr *testtree.Tree, id string, snap bool) (*node.Node, string) {
	t.Helper()
	var cell *node.Node
	var path string
	for _, n := range tr.Cells {
		if p := volumeFile(n, id, snap); p != "" {
			if cell != nil {
				t.Fatalf("%s is in two cells: %s and %s", id, cell.Config().Cell, n.Config().Cell)
			}
			cell, path = n, p
		}
	}
	if cell == nil {
		t.Fatalf("%s is in no cell's backend", id)
	}
	return cell, path
}

// volumeBytes checks that the file at path is size bytes: data, then
// zeros. Only the file's data extents are read (SEEK_DATA, SEEK_HOLE):
// holes read as zeros, so a sparse GiB costs nothing.
func volumeBytes(t *testing.T, path string, data []byte, size int64) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != size {
		t.Errorf("%s is %d bytes, want %d", path, st.Size(), size)
		return false
	}
	head := make([]byte, len(data))
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(head, data) {
		t.Errorf("%s does not start with the %d bytes expected", path, len(data))
		return false
	}
	const seekData, seekHole = 3, 4
	buf := make([]byte, 1<<20)
	for off := int64(len(data)); off < size; {
		start, err := f.Seek(off, seekData)
		if err != nil {
			break // no data after off (ENXIO): the rest is a hole
		}
		end, err := f.Seek(start, seekHole)
		if err != nil {
			t.Fatal(err)
		}
		for p := start; p < end; {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), end-p)], p)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			if slices.ContainsFunc(buf[:n], func(b byte) bool { return b != 0 }) {
				t.Errorf("%s has data after the %d bytes expected, at %d", path, len(data), p)
				return false
			}
			p += int64(n)
		}
		off = end
	}
	return true
}

// waitVolume polls until volume id has status want (failing at once on
// "error" unless it is wanted).
func waitVolume(t *testing.T, vc *gophercloud.ServiceClient, id, want string) *volumes.Volume {
	t.Helper()
	var v *volumes.Volume
	testpoll.Eventually(t, 60*time.Second, "volume "+id+" "+want, func() (bool, string) {
		var err error
		v, err = volumes.Get(context.Background(), vc, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		if v.Status == "error" && want != "error" {
			t.Fatalf("volume %s went to error", id)
		}
		return v.Status == want, v.Status
	})
	return v
}

// waitSnapshot polls until snapshot id has status want.
func waitSnapshot(t *testing.T, vc *gophercloud.ServiceClient, id, want string) *snapshots.Snapshot {
	t.Helper()
	var s *snapshots.Snapshot
	testpoll.Eventually(t, 60*time.Second, "snapshot "+id+" "+want, func() (bool, string) {
		var err error
		s, err = snapshots.Get(context.Background(), vc, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		return s.Status == want, s.Status
	})
	return s
}

// waitVolumeGone polls until volume id is 404.
func waitVolumeGone(t *testing.T, vc *gophercloud.ServiceClient, id string) {
	t.Helper()
	testpoll.Eventually(t, 60*time.Second, "volume "+id+" deleted", func() (bool, string) {
		_, err := volumes.Get(context.Background(), vc, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return true, ""
		}
		return false, "still there"
	})
}

// uploadImage makes an active raw image holding data.
func uploadImage(t *testing.T, tr *testtree.Tree, token string, data []byte) string {
	t.Helper()
	r := tr.Do(t, http.MethodPost, "/image/v2/images", token, map[string]any{"name": "vol-src", "disk_format": "raw", "container_format": "bare"})
	if r.Status != http.StatusCreated {
		t.Fatalf("create image: %s", r)
	}
	id := r.Map(t)["id"].(string)
	if r := tr.Do(t, http.MethodPut, "/image/v2/images/"+id+"/file", token, data, "Content-Type", "application/octet-stream"); r.Status != http.StatusNoContent {
		t.Fatalf("upload image: %s", r)
	}
	return id
}

// TestVolumesAcrossCells: volumes made in the compute cells hold real
// bytes in their cell's backend: blank, from an image (the image's bytes,
// then zeros), snapshotted, made from the snapshot and cloned (each in
// the source's cell, byte for byte), extended, uploaded to an image (the
// image's data is the volume's), deleted (a volume with snapshots only
// with cascade; the files go). os-services lists each cell's
// cinder-volume.
func TestVolumesAcrossCells(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	ctx := context.Background()
	demo := tr.MemberToken()
	vc := tr.Volume(demo)

	blank, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1, Name: "data"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if blank.Status != "creating" || blank.Size != 1 || blank.Name != "data" {
		t.Errorf("create answered status %q size %d name %q", blank.Status, blank.Size, blank.Name)
	}
	waitVolume(t, vc, blank.ID, "available")
	_, path := volumeCell(t, tr, blank.ID, false)
	volumeBytes(t, path, nil, gib)

	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	img := uploadImage(t, tr, demo, data)
	fromImage, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1, Name: "boot", ImageID: img}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	v := waitVolume(t, vc, fromImage.ID, "available")
	if v.Bootable != "true" {
		t.Errorf("volume from an image: bootable %q, want true", v.Bootable)
	}
	imgCell, imgPath := volumeCell(t, tr, fromImage.ID, false)
	volumeBytes(t, imgPath, data, gib)

	snap, err := snapshots.Create(ctx, vc, snapshots.CreateOpts{VolumeID: fromImage.ID, Name: "snap"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, vc, snap.ID, "available")
	snapCell, snapPath := volumeCell(t, tr, snap.ID, true)
	if snapCell != imgCell {
		t.Errorf("snapshot in %s, its volume in %s", snapCell.Config().Cell, imgCell.Config().Cell)
	}
	volumeBytes(t, snapPath, data, gib)
	fromSnap, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 2, SnapshotID: snap.ID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	clone, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1, SourceVolID: fromImage.ID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		size int64
	}{{fromSnap.ID, 2 * gib}, {clone.ID, gib}} {
		waitVolume(t, vc, c.id, "available")
		cell, p := volumeCell(t, tr, c.id, false)
		if cell != imgCell {
			t.Errorf("copy %s in %s, its source in %s", c.id, cell.Config().Cell, imgCell.Config().Cell)
		}
		volumeBytes(t, p, data, c.size)
	}

	if err := volumes.ExtendSize(ctx, vc, blank.ID, volumes.ExtendSizeOpts{NewSize: 3}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 60*time.Second, "extended to 3", func() (bool, string) {
		v, err := volumes.Get(ctx, vc, blank.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		return v.Status == "available" && v.Size == 3, v.Status
	})
	volumeBytes(t, path, nil, 3*gib)

	up, err := volumes.UploadImage(ctx, vc, clone.ID, volumes.UploadImageOpts{ImageName: "from-volume", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 120*time.Second, "uploaded image active", func() (bool, string) {
		r := tr.Do(t, http.MethodGet, "/image/v2/images/"+up.ImageID, demo, nil)
		if r.Status != http.StatusOK {
			return false, r.String()
		}
		st := r.Map(t)["status"].(string)
		return st == "active", st
	})
	im := tr.Do(t, http.MethodGet, "/image/v2/images/"+up.ImageID, demo, nil).Map(t)
	if im["size"] != float64(gib) || im["os_hash_value"] != paddedSum(data, gib) {
		t.Errorf("uploaded image: size %v, its data is not the volume's", im["size"])
	}
	waitVolume(t, vc, clone.ID, "available")

	// A volume with snapshots is deleted only with cascade.
	err = volumes.Delete(ctx, vc, fromImage.ID, volumes.DeleteOpts{}).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("delete of a volume with snapshots: %v, want 400", err)
	}
	if err := volumes.Delete(ctx, vc, fromImage.ID, volumes.DeleteOpts{Cascade: true}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{blank.ID, fromSnap.ID, clone.ID} {
		if err := volumes.Delete(ctx, vc, id, volumes.DeleteOpts{}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{fromImage.ID, blank.ID, fromSnap.ID, clone.ID} {
		waitVolumeGone(t, vc, id)
		for _, n := range tr.Cells {
			if p := volumeFile(n, id, false); p != "" {
				t.Errorf("deleted volume %s left %s", id, p)
			}
		}
	}
	for _, n := range tr.Cells {
		if p := volumeFile(n, snap.ID, true); p != "" {
			t.Errorf("cascade left the snapshot's file %s", p)
		}
	}

	pages, err := services.List(tr.Volume(tr.AdminToken()), services.ListOpts{Binary: "cinder-volume"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := services.ExtractServices(pages)
	if err != nil {
		t.Fatal(err)
	}
	up2 := 0
	for _, s := range svcs {
		if s.State == "up" && s.Status == "enabled" && s.Zone == "nova" {
			up2++
		}
	}
	if up2 != 2 {
		t.Errorf("os-services: %+v, want two cinder-volume up", svcs)
	}
}

// TestVolumeCellDown: while a compute cell is down, new volumes go to the
// other cell, and a delete of a volume in the down cell waits in the
// outbox (the copy shows it deleting) and is done when the cell is back:
// its file goes and the copy loses it.
func TestVolumeCellDown(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	ctx := context.Background()
	vc := tr.Volume(tr.MemberToken())
	var inSecond *volumes.Volume
	second := tr.Cells[1].Config().Cell
	// Volumes spread by free room: make them until one is in the second
	// cell (each takes a GiB of the first cell's room).
	for i := 0; inSecond == nil; i++ {
		if i == 20 {
			t.Fatal("20 volumes, none in the second cell")
		}
		v, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		waitVolume(t, vc, v.ID, "available")
		if cell, _ := volumeCell(t, tr, v.ID, false); cell.Config().Cell == second {
			inSecond = v
		}
	}
	_, path := volumeCell(t, tr, inSecond.ID, false)
	cfg := testtree.StopCell(t, tr.Cells[1])
	admin := tr.Volume(tr.AdminToken())
	downHost := volumeapi.VolumeHost(second)
	testpoll.Eventually(t, 60*time.Second, "the second cell's cinder-volume down", func() (bool, string) {
		pages, err := services.List(admin, services.ListOpts{Host: downHost}).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		svcs, err := services.ExtractServices(pages)
		if err != nil || len(svcs) != 1 {
			return false, fmt.Sprintf("%v %+v", err, svcs)
		}
		return svcs[0].State == "down", svcs[0].State
	})
	for range 2 {
		v, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		waitVolume(t, vc, v.ID, "available")
		if cell, _ := volumeCell(t, tr, v.ID, false); cell.Config().Cell == second {
			t.Fatalf("volume %s placed in the down cell", v.ID)
		}
	}
	if err := volumes.Delete(ctx, vc, inSecond.ID, volumes.DeleteOpts{}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if v, err := volumes.Get(ctx, vc, inSecond.ID).Extract(); err != nil || v.Status != "deleting" {
		t.Fatalf("volume of the down cell after delete: %v %v, want deleting", v, err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the down cell's file went before it was back: %v", err)
	}
	testtree.RestartCell(t, cfg)
	waitVolumeGone(t, vc, inSecond.ID)
	testpoll.Eventually(t, 30*time.Second, "the file deleted", func() (bool, string) {
		_, err := os.Stat(path)
		return errors.Is(err, fs.ErrNotExist), "still there"
	})
}

// paddedSum is the sha512 of data followed by zeros up to size: an image
// uploaded from a volume holds the volume's whole size.
func paddedSum(data []byte, size int64) string {
	h := sha512.New()
	h.Write(data)
	zeros := make([]byte, 1<<20)
	for left := size - int64(len(data)); left > 0; {
		n := min(left, int64(len(zeros)))
		h.Write(zeros[:n])
		left -= n
	}
	return hex.EncodeToString(h.Sum(nil))
}
