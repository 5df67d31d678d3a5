package volume_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// prepare runs PrepareBuild for instance uuid with mappings devs, as the
// conductor does in its transaction.
func (e *env) prepare(uuid string, devs ...wire.BlockDevice) error {
	e.t.Helper()
	ctx := context.Background()
	in, err := celldb.Get(ctx, e.d, uuid)
	if err != nil {
		e.t.Fatal(err)
	}
	in.BlockDevices = devs
	return e.d.InTx(ctx, func(tx *db.Tx) error { return e.m.PrepareBuild(ctx, tx, in, "req-build") })
}

func (e *env) buildVolumes(uuid string) celldb.BuildVolumes {
	e.t.Helper()
	st, err := e.m.BuildVolumes(context.Background(), e.d, uuid)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// TestPrepareBuild: a build's mappings — the boot volume made from a
// snapshot of the cell at /dev/vda, an existing volume at the device it
// asks for (/dev/vdc), a blank one asking for a taken device at the next
// free one (/dev/vdb), a local mapping ignored — are recorded with their
// attachments (attaching, no host work) and the volumes made; a repeat
// changes nothing; once the instance is active the host attaches them
// and they are in-use, sent up with their attachments.
func TestPrepareBuild(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(2)
		e.act("req-snap", wire.VolumeAction{VolumeID: vid(2), Action: wire.SnapshotCreate, SnapshotID: sid(1)})
		e.snapSettled(sid(1), "available")
		u := e.instance(1, "h1", vmstate.Building)
		devs := []wire.BlockDevice{
			{UUID: bid(2), SourceType: "volume", DestinationType: "volume", VolumeID: vid(1), AttachmentID: aid(2),
				DeviceName: "/dev/vdc", BootIndex: -1},
			{UUID: bid(3), SourceType: "blank", DestinationType: "volume", VolumeID: vid(11), New: true, AttachmentID: aid(3),
				VolumeSize: 1, DeviceName: "/dev/sdc", BootIndex: -1, DeleteOnTermination: true},
			{UUID: bid(1), SourceType: "snapshot", DestinationType: "volume", VolumeID: vid(10), New: true, AttachmentID: aid(1),
				SnapshotID: sid(1), VolumeSize: 1, BootIndex: 0},
			{SourceType: "blank", DestinationType: "local", BootIndex: -1},
		}
		if err := e.prepare(u, devs...); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"/dev/vda": vid(10), "/dev/vdb": vid(11), "/dev/vdc": vid(1)}
		if got := e.bdms(u); !maps.Equal(got, want) {
			t.Errorf("mappings %v, want %v", got, want)
		}
		if v := e.volume(vid(1)); v.Status != "attaching" {
			t.Errorf("existing volume %s, want attaching", v.Status)
		}
		atts, err := celldb.InstanceAttachments(context.Background(), d, u)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range atts {
			if a.Status != "attaching" || a.Pending != "" {
				t.Errorf("attachment %+v, want attaching with no host work (no VM yet)", a)
			}
		}
		v1 := e.volume(vid(1)).Version
		// A repeat (a build resumed after a restart) changes nothing.
		if err := e.prepare(u, devs...); err != nil {
			t.Fatal(err)
		}
		if v := e.volume(vid(1)); v.Version != v1 {
			t.Errorf("a repeat took volume 1 from version %d to %d", v1, v.Version)
		}
		e.settled(vid(10), "available")
		e.settled(vid(11), "available")
		if st := e.buildVolumes(u); !st.Prepared || !st.Ready || st.Failed != "" {
			t.Errorf("build volumes %+v, want prepared and ready", st)
		}
		if v := e.volume(vid(10)); v.SnapshotID != sid(1) || v.SizeGB != 1 {
			t.Errorf("boot volume %+v, want made from the snapshot", v)
		}
		if len(e.hosts.called()) != 0 {
			t.Errorf("host calls %v before the instance is active, want none", e.hosts.called())
		}
		// The spawn: the instance is active, the host attaches.
		ctx := context.Background()
		active := celldb.VMActive
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := celldb.Update(ctx, tx, u, nil, celldb.Change{VMState: &active}, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		e.m.Wake()
		for _, id := range []string{vid(1), vid(10), vid(11)} {
			e.settled(id, "in-use")
			sent := e.rec.volumeStates(t, id)
			last := sent[len(sent)-1]
			if len(last.Attachments) != 1 || last.Attachments[0].Status != "attached" || last.Attachments[0].InstanceUUID != u {
				t.Errorf("volume %s last sent %+v, want attached to the instance", id, last)
			}
		}
		wantDisks := map[string]string{}
		for dev, id := range want {
			p, err := e.b.VolumePath(id)
			if err != nil {
				t.Fatal(err)
			}
			wantDisks[dev] = p
		}
		if got := e.hosts.drv.Disks("h1", u); !maps.Equal(got, wantDisks) {
			t.Errorf("disks %v, want %v", got, wantDisks)
		}
	})
}

// TestPrepareBuildRefusals: an existing volume that is missing or not
// available is refused with Nova's and Cinder's texts (code invalid), and
// nothing is written.
func TestPrepareBuildRefusals(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		u1 := e.instance(1, "h1", vmstate.Building)
		u2 := e.instance(2, "h1", vmstate.Building)
		if err := e.prepare(u1, wire.BlockDevice{UUID: bid(1), SourceType: "volume", DestinationType: "volume", VolumeID: vid(1),
			AttachmentID: aid(1), BootIndex: 0}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			vol  string
			want string
		}{
			{vid(1), fmt.Sprintf("Invalid volume: Volume %s status must be available to reserve, but the current status is attaching.", vid(1))},
			{vid(9), fmt.Sprintf("Volume %s could not be found.", vid(9))},
		} {
			err := e.prepare(u2, wire.BlockDevice{UUID: bid(2), SourceType: "volume", DestinationType: "volume", VolumeID: c.vol,
				AttachmentID: aid(2), BootIndex: 0})
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeInvalid || we.Message != c.want {
				t.Errorf("prepare with %s: %v, want invalid %q", c.vol, err, c.want)
			}
		}
		if got := e.bdms(u2); len(got) != 0 {
			t.Errorf("mappings %v of a refused build, want none", got)
		}
		if st := e.buildVolumes(u2); st.Prepared {
			t.Errorf("build volumes %+v of a refused build, want not prepared", st)
		}
	})
}

// TestBuildVolumeFails: a new volume that cannot be made (its image is
// not in the store) is reported failed, with its status and Nova's fault.
func TestBuildVolumeFails(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		u := e.instance(1, "h1", vmstate.Building)
		if err := e.prepare(u, wire.BlockDevice{UUID: bid(1), SourceType: "image", DestinationType: "volume", VolumeID: vid(1),
			New: true, AttachmentID: aid(1), ImageID: "img-missing", ImageSize: 10, VolumeSize: 1, BootIndex: 0}); err != nil {
			t.Fatal(err)
		}
		e.settled(vid(1), "error")
		var st celldb.BuildVolumes
		testpoll.Eventually(t, 30*time.Second, "the failure seen", func() (bool, string) {
			st = e.buildVolumes(u)
			return st.Failed != "", fmt.Sprintf("%+v", st)
		})
		if st.Failed != vid(1) || st.FailedStatus != "error" || st.Ready {
			t.Errorf("build volumes %+v, want volume 1 failed in error", st)
		}
		want := fmt.Sprintf("Build of instance %s aborted: Volume %s did not finish being created even after we waited 5 seconds or 3 attempts. And its status is error.", u, vid(1))
		if got := st.Fault(u, st.Since.Add(5500e6), 3); got != want {
			t.Errorf("fault %q, want %q", got, want)
		}
	})
}

// TestForgetBuild: a build that ends before its volumes were made gives
// back what the API cell took: its new volume is sent as deleted at
// version 1, its existing one as it is at a new version. Once the
// mappings are recorded it does nothing (the delete takes them).
func TestForgetBuild(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		u := e.instance(1, "", vmstate.Building)
		in, err := celldb.Get(ctx, d, u)
		if err != nil {
			t.Fatal(err)
		}
		in.BlockDevices = []wire.BlockDevice{
			{UUID: bid(1), SourceType: "blank", DestinationType: "volume", VolumeID: vid(5), New: true, AttachmentID: aid(1),
				VolumeSize: 1, BootIndex: 0},
			{UUID: bid(2), SourceType: "volume", DestinationType: "volume", VolumeID: vid(1), AttachmentID: aid(2), BootIndex: -1},
		}
		before := e.volume(vid(1)).Version
		forget := func() {
			t.Helper()
			if err := d.InTx(ctx, func(tx *db.Tx) error { return e.m.ForgetBuild(ctx, tx, in, "req-fail") }); err != nil {
				t.Fatal(err)
			}
		}
		forget()
		sent := e.rec.volumeStates(t, vid(5))
		if len(sent) != 1 || !sent[0].Deleted || sent[0].Version != 1 || sent[0].Cell != cell {
			t.Errorf("new volume sent %+v, want its deletion at version 1", sent)
		}
		if _, err := celldb.GetVolume(ctx, d, vid(5)); !errors.Is(err, celldb.ErrVolumeNotFound) {
			t.Errorf("new volume in the cell: %v, want none", err)
		}
		v := e.volume(vid(1))
		last := e.rec.volumeStates(t, vid(1))
		if v.Version != before+1 || v.Status != "available" || last[len(last)-1].Version != v.Version {
			t.Errorf("existing volume %s at version %d (was %d), last sent %+v: want available, sent at a new version",
				v.Status, v.Version, before, last[len(last)-1])
		}
		// Once mapped, nothing.
		if err := e.prepare(u, in.BlockDevices...); err != nil {
			t.Fatal(err)
		}
		n := len(e.rec.volumeStates(t, vid(1)))
		forget()
		if got := len(e.rec.volumeStates(t, vid(1))); got != n {
			t.Errorf("forget after the mappings sent %d more states, want none", got-n)
		}
	})
}
