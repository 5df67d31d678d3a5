package voldb_test

import (
	"context"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestApplyMove: a state with MovedFrom the copy's cell applies when newer
// and makes its cell the copy's (with its attachments); from then on the
// old cell's states are ignored, its deletion too; a state with MovedFrom
// a cell that is not the copy's, or not newer, is ignored; a move back
// (the new cell gave the volume up) applies the same way.
func TestApplyMove(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1"})
		get := func() *voldb.Volume {
			t.Helper()
			v, err := voldb.Get(ctx, d, "v1")
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/a", Version: 3, Status: "available", SizeGB: 1}}, nil)
		att := wire.AttachmentState{ID: "att1", InstanceUUID: "i1", Status: "attaching", Device: "/dev/vdb", Mode: "rw", BootIndex: -1}
		for _, st := range []wire.VolumeState{
			{ID: "v1", Cell: "/b", MovedFrom: "/a", Version: 3, Status: "attaching", SizeGB: 1}, // not newer
			{ID: "v1", Cell: "/b", MovedFrom: "/c", Version: 9, Status: "attaching", SizeGB: 1}, // not from the copy's cell
			{ID: "v1", Cell: "/b", Version: 9, Status: "attaching", SizeGB: 1},                  // no move
		} {
			if a := apply(t, d, []wire.VolumeState{st}, nil); a[0].Changed {
				t.Errorf("state %+v applied", st)
			}
		}
		if a := apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/b", MovedFrom: "/a", Version: 5, Status: "attaching", SizeGB: 1,
			Attachments: []wire.AttachmentState{att}}}, nil); !a[0].Changed {
			t.Fatal("the move's claim not applied")
		}
		if v := get(); v.Cell != "/b" || v.Version != 5 || v.Status != "attaching" || len(v.Attachments) != 1 || v.Attachments[0].ID != "att1" {
			t.Fatalf("after the claim: %+v", v)
		}
		// The old cell's states, its deletion too, are ignored now.
		for _, st := range []wire.VolumeState{
			{ID: "v1", Cell: "/a", Version: 4, Status: "available", SizeGB: 1},
			{ID: "v1", Cell: "/a", Version: 4, Deleted: true},
		} {
			if a := apply(t, d, []wire.VolumeState{st}, nil); a[0].Changed {
				t.Errorf("old cell's state %+v applied", st)
			}
		}
		// The new cell's states apply as usual.
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/b", Version: 6, Status: "in-use", SizeGB: 1,
			Attachments: []wire.AttachmentState{att}}}, nil)
		if v := get(); v.Cell != "/b" || v.Status != "in-use" {
			t.Fatalf("after the new cell's state: %+v", v)
		}
		// A move back.
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/a", MovedFrom: "/b", Version: 7, Status: "available", SizeGB: 1}}, nil)
		if v := get(); v.Cell != "/a" || v.Version != 7 || v.Status != "available" || len(v.Attachments) != 0 {
			t.Fatalf("after the move back: %+v", v)
		}
	})
}
