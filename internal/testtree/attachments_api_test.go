package testtree_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/attachments"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/up"
)

// consumer is the id of an attachments API consumer (not a server of
// the tree: Cinder takes any UUID).
const consumer = "6f1f0a3e-6a55-4b7e-9d3a-1c2b3d4e5f60"

// TestAttachmentsAPIWrites drives Cinder's attachments API (3.27+) with
// gophercloud on a tree of two cells: a create without a connector
// reserves the volume (attachment reserved, mode "null", connection_info
// {}); an update with a connector answers the connection_info (the local
// file of the volume's cell) and the volume is attaching; os-complete
// makes it in-use and the attachment attached; another consumer's create
// is Cinder's 400; a delete makes it available again and answers the
// attachments left. The cell's attachment_write arriving twice (the same
// attachment id) writes nothing the second time. An attachment the
// Compute API made is not deleted here (Cinder's 409). While the volume's
// cell is down, a create is a 503 and nothing is written; the volume is
// as it was when the cell is back.
func TestAttachmentsAPIWrites(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	ctx := context.Background()
	vc := tr.Volume(adminP)
	vol, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1, Name: "data"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, vol.ID, "available")
	cell, path := volumeCell(t, tr, vol.ID, false)

	// Reserve.
	att, err := attachments.Create(ctx, vc, attachments.CreateOpts{VolumeUUID: vol.ID, InstanceUUID: consumer}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if att.Status != "reserved" || att.Instance != consumer || att.VolumeID != vol.ID || att.AttachMode != "null" ||
		att.ConnectionInfo == nil || len(att.ConnectionInfo) != 0 {
		t.Errorf("reserved attachment %+v", att)
	}
	if v, err := volumes.Get(ctx, vc, vol.ID).Extract(); err != nil || v.Status != "reserved" {
		t.Fatalf("volume after the reserve: %+v %v, want reserved", v, err)
	}

	// Connect.
	connector := map[string]any{"host": "consumer-1", "initiator": "iqn.1993-08.org.debian:01:cad181614cec",
		"mountpoint": "/dev/vdb", "platform": "x86_64", "os_type": "linux"}
	att, err = attachments.Update(ctx, vc, att.ID, attachments.UpdateOpts{Connector: connector}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	ci := att.ConnectionInfo
	if att.Status != "attaching" || att.AttachMode != "rw" || ci["driver_volume_type"] != "local" || ci["device_path"] != path ||
		ci["attachment_id"] != att.ID || ci["access_mode"] != "rw" || att.AttachedAt.IsZero() {
		t.Errorf("updated attachment %+v, want attaching with the local file %s", att, path)
	}
	if got, err := attachments.Get(ctx, vc, att.ID).Extract(); err != nil || got.Status != "attaching" ||
		got.ConnectionInfo["device_path"] != path {
		t.Errorf("the attachment read back: %+v %v", got, err)
	}
	if v, err := volumes.Get(ctx, vc, vol.ID).Extract(); err != nil || v.Status != "attaching" {
		t.Fatalf("volume after the update: %+v %v, want attaching", v, err)
	}

	// Complete.
	if err := attachments.Complete(ctx, vc, att.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	v, err := volumes.Get(ctx, vc, vol.ID).Extract()
	if err != nil || v.Status != "in-use" || len(v.Attachments) != 1 || v.Attachments[0].ServerID != consumer {
		t.Fatalf("volume after os-complete: %+v %v, want in-use, attached to %s", v, err, consumer)
	}
	if got, err := attachments.Get(ctx, vc, att.ID).Extract(); err != nil || got.Status != "attached" {
		t.Errorf("the completed attachment: %+v %v", got, err)
	}

	// Another consumer: Cinder's reserve refuses an in-use volume that
	// is not multiattach.
	_, err = attachments.Create(ctx, vc, attachments.CreateOpts{VolumeUUID: vol.ID, InstanceUUID: server2ID}).Extract()
	want := "Invalid volume: Volume " + vol.ID + " status must be available or downloading to reserve, but the current status is in-use."
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), want) {
		t.Errorf("a second consumer: %v, want 400 %q", err, want)
	}

	// The cell's attachment_write twice with the same id: the second
	// answers the state as it is, at the same version.
	call := func() wire.AttachmentWritten {
		t.Helper()
		var out wire.AttachmentWritten
		if err := tr.API.Cells.Call(ctx, cell.Config().Cell, wire.MethodAttachmentWrite, "req-twice", &wire.AttachmentWrite{
			Op: wire.AttachmentComplete, AttachmentID: att.ID, VolumeID: vol.ID}, &out); err != nil {
			t.Fatalf("attachment_write: %v", err)
		}
		return out
	}
	first, second := call(), call()
	if first.Volume.Version != second.Volume.Version || second.Volume.Status != "in-use" {
		t.Errorf("os-complete again: versions %d then %d, status %s; want nothing written", first.Volume.Version,
			second.Volume.Version, second.Volume.Status)
	}

	// Delete.
	// Cinder answers the attachments left (none).
	del := tr.Do(t, http.MethodDelete, "/volume/v3/p/attachments/"+att.ID, adminP, nil, "OpenStack-API-Version", "volume 3.27")
	if del.Status != http.StatusOK || strings.TrimSpace(string(del.Body)) != `{"attachments":[]}` {
		t.Fatalf("delete: %s", del)
	}
	if v := waitVolume(t, vc, vol.ID, "available"); len(v.Attachments) != 0 {
		t.Errorf("attachments after the delete: %+v", v.Attachments)
	}
	if _, err := attachments.Get(ctx, vc, att.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("the deleted attachment: %v, want 404", err)
	}

	// 3.54's mode, and a connector at create.
	vc54 := tr.Volume(adminP)
	vc54.Microversion = "3.54"
	att, err = attachments.Create(ctx, vc54, attachments.CreateOpts{VolumeUUID: vol.ID, InstanceUUID: consumer, Mode: "ro",
		Connector: connector}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if att.Status != "attaching" || att.AttachMode != "ro" || att.ConnectionInfo["access_mode"] != "ro" {
		t.Errorf("created with a connector and mode ro: %+v", att)
	}
	if err := attachments.Delete(ctx, vc, att.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, vol.ID, "available")

	// An attachment the Compute API made: Cinder's 409, the detach is
	// the Compute API's.
	cc := tr.Compute(adminP)
	cc.Microversion = "2.79"
	s, err := servers.Create(ctx, cc, servers.CreateOpts{Name: "vm", FlavorRef: "1", ImageRef: up.DefaultImageID, Networks: "auto"},
		nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	in := settled(t, tr, s.ID)[0]
	local, err := volumes.Create(ctx, vc, volumes.CreateOpts{Size: 1}, volumes.SchedulerHintOpts{LocalToInstance: s.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, local.ID, "available")
	if _, err := volumeattach.Create(ctx, cc, s.ID, volumeattach.CreateOpts{VolumeID: local.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, vc, local.ID, "in-use")
	pages, err := attachments.List(vc, attachments.ListOpts{VolumeID: local.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	novas, err := attachments.ExtractAttachments(pages)
	if err != nil || len(novas) != 1 {
		t.Fatalf("the Compute API's attachment: %+v %v", novas, err)
	}
	err = attachments.Delete(ctx, vc, novas[0].ID).ExtractErr()
	if want := "Detach volume from instance " + s.ID + " using the Compute API"; !gophercloud.ResponseCodeIs(err, http.StatusConflict) ||
		!strings.Contains(err.Error(), want) {
		t.Errorf("delete of the Compute API's attachment: %v, want 409 %q", err, want)
	}
	if got := cellNode(t, tr, in.Cell).VolumeDisks(in.Host, s.ID); len(got) != 1 {
		t.Errorf("the server's disks after the refused delete: %v", got)
	}

	// The volume's cell down: a 503, nothing written.
	idx := 0
	if tr.Cells[1] == cell {
		idx = 1
	}
	cfg := testtree.StopCell(t, cell)
	testpoll.Eventually(t, 60*time.Second, "a create in the down cell refused with a 503", func() (bool, string) {
		_, err := attachments.Create(ctx, vc, attachments.CreateOpts{VolumeUUID: vol.ID, InstanceUUID: consumer}).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusServiceUnavailable), errString(err)
	})
	if v, err := volumes.Get(ctx, vc, vol.ID).Extract(); err != nil || v.Status != "available" {
		t.Errorf("volume while its cell is down: %+v %v, want available", v, err)
	}
	tr.Cells[idx] = testtree.RestartCell(t, cfg)
	pages, err = attachments.List(vc, attachments.ListOpts{VolumeID: vol.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := attachments.ExtractAttachments(pages); len(left) != 0 {
		t.Errorf("attachments of the volume after its cell is back: %+v", left)
	}
	// Back: the cell answers again, and had nothing of the refused
	// creates (the volume is still available there).
	testpoll.Eventually(t, 60*time.Second, "a create once the cell is back", func() (bool, string) {
		a, err := attachments.Create(ctx, vc, attachments.CreateOpts{VolumeUUID: vol.ID, InstanceUUID: consumer}).Extract()
		return err == nil && a.Status == "reserved", errString(err)
	})
}

// server2ID is a second consumer.
const server2ID = "0b6f3c1e-2d4a-4c8e-9f10-2a3b4c5d6e7f"
