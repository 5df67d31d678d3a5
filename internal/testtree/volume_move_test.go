package testtree_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// volumeFromImageIn makes 1-GiB volumes from image until one is in cell
// and returns it.
func volumeFromImageIn(t *testing.T, tr *testtree.Tree, vc *gophercloud.ServiceClient, image, cell string) *volumes.Volume {
	t.Helper()
	for range 20 {
		v, err := volumes.Create(context.Background(), vc, volumes.CreateOpts{Size: 1, ImageID: image}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		waitVolume(t, vc, v.ID, "available")
		if n, _ := volumeCell(t, tr, v.ID, false); n.Config().Cell == cell {
			return v
		}
	}
	t.Fatalf("20 volumes, none in %s", cell)
	return nil
}

// TestVolumeMovesToTheServersCell: both compute cells present zone
// "nova", so a volume made with no hint may land in a cell other than the
// server's; its attach (as `openstack server add volume` does it) moves
// it to the server's cell first, byte for byte (its file in the server's
// cell, none left in its old one), then attaches it there: 200 with
// /dev/vdb, the hypervisor has it, Cinder shows it in-use with the
// server. Detached, it is available in its new cell. A volume with a
// snapshot does not move (Cinder's migration refuses it): today's 400,
// nothing changed.
//
// What the faults do (move.go): while the volume's old cell does not
// answer, the server's cell tries the import again with a growing delay
// and the volume stays attaching; a server's cell stopped halfway does
// the import again from its row on restart (the begin is idempotent by
// the attachment id); volume_move_done is a durable cast, so the old
// cell's row stays locked until it arrives, and a repeat finds no row
// and changes nothing; a server deleted during the import takes the
// attachment away, and the import ends with the volume available in the
// server's cell (the old cell's copy goes as for any move).
func TestVolumeMovesToTheServersCell(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	ctx := context.Background()
	cc, vc := tr.Compute(adminP), tr.Volume(adminP)
	cc.Microversion = "2.79"
	s, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "vm", FlavorRef: "1", ImageRef: up.DefaultImageID, Networks: "auto"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	in := settled(t, tr, s.ID)[0]
	if in.VMState != "active" {
		t.Fatalf("server %s", in.VMState)
	}
	cell := cellNode(t, tr, in.Cell)
	other := tr.Cells[0].Config().Cell
	if other == in.Cell {
		other = tr.Cells[1].Config().Cell
	}

	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	// A zero chunk in the middle: it travels as a hole.
	clear(data[1<<20 : 1<<20+512<<10])
	img := uploadImage(t, tr, adminP, data)
	vol := volumeFromImageIn(t, tr, vc, img, other)
	_, oldPath := volumeCell(t, tr, vol.ID, false)

	att, err := volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: vol.ID}).Extract()
	if err != nil {
		t.Fatalf("attach of a volume of the other cell: %v", err)
	}
	if att.Device != "/dev/vdb" || att.VolumeID != vol.ID || att.ServerID != s.ID {
		t.Errorf("attach answered %+v, want /dev/vdb of %s on %s", att, vol.ID, s.ID)
	}
	v := waitVolume(t, vc, vol.ID, "in-use")
	if len(v.Attachments) != 1 || v.Attachments[0].ServerID != s.ID || v.Attachments[0].Device != "/dev/vdb" {
		t.Errorf("Cinder's view of the moved, attached volume: %+v", v.Attachments)
	}
	now, path := volumeCell(t, tr, vol.ID, false)
	if now != cell {
		t.Fatalf("the attached volume is in %s, the server in %s", now.Config().Cell, in.Cell)
	}
	volumeBytes(t, path, data, gib)
	if volumeFile(cellNode(t, tr, other), vol.ID, false) != "" {
		t.Errorf("the old cell kept %s", oldPath)
	}
	if got := cell.VolumeDisks(in.Host, s.ID); got["/dev/vdb"] != path {
		t.Errorf("the hypervisor's disks %v, want /dev/vdb on %s", got, path)
	}

	if err := volumeattach.Delete(ctx, cc, s.ID, vol.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	v = waitVolume(t, vc, vol.ID, "available")
	if len(v.Attachments) != 0 {
		t.Errorf("detached volume's attachments: %+v", v.Attachments)
	}
	testpoll.Eventually(t, 30*time.Second, "the hypervisor lets the volume go", func() (bool, string) {
		return len(cell.VolumeDisks(in.Host, s.ID)) == 0, "still attached"
	})
	if n, _ := volumeCell(t, tr, vol.ID, false); n != cell {
		t.Errorf("the detached volume is in %s, want %s", n.Config().Cell, in.Cell)
	}

	// A volume with a snapshot stays where it is: Nova's 400.
	far := volumeIn(t, tr, vc, other)
	snap, err := snapshots.Create(ctx, vc, snapshots.CreateOpts{VolumeID: far.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, vc, snap.ID, "available")
	_, err = volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: far.ID}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "are not in the same availability_zone") {
		t.Errorf("attach of a volume of the other cell with a snapshot: %v, want 400 cross_az", err)
	}
	if v, err := volumes.Get(ctx, vc, far.ID).Extract(); err != nil || v.Status != "available" || len(v.Attachments) != 0 {
		t.Errorf("the volume with a snapshot after the refused attach: %+v %v", v, err)
	}
	if n, _ := volumeCell(t, tr, far.ID, false); n.Config().Cell != other {
		t.Errorf("the volume with a snapshot moved to %s", n.Config().Cell)
	}
}

// TestVolumeMoveWaitsForItsCell: the volume's cell is down when a server
// of the other cell attaches it: the attach is taken (200, the server's
// cell is up), the volume shows attaching while its cell is down, and
// once its cell is back the volume moves and is attached: in-use, in the
// server's cell only, its bytes with it. (A begin sent while the cell is
// down may wait in the brokers until it is back, or time out; then the
// server's cell tries again with a growing delay, which the volume
// package's TestVolumeMoveWaitsForTheOtherCell shows step by step.)
func TestVolumeMoveWaitsForItsCell(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1, CallTimeout: 3 * time.Second})
	ctx := context.Background()
	cc, vc := tr.Compute(adminP), tr.Volume(adminP)
	cc.Microversion = "2.79"
	s, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "vm", FlavorRef: "1", ImageRef: up.DefaultImageID, Networks: "auto"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	in := settled(t, tr, s.ID)[0]
	cell := cellNode(t, tr, in.Cell)
	idx := 0
	if tr.Cells[0] == cell {
		idx = 1
	}
	other := tr.Cells[idx]
	data := make([]byte, 1<<20+777)
	rand.Read(data)
	vol := volumeFromImageIn(t, tr, vc, uploadImage(t, tr, adminP, data), other.Config().Cell)

	cfg := testtree.StopCell(t, other)
	att, err := volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: vol.ID}).Extract()
	if err != nil || att.Device != "/dev/vdb" {
		t.Fatalf("attach while the volume's cell is down: %+v %v, want /dev/vdb", att, err)
	}
	if v, err := volumes.Get(ctx, vc, vol.ID).Extract(); err != nil || v.Status != "attaching" {
		t.Fatalf("volume while its cell is down: %+v %v, want attaching", v, err)
	}
	tr.Cells[idx] = testtree.RestartCell(t, cfg)
	testpoll.Eventually(t, 3*time.Minute, "volume "+vol.ID+" in-use", func() (bool, string) {
		v, err := volumes.Get(ctx, vc, vol.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		return v.Status == "in-use", v.Status
	})
	now, path := volumeCell(t, tr, vol.ID, false)
	if now != cell {
		t.Fatalf("the attached volume is in %s, the server in %s", now.Config().Cell, in.Cell)
	}
	volumeBytes(t, path, data, gib)
	if got := cell.VolumeDisks(in.Host, s.ID); got["/dev/vdb"] != path {
		t.Errorf("the hypervisor's disks %v, want /dev/vdb on %s", got, path)
	}
}
