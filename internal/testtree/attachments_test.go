package testtree_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/up"
)

// TestVolumeAttachmentsInTheCell drives a compute cell's attachments
// through its handlers, as the API cell's Compute API will (that side is
// not here yet): attach_volume (a call) answers /dev/vdb, and again the
// same for a repeat; the host's hypervisor has the volume's file at
// /dev/vdb and the Block Storage API shows it in-use; detach_volume (a
// durable message) takes it off the host and the volume is available;
// attached again with delete_on_termination, the server's delete deletes
// it.
func TestVolumeAttachmentsInTheCell(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	ctx := context.Background()
	vc := tr.Volume(adminP)
	s, err := servers.Create(ctx, tr.Compute(adminP), servers.CreateOpts{Name: "vm", FlavorRef: "1", ImageRef: up.DefaultImageID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	in := settled(t, tr, s.ID)[0]
	if in.VMState != "active" {
		t.Fatalf("server %s", in.VMState)
	}
	cell := tr.Cells[0]
	vol, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1, Name: "data"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, vol.ID, "available")
	_, path := volumeCell(t, tr, vol.ID, false)

	attach := func(requestID, attachmentID string, dot bool) string {
		t.Helper()
		var out wire.AttachVolumeAnswer
		err := tr.API.Cells.Call(ctx, in.Cell, wire.MethodAttachVolume, requestID, &wire.AttachVolume{InstanceUUID: s.ID,
			VolumeID: vol.ID, AttachmentID: attachmentID, BDMUUID: "bdm-" + attachmentID, DeleteOnTermination: dot,
			UserID: "admin", ProjectID: "p"}, &out)
		if err != nil {
			t.Fatalf("attach_volume: %v", err)
		}
		return out.Device
	}
	disks := func(want map[string]string) {
		t.Helper()
		testpoll.Eventually(t, 30*time.Second, fmt.Sprintf("the hypervisor's disks %v", want), func() (bool, string) {
			got := cell.VolumeDisks(in.Host, s.ID)
			return len(got) == len(want) && got["/dev/vdb"] == want["/dev/vdb"], fmt.Sprintf("%v", got)
		})
	}
	if dev := attach("req-attach-1", "att-1", false); dev != "/dev/vdb" {
		t.Fatalf("attached at %q, want /dev/vdb", dev)
	}
	if dev := attach("req-attach-1", "att-1", false); dev != "/dev/vdb" {
		t.Fatalf("the repeat answered %q, want /dev/vdb", dev)
	}
	waitVolume(t, vc, vol.ID, "in-use")
	disks(map[string]string{"/dev/vdb": path})
	// Another attachment of the volume is refused by the cell.
	var out wire.AttachVolumeAnswer
	err = tr.API.Cells.Call(ctx, in.Cell, wire.MethodAttachVolume, "req-attach-x", &wire.AttachVolume{InstanceUUID: s.ID,
		VolumeID: vol.ID, AttachmentID: "att-x", BDMUUID: "bdm-x"}, &out)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeConflict || we.Message != wire.AttachReasonAlreadyAttached {
		t.Errorf("a second attachment: %v, want a conflict %s", err, wire.AttachReasonAlreadyAttached)
	}

	if err := tr.API.DB.InTx(ctx, func(tx *db.Tx) error {
		return tr.API.Cells.Send(ctx, tx, in.Cell, wire.MethodDetachVolume, "req-detach", &wire.DetachVolume{InstanceUUID: s.ID,
			VolumeID: vol.ID, UserID: "admin", ProjectID: "p"})
	}); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, vol.ID, "available")
	disks(map[string]string{})

	if dev := attach("req-attach-2", "att-2", true); dev != "/dev/vdb" {
		t.Fatalf("attached again at %q, want /dev/vdb", dev)
	}
	waitVolume(t, vc, vol.ID, "in-use")
	if err := servers.Delete(ctx, tr.Compute(adminP), s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, vc, vol.ID)
	if p := volumeFile(cell, vol.ID, false); p != "" {
		t.Errorf("the volume's file %s is still there", p)
	}
}
