package volume_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// updateAttachment calls update_volume_attachment as the API cell does.
func (e *env) updateAttachment(requestID, uuid, v string, dot bool) (wire.VolumeState, error) {
	e.t.Helper()
	out, err := e.m.UpdateAttachment(context.Background(), envelope(e.t, wire.MethodUpdateVolumeAttachment, requestID,
		wire.UpdateVolumeAttachment{InstanceUUID: uuid, VolumeID: v, DeleteOnTermination: dot, UserID: "u1", ProjectID: "p1"}))
	if err != nil {
		return wire.VolumeState{}, err
	}
	a, ok := out.(wire.UpdateVolumeAttachmentAnswer)
	if !ok {
		e.t.Fatalf("update_volume_attachment answered %T", out)
	}
	return a.Volume, nil
}

// dot is the delete_on_termination of an instance's mapping of v.
func (e *env) dot(uuid, v string) bool {
	e.t.Helper()
	bs, err := celldb.InstanceBDMs(context.Background(), e.d, uuid)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, b := range bs {
		if b.VolumeID == v {
			return b.DeleteOnTermination
		}
	}
	e.t.Fatalf("instance %s has no mapping of %s", uuid, v)
	return false
}

// TestUpdateAttachmentDeleteOnTermination: update_volume_attachment sets
// the mapping's flag, raises the volume's version and sends it with its
// attachments, and answers that state; a repeat writes and sends nothing
// and answers the state as it is; a volume not attached to the instance,
// an instance or a volume the cell does not have is not_found. The flag
// then decides the server's delete: the volume is deleted with it.
func TestUpdateAttachmentDeleteOnTermination(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(2)
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		before := e.settled(vid(1), "in-use")
		sent := e.rec.count()

		st, err := e.updateAttachment("req-put", vm, vid(1), true)
		if err != nil {
			t.Fatal(err)
		}
		if !e.dot(vm, vid(1)) {
			t.Error("the mapping's delete_on_termination is false after the update")
		}
		if st.ID != vid(1) || st.Cell != cell || st.Version != before.Version+1 || st.Status != "in-use" ||
			len(st.Attachments) != 1 || !st.Attachments[0].DeleteOnTermination || st.Attachments[0].BDMUUID != bid(1) {
			t.Errorf("answered %+v, want in-use at version %d with the attachment's flag set", st, before.Version+1)
		}
		if e.rec.count() != sent+1 {
			t.Fatalf("%d messages sent, want one volume_update", e.rec.count()-sent)
		}
		if up := last(t, "volume 1", e.rec.volumeStates(t, vid(1))); up.Version != st.Version || !up.Attachments[0].DeleteOnTermination {
			t.Errorf("volume_update %+v, want the answered state", up)
		}
		if v := e.volume(vid(1)); v.Version != st.Version {
			t.Errorf("row at version %d, want %d", v.Version, st.Version)
		}

		// The repeat (the API's call retried, the answer lost).
		again, err := e.updateAttachment("req-put", vm, vid(1), true)
		if err != nil || again.Version != st.Version || !again.Attachments[0].DeleteOnTermination {
			t.Errorf("repeat: %+v, %v; want the same state", again, err)
		}
		if e.rec.count() != sent+1 {
			t.Errorf("the repeat sent %d messages", e.rec.count()-sent-1)
		}

		for name, c := range map[string]struct{ uuid, vol string }{
			"not attached":     {vm, vid(2)},
			"no such instance": {iid(9), vid(1)},
			"no such volume":   {vm, vid(9)},
		} {
			if _, err := e.updateAttachment("req-x", c.uuid, c.vol, false); !errors.Is(err, wire.ErrNotFound) {
				t.Errorf("%s: %v, want not_found", name, err)
			}
		}
		if !e.dot(vm, vid(1)) || e.rec.count() != sent+1 {
			t.Error("a refused update changed the mapping or sent a message")
		}

		// Back to false and on again: each change is a new version.
		st2, err := e.updateAttachment("req-put-2", vm, vid(1), false)
		if err != nil || st2.Version != st.Version+1 || st2.Attachments[0].DeleteOnTermination || e.dot(vm, vid(1)) {
			t.Errorf("second change: %+v, %v", st2, err)
		}
		if _, err := e.updateAttachment("req-put-3", vm, vid(1), true); err != nil {
			t.Fatal(err)
		}
		// The server's delete now deletes the volume.
		if err := e.d.InTx(context.Background(), func(tx *db.Tx) error {
			return e.m.InstanceGone(context.Background(), tx, vm, "req-delete")
		}); err != nil {
			t.Fatal(err)
		}
		e.settled(vid(1), "deleted")
		e.rec.checkVersions(t)
	})
}

// TestAttachToShelved: a shelved instance's VM is on its host, powered
// off: its attach and detach are done there (as Nova's, which only
// spares the offloaded one), so an unshelve that powers it on where it
// is finds its disks.
func TestAttachToShelved(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		vm := e.instance(1, "h1", vmstate.Shelved)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.settled(vid(1), "in-use")
		path, err := e.b.VolumePath(vid(1))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.hosts.drv.Disks("h1", vm); got["/dev/vdb"] != path || len(got) != 1 {
			t.Errorf("disks on h1 %v, want /dev/vdb at %s", got, path)
		}
		e.detach("req-detach", vm, vid(1))
		e.settled(vid(1), "available")
		if got := e.hosts.drv.Disks("h1", vm); len(got) != 0 {
			t.Errorf("disks on h1 after the detach %v, want none", got)
		}
	})
}

// TestAttachmentBacking: the attach records the volume's backing (the
// backend's file) on the attachment, for the moves and a compute
// restart; an attachment without one (made before celldb migration 14)
// gets it when the manager starts, and a start with none to fill writes
// nothing.
func TestAttachmentBacking(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(2)
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.mustAttach(2, vm, vid(2), "", "/dev/vdc")
		e.settled(vid(1), "in-use")
		e.settled(vid(2), "in-use")
		backing := func(id string) string {
			t.Helper()
			a, err := celldb.GetAttachment(context.Background(), d, id)
			if err != nil {
				t.Fatal(err)
			}
			return a.Backing
		}
		want1, _ := e.b.VolumePath(vid(1))
		want2, _ := e.b.VolumePath(vid(2))
		if got := backing(aid(1)); got != want1 || want1 == "" {
			t.Errorf("backing %q, want %q", got, want1)
		}
		if _, err := d.Exec(context.Background(), `UPDATE volume_attachments SET backing = '' WHERE id = ?`, aid(2)); err != nil {
			t.Fatal(err)
		}
		sent := e.rec.count()
		e.restart()
		if got := backing(aid(2)); got != want2 {
			t.Errorf("backing after the start %q, want %q", got, want2)
		}
		if got := backing(aid(1)); got != want1 {
			t.Errorf("backing of the other %q, want %q", got, want1)
		}
		e.restart()
		if n := e.rec.count(); n != sent {
			t.Errorf("the starts sent %d messages, want none", n-sent)
		}
	})
}
