package volume_test

import (
	"context"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// TestExtendAttached: an in-use volume extended attached (Cinder 3.42)
// goes extending with its attachment kept, grows on the backend and comes
// back in-use at the new size. Without Attached (an API below 3.42) the
// cell refuses it: the row is sent as it is. A repeat changes nothing.
func TestExtendAttached(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.settled(vid(1), "in-use")

		e.act("req-ext-1", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 2})
		if st := last(t, "volume 1", e.rec.volumeStates(t, vid(1))); st.Status != "in-use" || st.SizeGB != 1 {
			t.Errorf("an extend not attached of an in-use volume answered %+v, want the row (in-use, 1 GiB)", st)
		}

		e.act("req-ext-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 2, Attached: true})
		e.act("req-ext-2", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 2, Attached: true})
		v := e.settled(vid(1), "in-use")
		if v.SizeGB != 2 {
			t.Errorf("size %d, want 2", v.SizeGB)
		}
		e.expectVolume(vid(1), 2*gib)
		st := e.rec.volumeStates(t, vid(1))
		var statuses []string
		for _, s := range st {
			statuses = append(statuses, s.Status)
		}
		if n := len(st); n < 2 || st[n-2].Status != "extending" || len(st[n-2].Attachments) != 1 ||
			st[n-1].Status != "in-use" || st[n-1].SizeGB != 2 || len(st[n-1].Attachments) != 1 {
			t.Errorf("states sent %v, want extending then in-use at 2 GiB, attached throughout", statuses)
		}
		if got := e.hosts.drv.Disks("h1", vm); got["/dev/vdb"] == "" {
			t.Errorf("the hypervisor's disks after the extend: %v, want /dev/vdb kept", got)
		}
		e.rec.checkVersions(t)
	})
}

// TestInstanceGoneWhileExtendingAttached: the cell's worker is down while
// an attached volume is extending; a detach is refused meanwhile (the
// volume is not in-use), the instance is deleted (its attachment goes,
// the volume keeps its extending status). When the worker is back the
// extend is done and the volume is available, not in-use with nothing
// attached.
func TestInstanceGoneWhileExtendingAttached(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.settled(vid(1), "in-use")
		e.stop()

		e.act("req-ext", wire.VolumeAction{VolumeID: vid(1), Action: wire.VolumeExtend, SizeGB: 3, Attached: true})
		if v := e.volume(vid(1)); v.Status != "extending" || v.Action != wire.VolumeExtend {
			t.Fatalf("after the extend: %s pending %q, want extending, extend pending", v.Status, v.Action)
		}
		e.detach("req-detach", vm, vid(1))
		if v := e.volume(vid(1)); v.Status != "extending" {
			t.Errorf("a detach while extending left %s, want extending", v.Status)
		}
		ctx := context.Background()
		if err := e.hosts.drv.Destroy(ctx, "h1", vm); err != nil {
			t.Fatal(err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := celldb.Update(ctx, tx, vm, nil, celldb.Change{VMState: new(vmstate.Deleted), Deleted: true}, t0); err != nil {
				return err
			}
			return e.m.InstanceGone(ctx, tx, vm, "req-delete")
		}); err != nil {
			t.Fatal(err)
		}
		e.start()
		v := e.settled(vid(1), "available")
		if v.SizeGB != 3 {
			t.Errorf("size %d, want 3", v.SizeGB)
		}
		if st := last(t, "volume 1", e.rec.volumeStates(t, vid(1))); st.Status != "available" || len(st.Attachments) != 0 || st.SizeGB != 3 {
			t.Errorf("sent %+v, want available at 3 GiB with no attachment", st)
		}
		e.rec.checkVersions(t)
	})
}
