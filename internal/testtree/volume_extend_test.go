package testtree_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestExtendAttachedVolume: Cinder 3.42's online extend. Below 3.42 an
// in-use volume is refused with Cinder's text (it must be available);
// from 3.42 it goes extending, keeps its attachment (the hypervisor still
// has it at /dev/vdb, on the same file), and comes back in-use at the new
// size, its file grown on disk. While it is extending, a detach is
// refused (Cinder's begin_detaching wants in-use). A new size that is not
// larger is Cinder's InvalidInput before any status check.
func TestExtendAttachedVolume(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	ctx := context.Background()
	cc, vc := tr.Compute(adminP), tr.Volume(adminP)
	cc.Microversion = "2.79"
	s, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "vm", FlavorRef: "1", ImageRef: up.DefaultImageID, Networks: "auto"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	in := settled(t, tr, s.ID)[0]
	cell := cellNode(t, tr, in.Cell)
	vol := volumeIn(t, tr, vc, in.Cell)
	_, path := volumeCell(t, tr, vol.ID, false)
	if _, err := volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: vol.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, vol.ID, "in-use")

	extend := func(mv string, size int) error {
		vc.Microversion = mv
		defer func() { vc.Microversion = "" }()
		return volumes.ExtendSize(ctx, vc, vol.ID, volumes.ExtendSizeOpts{NewSize: size}).ExtractErr()
	}
	err = extend("3.41", 2)
	if want := "Invalid volume: Volume " + vol.ID + " status must be '{'status': 'available'}' to extend, currently in-use."; !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), want) {
		t.Errorf("extend of an in-use volume at 3.41: %v, want 400 %q", err, want)
	}
	err = extend("3.42", 1)
	if want := "New size for extend must be greater than current size. (current: 1, extended: 1)."; !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), want) {
		t.Errorf("extend to the same size: %v, want 400 %q", err, want)
	}
	if v, err := volumes.Get(ctx, vc, vol.ID).Extract(); err != nil || v.Status != "in-use" || v.Size != 1 {
		t.Fatalf("after refused extends: %+v %v, want in-use at 1 GiB", v, err)
	}

	if err := extend("3.42", 2); err != nil {
		t.Fatalf("extend of an in-use volume at 3.42: %v", err)
	}
	// The copy shows extending at once (or in-use again if the cell was
	// quick); a detach meanwhile is refused.
	if v, err := volumes.Get(ctx, vc, vol.ID).Extract(); err == nil && v.Status == "extending" {
		if len(v.Attachments) != 1 || v.Attachments[0].ServerID != s.ID {
			t.Errorf("an attached volume extending lost its attachment: %+v", v.Attachments)
		}
		if err := volumeattach.Delete(ctx, cc, s.ID, vol.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Errorf("detach while extending: %v, want 400", err)
		}
	}
	v := waitVolume(t, vc, vol.ID, "in-use")
	if v.Size != 2 || len(v.Attachments) != 1 || v.Attachments[0].ServerID != s.ID || v.Attachments[0].Device != "/dev/vdb" {
		t.Errorf("after the online extend: size %d, attachments %+v; want 2 GiB on %s at /dev/vdb", v.Size, v.Attachments, s.ID)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() != 2<<30 {
		t.Errorf("the volume's file after the extend: %v %v, want 2 GiB", fi, err)
	}
	if got := cell.VolumeDisks(in.Host, s.ID); got["/dev/vdb"] != path {
		t.Errorf("the hypervisor's disks after the extend: %v, want /dev/vdb on %s", got, path)
	}

	// It detaches as any in-use volume, and is extended available again.
	if err := volumeattach.Delete(ctx, cc, s.ID, vol.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, vol.ID, "available")
	if err := extend("3.42", 3); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 30*time.Second, "available at 3 GiB", func() (bool, string) {
		v, err := volumes.Get(ctx, vc, vol.ID).Extract()
		return err == nil && v.Status == "available" && v.Size == 3, errString(err)
	})
}
