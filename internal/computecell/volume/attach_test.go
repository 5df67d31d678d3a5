package volume_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// hosts is the compute hosts as the volume manager reaches them: the fake
// driver, with failures injected and the calls counted.
type hosts struct {
	drv   *fake.Driver
	mu    sync.Mutex
	fail  error
	calls []string
}

var _ volume.Hosts = (*hosts)(nil)

func newHosts(t *testing.T) *hosts {
	t.Helper()
	d, err := fake.New(fake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &hosts{drv: d}
}

func (h *hosts) AttachVolume(ctx context.Context, host, uuid, device, path string) error {
	h.mu.Lock()
	h.calls = append(h.calls, "attach "+host+" "+device)
	fail := h.fail
	h.mu.Unlock()
	if fail != nil {
		return fail
	}
	return h.drv.AttachVolume(ctx, host, uuid, device, path)
}

func (h *hosts) DetachVolume(ctx context.Context, host, uuid, device string) error {
	h.mu.Lock()
	h.calls = append(h.calls, "detach "+host+" "+device)
	fail := h.fail
	h.mu.Unlock()
	if fail != nil {
		return fail
	}
	return h.drv.DetachVolume(ctx, host, uuid, device)
}

func (h *hosts) setFail(err error) {
	h.mu.Lock()
	h.fail = err
	h.mu.Unlock()
}

func (h *hosts) called() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

func iid(n int) string { return fmt.Sprintf("11111111-0000-4000-8000-%012d", n) }
func aid(n int) string { return fmt.Sprintf("a7000000-0000-4000-8000-%012d", n) }
func bid(n int) string { return fmt.Sprintf("bd000000-0000-4000-8000-%012d", n) }

// instance records instance n on host (none: no host) in vm state vm,
// running on the fake driver when it has a host.
func (e *env) instance(n int, host, vm string) string {
	e.t.Helper()
	ctx := context.Background()
	in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: iid(n), Name: "vm", ProjectID: "p1", UserID: "u1", ImageRef: "img", CreatedAt: t0},
		Flavor: wire.Flavor{ID: "1", Name: "small", VCPUs: 1, RAMMB: 512, RootGB: 1}, Host: host, VMState: vm,
		PowerState: vmstate.Running, RequestID: "req-build"}
	if err := e.d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, t0) }); err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		if err := e.hosts.drv.Spawn(ctx, host, virt.Instance{UUID: iid(n), Name: "vm"}); err != nil {
			e.t.Fatal(err)
		}
	}
	return iid(n)
}

// stop stops the manager and puts an unstarted one in its place (a
// process that stopped: its pending work waits for the next start).
func (e *env) stop() {
	e.t.Helper()
	if err := e.m.Shutdown(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.m = e.newManager()
}

// volumes makes available volumes 1..n (with the manager started).
func (e *env) volumes(n int) {
	e.t.Helper()
	for i := 1; i <= n; i++ {
		e.create(fmt.Sprintf("req-create-%d", i), blank(vid(i), 1))
	}
	for i := 1; i <= n; i++ {
		e.settled(vid(i), "available")
	}
}

// attach calls attach_volume as the API cell does; it returns the device
// answered, or the error.
func (e *env) attach(requestID string, req wire.AttachVolume) (string, error) {
	e.t.Helper()
	a, err := e.attachAnswer(requestID, req)
	return a.Device, err
}

// attachAnswer is attach with the whole answer.
func (e *env) attachAnswer(requestID string, req wire.AttachVolume) (wire.AttachVolumeAnswer, error) {
	e.t.Helper()
	if req.UserID == "" {
		req.UserID, req.ProjectID = "u1", "p1"
	}
	out, err := e.m.AttachVolume(context.Background(), envelope(e.t, wire.MethodAttachVolume, requestID, req))
	if err != nil {
		return wire.AttachVolumeAnswer{}, err
	}
	a, ok := out.(wire.AttachVolumeAnswer)
	if !ok {
		e.t.Fatalf("attach_volume answered %T, want wire.AttachVolumeAnswer", out)
	}
	return a, nil
}

// mustAttach attaches volume v to instance uuid as attachment n and
// checks the device answered.
func (e *env) mustAttach(n int, uuid, v, asked, want string) {
	e.t.Helper()
	dev, err := e.attach(fmt.Sprintf("req-attach-%d", n), wire.AttachVolume{InstanceUUID: uuid, VolumeID: v,
		AttachmentID: aid(n), BDMUUID: bid(n), Device: asked})
	if err != nil || dev != want {
		e.t.Fatalf("attach %s (device %q asked): %q, %v; want %s", v, asked, dev, err, want)
	}
}

// detach delivers detach_volume, as the cells service does.
func (e *env) detach(requestID, uuid, v string) {
	e.t.Helper()
	env := envelope(e.t, wire.MethodDetachVolume, requestID, wire.DetachVolume{InstanceUUID: uuid, VolumeID: v, UserID: "u1", ProjectID: "p1"})
	if err := e.d.InTx(context.Background(), func(tx *db.Tx) error { return e.m.DetachVolume(context.Background(), tx, env) }); err != nil {
		e.t.Fatalf("detach_volume %s: %v", v, err)
	}
}

// refused checks that err is a conflict with reason as its message.
func refused(t *testing.T, what string, err error, reason string) {
	t.Helper()
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeConflict || we.Message != reason {
		t.Errorf("%s: %v, want a conflict with reason %s", what, err, reason)
	}
}

// bdms returns an instance's live mappings: device to volume.
func (e *env) bdms(uuid string) map[string]string {
	e.t.Helper()
	bs, err := celldb.InstanceBDMs(context.Background(), e.d, uuid)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, b := range bs {
		out[b.DeviceName] = b.VolumeID
	}
	return out
}

// events returns the results of the events of an instance's action of
// request requestID.
func (e *env) events(uuid, requestID string) (string, []string) {
	e.t.Helper()
	acts, err := celldb.ListActions(context.Background(), e.d, uuid, requestID)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(acts) != 1 {
		e.t.Fatalf("actions of %s: %+v, want one", requestID, acts)
	}
	var out []string
	for _, ev := range acts[0].Events {
		out = append(out, ev.Event+":"+ev.Result)
	}
	return acts[0].Action, out
}

// TestAttachPicksDevices: the devices go /dev/vdb, /dev/vdc, …; a free
// device asked for is used (another kind's name, /dev/sdf, under the
// root's prefix); one taken is refused with device_in_use, writing
// nothing.
func TestAttachPicksDevices(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(5)
		e.stop() // the attaches stay pending
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.mustAttach(2, vm, vid(2), "", "/dev/vdc")
		e.mustAttach(3, vm, vid(3), "/dev/sdf", "/dev/vdf")
		sent := e.rec.count()
		for _, dev := range []string{"/dev/vdc", "/dev/sdb", "/dev/vda"} {
			_, err := e.attach("req-taken", wire.AttachVolume{InstanceUUID: vm, VolumeID: vid(4), AttachmentID: aid(4), BDMUUID: bid(4), Device: dev})
			refused(t, "attach at "+dev, err, wire.AttachReasonDeviceInUse)
		}
		if n := e.rec.count(); n != sent {
			t.Errorf("refusals sent %d messages, want none", n-sent)
		}
		if v := e.volume(vid(4)); v.Status != "available" || v.Version != 2 {
			t.Errorf("volume refused %+v, want available at version 2", v)
		}
		e.mustAttach(4, vm, vid(4), "", "/dev/vdd")
		e.mustAttach(5, vm, vid(5), "", "/dev/vde")
		want := map[string]string{"/dev/vdb": vid(1), "/dev/vdc": vid(2), "/dev/vdd": vid(4), "/dev/vde": vid(5), "/dev/vdf": vid(3)}
		if got := e.bdms(vm); !maps.Equal(got, want) {
			t.Errorf("mappings %v, want %v", got, want)
		}
		// Each volume is attaching at version 3, sent with its attachment.
		st := last(t, "volume 1", e.rec.volumeStates(t, vid(1)))
		if st.Status != "attaching" || st.Version != 3 || len(st.Attachments) != 1 {
			t.Fatalf("volume 1 sent as %+v, want attaching at 3 with its attachment", st)
		}
		if a := st.Attachments[0]; a.ID != aid(1) || a.InstanceUUID != vm || a.Status != "attaching" || a.Device != "/dev/vdb" ||
			a.Mode != "rw" || a.BDMUUID != bid(1) || a.BootIndex != -1 {
			t.Errorf("attachment sent %+v", a)
		}
		if action, evs := e.events(vm, "req-attach-1"); action != "attach_volume" || !slices.Equal(evs, []string{"compute_attach_volume:"}) {
			t.Errorf("action %s with events %v, want attach_volume with compute_attach_volume open", action, evs)
		}
		e.rec.checkVersions(t)
	})
}

// TestAttachTooManyDevices: with MaxDiskDevices 3 (the root counted) the
// third volume is refused.
func TestAttachTooManyDevices(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.maxDevices = 3
		e.stop()
		e.start()
		e.volumes(3)
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.mustAttach(2, vm, vid(2), "", "/dev/vdc")
		_, err := e.attach("req-3", wire.AttachVolume{InstanceUUID: vm, VolumeID: vid(3), AttachmentID: aid(3), BDMUUID: bid(3)})
		refused(t, "a fourth device", err, wire.AttachReasonTooManyDevices)
	})
}

// TestAttachRefusals: each check against the cell's rows refuses with
// its reason and writes nothing.
func TestAttachRefusals(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(3)
		e.act("req-reset", wire.VolumeAction{VolumeID: vid(3), Action: wire.VolumeResetStatus, Status: "error"})
		vm := e.instance(1, "h1", vmstate.Active)
		other := e.instance(2, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.settled(vid(1), "in-use")
		e.settled(vid(3), "error")
		errored := e.instance(3, "h1", vmstate.Error)
		busy := e.instance(4, "h1", vmstate.Active)
		ctx := context.Background()
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := celldb.Update(ctx, tx, busy, nil, celldb.Change{TaskState: new("rebooting")}, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		sent := e.rec.count()
		cases := []struct {
			what   string
			uuid   string
			volume string
			reason string
		}{
			{"volume attached to another instance", other, vid(1), wire.AttachReasonAlreadyAttached},
			{"volume attached to this instance", vm, vid(1), wire.AttachReasonAlreadyAttached},
			{"instance in error", errored, vid(2), wire.AttachReasonInstanceState},
			{"instance with a task", busy, vid(2), wire.AttachReasonInstanceState},
			{"unknown instance", iid(99), vid(2), wire.AttachReasonInstanceNotFound},
			{"unknown volume", vm, vid(98), wire.AttachReasonVolumeNotFound},
			{"volume in error", vm, vid(3), wire.AttachReasonVolumeStatus},
		}
		for i, c := range cases {
			_, err := e.attach("req-refused", wire.AttachVolume{InstanceUUID: c.uuid, VolumeID: c.volume,
				AttachmentID: aid(10 + i), BDMUUID: bid(10 + i)})
			refused(t, c.what, err, c.reason)
		}
		if n := e.rec.count(); n != sent {
			t.Errorf("refusals sent %d messages, want none", n-sent)
		}
		for _, u := range []string{other, errored, busy} {
			if got := e.bdms(u); len(got) != 0 {
				t.Errorf("instance %s has mappings %v after refusals", u, got)
			}
		}
		// A device name that is not a path of /dev: invalid.
		_, err := e.attach("req-bad", wire.AttachVolume{InstanceUUID: vm, VolumeID: vid(2), AttachmentID: aid(30), BDMUUID: bid(30), Device: "vdb"})
		if !errors.Is(err, wire.ErrInvalid) {
			t.Errorf("attach at vdb: %v, want invalid", err)
		}
	})
}

// TestAttachRepeat: attach_volume again with the same attachment id (a
// call the API cell repeats) answers the same device and writes nothing,
// before and after the attach is done.
func TestAttachRepeat(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		e.stop()
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "/dev/vdd", "/dev/vdd")
		sent, version := e.rec.count(), e.volume(vid(1)).Version
		e.mustAttach(1, vm, vid(1), "", "/dev/vdd")
		if n, v := e.rec.count(), e.volume(vid(1)).Version; n != sent || v != version {
			t.Errorf("the repeat sent %d messages and moved the version %d → %d, want nothing", n-sent, version, v)
		}
		e.start()
		e.settled(vid(1), "in-use")
		e.mustAttach(1, vm, vid(1), "", "/dev/vdd")
		if got := e.bdms(vm); len(got) != 1 {
			t.Errorf("mappings %v after repeats, want one", got)
		}
		if acts, err := celldb.ListActions(context.Background(), d, vm, "req-attach-1"); err != nil || len(acts) != 1 {
			t.Errorf("actions %+v, %v: want one attach_volume", acts, err)
		}
	})
}

// TestAttachAnswersTheVolume: attach_volume answers the volume's new
// state, the one it sent up (attaching at the new version, with the
// attachment), for the API cell's copy to take before the Compute API
// answers; a repeat answers the volume as it is then (in-use once the
// attach is done).
func TestAttachAnswersTheVolume(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		e.stop()
		vm := e.instance(1, "h1", vmstate.Active)
		req := wire.AttachVolume{InstanceUUID: vm, VolumeID: vid(1), AttachmentID: aid(1), BDMUUID: bid(1)}
		answered := func(when string) *wire.VolumeState {
			t.Helper()
			a, err := e.attachAnswer("req-attach-1", req)
			if err != nil || a.Device != "/dev/vdb" || a.Volume == nil {
				t.Fatalf("%s: answered %+v, %v; want /dev/vdb and the volume's state", when, a, err)
			}
			if v := e.volume(vid(1)); a.Volume.ID != vid(1) || a.Volume.Cell != cell || a.Volume.Version != v.Version || a.Volume.Status != v.Status {
				t.Errorf("%s: answered %s %s at version %d of %s, the row is %s at %d", when, a.Volume.ID, a.Volume.Status,
					a.Volume.Version, a.Volume.Cell, v.Status, v.Version)
			}
			if len(a.Volume.Attachments) != 1 || a.Volume.Attachments[0].ID != aid(1) || a.Volume.Attachments[0].InstanceUUID != vm ||
				a.Volume.Attachments[0].Device != "/dev/vdb" {
				t.Errorf("%s: answered attachments %+v, want %s of %s on /dev/vdb", when, a.Volume.Attachments, aid(1), vm)
			}
			return a.Volume
		}
		first := answered("the attach")
		states := e.rec.volumeStates(t, vid(1))
		got, _ := json.Marshal(first)
		want, _ := json.Marshal(states[len(states)-1])
		if first.Status != "attaching" || first.Attachments[0].Status != "attaching" || string(got) != string(want) {
			t.Errorf("answered %s, want the state sent up %s (attaching)", got, want)
		}
		if again := answered("a repeat"); again.Version != first.Version || again.Status != "attaching" {
			t.Errorf("a repeat answered %s at %d, want the same state", again.Status, again.Version)
		}
		e.start()
		e.settled(vid(1), "in-use")
		if done := answered("a repeat once attached"); done.Status != "in-use" || done.Version <= first.Version ||
			done.Attachments[0].Status != "attached" {
			t.Errorf("a repeat once attached answered %s at %d (attachment %s), want in-use above %d", done.Status, done.Version,
				done.Attachments[0].Status, first.Version)
		}
	})
}

// TestAttachAndDetachOnTheHost: the worker attaches the volume on the
// instance's host (the fake driver's disks show it, backed by the
// volume's file), the volume goes in-use with its attachment attached in
// the update; a detach takes it off the host and the volume is available
// with no attachment. Versions strictly increase.
func TestAttachAndDetachOnTheHost(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		vm := e.instance(1, "h1", vmstate.Active)
		dev, err := e.attach("req-attach", wire.AttachVolume{InstanceUUID: vm, VolumeID: vid(1), AttachmentID: aid(1),
			BDMUUID: bid(1), Tag: "db", DeleteOnTermination: true})
		if err != nil || dev != "/dev/vdb" {
			t.Fatalf("attach: %q, %v", dev, err)
		}
		v := e.settled(vid(1), "in-use")
		path, err := e.b.VolumePath(vid(1))
		if err != nil {
			t.Fatal(err)
		}
		if got := e.hosts.drv.Disks("h1", vm); !maps.Equal(got, map[string]string{"/dev/vdb": path}) {
			t.Errorf("disks on the host %v, want /dev/vdb backed by %s", got, path)
		}
		st := last(t, "volume", e.rec.volumeStates(t, vid(1)))
		if st.Status != "in-use" || st.Version != v.Version || len(st.Attachments) != 1 {
			t.Fatalf("sent %+v, want in-use at %d with its attachment", st, v.Version)
		}
		if a := st.Attachments[0]; a.Status != "attached" || a.Device != "/dev/vdb" || a.Tag != "db" || !a.DeleteOnTermination ||
			a.AttachedAt.IsZero() || a.BDMUUID != bid(1) {
			t.Errorf("attachment sent %+v, want attached at /dev/vdb, tag db, delete on termination, a time", a)
		}
		if _, evs := e.events(vm, "req-attach"); !slices.Equal(evs, []string{"compute_attach_volume:Success"}) {
			t.Errorf("attach events %v, want success", evs)
		}
		// Heal resends the volume with its attachment.
		if err := e.m.Heal(context.Background()); err != nil {
			t.Fatal(err)
		}
		if h := last(t, "volume", e.rec.volumeStates(t, vid(1))); len(h.Attachments) != 1 || h.Attachments[0].ID != aid(1) {
			t.Errorf("healed %+v, want its attachment", h)
		}

		e.detach("req-detach", vm, vid(1))
		e.settled(vid(1), "available")
		if got := e.hosts.drv.Disks("h1", vm); len(got) != 0 {
			t.Errorf("disks on the host after the detach %v, want none", got)
		}
		states := e.rec.volumeStates(t, vid(1))
		var seen []string
		for _, s := range states {
			seen = append(seen, s.Status)
		}
		if !slices.Contains(seen, "detaching") {
			t.Errorf("statuses sent %v, want detaching among them", seen)
		}
		if st := last(t, "volume", states); st.Status != "available" || len(st.Attachments) != 0 {
			t.Errorf("sent after the detach %+v, want available with no attachment", st)
		}
		if got := e.bdms(vm); len(got) != 0 {
			t.Errorf("mappings after the detach %v, want none", got)
		}
		if action, evs := e.events(vm, "req-detach"); action != "detach_volume" || !slices.Equal(evs, []string{"compute_detach_volume:Success"}) {
			t.Errorf("detach recorded %s %v", action, evs)
		}
		e.rec.checkVersions(t)

		// A detach of a volume no longer attached sends the volume as it
		// is (which puts back the status the API cell set).
		version := e.volume(vid(1)).Version
		e.detach("req-detach-2", vm, vid(1))
		if st := last(t, "volume", e.rec.volumeStates(t, vid(1))); st.Status != "available" || st.Version != version+1 {
			t.Errorf("late detach answered %+v, want available at %d", st, version+1)
		}
		// The same device is free again.
		e.mustAttach(2, vm, vid(1), "", "/dev/vdb")
	})
}

// TestAttachFailsOnTheHost: a host that fails the attach leaves no
// mapping and no attachment, the volume available again, and the action's
// event in error (Nova destroys the mapping).
func TestAttachFailsOnTheHost(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		vm := e.instance(1, "h1", vmstate.Active)
		e.hosts.setFail(errors.New("injected: no such bus"))
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		testpoll.Eventually(t, 30*time.Second, "the attach's end", func() (bool, string) {
			a, err := celldb.GetAttachment(context.Background(), d, aid(1))
			if err != nil {
				return false, err.Error()
			}
			return a.Deleted, fmt.Sprintf("%+v", a)
		})
		e.settled(vid(1), "available")
		if got := e.bdms(vm); len(got) != 0 {
			t.Errorf("mappings %v, want none", got)
		}
		if st := last(t, "volume", e.rec.volumeStates(t, vid(1))); st.Status != "available" || len(st.Attachments) != 0 {
			t.Errorf("sent %+v, want available, no attachment", st)
		}
		if _, evs := e.events(vm, "req-attach-1"); !slices.Equal(evs, []string{"compute_attach_volume:Error"}) {
			t.Errorf("events %v, want the attach in error", evs)
		}
		e.rec.checkVersions(t)
	})
}

// TestDetachFailsOnTheHost: a host that fails the detach leaves the volume
// attached (in-use) and the detach's event in error.
func TestDetachFailsOnTheHost(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.settled(vid(1), "in-use")
		e.hosts.setFail(errors.New("injected: device busy"))
		e.detach("req-detach", vm, vid(1))
		testpoll.Eventually(t, 30*time.Second, "the detach's end", func() (bool, string) {
			a, err := celldb.GetAttachment(context.Background(), d, aid(1))
			if err != nil {
				return false, err.Error()
			}
			return a.Pending == "" && a.Status == "attached", fmt.Sprintf("%+v", a)
		})
		e.settled(vid(1), "in-use")
		if _, evs := e.events(vm, "req-detach"); !slices.Equal(evs, []string{"compute_detach_volume:Error"}) {
			t.Errorf("events %v, want the detach in error", evs)
		}
		if got := e.hosts.drv.Disks("h1", vm); len(got) != 1 {
			t.Errorf("disks %v, want the volume still there", got)
		}
	})
}

// TestAttachLeftPendingIsFinishedAfterARestart: a manager that stops
// between the handler's commit and the worker leaves the attach pending;
// the next manager on the database does it.
func TestAttachLeftPendingIsFinishedAfterARestart(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		e.stop() // stopped before the worker takes the attach
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		if a, err := celldb.GetAttachment(context.Background(), d, aid(1)); err != nil || a.Pending != "attach" {
			t.Fatalf("attachment before the restart %+v, %v: want its attach pending", a, err)
		}
		e.restart()
		e.settled(vid(1), "in-use")
		if got := e.hosts.drv.Disks("h1", vm); len(got) != 1 {
			t.Errorf("disks %v, want /dev/vdb", got)
		}
		e.rec.checkVersions(t)
	})
}

// TestAttachToShelvedOffloaded: an instance with no host has its attach
// completed at once, with no host work.
func TestAttachToShelvedOffloaded(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		vm := e.instance(1, "", vmstate.ShelvedOffloaded)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		e.settled(vid(1), "in-use")
		e.detach("req-detach", vm, vid(1))
		e.settled(vid(1), "available")
		if calls := e.hosts.called(); len(calls) != 0 {
			t.Errorf("host calls %v, want none", calls)
		}
	})
}

// TestInstanceGone: the delete of an instance (in its transaction) takes
// its attachments and mappings away; the volume without
// delete_on_termination is available again, the one with it is deleted
// (its file gone); versions strictly increase. A pending attach is
// dropped with it.
func TestInstanceGone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(2)
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		if _, err := e.attach("req-attach-2", wire.AttachVolume{InstanceUUID: vm, VolumeID: vid(2), AttachmentID: aid(2),
			BDMUUID: bid(2), DeleteOnTermination: true}); err != nil {
			t.Fatal(err)
		}
		e.settled(vid(1), "in-use")
		e.settled(vid(2), "in-use")
		ctx := context.Background()
		// The conductor: the VM destroyed, then the instance marked
		// deleted with the volumes told in one transaction.
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
		e.settled(vid(1), "available")
		v2 := e.settled(vid(2), "deleted")
		if !v2.Deleted || e.exists("volumes", vid(2)) {
			t.Errorf("volume 2 %+v (file there: %v), want deleted and its file gone", v2, e.exists("volumes", vid(2)))
		}
		if !e.exists("volumes", vid(1)) {
			t.Error("volume 1's file is gone, want it kept")
		}
		if got := e.bdms(vm); len(got) != 0 {
			t.Errorf("mappings %v, want none", got)
		}
		if st := last(t, "volume 1", e.rec.volumeStates(t, vid(1))); st.Status != "available" || len(st.Attachments) != 0 {
			t.Errorf("volume 1 sent %+v, want available, no attachment", st)
		}
		if st := last(t, "volume 2", e.rec.volumeStates(t, vid(2))); !st.Deleted {
			t.Errorf("volume 2 sent %+v, want its deletion", st)
		}
		e.rec.checkVersions(t)
		// Again (a delete done twice): nothing.
		sent := e.rec.count()
		if err := d.InTx(ctx, func(tx *db.Tx) error { return e.m.InstanceGone(ctx, tx, vm, "req-delete") }); err != nil {
			t.Fatal(err)
		}
		if n := e.rec.count(); n != sent {
			t.Errorf("InstanceGone again sent %d messages, want none", n-sent)
		}
	})
}

// TestInstanceGoneDropsAPendingAttach: an instance deleted while its
// attach waits for the worker: the attachment goes, the worker (started
// after) has nothing to do, the volume is available.
func TestInstanceGoneDropsAPendingAttach(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		e.stop()
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		ctx := context.Background()
		if err := d.InTx(ctx, func(tx *db.Tx) error { return e.m.InstanceGone(ctx, tx, vm, "req-delete") }); err != nil {
			t.Fatal(err)
		}
		e.start()
		e.settled(vid(1), "available")
		if ids, err := celldb.VolumesWithPendingWork(ctx, d, 10); err != nil || len(ids) != 0 {
			t.Errorf("pending work %v, %v: want none", ids, err)
		}
		if calls := e.hosts.called(); len(calls) != 0 {
			t.Errorf("host calls %v, want none", calls)
		}
		e.rec.checkVersions(t)
	})
}

// TestDetachOfAnAttachInFlight: a detach that comes while the attach still
// waits for the host is refused (the volume is sent as it is, at a new
// version, which puts back the status the API cell set); the attach then
// goes on and the volume is in-use.
func TestDetachOfAnAttachInFlight(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		e.volumes(1)
		e.stop()
		vm := e.instance(1, "h1", vmstate.Active)
		e.mustAttach(1, vm, vid(1), "", "/dev/vdb")
		before := e.volume(vid(1))
		e.detach("req-detach", vm, vid(1))
		st := last(t, "volume", e.rec.volumeStates(t, vid(1)))
		if st.Status != "attaching" || st.Version != before.Version+1 || len(st.Attachments) != 1 || st.Attachments[0].Status != "attaching" {
			t.Errorf("the refused detach sent %+v, want attaching at %d with its attachment", st, before.Version+1)
		}
		e.start()
		e.settled(vid(1), "in-use")
		if got := e.hosts.drv.Disks("h1", vm); len(got) != 1 {
			t.Errorf("disks %v, want /dev/vdb", got)
		}
		e.rec.checkVersions(t)
	})
}
