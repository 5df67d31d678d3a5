package volume_test

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestCreateBlank makes a blank volume: the API cell hears of it at
// version 1 (creating, with this cell) and then at version 2 (available),
// and its bytes are all zero.
func TestCreateBlank(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		v := e.settled(vid(1), "available")
		if v.Version != 2 || v.SizeGB != 1 || v.AvailabilityZone != "nova" {
			t.Errorf("row %+v, want version 2, 1 GiB, zone nova", v)
		}
		states := e.rec.volumeStates(t, vid(1))
		if len(states) != 2 || states[0].Status != "creating" || states[0].Version != 1 ||
			states[1].Status != "available" || states[1].Version != 2 || states[1].SizeGB != 1 {
			t.Errorf("states sent %+v, want creating at 1 then available at 2", states)
		}
		e.expectVolume(vid(1), gib)
		e.rec.checkVersions(t)
	})
}

// TestCreateFromImage makes a volume from an image read through
// image_read in chunks of at most wire.ImageChunkSize: the volume holds
// the image's bytes, then zeros.
func TestCreateFromImage(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		// Three chunks and a bit, the second all zero.
		img := slices.Concat(pattern(wire.ImageChunkSize, 3), make([]byte, wire.ImageChunkSize), pattern(wire.ImageChunkSize+12345, 9))
		e.images.data["img-1"] = img
		spec := blank(vid(1), 1)
		spec.ImageID, spec.ImageSize = "img-1", int64(len(img))
		e.create("req-1", spec)
		e.settled(vid(1), "available")
		e.expectVolume(vid(1), gib, patch{0, img})
		e.images.mu.Lock()
		reads := slices.Clone(e.images.reads)
		e.images.mu.Unlock()
		if len(reads) != 4 || slices.Max(reads) > wire.ImageChunkSize {
			t.Errorf("image read in %v, want 4 chunks of at most %d", reads, wire.ImageChunkSize)
		}
		e.rec.checkVersions(t)
	})
}

// TestSnapshotThenVolumesFromSnapshotAndVolume writes a volume, snapshots
// it, writes it again, then makes a (larger) volume from the snapshot and
// a clone of the volume: each holds the bytes of its source when it was
// copied.
func TestSnapshotThenVolumesFromSnapshotAndVolume(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		before := []patch{{0, pattern(5000, 1)}, {gib - 300, pattern(300, 2)}}
		e.write(vid(1), before...)
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(1), CreatedAt: t0})
		s := e.snapSettled(sid(1), "available")
		if s.SizeGB != 1 || s.Progress != "100%" || s.VolumeID != vid(1) {
			t.Errorf("snapshot %+v, want 1 GiB, 100%%, of %s", s, vid(1))
		}
		if st := e.rec.snapshotStates(t, sid(1)); len(st) != 2 || st[0].Status != "creating" || st[1].Status != "available" {
			t.Errorf("snapshot states %+v, want creating then available", st)
		}
		after := append(slices.Clone(before), patch{1 << 20, pattern(70000, 3)})
		e.write(vid(1), after[2])

		fromSnap := blank(vid(2), 2)
		fromSnap.SnapshotID = sid(1)
		e.create("req-3", fromSnap)
		clone := blank(vid(3), 1)
		clone.SourceVolumeID = vid(1)
		e.create("req-4", clone)
		e.settled(vid(2), "available")
		e.settled(vid(3), "available")
		e.expectVolume(vid(2), 2*gib, before...)
		e.expectVolume(vid(3), gib, after...)
		e.rec.checkVersions(t)
	})
}

// TestCreateFromASourceNotAvailable: a volume asked from a snapshot the
// cell does not have, or smaller than its source, is recorded in error at
// once, and nothing is made.
func TestCreateFromASourceNotAvailable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 2))
		e.settled(vid(1), "available")
		s := blank(vid(2), 1)
		s.SnapshotID = sid(9)
		e.create("req-2", s)
		c := blank(vid(3), 1)
		c.SourceVolumeID = vid(1)
		e.create("req-3", c)
		for _, id := range []string{vid(2), vid(3)} {
			v := e.volume(id)
			if v.Status != "error" || v.Action != "" || v.Fault == "" || v.Version != 1 {
				t.Errorf("volume %s: %+v, want error at version 1 with a fault and nothing pending", id, v)
			}
			if st := last(t, id, e.rec.volumeStates(t, id)); st.Status != "error" || st.Cell != cell {
				t.Errorf("volume %s sent %+v, want error in %s", id, st, cell)
			}
			if e.exists("volumes", id) {
				t.Errorf("volume %s has bytes", id)
			}
		}
	})
}

// TestExtend grows a volume, keeping its bytes; an extend to a size not
// larger is refused with the row as it is, at a new version.
func TestExtend(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		ps := []patch{{0, pattern(4096, 4)}, {gib - 1, []byte{0xEE}}}
		e.write(vid(1), ps...)
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 2})
		v := e.settled(vid(1), "available")
		if v.SizeGB != 2 {
			t.Errorf("size %d, want 2", v.SizeGB)
		}
		e.expectVolume(vid(1), 2*gib, ps...)
		st := e.rec.volumeStates(t, vid(1))
		if n := len(st); n != 4 || st[2].Status != "extending" || st[3].Status != "available" || st[3].SizeGB != 2 {
			t.Errorf("states %+v, want creating, available, extending, available at 2 GiB", st)
		}

		e.act("req-3", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 2})
		got := last(t, vid(1), e.rec.volumeStates(t, vid(1)))
		if got.Status != "available" || got.SizeGB != 2 || got.Version != v.Version+1 {
			t.Errorf("refused extend answered %+v, want the row (available, 2 GiB) at version %d", got, v.Version+1)
		}
		e.rec.checkVersions(t)
	})
}

// TestDelete deletes a volume: its bytes go, its row stays marked deleted,
// and the API cell hears of a deletion from this cell.
func TestDelete(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeDelete})
		v := e.settled(vid(1), "deleted")
		if !v.Deleted || e.exists("volumes", vid(1)) {
			t.Errorf("row deleted %v, file there %v: want the row marked deleted and no file", v.Deleted, e.exists("volumes", vid(1)))
		}
		st := e.rec.volumeStates(t, vid(1))
		if got := last(t, vid(1), st); !got.Deleted || got.Cell != cell || got.Version != 4 || st[2].Status != "deleting" {
			t.Errorf("states %+v, want deleting then a deletion at version 4", st)
		}
		// A repeat changes nothing and sends nothing; another delete of
		// it (another request) has its deletion sent again as it is.
		n := e.rec.count()
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeDelete})
		if e.rec.count() != n {
			t.Errorf("a repeated delete sent %d messages", e.rec.count()-n)
		}
		e.act("req-9", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeDelete})
		st = e.rec.volumeStates(t, vid(1))
		if e.rec.count() != n+1 || !last(t, vid(1), st).Deleted || last(t, vid(1), st).Version != 4 || e.volume(vid(1)).Version != 4 {
			t.Errorf("a delete of a deleted volume sent %+v, want its deletion again at version 4", last(t, vid(1), st))
		}
		e.rec.checkVersions(t)
	})
}

// TestDeleteWithSnapshots: a delete of a volume with snapshots is refused
// (the row is sent as it is, the snapshot stays); with cascade the
// snapshots go first, then the volume.
func TestDeleteWithSnapshots(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		for i := 1; i <= 2; i++ {
			e.act("req-s"+sid(i), wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(i)})
			e.snapSettled(sid(i), "available")
		}
		before := e.volume(vid(1))
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeDelete})
		v := e.volume(vid(1))
		if v.Status != "available" || v.Action != "" || v.Deleted || v.Version != before.Version+1 {
			t.Errorf("after a refused delete the row is %+v, want available at version %d", v, before.Version+1)
		}
		if got := last(t, vid(1), e.rec.volumeStates(t, vid(1))); got.Status != "available" || got.Version != v.Version {
			t.Errorf("refused delete answered %+v, want the row as it is", got)
		}
		if !e.exists("snapshots", sid(1)) || !e.exists("volumes", vid(1)) {
			t.Error("a refused delete removed bytes")
		}

		e.act("req-3", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeDelete, Cascade: true})
		e.settled(vid(1), "deleted")
		for i := 1; i <= 2; i++ {
			s := e.snapshot(sid(i))
			if !s.Deleted || s.Status != "deleted" || e.exists("snapshots", sid(i)) {
				t.Errorf("snapshot %s after a cascade delete: %+v, file there %v", sid(i), s, e.exists("snapshots", sid(i)))
			}
			if st := last(t, sid(i), e.rec.snapshotStates(t, sid(i))); !st.Deleted {
				t.Errorf("snapshot %s: last state sent %+v, want its deletion", sid(i), st)
			}
		}
		if e.exists("volumes", vid(1)) {
			t.Error("the volume's file is still there")
		}
		e.rec.checkVersions(t)
	})
}

// TestSnapshotDelete deletes a snapshot; a snapshot the cell does not have
// is answered with a deletion at version 1.
func TestSnapshotDelete(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		e.snapSettled(sid(1), "available")
		e.act("req-3", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotDelete, SnapshotID: sid(1)})
		s := e.snapSettled(sid(1), "deleted")
		if !s.Deleted || e.exists("snapshots", sid(1)) {
			t.Errorf("snapshot %+v, file there %v; want it deleted", s, e.exists("snapshots", sid(1)))
		}
		e.act("req-4", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotDelete, SnapshotID: sid(7)})
		if st := last(t, sid(7), e.rec.snapshotStates(t, sid(7))); !st.Deleted || st.Version != 1 || st.Cell != cell {
			t.Errorf("unknown snapshot's delete answered %+v, want a deletion at version 1", st)
		}
		e.rec.checkVersions(t)
	})
}

// TestUpload uploads a volume to an image: the image_write calls begin,
// carry the chunks that are not all zero, and end with the size; put
// together they are the volume's bytes. The volume is available again.
func TestUpload(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		// Patches in three chunks (one across a chunk boundary).
		ps := []patch{{100, pattern(1000, 5)}, {3*wire.ImageChunkSize - 10, pattern(20, 6)}, {gib - 1, []byte{1}}}
		e.write(vid(1), ps...)
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeUploadImage, ImageID: "img-up"})
		v := e.settled(vid(1), "available")
		if v.Fault != "" {
			t.Errorf("fault %q", v.Fault)
		}
		ws := e.images.written()
		if len(ws) < 2 || !ws[0].Begin || ws[0].Offset != 0 || !ws[len(ws)-1].Final || ws[len(ws)-1].Size != gib {
			t.Fatalf("writes begin %+v, end %+v: want a begin at 0 and a final of %d bytes", ws[0], ws[len(ws)-1], gib)
		}
		data := ws[1 : len(ws)-1]
		if len(data) != 4 {
			t.Errorf("%d chunks written, want the 4 that are not all zero", len(data))
		}
		img := &patchReader{size: gib}
		for _, w := range data {
			if w.ImageID != "img-up" || w.VolumeID != vid(1) || len(w.Data) == 0 || len(w.Data) > wire.ImageChunkSize {
				t.Errorf("write at %d of %d bytes to %s from %s", w.Offset, len(w.Data), w.ImageID, w.VolumeID)
			}
			img.ps = append(img.ps, patch{w.Offset, w.Data})
		}
		expectBytes(t, "image", img, gib, ps...)
		if st := e.rec.volumeStates(t, vid(1)); st[2].Status != "uploading" || last(t, vid(1), st).Status != "available" {
			t.Errorf("states %+v, want uploading then available", st)
		}
		e.rec.checkVersions(t)
	})
}

// TestUploadImageGone: an image deleted during its upload stops the
// upload; the volume is available again, with no fault.
func TestUploadImageGone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		e.write(vid(1), patch{0, pattern(10, 1)}, patch{5 * wire.ImageChunkSize, pattern(10, 1)})
		e.images.goneAt = 2
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeUploadImage, ImageID: "img-up"})
		v := e.settled(vid(1), "available")
		if ws := e.images.written(); len(ws) != 2 || ws[1].Final || v.Fault != "" {
			t.Errorf("%d writes (last %+v), fault %q: want the upload to stop at the Gone, no fault", len(ws), ws[len(ws)-1], v.Fault)
		}
	})
}

// TestUploadFailure: an upload whose image_write fails tells the image
// store it failed (which deletes the image) and puts the volume back to
// available, with the fault.
func TestUploadFailure(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		e.write(vid(1), patch{0, pattern(10, 1)})
		e.images.failData = true
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeUploadImage, ImageID: "img-up"})
		v := e.settled(vid(1), "available")
		ws := e.images.written()
		if v.Fault == "" || !last(t, "writes", ws).Failed || last(t, "writes", ws).ImageID != "img-up" {
			t.Errorf("fault %q, last write %+v: want a fault and a Failed write", v.Fault, last(t, "writes", ws))
		}
		e.rec.checkVersions(t)
	})
}

// patchReader reads size bytes: the patches, zero elsewhere (an image
// put together from its image_write calls).
type patchReader struct {
	size, off int64
	ps        []patch
}

func (r *patchReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-r.off))
	clear(p[:n])
	for _, q := range r.ps {
		lo, hi := max(q.off, r.off), min(q.off+int64(len(q.data)), r.off+int64(n))
		if lo < hi {
			copy(p[lo-r.off:hi-r.off], q.data[lo-q.off:hi-q.off])
		}
	}
	r.off += int64(n)
	return n, nil
}

// TestRepeatsChangeNothing delivers volume_create and volume_action again
// after they were done: no row changes, nothing is sent. The cell knows a
// volume's action by the request of the last one it accepted or refused
// (a redelivered message is stopped before by the cells service's inbox):
// the repeat of an older one is checked afresh.
func TestRepeatsChangeNothing(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		e.snapSettled(sid(1), "available")
		e.act("req-3", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 2})
		e.settled(vid(1), "available")
		e.act("req-4", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotDelete, SnapshotID: sid(1)})
		e.snapSettled(sid(1), "deleted")
		repeat := func(what string, again func()) {
			t.Helper()
			v, s, n := e.volume(vid(1)), e.snapshot(sid(1)), e.rec.count()
			again()
			if got := e.volume(vid(1)); got.Version != v.Version || got.Status != v.Status || got.SizeGB != v.SizeGB {
				t.Errorf("%s changed the volume: %+v, was %+v", what, got, v)
			}
			if got := e.snapshot(sid(1)); got.Version != s.Version || got.Status != s.Status {
				t.Errorf("%s changed the snapshot: %+v, was %+v", what, got, s)
			}
			if e.rec.count() != n {
				t.Errorf("%s sent %d messages, want none", what, e.rec.count()-n)
			}
		}
		repeat("volume_create again", func() { e.create("req-1", blank(vid(1), 1)) })
		repeat("snapshot_create again", func() {
			e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		})
		repeat("extend again", func() { e.act("req-3", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 2}) })
		repeat("snapshot_delete again", func() {
			e.act("req-4", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotDelete, SnapshotID: sid(1)})
		})

		// A refused action (a shrink), then its repeat.
		e.act("req-5", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 1})
		repeat("a refused extend again", func() {
			e.act("req-5", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 1})
		})
		// The repeat of an older action is refused with the row as it is:
		// its status and size do not change.
		v := e.volume(vid(1))
		e.act("req-3", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 2})
		if got := e.volume(vid(1)); got.Status != v.Status || got.SizeGB != v.SizeGB || got.Action != "" {
			t.Errorf("an older extend again changed the volume: %+v, was %+v", got, v)
		}
		e.rec.checkVersions(t)
	})
}

// TestRefusedActionsAnswerWithTheRow checks actions the cell's row does
// not allow, on a manager whose worker is not running (the volume stays
// creating): each is answered with the row as it is at a new version, and
// nothing is left pending but the creation.
func TestRefusedActionsAnswerWithTheRow(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.create("req-1", blank(vid(1), 1))
		acts := []wire.VolumeAction{
			{Action: wire.VolumeExtend, SizeGB: 2},
			{Action: wire.VolumeDelete},
			{Action: wire.VolumeUploadImage, ImageID: "img"},
		}
		for i, a := range acts {
			a.VolumeID = vid(1)
			e.act("req-r"+string(rune('a'+i)), a)
			v := e.volume(vid(1))
			got := last(t, vid(1), e.rec.volumeStates(t, vid(1)))
			if v.Version != int64(2+i) || v.Action != "create" || v.Status != "creating" ||
				got.Version != v.Version || got.Status != "creating" {
				t.Errorf("%s refused: row %+v, sent %+v; want creating, the create pending, version %d", a.Action, v, got, 2+i)
			}
		}
		// A snapshot of a volume that is not available is made in error.
		e.act("req-s", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		s := e.snapshot(sid(1))
		if st := last(t, sid(1), e.rec.snapshotStates(t, sid(1))); s.Status != "error" || s.Pending != "" || st.Status != "error" || st.Version != 1 {
			t.Errorf("refused snapshot: row %+v, sent %+v; want error at version 1", s, st)
		}
		// A volume the cell does not have: a delete is answered with a
		// deletion at version 1, a snapshot with the snapshot in error at
		// version 1, anything else dropped.
		e.act("req-z", wire.VolumeAction{VolumeID: vid(9), Action: wire.SnapshotCreate, SnapshotID: sid(9)})
		if st := last(t, sid(9), e.rec.snapshotStates(t, sid(9))); st.Status != "error" || st.Version != 1 || st.Cell != cell || st.VolumeID != vid(9) {
			t.Errorf("snapshot of an unknown volume answered %+v, want error at version 1", st)
		}
		n := e.rec.count()
		e.act("req-x", wire.VolumeAction{VolumeID: vid(9), Action: wire.VolumeExtend, SizeGB: 5})
		if e.rec.count() != n {
			t.Error("an extend of an unknown volume sent something")
		}
		e.act("req-y", wire.VolumeAction{VolumeID: vid(9), Action: wire.VolumeDelete})
		if st := last(t, vid(9), e.rec.volumeStates(t, vid(9))); !st.Deleted || st.Version != 1 || st.Cell != cell {
			t.Errorf("unknown volume's delete answered %+v, want a deletion at version 1 from %s", st, cell)
		}
		e.rec.checkVersions(t)
	})
}

// TestResetStatus sets a volume's and a snapshot's status, and nothing
// else; a reset to the status it has changes nothing.
func TestResetStatus(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		e.act("req-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		e.snapSettled(sid(1), "available")
		e.act("req-3", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeResetStatus, Status: "error"})
		e.act("req-4", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeResetStatus, SnapshotID: sid(1), Status: "error"})
		if v := e.volume(vid(1)); v.Status != "error" || last(t, vid(1), e.rec.volumeStates(t, vid(1))).Status != "error" {
			t.Errorf("volume %+v, want error, sent", v)
		}
		if s := e.snapshot(sid(1)); s.Status != "error" || last(t, sid(1), e.rec.snapshotStates(t, sid(1))).Status != "error" {
			t.Errorf("snapshot %+v, want error, sent", s)
		}
		n := e.rec.count()
		e.act("req-5", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeResetStatus, Status: "error"})
		if e.rec.count() != n {
			t.Error("a reset to the same status sent something")
		}
		e.rec.checkVersions(t)
	})
}

// TestRestartFinishesPendingWork: a manager that stops after the handlers
// committed and before its worker ran leaves the rows pending; a new
// manager on the same database finishes them. A create whose bytes were
// made before the crash (ErrExists) and a delete whose bytes were gone
// (ErrNotFound) count as done.
func TestRestartFinishesPendingWork(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-0", blank(vid(4), 1))
		e.settled(vid(4), "available")
		if err := e.m.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		e.m = e.newManager() // not started: its handlers run, its worker does not
		e.create("req-1", blank(vid(1), 1))
		e.create("req-2", blank(vid(2), 1))
		e.act("req-3", wire.VolumeAction{VolumeID: vid(4), Action: wire.VolumeDelete})
		if v := e.volume(vid(1)); v.Action != "create" || v.Status != "creating" {
			t.Fatalf("volume before the restart %+v, want its create pending", v)
		}
		// The crash came after the backend made vid(2) and deleted vid(4).
		if err := e.b.Create(context.Background(), vid(2), 1); err != nil {
			t.Fatal(err)
		}
		if err := e.b.Delete(context.Background(), vid(4)); err != nil {
			t.Fatal(err)
		}
		e.restart()
		e.settled(vid(1), "available")
		e.settled(vid(2), "available")
		e.settled(vid(4), "deleted")
		e.expectVolume(vid(1), gib)
		e.expectVolume(vid(2), gib)
		e.rec.checkVersions(t)
	})
}

// TestShutdownHalfwayLeavesTheWorkPending: a manager stopped while its
// worker reads an image for a volume leaves the volume creating, its
// create pending and no bytes; a new manager makes it.
func TestShutdownHalfwayLeavesTheWorkPending(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		img := pattern(wire.ImageChunkSize+10, 7)
		e.images.data["img-1"] = img
		e.images.held = make(chan struct{}, 1)
		e.start()
		spec := blank(vid(1), 1)
		spec.ImageID, spec.ImageSize = "img-1", int64(len(img))
		e.create("req-1", spec)
		<-e.images.held
		if err := e.m.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if v := e.volume(vid(1)); v.Action != "create" || v.Status != "creating" || v.Version != 1 || e.exists("volumes", vid(1)) {
			t.Fatalf("after a shutdown halfway: %+v, file there %v; want creating at version 1, pending, no file", v, e.exists("volumes", vid(1)))
		}
		e.images.mu.Lock()
		e.images.held = nil
		e.images.mu.Unlock()
		e.restart()
		e.settled(vid(1), "available")
		e.expectVolume(vid(1), gib, patch{0, img})
		e.rec.checkVersions(t)
	})
}

// TestBackendFailure: an operation the backend fails ends in Cinder's
// error status for it, with a fault, at a new version.
func TestBackendFailure(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		// An image whose bytes are fewer than it said.
		e.images.data["img-short"] = pattern(1000, 1)
		spec := blank(vid(1), 1)
		spec.ImageID, spec.ImageSize = "img-short", 5000
		e.create("req-1", spec)
		v := e.settled(vid(1), "error")
		if v.Fault == "" || v.Version != 2 || e.exists("volumes", vid(1)) {
			t.Errorf("failed create: %+v, file there %v; want error at version 2 with a fault, no file", v, e.exists("volumes", vid(1)))
		}
		if st := last(t, vid(1), e.rec.volumeStates(t, vid(1))); st.Status != "error" || st.Fault == "" || st.Version != 2 {
			t.Errorf("sent %+v, want error with a fault at version 2", st)
		}

		// An extend of a volume whose bytes are gone.
		e.create("req-2", blank(vid(2), 1))
		e.settled(vid(2), "available")
		if err := e.b.Delete(context.Background(), vid(2)); err != nil {
			t.Fatal(err)
		}
		e.act("req-3", wire.VolumeAction{VolumeID: vid(2), Action: wire.VolumeExtend, SizeGB: 2})
		v = e.settled(vid(2), "error_extending")
		if v.Fault == "" || v.Version != 4 || v.SizeGB != 1 {
			t.Errorf("failed extend: %+v, want error_extending at version 4, still 1 GiB", v)
		}
		e.rec.checkVersions(t)
	})
}

// TestHeal resends, as Heal, the volumes and snapshots changed within the
// heal window (deleted ones too), and not the others.
func TestHeal(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.create("req-1", blank(vid(1), 1))
		e.settled(vid(1), "available")
		e.clock.Add(time.Hour)
		e.create("req-2", blank(vid(2), 1))
		e.settled(vid(2), "available")
		e.act("req-3", wire.VolumeAction{VolumeID: vid(2), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		e.snapSettled(sid(1), "available")
		e.create("req-4", blank(vid(3), 1))
		e.settled(vid(3), "available")
		e.act("req-5", wire.VolumeAction{VolumeID: vid(3), Action: wire.VolumeDelete})
		e.settled(vid(3), "deleted")
		e.clock.Add(5 * time.Minute)

		n := len(e.rec.updates(t))
		if err := e.m.Heal(context.Background()); err != nil {
			t.Fatal(err)
		}
		vols, snaps := map[string]wire.VolumeState{}, map[string]wire.SnapshotState{}
		for _, u := range e.rec.updates(t)[n:] {
			if !u.Heal {
				t.Errorf("heal sent an update without Heal: %+v", u)
			}
			for _, s := range u.Volumes {
				vols[s.ID] = s
			}
			for _, s := range u.Snapshots {
				snaps[s.ID] = s
			}
		}
		if _, ok := vols[vid(1)]; ok || len(vols) != 2 || vols[vid(2)].Status != "available" || !vols[vid(3)].Deleted {
			t.Errorf("healed volumes %+v, want %s available and %s deleted only", vols, vid(2), vid(3))
		}
		if len(snaps) != 1 || snaps[sid(1)].Status != "available" || snaps[sid(1)].Version != e.snapshot(sid(1)).Version {
			t.Errorf("healed snapshots %+v, want %s as it is", snaps, sid(1))
		}
		e.rec.checkVersions(t)
	})
}

// TestHealPages sends more than a page of volumes in pages of 500.
func TestHealPages(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		err := d.InTx(context.Background(), func(tx *db.Tx) error {
			for i := range 501 {
				v := &celldb.Volume{ID: vid(i), ProjectID: "p", UserID: "u", SizeGB: 1, Status: "available", Version: 2,
					CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(i%3) * time.Second)}
				if _, err := celldb.InsertVolume(context.Background(), tx, v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.m.Heal(context.Background()); err != nil {
			t.Fatal(err)
		}
		us := e.rec.updates(t)
		seen := map[string]bool{}
		for _, u := range us {
			for _, s := range u.Volumes {
				seen[s.ID] = true
			}
		}
		if len(us) != 2 || len(us[0].Volumes) != 500 || len(us[1].Volumes) != 1 || len(seen) != 501 {
			t.Errorf("%d heal messages, %d volumes: want 500 then 1, each volume once", len(us), len(seen))
		}
	})
}

// TestCapacity reports the zone's room: 10 GiB × 20 less what is
// provisioned, a volume still being made included.
func TestCapacity(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.create("req-1", blank(vid(1), 3)) // not made: the worker is not running
		zone, room, err := e.m.Capacity(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if zone != "nova" || room.TotalGB != 10 || room.FreeGB != 197 || room.MaxFreeGB != 197 {
			t.Errorf("zone %q room %+v, want nova, total 10, free 197", zone, room)
		}
	})
}

// TestNewValidates refuses a configuration without its dependencies.
func TestNewValidates(t *testing.T) {
	if _, err := volume.New(volume.Config{Cell: cell}); err == nil {
		t.Error("New without a database, backend, sender and images succeeded")
	}
}
