package testtree_test

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestBootFromVolume: through the Compute API with gophercloud, a server
// booted from a new volume made from the image is ACTIVE with its boot
// volume at /dev/vda on its hypervisor, the volume (in the server's cell)
// holding the image's bytes and in-use, the server's image "" and its
// volume in volumes_attached; deleted, it takes the volume
// (delete_on_termination) and its file. A server booted from an existing
// bootable volume goes to that volume's cell; deleted without
// delete_on_termination, it leaves the volume available.
func TestBootFromVolume(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	ctx := context.Background()
	cc, vc := tr.Compute(adminP), tr.Volume(adminP)
	cc.Microversion = "2.79"
	r := tr.Do(t, http.MethodGet, "/image/v2/images/"+up.DefaultImageID+"/file", adminP, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("image data: %s", r)
	}
	image := r.Body

	boot := func(name string, bd servers.BlockDevice) *servers.Server {
		t.Helper()
		s, err := servers.Create(ctx, cc, servers.CreateOpts{Name: name, FlavorRef: "1", Networks: "auto",
			BlockDevice: []servers.BlockDevice{bd}}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		var got *servers.Server
		testpoll.Eventually(t, 60*time.Second, name+" ACTIVE", func() (bool, string) {
			got, err = servers.Get(ctx, cc, s.ID).Extract()
			if err != nil {
				return false, err.Error()
			}
			if got.Status == "ERROR" {
				t.Fatalf("%s went to ERROR: %+v", name, got.Fault)
			}
			return got.Status == "ACTIVE", got.Status
		})
		return got
	}
	attachedVolume := func(s *servers.Server) string {
		t.Helper()
		if len(s.AttachedVolumes) != 1 {
			t.Fatalf("server %s volumes_attached %+v, want one", s.ID, s.AttachedVolumes)
		}
		return s.AttachedVolumes[0].ID
	}

	s := boot("bfv", servers.BlockDevice{SourceType: servers.SourceImage, UUID: up.DefaultImageID, DestinationType: servers.DestinationVolume,
		VolumeSize: 1, BootIndex: 0, DeleteOnTermination: true})
	if img := tr.Do(t, http.MethodGet, "/v2.1/servers/"+s.ID, adminP, nil).Map(t)["server"].(map[string]any)["image"]; img != "" {
		t.Errorf("a volume-backed server's image: %v, want \"\"", img)
	}
	volID := attachedVolume(s)
	// As in Nova, a server seen ACTIVE has its volumes in-use already
	// (the spawn attaches them and its transaction sends their states up
	// before the instance's): no wait here.
	if v, err := volumes.Get(ctx, vc, volID).Extract(); err != nil || v.Status != "in-use" {
		t.Errorf("the boot volume of a server just seen ACTIVE: %v %v, want in-use", v, err)
	}
	v := waitVolume(t, vc, volID, "in-use")
	if v.Bootable != "true" || len(v.Attachments) != 1 || v.Attachments[0].Device != "/dev/vda" || v.Attachments[0].ServerID != s.ID {
		t.Errorf("the boot volume: bootable %q, attachments %+v", v.Bootable, v.Attachments)
	}
	cell, path := volumeCell(t, tr, volID, false)
	in := settled(t, tr, s.ID)[0]
	if cell.Config().Cell != in.Cell {
		t.Errorf("the boot volume is in %s, the server in %s", cell.Config().Cell, in.Cell)
	}
	volumeBytes(t, path, image, gib)
	testpoll.Eventually(t, 30*time.Second, "/dev/vda on the hypervisor", func() (bool, string) {
		d := cell.VolumeDisks(in.Host, s.ID)
		return d["/dev/vda"] == path, "disks " + mapString(d)
	})
	if err := servers.Delete(ctx, cc, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, vc, volID)
	testpoll.Eventually(t, 30*time.Second, "the boot volume's file gone", func() (bool, string) {
		_, err := os.Stat(path)
		return os.IsNotExist(err), "still there"
	})

	// An existing bootable volume: the server goes to its cell.
	bv, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1, ImageID: up.DefaultImageID, Name: "root"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, bv.ID, "available")
	bvCell, _ := volumeCell(t, tr, bv.ID, false)
	s2 := boot("bfv2", servers.BlockDevice{SourceType: servers.SourceVolume, UUID: bv.ID, DestinationType: servers.DestinationVolume, BootIndex: 0})
	if got := attachedVolume(s2); got != bv.ID {
		t.Errorf("volumes_attached %s, want %s", got, bv.ID)
	}
	if in := settled(t, tr, s2.ID)[0]; in.Cell != bvCell.Config().Cell {
		t.Errorf("a server booted from a volume of %s is in %s", bvCell.Config().Cell, in.Cell)
	}
	waitVolume(t, vc, bv.ID, "in-use")
	if err := servers.Delete(ctx, cc, s2.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 60*time.Second, "the server gone", func() (bool, string) {
		_, err := servers.Get(ctx, cc, s2.ID).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusNotFound), errString(err)
	})
	if v := waitVolume(t, vc, bv.ID, "available"); len(v.Attachments) != 0 {
		t.Errorf("the kept volume still has attachments %+v", v.Attachments)
	}
}

func mapString(m map[string]string) string {
	out := ""
	for k, v := range m {
		out += k + "=" + v + " "
	}
	return out
}
