package celldb_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestAttachmentRows: a mapping and an attachment are read back whole, as
// volume_update carries them; a second live mapping at an instance's
// device is refused, one at a device freed by a deleted mapping is not;
// the compare-and-swap on the pending work refuses a stale end; the
// pending attachments put their volume among those with work.
func TestAttachmentRows(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		inTx(t, d, func(tx *db.Tx) error {
			if _, err := celldb.InsertVolume(ctx, tx, volumeRow("v1", t0)); err != nil {
				return err
			}
			if err := celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: "b1", InstanceUUID: "i1", VolumeID: "v1", AttachmentID: "a1",
				DeviceName: "/dev/vdb", BootIndex: -1, SourceType: "volume", DestinationType: "volume", DeleteOnTermination: true,
				Tag: "db", VolumeSize: 2, CreatedAt: t0}); err != nil {
				return err
			}
			return celldb.InsertAttachment(ctx, tx, &celldb.VolumeAttachment{ID: "a1", VolumeID: "v1", InstanceUUID: "i1",
				Status: "attaching", Mode: "rw", Mountpoint: "/dev/vdb", Pending: "attach", RequestID: "req-1"})
		})
		err := d.InTx(ctx, func(tx *db.Tx) error {
			return celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: "b2", InstanceUUID: "i1", VolumeID: "v2", AttachmentID: "a2",
				DeviceName: "/dev/vdb", BootIndex: -1, SourceType: "volume", DestinationType: "volume", CreatedAt: t0})
		})
		if err == nil {
			t.Error("a second mapping at /dev/vdb of the instance was taken")
		}
		ids, err := celldb.VolumesWithPendingWork(ctx, d, 10)
		if err != nil || len(ids) != 1 || ids[0] != "v1" {
			t.Errorf("volumes with work %v, %v: want v1 (its create and its attach)", ids, err)
		}
		states, err := celldb.AttachmentStates(ctx, d, "v1", "v2")
		if err != nil {
			t.Fatal(err)
		}
		want := wire.AttachmentState{ID: "a1", InstanceUUID: "i1", Status: "attaching", Device: "/dev/vdb", Mode: "rw",
			BDMUUID: "b1", Tag: "db", DeleteOnTermination: true, BootIndex: -1}
		if len(states) != 1 || len(states["v1"]) != 1 || !reflect.DeepEqual(states["v1"][0], want) {
			t.Errorf("states %+v, want v1's %+v", states, want)
		}
		stale, attach := "req-0", "attach"
		err = d.InTx(ctx, func(tx *db.Tx) error {
			_, err := celldb.UpdateAttachment(ctx, tx, "a1", &attach, stale, celldb.AttachmentChange{ClearPending: true})
			return err
		})
		if !errors.Is(err, wire.ErrConflict) {
			t.Errorf("a stale end: %v, want a conflict", err)
		}
		inTx(t, d, func(tx *db.Tx) error {
			a, err := celldb.UpdateAttachment(ctx, tx, "a1", &attach, "req-1", celldb.AttachmentChange{Status: new("detached"),
				ClearPending: true, DetachedAt: &t0, Deleted: true})
			if err != nil {
				return err
			}
			if !a.Deleted || a.Pending != "" || a.RequestID != "req-1" || !a.DetachedAt.Equal(t0) {
				t.Errorf("attachment after its end %+v", a)
			}
			return celldb.DeleteBDMsOfAttachment(ctx, tx, "a1")
		})
		if states, err := celldb.AttachmentStates(ctx, d, "v1"); err != nil || len(states) != 0 {
			t.Errorf("states after the detach %+v, %v: want none", states, err)
		}
		if _, err := celldb.BDMOfAttachment(ctx, d, "a1"); !errors.Is(err, celldb.ErrAttachmentNotFound) {
			t.Errorf("the deleted mapping: %v, want not found", err)
		}
		// The device is free again; the deleted attachment stays readable.
		inTx(t, d, func(tx *db.Tx) error {
			return celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: "b3", InstanceUUID: "i1", VolumeID: "v1", AttachmentID: "a3",
				DeviceName: "/dev/vdb", BootIndex: -1, SourceType: "volume", DestinationType: "volume", CreatedAt: t0})
		})
		if a, err := celldb.GetAttachment(ctx, d, "a1"); err != nil || !a.Deleted || a.Mountpoint != "/dev/vdb" {
			t.Errorf("deleted attachment %+v, %v", a, err)
		}
		if _, err := celldb.GetAttachment(ctx, d, "nope"); !errors.Is(err, celldb.ErrAttachmentNotFound) {
			t.Errorf("unknown attachment: %v, want not found", err)
		}
	})
}

// TestAttachmentBackingAndHostAttachments: an attachment's backing
// (migration 14) is written and read back, and set by UpdateAttachment;
// the attachments without one are listed; HostAttachments lists those the
// VM holds (attached, detaching) by device, not one attaching, a
// deleted one nor one of the Block Storage API's (no mapping);
// SetBDMDeleteOnTermination reports a change only when the
// flag changes, and not_found for an attachment without a mapping.
func TestAttachmentBackingAndHostAttachments(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		inTx(t, d, func(tx *db.Tx) error {
			for _, a := range []celldb.VolumeAttachment{
				{ID: "a1", VolumeID: "v1", InstanceUUID: "i1", Status: "attached", Mode: "rw", Mountpoint: "/dev/vdc", Backing: "/v/1"},
				{ID: "a2", VolumeID: "v2", InstanceUUID: "i1", Status: "detaching", Mode: "rw", Mountpoint: "/dev/vdb"},
				{ID: "a3", VolumeID: "v3", InstanceUUID: "i1", Status: "attaching", Mode: "rw", Mountpoint: "/dev/vdd", Backing: "/v/3"},
				{ID: "a4", VolumeID: "v4", InstanceUUID: "i1", Status: "detached", Mode: "rw", Mountpoint: "/dev/vde", Deleted: true},
				// One of the Block Storage API's attachments naming the
				// instance: no mapping, and no hypervisor holds it.
				{ID: "a5", VolumeID: "v5", InstanceUUID: "i1", Status: "attached", Mode: "rw", Mountpoint: "na", Backing: "/v/5"},
			} {
				if err := celldb.InsertAttachment(ctx, tx, &a); err != nil {
					return err
				}
			}
			if err := celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: "b2", InstanceUUID: "i1", VolumeID: "v2", AttachmentID: "a2",
				DeviceName: "/dev/vdb", BootIndex: -1, SourceType: "volume", DestinationType: "volume", CreatedAt: t0}); err != nil {
				return err
			}
			return celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: "b1", InstanceUUID: "i1", VolumeID: "v1", AttachmentID: "a1",
				DeviceName: "/dev/vdc", BootIndex: -1, SourceType: "volume", DestinationType: "volume", CreatedAt: t0})
		})
		host, err := celldb.HostAttachments(ctx, d, "i1")
		if err != nil {
			t.Fatal(err)
		}
		if len(host) != 2 || host[0].ID != "a2" || host[1].ID != "a1" || host[1].Backing != "/v/1" || host[0].Backing != "" {
			t.Errorf("host attachments %+v, want a2 (/dev/vdb, no backing) then a1 (/dev/vdc, /v/1)", host)
		}
		none, err := celldb.AttachmentsWithoutBacking(ctx, d, 10)
		if err != nil || len(none) != 1 || none[0].ID != "a2" {
			t.Errorf("without backing %+v, %v; want a2", none, err)
		}
		p := "/v/2"
		inTx(t, d, func(tx *db.Tx) error {
			_, err := celldb.UpdateAttachment(ctx, tx, "a2", nil, "", celldb.AttachmentChange{Backing: &p})
			return err
		})
		if a, err := celldb.GetAttachment(ctx, d, "a2"); err != nil || a.Backing != p {
			t.Errorf("a2 %+v, %v; want backing %s", a, err, p)
		}
		var changed []bool
		inTx(t, d, func(tx *db.Tx) error {
			for _, dot := range []bool{true, true, false} {
				c, err := celldb.SetBDMDeleteOnTermination(ctx, tx, "a1", dot)
				if err != nil {
					return err
				}
				changed = append(changed, c)
			}
			return nil
		})
		if len(changed) != 3 || !changed[0] || changed[1] || !changed[2] {
			t.Errorf("changes %v, want true, false (a repeat), true", changed)
		}
		err = d.InTx(ctx, func(tx *db.Tx) error {
			_, err := celldb.SetBDMDeleteOnTermination(ctx, tx, "a3", true)
			return err
		})
		if !errors.Is(err, celldb.ErrAttachmentNotFound) {
			t.Errorf("an attachment without a mapping: %v, want not found", err)
		}
	})
}
