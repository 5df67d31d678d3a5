package volume_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// The volume's cell in the move tests; the server's is cell.
const cellA = "api!region!cell2"

// peer is cell A's volume role as cell B reaches it: its Export handler,
// or nothing at all while down (a call that times out), or, with
// chunksDown, a begin answered and every chunk read timing out.
type peer struct {
	a          *env
	mu         sync.Mutex
	down       bool
	chunksDown bool
	begins     int
	calls      int
}

var _ volume.Peers = (*peer)(nil)

func (p *peer) ExportVolume(ctx context.Context, c, requestID string, req *wire.VolumeExport) (wire.VolumeExportAnswer, error) {
	p.mu.Lock()
	p.calls++
	if req.Begin {
		p.begins++
	}
	down := p.down || p.chunksDown && !req.Begin
	p.mu.Unlock()
	if c != cellA {
		return wire.VolumeExportAnswer{}, fmt.Errorf("volume_export to %s, want %s", c, cellA)
	}
	if down {
		return wire.VolumeExportAnswer{}, wire.Errorf(wire.CodeTimeout, "cell %q did not answer volume_export before the deadline", c)
	}
	out, err := p.a.m.Export(ctx, envelope(p.a.t, wire.MethodVolumeExport, requestID, req))
	if err != nil {
		return wire.VolumeExportAnswer{}, err
	}
	return out.(wire.VolumeExportAnswer), nil
}

func (p *peer) set(down, chunksDown bool) {
	p.mu.Lock()
	p.down, p.chunksDown = down, chunksDown
	p.mu.Unlock()
}

func (p *peer) counts() (calls, begins int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, p.begins
}

// moveEnvs are cell A (holding volume 1, with bytes) and cell B (cell,
// holding instance 1 on host h1), B reaching A through a peer.
type moveEnvs struct {
	a, b *env
	p    *peer
	vm   string
	data []patch
}

func newMoveEnvs(t *testing.T, d *db.DB) *moveEnvs {
	t.Helper()
	a := newEnv(t, dbtest.Open(t, "sqlite"))
	a.cellPath = cellA
	a.m = a.newManager()
	a.start()
	a.volumes(1)
	data := []patch{{0, pattern(4096, 1)}, {300 << 20, pattern(700<<10, 2)}}
	a.write(vid(1), data...)
	p := &peer{a: a}
	b := newEnv(t, d)
	b.peers = p
	b.m = b.newManager()
	return &moveEnvs{a: a, b: b, p: p, vm: b.instance(1, "h1", vmstate.Active), data: data}
}

// attach is the API cell's attach_volume to B of A's volume 1.
func (me *moveEnvs) attach(t *testing.T) {
	t.Helper()
	v := me.a.volume(vid(1))
	a, err := me.b.attachAnswer("req-attach", wire.AttachVolume{InstanceUUID: me.vm, VolumeID: vid(1), AttachmentID: aid(1),
		BDMUUID: bid(1), Move: &wire.VolumeMove{From: cellA, Version: v.Version, SizeGB: v.SizeGB, AvailabilityZone: "nova",
			TypeID: v.TypeID, TypeName: v.TypeName, ProjectID: v.ProjectID, UserID: v.UserID}})
	if err != nil || a.Device != "/dev/vdb" {
		t.Fatalf("attach of a volume of another cell: %q, %v; want /dev/vdb", a.Device, err)
	}
	// No state: the copy is still A's (the API cell reserves it).
	if a.Volume != nil {
		t.Errorf("attach of a volume that moves in answered the state %+v, want none", a.Volume)
	}
}

// dones are the volume_move_done B sent to A.
func (me *moveEnvs) dones(t *testing.T) []wire.VolumeMoveDone {
	t.Helper()
	me.b.rec.mu.Lock()
	defer me.b.rec.mu.Unlock()
	var out []wire.VolumeMoveDone
	for _, m := range me.b.rec.msgs {
		if m.Method != wire.MethodVolumeMoveDone {
			continue
		}
		if m.To != cellA {
			t.Errorf("volume_move_done sent to %s, want %s", m.To, cellA)
		}
		var d wire.VolumeMoveDone
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// deliver delivers a volume_move_done to A, as the cells service does.
func (me *moveEnvs) deliver(t *testing.T, d wire.VolumeMoveDone) {
	t.Helper()
	env := envelope(t, wire.MethodVolumeMoveDone, "req-attach", d)
	if err := me.a.d.InTx(context.Background(), func(tx *db.Tx) error { return me.a.m.MoveDone(context.Background(), tx, env) }); err != nil {
		t.Fatalf("volume_move_done: %v", err)
	}
}

// waitDone waits for B's one volume_move_done.
func (me *moveEnvs) waitDone(t *testing.T) wire.VolumeMoveDone {
	t.Helper()
	var d wire.VolumeMoveDone
	testpoll.Eventually(t, 30*time.Second, "volume_move_done sent", func() (bool, string) {
		ds := me.dones(t)
		if len(ds) > 1 {
			t.Fatalf("%d volume_move_done sent, want one", len(ds))
		}
		if len(ds) == 1 {
			d = ds[0]
		}
		return len(ds) == 1, "none yet"
	})
	return d
}

// gone checks that A has neither the volume's row nor its bytes.
func (me *moveEnvs) gone(t *testing.T) {
	t.Helper()
	if _, err := celldb.GetVolume(context.Background(), me.a.d, vid(1)); !errors.Is(err, celldb.ErrVolumeNotFound) {
		t.Errorf("A's row after the move: %v, want none", err)
	}
	if me.a.exists("volumes", vid(1)) {
		t.Error("A's file is still there after the move")
	}
}

// TestVolumeMove: B records the volume, the mapping and the attachment at
// once and answers the device, sending nothing (the API cell's copy is
// A's); its worker begins the move (A locks its row, pending move_out,
// sending nothing), claims the copy (a state with MovedFrom A at a
// version above A's), copies the bytes (the same bytes, holes kept),
// sends the end of the import with MovedFrom and volume_move_done to A,
// then attaches on the host: in-use. A, told, deletes its bytes and its
// row, sending nothing; told again, nothing happens.
func TestVolumeMove(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		me := newMoveEnvs(t, d)
		aSent := me.a.rec.count()
		aVersion := me.a.volume(vid(1)).Version
		me.attach(t)
		if n := me.b.rec.count(); n != 0 {
			t.Errorf("B's attach of a volume to move sent %d messages, want none", n)
		}
		if v := me.b.volume(vid(1)); v.Status != "attaching" {
			t.Errorf("B's row %+v, want attaching", v)
		}
		me.b.start()
		v := me.b.settled(vid(1), "in-use")
		me.b.expectVolume(vid(1), gib, me.data...)
		states := me.b.rec.volumeStates(t, vid(1))
		if len(states) < 3 || states[0].MovedFrom != cellA || states[0].Version <= aVersion+1 {
			t.Errorf("B's states %+v, want the claim first, with MovedFrom %s above A's version %d", states, cellA, aVersion)
		}
		for _, st := range states[:2] {
			if st.MovedFrom != cellA || st.Status != "attaching" || len(st.Attachments) != 1 {
				t.Errorf("B's state before the host attach %+v, want attaching with MovedFrom", st)
			}
		}
		if st := states[len(states)-1]; st.Status != "in-use" || st.Version != v.Version || st.Attachments[0].Device != "/dev/vdb" {
			t.Errorf("B's last state %+v, want in-use on /dev/vdb", st)
		}
		me.b.rec.checkVersions(t)
		if got := me.b.hosts.called(); len(got) != 1 || got[0] != "attach h1 /dev/vdb" {
			t.Errorf("host calls %v, want the attach of /dev/vdb", got)
		}
		// A stays locked (its bytes there) until told.
		if va := me.a.volume(vid(1)); va.Action != celldb.ActionMoveOut || !me.a.exists("volumes", vid(1)) {
			t.Errorf("A's row before volume_move_done: %+v", va)
		}
		done := me.waitDone(t)
		if done.Failed || done.MoveID != aid(1) || done.To != cell {
			t.Errorf("volume_move_done %+v", done)
		}
		me.deliver(t, done)
		me.gone(t)
		me.deliver(t, done) // a repeat: nothing
		if n := me.a.rec.count(); n != aSent {
			t.Errorf("A sent %d messages during the move, want none", n-aSent)
		}
	})
}

// TestVolumeMoveWaitsForTheOtherCell: while A does not answer, the
// volume stays attaching with its import pending and B tries again after
// a growing delay (the clock must move); once A answers, the move ends
// as usual.
func TestVolumeMoveWaitsForTheOtherCell(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		me := newMoveEnvs(t, d)
		me.p.set(true, false)
		me.attach(t)
		me.b.start()
		testpoll.Eventually(t, 30*time.Second, "a first try", func() (bool, string) {
			c, _ := me.p.counts()
			return c >= 1, "no call"
		})
		me.b.clock.Add(2 * time.Second)
		testpoll.Eventually(t, 30*time.Second, "a second try", func() (bool, string) {
			c, _ := me.p.counts()
			return c >= 2, "one call"
		})
		if v := me.b.volume(vid(1)); v.Status != "attaching" || v.Action != "import" {
			t.Errorf("B's row while A is down: %+v, want attaching, import pending", v)
		}
		if n := me.b.rec.count(); n != 0 {
			t.Errorf("B sent %d messages while A is down, want none", n)
		}
		me.p.set(false, false)
		me.b.clock.Add(time.Minute)
		me.b.settled(vid(1), "in-use")
		me.b.expectVolume(vid(1), gib, me.data...)
		me.deliver(t, me.waitDone(t))
		me.gone(t)
	})
}

// TestVolumeMoveAfterARestart: B stopped halfway (A locked, the copy
// claimed, no chunk read) does the import again when it starts again:
// the begin is a repeat (A's row unchanged), the claim is not made again.
func TestVolumeMoveAfterARestart(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		me := newMoveEnvs(t, d)
		me.p.set(false, true)
		me.attach(t)
		me.b.start()
		testpoll.Eventually(t, 30*time.Second, "the claim", func() (bool, string) {
			return len(me.b.rec.volumeStates(t, vid(1))) == 1, "not yet"
		})
		testpoll.Eventually(t, 30*time.Second, "a chunk read that timed out", func() (bool, string) {
			c, _ := me.p.counts()
			return c >= 2, "no chunk read yet"
		})
		locked := me.a.volume(vid(1))
		me.b.stop()
		me.p.set(false, false)
		me.b.start()
		me.b.settled(vid(1), "in-use")
		if _, begins := me.p.counts(); begins != 2 {
			t.Errorf("%d begins, want 2", begins)
		}
		me.b.expectVolume(vid(1), gib, me.data...)
		claims := 0
		for _, st := range me.b.rec.volumeStates(t, vid(1)) {
			if st.MovedFrom != "" && st.Status == "attaching" {
				claims++
			}
		}
		if claims != 2 { // the claim, and the import's end
			t.Errorf("%d states with MovedFrom, want the claim and the end", claims)
		}
		me.deliver(t, me.waitDone(t))
		me.gone(t)
		if locked.Action != celldb.ActionMoveOut {
			t.Errorf("A's row during the move %+v, want locked", locked)
		}
	})
}

// TestVolumeMoveRefused: A refuses a volume with a snapshot: B takes the
// attachment, the mapping and its row away (the instance action ends in
// error), sending nothing of the volume, and tells A, which sends its row
// at a version above B's with MovedFrom B (the API cell's copy, reserved
// attaching, gets A's state back). Told twice, A sends it again.
func TestVolumeMoveRefused(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		me := newMoveEnvs(t, d)
		me.a.act("req-snap", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		me.a.snapSettled(sid(1), "available")
		me.attach(t)
		me.b.start()
		done := me.waitDone(t)
		if !done.Failed || done.Fault != fmt.Sprintf("Volume %s must not have snapshots.", vid(1)) {
			t.Errorf("volume_move_done %+v, want failed for the snapshot", done)
		}
		if _, err := celldb.GetVolume(context.Background(), me.b.d, vid(1)); !errors.Is(err, celldb.ErrVolumeNotFound) {
			t.Errorf("B's row after the refusal: %v, want none", err)
		}
		if me.b.exists("volumes", vid(1)) {
			t.Error("B's file after the refusal")
		}
		if got := me.b.bdms(me.vm); len(got) != 0 {
			t.Errorf("B's mappings %v, want none", got)
		}
		if act, evs := me.b.events(me.vm, "req-attach"); act != "attach_volume" || len(evs) != 1 || evs[0] != "compute_attach_volume:Error" {
			t.Errorf("the attach's action %s %v, want its event in error", act, evs)
		}
		if n := len(me.b.rec.volumeStates(t, vid(1))); n != 0 {
			t.Errorf("B sent %d states of the volume, want none", n)
		}
		before := len(me.a.rec.volumeStates(t, vid(1)))
		me.deliver(t, done)
		states := me.a.rec.volumeStates(t, vid(1))
		if len(states) != before+1 {
			t.Fatalf("A sent %d states, want one", len(states)-before)
		}
		if st := states[len(states)-1]; st.Cell != cellA || st.MovedFrom != cell || st.Status != "available" || st.Version <= done.Version {
			t.Errorf("A's state %+v, want available from %s with MovedFrom %s above version %d", st, cellA, cell, done.Version)
		}
		if v := me.a.volume(vid(1)); v.Action != "" || !me.a.exists("volumes", vid(1)) {
			t.Errorf("A's row %+v, want it as it was", v)
		}
	})
}

// TestVolumeMoveInstanceGone: the server deleted while its volume is
// being imported: the attachment goes, the import ends with the volume
// available in B (A's copy goes when told), so it is in one cell.
func TestVolumeMoveInstanceGone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		me := newMoveEnvs(t, d)
		me.p.set(true, false)
		me.attach(t)
		me.b.start()
		testpoll.Eventually(t, 30*time.Second, "a first try", func() (bool, string) {
			c, _ := me.p.counts()
			return c >= 1, "no call"
		})
		ctx := context.Background()
		if err := me.b.hosts.drv.Destroy(ctx, "h1", me.vm); err != nil {
			t.Fatal(err)
		}
		if err := me.b.d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := celldb.Update(ctx, tx, me.vm, nil, celldb.Change{VMState: new(vmstate.Deleted), Deleted: true}, t0); err != nil {
				return err
			}
			return me.b.m.InstanceGone(ctx, tx, me.vm, "req-delete")
		}); err != nil {
			t.Fatal(err)
		}
		me.p.set(false, false)
		me.b.clock.Add(time.Minute)
		me.b.settled(vid(1), "available")
		st := last(t, "volume 1", me.b.rec.volumeStates(t, vid(1)))
		if st.MovedFrom != cellA || len(st.Attachments) != 0 {
			t.Errorf("B's last state %+v, want available with MovedFrom, no attachment", st)
		}
		me.b.expectVolume(vid(1), gib, me.data...)
		me.deliver(t, me.waitDone(t))
		me.gone(t)
	})
}

// TestVolumeLockedForAMove: an action on A's volume while it is locked for
// a move is dropped, sending nothing (the API cell's copy is B's, whose
// state replaces the status the API set), but a snapshot, made in error.
func TestVolumeLockedForAMove(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		me := newMoveEnvs(t, d)
		out, err := me.a.m.Export(context.Background(), envelope(t, wire.MethodVolumeExport, "req-attach",
			wire.VolumeExport{VolumeID: vid(1), MoveID: aid(1), To: cell, Begin: true}))
		if err != nil || out.(wire.VolumeExportAnswer).Refused != "" {
			t.Fatalf("begin: %+v %v", out, err)
		}
		sent := me.a.rec.count()
		me.a.act("req-delete", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeDelete})
		me.a.act("req-reset", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeResetStatus, Status: "error"})
		if n := me.a.rec.count(); n != sent {
			t.Errorf("actions on a locked volume sent %d messages, want none", n-sent)
		}
		if v := me.a.volume(vid(1)); v.Status != "available" || v.Action != celldb.ActionMoveOut {
			t.Errorf("locked volume after the actions: %+v", v)
		}
		me.a.act("req-snap", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		if st := last(t, "snapshot", me.a.rec.snapshotStates(t, sid(1))); st.Status != "error" {
			t.Errorf("snapshot of a locked volume %+v, want error", st)
		}
		// Another move is refused; the same one is a repeat.
		out, err = me.a.m.Export(context.Background(), envelope(t, wire.MethodVolumeExport, "req-other",
			wire.VolumeExport{VolumeID: vid(1), MoveID: aid(2), To: cell, Begin: true}))
		if err != nil || out.(wire.VolumeExportAnswer).Refused == "" {
			t.Errorf("begin of another move: %+v %v, want refused", out, err)
		}
		v := me.a.volume(vid(1)).Version
		out, err = me.a.m.Export(context.Background(), envelope(t, wire.MethodVolumeExport, "req-attach",
			wire.VolumeExport{VolumeID: vid(1), MoveID: aid(1), To: cell, Begin: true}))
		if err != nil || out.(wire.VolumeExportAnswer).Refused != "" || out.(wire.VolumeExportAnswer).Version != v {
			t.Errorf("begin again: %+v %v, want the same answer", out, err)
		}
	})
}
