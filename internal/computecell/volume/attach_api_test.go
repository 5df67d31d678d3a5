package volume_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// write calls attachment_write as the API cell does.
func (e *env) attWrite(requestID string, req wire.AttachmentWrite) (wire.VolumeState, error) {
	e.t.Helper()
	out, err := e.m.AttachmentWrite(context.Background(), envelope(e.t, wire.MethodAttachmentWrite, requestID, req))
	if err != nil {
		return wire.VolumeState{}, err
	}
	w, ok := out.(wire.AttachmentWritten)
	if !ok {
		e.t.Fatalf("attachment_write answered %T", out)
	}
	return w.Volume, nil
}

func (e *env) mustAttWrite(requestID string, req wire.AttachmentWrite) wire.VolumeState {
	e.t.Helper()
	st, err := e.attWrite(requestID, req)
	if err != nil {
		e.t.Fatalf("attachment_write %s of %s: %v", req.Op, req.AttachmentID, err)
	}
	return st
}

// attachmentIn is the attachment id of a volume's state.
func attachmentIn(t *testing.T, st wire.VolumeState, id string) wire.AttachmentState {
	t.Helper()
	for _, a := range st.Attachments {
		if a.ID == id {
			return a
		}
	}
	t.Fatalf("volume %s (%s) has no attachment %s: %+v", st.ID, st.Status, id, st.Attachments)
	return wire.AttachmentState{}
}

// wireCode checks that err is a wire error of code whose message is msg
// ("": any).
func wireCode(t *testing.T, what string, err error, code wire.Code, msg string) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != code || (msg != "" && we.Message != msg) {
		t.Errorf("%s: %v, want %s %q", what, err, code, msg)
	}
}

// TestAttachmentWriteLifecycle: Cinder's statuses through the attachments
// API in the cell: reserve (attachment reserved, mode null, volume
// reserved, connection_info {}), update with a connector (attaching,
// mountpoint na, mode rw, the local file's connection_info), complete
// (attached, in-use), delete (available); each repeat answers the state
// at the same version and sends nothing; every change is sent up at a
// new version. No host work is ever asked, and no mapping made.
func TestAttachmentWriteLifecycle(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		v := vid(1)
		req := wire.AttachmentWrite{Op: wire.AttachmentCreate, AttachmentID: aid(1), VolumeID: v, InstanceUUID: iid(9)}
		st := e.mustAttWrite("req-create", req)
		a := attachmentIn(t, st, aid(1))
		if st.Status != "reserved" || a.Status != "reserved" || a.Mode != "null" || a.Device != "" || string(a.ConnectionInfo) != "{}" ||
			a.BDMUUID != "" || a.InstanceUUID != iid(9) {
			t.Errorf("reserved: %s, %+v", st.Status, a)
		}
		sent := e.rec.count()
		if again := e.mustAttWrite("req-create", req); again.Version != st.Version || e.rec.count() != sent {
			t.Errorf("a repeated create: version %d then %d, %d more sent", st.Version, again.Version, e.rec.count()-sent)
		}

		upd := wire.AttachmentWrite{Op: wire.AttachmentUpdate, AttachmentID: aid(1), VolumeID: v,
			Connector: json.RawMessage(`{"host": "h1", "initiator": "iqn.x"}`)}
		st2 := e.mustAttWrite("req-update", upd)
		a = attachmentIn(t, st2, aid(1))
		var ci map[string]any
		if err := json.Unmarshal(a.ConnectionInfo, &ci); err != nil {
			t.Fatal(err)
		}
		path, err := e.b.VolumePath(v)
		if err != nil {
			t.Fatal(err)
		}
		if st2.Status != "attaching" || st2.Version <= st.Version || a.Status != "attaching" || a.Device != "na" || a.Mode != "rw" ||
			ci["driver_volume_type"] != "local" || ci["device_path"] != path || ci["attachment_id"] != aid(1) || a.AttachedAt.IsZero() {
			t.Errorf("updated: %s at %d, %+v, %v", st2.Status, st2.Version, a, ci)
		}
		sent = e.rec.count()
		if again := e.mustAttWrite("req-update", upd); again.Version != st2.Version || e.rec.count() != sent {
			t.Errorf("a repeated update: version %d then %d", st2.Version, again.Version)
		}

		cmp := wire.AttachmentWrite{Op: wire.AttachmentComplete, AttachmentID: aid(1), VolumeID: v}
		st3 := e.mustAttWrite("req-complete", cmp)
		if a = attachmentIn(t, st3, aid(1)); st3.Status != "in-use" || a.Status != "attached" || st3.Version <= st2.Version {
			t.Errorf("completed: %s, %+v", st3.Status, a)
		}
		sent = e.rec.count()
		if again := e.mustAttWrite("req-complete", cmp); again.Version != st3.Version || e.rec.count() != sent {
			t.Errorf("a repeated complete: version %d then %d", st3.Version, again.Version)
		}
		if got := e.volume(v); got.Status != "in-use" {
			t.Errorf("the row: %s", got.Status)
		}

		del := wire.AttachmentWrite{Op: wire.AttachmentDelete, AttachmentID: aid(1), VolumeID: v}
		st4 := e.mustAttWrite("req-delete", del)
		if st4.Status != "available" || len(st4.Attachments) != 0 || st4.Version <= st3.Version {
			t.Errorf("deleted: %s, %+v", st4.Status, st4.Attachments)
		}
		sent = e.rec.count()
		if again := e.mustAttWrite("req-delete", del); again.Version != st4.Version || e.rec.count() != sent {
			t.Errorf("a repeated delete: version %d then %d", st4.Version, again.Version)
		}
		// What went up is what was answered, in order of versions.
		if got := last(t, "states of the volume", e.rec.volumeStates(t, v)); got.Version != st4.Version || got.Status != "available" {
			t.Errorf("the last state sent: %+v", got)
		}
		e.rec.checkVersions(t)
		if calls := e.hosts.called(); len(calls) != 0 {
			t.Errorf("host work for the attachments API: %v", calls)
		}
		// An update or complete of a deleted attachment: not found.
		_, err = e.attWrite("req-late", upd)
		wireCode(t, "an update of a deleted attachment", err, wire.CodeNotFound, "")
	})
}

// TestAttachmentWriteRules: Cinder's rules in the cell: a volume in use
// is reserved by another consumer only when multiattach (the volume then
// reserved, as Cinder's conditional update sets it), or by the same
// instance (Cinder's override, the status unchanged); a volume in error
// is refused with Cinder's reason; a second connection of a volume that
// is not multiattach is a conflict; a connector and a mode at create
// connect at once with that mode (ro for a read-only volume whatever
// asked); an attachment the Compute API made is refused for every op;
// the Compute API's detach and the instance's delete leave the
// attachments API's attachment of the same instance alone.
func TestAttachmentWriteRules(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(4)
		inst := e.instance(1, "h1", "active")
		create := func(n int, v, instance string, multi bool) (wire.VolumeState, error) {
			return e.attWrite(fmt.Sprintf("req-c%d", n), wire.AttachmentWrite{Op: wire.AttachmentCreate, AttachmentID: aid(n),
				VolumeID: v, InstanceUUID: instance, Multiattach: multi})
		}
		complete := func(n int, v string) {
			e.mustAttWrite(fmt.Sprintf("req-k%d", n), wire.AttachmentWrite{Op: wire.AttachmentComplete, AttachmentID: aid(n), VolumeID: v})
		}
		if _, err := create(1, vid(1), iid(8), false); err != nil {
			t.Fatal(err)
		}
		e.mustAttWrite("req-u1", wire.AttachmentWrite{Op: wire.AttachmentUpdate, AttachmentID: aid(1), VolumeID: vid(1),
			Connector: json.RawMessage(`{"host": "h1"}`)})
		complete(1, vid(1))
		_, err := create(2, vid(1), iid(9), false)
		wireCode(t, "another consumer of an in-use volume", err, wire.CodeInvalid,
			fmt.Sprintf("Volume %s status must be available or downloading to reserve, but the current status is in-use.", vid(1)))
		// The same instance: Cinder's override, the status kept.
		st, err := create(3, vid(1), iid(8), false)
		if err != nil || st.Status != "in-use" || len(st.Attachments) != 2 {
			t.Errorf("the same instance again: %+v %v", st, err)
		}
		// Two attachments, one connected, not multiattach: a conflict.
		_, err = e.attWrite("req-u3", wire.AttachmentWrite{Op: wire.AttachmentUpdate, AttachmentID: aid(3), VolumeID: vid(1),
			Connector: json.RawMessage(`{"host": "h2"}`)})
		wireCode(t, "a second connection", err, wire.CodeConflict, "duplicate connectors detected on volume "+vid(1))

		// Multiattach: another consumer reserves an in-use volume.
		if _, err := create(4, vid(2), iid(8), true); err != nil {
			t.Fatal(err)
		}
		complete(4, vid(2))
		if st, err := create(5, vid(2), iid(9), true); err != nil || st.Status != "reserved" {
			t.Errorf("multiattach: %+v %v", st, err)
		}

		// Error status.
		if err := e.d.InTx(context.Background(), func(tx *db.Tx) error {
			_, err := celldb.UpdateVolume(context.Background(), tx, vid(3), nil, celldb.VolumeChange{Status: ptrTo("error")}, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		_, err = create(6, vid(3), "", false)
		wireCode(t, "a volume in error", err, wire.CodeInvalid, fmt.Sprintf(
			"Volume attachments can not be created if the volume is in an error state. The Volume %s currently has a status of: error ", vid(3)))

		// A connector and a mode at create; a read-only volume is ro.
		st, err = e.attWrite("req-c7", wire.AttachmentWrite{Op: wire.AttachmentCreate, AttachmentID: aid(7), VolumeID: vid(4),
			InstanceUUID: iid(7), Mode: "rw", ReadOnly: true, Connector: json.RawMessage(`{"host": "h", "mountpoint": "/dev/vdc", "mode": "rw"}`)})
		if a := attachmentIn(t, st, aid(7)); err != nil || st.Status != "attaching" || a.Mode != "ro" || a.Device != "/dev/vdc" {
			t.Errorf("created connected, read-only: %+v %v", st, err)
		}
		e.mustAttWrite("req-d7", wire.AttachmentWrite{Op: wire.AttachmentDelete, AttachmentID: aid(7), VolumeID: vid(4)})

		// The Compute API's attachment, and one of the attachments API
		// naming the same instance.
		e.mustAttach(10, inst, vid(4), "", "/dev/vdb")
		e.settled(vid(4), "in-use")
		for _, op := range []string{wire.AttachmentUpdate, wire.AttachmentComplete, wire.AttachmentDelete} {
			_, err := e.attWrite("req-nova-"+op, wire.AttachmentWrite{Op: op, AttachmentID: aid(10), VolumeID: vid(4),
				Connector: json.RawMessage(`{"host": "h"}`)})
			wireCode(t, op+" of the Compute API's attachment", err, wire.CodeConflict, wire.AttachmentOfInstance+inst)
		}
		if _, err := create(11, vid(4), inst, false); err != nil {
			t.Fatalf("the same instance's reserve of its volume: %v", err)
		}
		complete(11, vid(4))
		e.detach("req-detach", inst, vid(4))
		testSettledAttachments(t, e, vid(4), []string{aid(11)})
		if got := e.volume(vid(4)); got.Status != "in-use" {
			t.Errorf("after the Compute API's detach: %s, want in-use (the attachments API's left)", got.Status)
		}
		if err := e.d.InTx(context.Background(), func(tx *db.Tx) error {
			return e.m.InstanceGone(context.Background(), tx, inst, "req-delete")
		}); err != nil {
			t.Fatal(err)
		}
		testSettledAttachments(t, e, vid(4), []string{aid(11)})
	})
}

func ptrTo[T any](v T) *T { return &v }

// testSettledAttachments waits until the volume's live attachments are
// want (the worker's detach done).
func testSettledAttachments(t *testing.T, e *env, v string, want []string) {
	t.Helper()
	testpoll.Eventually(t, 30*time.Second, "attachments of "+v, func() (bool, string) {
		atts, err := celldb.VolumeAttachments(context.Background(), e.d, v)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range atts {
			ids = append(ids, a.ID)
		}
		return fmt.Sprint(ids) == fmt.Sprint(want), fmt.Sprint(ids)
	})
}
