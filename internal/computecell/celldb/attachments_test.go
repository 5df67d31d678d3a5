package celldb_test

import (
	"context"
	"errors"
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
		if len(states) != 1 || len(states["v1"]) != 1 || states["v1"][0] != want {
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
