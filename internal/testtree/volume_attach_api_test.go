package testtree_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// cellNode is the running node of cell path.
func cellNode(t *testing.T, tr *testtree.Tree, path string) *node.Node {
	t.Helper()
	for _, n := range tr.Cells {
		if n.Config().Cell == path {
			return n
		}
	}
	t.Fatalf("no cell %s", path)
	return nil
}

// volumeIn makes 1-GiB volumes until one is in cell (volumes spread over
// the cells by room) and returns it.
func volumeIn(t *testing.T, tr *testtree.Tree, vc *gophercloud.ServiceClient, cell string) *volumes.Volume {
	t.Helper()
	for range 20 {
		v, err := volumes.Create(context.Background(), vc, volumes.CreateOpts{Size: 1}, nil).Extract()
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

// TestVolumeAttachThroughTheAPIs: through the Compute API, as gophercloud
// and the openstack CLI do it, a server attaches a volume of its own cell
// (the device answered is the one its hypervisor has, backed by the
// volume's file; the volume is in-use with the server in Cinder's view and
// the server lists it), is refused one of another cell that cannot move
// (it has a snapshot: Nova's cross_az_attach=False text), one attached already, and the volume's
// delete while attached; a detach frees it; a volume attached with
// delete_on_termination goes with the server. While the server's cell is
// down an attach is a 503 naming the cell and a detach waits in the
// outbox (the volume shows detaching) until the cell is back.
func TestVolumeAttachThroughTheAPIs(t *testing.T) {
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
	// Cinder's local_to_instance hint puts a volume in the server's cell.
	local := func() *volumes.Volume {
		t.Helper()
		v, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1}, volumes.SchedulerHintOpts{LocalToInstance: s.ID}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		waitVolume(t, vc, v.ID, "available")
		if n, _ := volumeCell(t, tr, v.ID, false); n.Config().Cell != in.Cell {
			t.Fatalf("a volume local_to_instance %s is in %s, the server in %s", s.ID, n.Config().Cell, in.Cell)
		}
		return v
	}
	vol := local()
	// A volume of another cell with a snapshot cannot move to the
	// server's cell (volume_move_test.go): Nova's cross_az_attach 400.
	far := volumeIn(t, tr, vc, other)
	if sn, err := snapshots.Create(ctx, vc, snapshots.CreateOpts{VolumeID: far.ID}).Extract(); err != nil {
		t.Fatal(err)
	} else {
		waitSnapshot(t, vc, sn.ID, "available")
	}
	_, path := volumeCell(t, tr, vol.ID, false)

	att, err := volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: vol.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if att.Device != "/dev/vdb" || att.VolumeID != vol.ID || att.ServerID != s.ID {
		t.Errorf("attach answered %+v, want /dev/vdb of %s on %s", att, vol.ID, s.ID)
	}
	v := waitVolume(t, vc, vol.ID, "in-use")
	if len(v.Attachments) != 1 || v.Attachments[0].ServerID != s.ID || v.Attachments[0].Device != "/dev/vdb" {
		t.Errorf("Cinder's view of the attached volume: %+v", v.Attachments)
	}
	if got := cell.VolumeDisks(in.Host, s.ID); got["/dev/vdb"] != path {
		t.Errorf("the hypervisor's disks %v, want /dev/vdb on %s", got, path)
	}
	r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+s.ID, adminP, nil, "OpenStack-API-Version", "compute 2.79")
	if va, _ := r.Map(t)["server"].(map[string]any)["os-extended-volumes:volumes_attached"].([]any); len(va) != 1 ||
		va[0].(map[string]any)["id"] != vol.ID || va[0].(map[string]any)["delete_on_termination"] != false {
		t.Errorf("volumes_attached: %v", r.Map(t)["server"].(map[string]any)["os-extended-volumes:volumes_attached"])
	}
	pages, err := volumeattach.List(cc, s.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := volumeattach.ExtractVolumeAttachments(pages); len(list) != 1 || list[0].VolumeID != vol.ID {
		t.Errorf("os-volume_attachments: %+v", list)
	}

	for what, c := range map[string]struct {
		id, text string
	}{
		"a volume of another cell":  {far.ID, "are not in the same availability_zone"},
		"a volume attached already": {vol.ID, "already attached"},
	} {
		_, err := volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: c.id}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("attach of %s: %v, want 400 with %q", what, err, c.text)
		}
	}
	if err := volumes.Delete(ctx, vc, vol.ID, volumes.DeleteOpts{}).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("delete of an attached volume: %v, want 400", err)
	}

	if err := volumeattach.Delete(ctx, cc, s.ID, vol.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, vol.ID, "available")
	testpoll.Eventually(t, 30*time.Second, "the hypervisor lets the volume go", func() (bool, string) {
		return len(cell.VolumeDisks(in.Host, s.ID)) == 0, "still attached"
	})

	// While the server's cell is down: no attach; a detach waits.
	if _, err := volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: vol.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, vol.ID, "in-use")
	vol2 := local()
	idx := 0
	if tr.Cells[1] == cell {
		idx = 1
	}
	cfg := testtree.StopCell(t, cell)
	testpoll.Eventually(t, 60*time.Second, "an attach in the down cell refused with a 503", func() (bool, string) {
		_, err := volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: vol2.ID}).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusServiceUnavailable), errString(err)
	})
	if err := volumeattach.Delete(ctx, cc, s.ID, vol.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if v, err := volumes.Get(ctx, vc, vol.ID).Extract(); err != nil || v.Status != "detaching" {
		t.Fatalf("volume after a detach while its cell is down: %v %v, want detaching", v, err)
	}
	back := testtree.RestartCell(t, cfg)
	tr.Cells[idx] = back
	waitVolume(t, vc, vol.ID, "available")
	if v, err := volumes.Get(ctx, vc, vol2.ID).Extract(); err != nil || v.Status != "available" || len(v.Attachments) != 0 {
		t.Errorf("the volume whose attach the down cell never got: %+v %v, want available, unattached", v, err)
	}

	// delete_on_termination: the volume goes with the server.
	att, err = volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: vol.ID, DeleteOnTermination: true}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if att.DeleteOnTermination == nil || !*att.DeleteOnTermination {
		t.Errorf("attach at 2.79 answered delete_on_termination %v", att.DeleteOnTermination)
	}
	waitVolume(t, vc, vol.ID, "in-use")
	if err := servers.Delete(ctx, cc, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, vc, vol.ID)
	testpoll.Eventually(t, 30*time.Second, "the deleted volume's file gone", func() (bool, string) {
		return volumeFile(back, vol.ID, false) == "", "still there"
	})
	testpoll.Eventually(t, 30*time.Second, "server deleted", func() (bool, string) {
		_, err := servers.Get(ctx, cc, s.ID).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusNotFound), errString(err)
	})
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
