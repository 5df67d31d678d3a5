package compute

import (
	"context"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestVolumeAttachMoves: a volume of another cell in the server's zone,
// available with no snapshot: the server's cell is asked to attach it
// with the move (its cell, version, size, zone, type, owner): 200 with
// the device; the copy is reserved (attaching, its cell and version
// kept) only once the cell has answered (a reservation written before
// and lost with a killed API process would never be replaced). The
// cell's refusal (it does not serve the volume's storage zone) is Nova's
// cross_az 400, the copy unchanged. A
// volume with a
// snapshot, or not available, is not moved: the cross_az 400, the cell
// not asked, the copy unchanged.
func TestVolumeAttachMoves(t *testing.T) {
	e := newVAEnv(t, dbtest.Open(t, "sqlite"))
	ctx := context.Background()
	post := func(vol string) vaResp { return e.do(demo, "POST", vaPath, "2.1", attachBody(vol)) }
	// vaFar moves to the server's zone (still in another cell).
	e.sql(`UPDATE volumes SET availability_zone = 'az1', volume_type_id = 't1', volume_type_name = 'fast' WHERE id = ?`, vaFar)
	get := func() *voldb.Volume {
		t.Helper()
		v, err := voldb.Get(ctx, e.d, vaFar)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	crossAZ := "Invalid volume: Instance " + vaServer + " and volume " + vaFar +
		" are not in the same availability_zone. Instance is in az1. Volume is in az1"

	// Refused by the server's cell: nothing changed.
	var seen string
	e.caller.mu.Lock()
	e.caller.answer = func(*wire.AttachVolume) (string, error) {
		seen = get().Status
		return "", wire.Errorf(wire.CodeConflict, "%s", wire.AttachReasonVolumeZone)
	}
	e.caller.mu.Unlock()
	if r := post(vaFar); r.code != 400 || r.msg() != crossAZ {
		t.Errorf("attach refused by the cell: %d %q, want 400 %q", r.code, r.msg(), crossAZ)
	}
	if v := get(); seen != "available" || v.Status != "available" || v.Version != e.ver[vaFar] {
		t.Errorf("copy while asked %q, after the refusal %+v: want available at version %d throughout", seen, v, e.ver[vaFar])
	}

	e.caller.mu.Lock()
	e.caller.answer = func(*wire.AttachVolume) (string, error) { return "/dev/vdb", nil }
	e.caller.mu.Unlock()
	r := post(vaFar)
	if r.code != 200 || r.body["volumeAttachment"].(map[string]any)["device"] != "/dev/vdb" {
		t.Fatalf("attach of a volume to move: %d %s", r.code, r.raw)
	}
	req, target, _ := e.caller.last()
	want := wire.VolumeMove{From: "api!cell2", Version: e.ver[vaFar], SizeGB: 1, AvailabilityZone: "az1", TypeID: "t1",
		TypeName: "fast", ProjectID: "demo", UserID: "demo"}
	if target != vaCell || req.Move == nil || *req.Move != want {
		t.Errorf("asked %s with move %+v, want %s with %+v", target, req.Move, vaCell, want)
	}
	if v := get(); v.Status != "attaching" || v.Cell != "api!cell2" || v.Version != e.ver[vaFar] {
		t.Errorf("copy after the attach %+v, want reserved attaching, its cell and version kept", v)
	}
	// A second attach while it moves: Cinder's reserve refusal.
	if r := post(vaFar); r.code != 400 {
		t.Errorf("attach of a volume being moved: %d %q, want 400", r.code, r.msg())
	}

	// Not movable: a snapshot, or not available.
	e.cellSays(vaFar, "api!cell2", "available")
	if err := e.d.InTx(ctx, func(tx *db.Tx) error {
		return voldb.CreateSnapshot(ctx, tx, &voldb.Snapshot{ID: "s1", VolumeID: vaFar, ProjectID: "demo", UserID: "demo",
			SizeGB: 1, Status: "available", Cell: "api!cell2", CreatedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	_, _, calls := e.caller.last()
	if r := post(vaFar); r.code != 400 || r.msg() != crossAZ {
		t.Errorf("attach of a volume with a snapshot: %d %q, want 400 %q", r.code, r.msg(), crossAZ)
	}
	e.sql(`UPDATE volume_snapshots SET deleted = 1 WHERE id = 's1'`)
	e.cellSays(vaFar, "api!cell2", "extending")
	if r := post(vaFar); r.code != 400 || r.msg() != crossAZ {
		t.Errorf("attach of a volume extending: %d %q, want 400 %q", r.code, r.msg(), crossAZ)
	}
	if _, _, n := e.caller.last(); n != calls {
		t.Errorf("the cell was asked %d times for volumes that cannot move", n-calls)
	}
	if v := get(); v.Status != "extending" {
		t.Errorf("copy %+v, want unchanged", v)
	}
}
