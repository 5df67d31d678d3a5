package conductor_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Boot from volume in the compute cell (volumes.go, volume/build.go): the
// cell's real roles (scheduler, network, compute with the fake driver, the
// volume manager on a File backend) over SQLite and PostgreSQL.

// imageStore is the API cell's image store as the volume manager reaches
// it; while gated, every read waits for the gate to open or its context's
// end.
type imageStore struct {
	mu   sync.Mutex
	data map[string][]byte
	// gate, when not nil, is closed when the gate opens.
	gate chan struct{}
	held chan struct{}
}

func (s *imageStore) ReadImage(ctx context.Context, id string, off int64, n int) (wire.ImageChunk, error) {
	s.mu.Lock()
	gate := s.gate
	b, ok := s.data[id]
	s.mu.Unlock()
	if !ok {
		return wire.ImageChunk{}, wire.Errorf(wire.CodeNotFound, "Image %s could not be found.", id)
	}
	if gate != nil {
		select {
		case s.held <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return wire.ImageChunk{}, ctx.Err()
		}
	}
	end := min(off+int64(n), int64(len(b)))
	return wire.ImageChunk{Data: slices.Clone(b[off:end]), Size: int64(len(b))}, nil
}

func (s *imageStore) WriteImage(context.Context, *wire.ImageWrite) (wire.ImageWritten, error) {
	return wire.ImageWritten{}, fmt.Errorf("no uploads here")
}

// close holds the reads until open.
func (s *imageStore) close() {
	s.mu.Lock()
	s.gate = make(chan struct{})
	s.mu.Unlock()
}

// open lets the reads held and the next ones go.
func (s *imageStore) open() {
	s.mu.Lock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
	s.mu.Unlock()
}

// bfvEnv is a cell with a volume role.
type bfvEnv struct {
	*cellEnv
	dir    string
	images *imageStore
	be     *backend.File
	m      *volume.Manager
}

func newBFVCell(t *testing.T, d *db.DB, o cellOpts) *bfvEnv {
	t.Helper()
	b := &bfvEnv{dir: t.TempDir(), images: &imageStore{data: map[string][]byte{}, held: make(chan struct{}, 1)}}
	var err error
	if b.be, err = backend.NewFile(backend.FileConfig{Dir: b.dir, TotalGiB: 100}); err != nil {
		t.Fatal(err)
	}
	o.db = d
	o.volumes = func(e *cellEnv) conductor.Volumes {
		b.cellEnv = e
		b.m = b.newManager(t)
		return b.m
	}
	newCell(t, o)
	return b
}

// newManager makes a volume manager on the cell's database and backend
// (a restarted process's), started.
func (b *bfvEnv) newManager(t *testing.T) *volume.Manager {
	t.Helper()
	m, err := volume.New(volume.Config{Cell: cell, DB: b.db, Backend: b.be, Sender: b.sent, Images: b.images,
		Hosts: b.compute, PollInterval: 50 * time.Millisecond, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
	return m
}

// newConductor is a restarted conductor on the cell's database.
func (b *bfvEnv) newConductor(t *testing.T, vols conductor.Volumes) *conductor.Conductor {
	t.Helper()
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: b.db, Sender: b.sent, Scheduler: b.sched, Network: b.network,
		Compute: b.compute, PollInterval: 100 * time.Millisecond, HealInterval: time.Hour, Logger: quiet, Volumes: vols})
	if err != nil {
		t.Fatal(err)
	}
	if err := cd.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })
	return cd
}

func volID(n int) string { return fmt.Sprintf("00000000-0000-0000-0000-0000000000b%d", n) }

// bfvBuild is one instance of a flavor with a 10 GiB root disk mapped as
// devs.
func bfvBuild(devs ...wire.BlockDevice) *wire.BuildInstances {
	b := build(1, 0)
	b.Instances[0].ImageRef = ""
	b.Instances[0].BlockDevices = devs
	return b
}

func (b *bfvEnv) status(t *testing.T, id, want string) *celldb.Volume {
	t.Helper()
	var v *celldb.Volume
	testpoll.Eventually(t, wait, "volume "+id+" "+want, func() (bool, string) {
		var err error
		if v, err = celldb.GetVolume(context.Background(), b.db, id); err != nil {
			return false, err.Error()
		}
		return v.Status == want && v.Action == "", fmt.Sprintf("%s, pending %q", v.Status, v.Action)
	})
	return v
}

func (b *bfvEnv) vmState(t *testing.T, u, want string) *celldb.Instance {
	t.Helper()
	var in *celldb.Instance
	testpoll.Eventually(t, wait, "instance "+want, func() (bool, string) {
		in = get(t, b.db, u)
		return in.VMState == want && in.TaskState == "", fmt.Sprintf("vm %q task %q", in.VMState, in.TaskState)
	})
	return in
}

// createVolume makes an available volume in the cell, as volume_create
// would.
func (b *bfvEnv) createVolume(t *testing.T, id string, sizeGB int) {
	t.Helper()
	ctx := context.Background()
	spec := wire.VolumeSpec{ID: id, ProjectID: "p1", UserID: "u1", SizeGB: sizeGB, CreatedAt: t0}
	if err := b.db.InTx(ctx, func(tx *db.Tx) error {
		return b.m.Create(ctx, tx, envelope("req-vol-"+id, &wire.VolumeCreate{Volume: spec}))
	}); err != nil {
		t.Fatal(err)
	}
	b.status(t, id, "available")
}

func (b *bfvEnv) path(t *testing.T, id string) string {
	t.Helper()
	p, err := b.be.VolumePath(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lastState is the last state of volume id sent up.
func lastState(t *testing.T, r *recorder, id string) wire.VolumeState {
	t.Helper()
	st := volumeStates(t, r, id)
	if len(st) == 0 {
		t.Fatalf("no state of volume %s sent", id)
	}
	for j := 1; j < len(st); j++ {
		if st[j].Version <= st[j-1].Version {
			t.Errorf("volume %s sent at version %d after %d", id, st[j].Version, st[j-1].Version)
		}
	}
	return st[len(st)-1]
}

// waitSent waits until the last state of volume id sent satisfies ok and
// returns it: a message is recorded once its transaction has committed
// (AfterCommit), which may be after the rows a test polled read as
// expected.
func waitSent(t *testing.T, r *recorder, id, what string, ok func(wire.VolumeState) bool) wire.VolumeState {
	t.Helper()
	var last wire.VolumeState
	testpoll.Eventually(t, wait, what, func() (bool, string) {
		st := volumeStates(t, r, id)
		if len(st) == 0 {
			return false, "nothing sent"
		}
		last = st[len(st)-1]
		return ok(last), fmt.Sprintf("%+v", st)
	})
	return lastState(t, r, id) // and its versions in order
}

// TestBootFromImageVolume: a build whose root is a new volume made from
// an image, with a blank data volume beside it: the volumes are made in
// the cell (the image's bytes in the boot volume's file), the instance is
// spawned with the boot volume at /dev/vda and the blank one at /dev/vdb
// on the fake driver, both in-use with their attachments sent up; the
// host claims no root disk. Its delete deletes the volume marked
// delete_on_termination (its file gone) and leaves the other available.
func TestBootFromImageVolume(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := newBFVCell(t, d, cellOpts{hosts: []string{"h1"}})
		img := bytes.Repeat([]byte("bootable"), 10000)
		e.images.data["img-1"] = img
		b := bfvBuild(
			wire.BlockDevice{UUID: "bdm-1", SourceType: "image", DestinationType: "volume", VolumeID: volID(1), New: true,
				AttachmentID: "att-1", ImageID: "img-1", ImageSize: int64(len(img)), VolumeSize: 1, BootIndex: 0,
				DeleteOnTermination: true},
			wire.BlockDevice{UUID: "bdm-2", SourceType: "blank", DestinationType: "volume", VolumeID: volID(2), New: true,
				AttachmentID: "att-2", VolumeSize: 2, BootIndex: -1})
		u := b.Instances[0].UUID
		accept(t, e.db, e.cd, "req-1", b)
		e.start(t)
		in := e.vmState(t, u, celldb.VMActive)
		e.status(t, volID(1), "in-use")
		e.status(t, volID(2), "in-use")
		disks := e.driver.Disks(in.Host, u)
		if disks["/dev/vda"] != e.path(t, volID(1)) || disks["/dev/vdb"] != e.path(t, volID(2)) || len(disks) != 2 {
			t.Errorf("disks %v, want /dev/vda the boot volume's file and /dev/vdb the blank one's", disks)
		}
		f, err := os.Open(e.path(t, volID(1)))
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(img))
		_, err = io.ReadFull(f, got)
		f.Close()
		if err != nil || !bytes.Equal(got, img) {
			t.Errorf("the boot volume's file does not begin with the image's bytes")
		}
		// A volume-backed instance claims no root disk (Nova's is_bfv).
		ns, err := celldb.ListNodes(ctx, e.db)
		if err != nil {
			t.Fatal(err)
		}
		if len(ns) != 1 || ns[0].UsedDiskGB != small.EphemeralGB {
			t.Errorf("nodes %+v: want no root disk used", ns)
		}
		for i, dev := range map[int]string{1: "/dev/vda", 2: "/dev/vdb"} {
			st := waitSent(t, e.sent, volID(i), "the volume sent in-use", func(st wire.VolumeState) bool { return st.Status == "in-use" })
			if st.Status != "in-use" || len(st.Attachments) != 1 || st.Attachments[0].Device != dev ||
				st.Attachments[0].Status != "attached" || st.Attachments[0].InstanceUUID != u {
				t.Errorf("volume %d last sent %+v, want in-use attached at %s", i, st, dev)
			}
		}
		if st := lastState(t, e.sent, volID(1)); st.Attachments[0].BootIndex != 0 || !st.Attachments[0].DeleteOnTermination {
			t.Errorf("boot volume's attachment %+v, want boot index 0, delete on termination", st.Attachments[0])
		}

		if err := e.db.InTx(ctx, func(tx *db.Tx) error {
			return e.cd.DeleteInstances(ctx, tx, envelope("req-del", &wire.DeleteInstances{UUIDs: []string{u}}))
		}); err != nil {
			t.Fatal(err)
		}
		testpoll.Eventually(t, wait, "the instance deleted", func() (bool, string) {
			in := get(t, e.db, u)
			return in.Deleted, fmt.Sprintf("vm %q task %q", in.VMState, in.TaskState)
		})
		e.status(t, volID(1), "deleted")
		e.status(t, volID(2), "available")
		if _, err := os.Stat(e.path(t, volID(1))); !os.IsNotExist(err) {
			t.Errorf("the boot volume's file: %v, want it gone", err)
		}
		if _, err := os.Stat(e.path(t, volID(2))); err != nil {
			t.Errorf("the kept volume's file: %v", err)
		}
		if bdms, err := celldb.InstanceBDMs(ctx, e.db, u); err != nil || len(bdms) != 0 {
			t.Errorf("mappings %v, %v after the delete: want none", bdms, err)
		}
	})
}

// TestBootFromExistingVolume: a build whose root is an existing volume of
// the cell, on a host whose disk is smaller than the flavor's root disk
// (which a volume-backed server does not claim: the host scheduler's disk
// filter lets it through): it is attached at /dev/vda and in-use; the
// instance's delete without delete_on_termination leaves it available
// with no attachment.
func TestBootFromExistingVolume(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := newBFVCell(t, d, cellOpts{hosts: []string{"h1"}, spec: compute.HostSpec{DiskGB: small.RootGB / 2}})
		e.createVolume(t, volID(3), 1)
		b := bfvBuild(wire.BlockDevice{UUID: "bdm-3", SourceType: "volume", DestinationType: "volume", VolumeID: volID(3),
			AttachmentID: "att-3", BootIndex: 0})
		u := b.Instances[0].UUID
		accept(t, e.db, e.cd, "req-1", b)
		e.start(t)
		in := e.vmState(t, u, celldb.VMActive)
		e.status(t, volID(3), "in-use")
		if disks := e.driver.Disks(in.Host, u); disks["/dev/vda"] != e.path(t, volID(3)) {
			t.Errorf("disks %v, want /dev/vda the volume's file", disks)
		}
		if err := e.db.InTx(ctx, func(tx *db.Tx) error {
			return e.cd.DeleteInstances(ctx, tx, envelope("req-del", &wire.DeleteInstances{UUIDs: []string{u}}))
		}); err != nil {
			t.Fatal(err)
		}
		e.status(t, volID(3), "available")
		if st := waitSent(t, e.sent, volID(3), "the volume sent available", func(st wire.VolumeState) bool { return st.Status == "available" }); st.Status != "available" || len(st.Attachments) != 0 {
			t.Errorf("volume last sent %+v, want available, no attachment", st)
		}
	})
}

// TestBootVolumeNotCreated: the boot volume cannot be made (its image is
// not in the store): the instance goes to ERROR with Nova's fault of
// _await_block_device_map_created, keeping its mapping; its delete
// deletes the volume in error (delete_on_termination).
func TestBootVolumeNotCreated(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := newBFVCell(t, d, cellOpts{hosts: []string{"h1"}})
		b := bfvBuild(wire.BlockDevice{UUID: "bdm-1", SourceType: "image", DestinationType: "volume", VolumeID: volID(1), New: true,
			AttachmentID: "att-1", ImageID: "img-missing", ImageSize: 1000, VolumeSize: 1, BootIndex: 0, DeleteOnTermination: true})
		u := b.Instances[0].UUID
		accept(t, e.db, e.cd, "req-1", b)
		e.start(t)
		in := e.vmState(t, u, celldb.VMError)
		want := fmt.Sprintf("Build of instance %s aborted: Volume %s did not finish being created even after we waited ", u, volID(1))
		if in.Fault == nil || !strings.HasPrefix(in.Fault.Message, want) || !strings.HasSuffix(in.Fault.Message, "attempts. And its status is error.") {
			t.Errorf("fault %+v, want Nova's VolumeNotCreated", in.Fault)
		}
		if cl := claims(t, e.db); cl[u] != "" {
			t.Errorf("claims %v: an instance in ERROR holds none", cl)
		}
		if bdms, err := celldb.InstanceBDMs(ctx, e.db, u); err != nil || len(bdms) != 1 {
			t.Errorf("mappings %v, %v: want the boot volume's kept", bdms, err)
		}
		if err := e.db.InTx(ctx, func(tx *db.Tx) error {
			return e.cd.DeleteInstances(ctx, tx, envelope("req-del", &wire.DeleteInstances{UUIDs: []string{u}}))
		}); err != nil {
			t.Fatal(err)
		}
		e.status(t, volID(1), "deleted")
	})
}

// TestBootFromVolumeRestart: the processes stop while the instance waits
// in block_device_mapping for its volume (the image being read), or (as
// the rows are left) in the middle of its spawn: a new volume manager and
// a new conductor on the same database make the volume and finish the
// build (a spawn cut short is placed again and finds its mapping made). A
// repeat of the build's preparation changes nothing (one mapping, one
// volume).
func TestBootFromVolumeRestart(t *testing.T) {
	for _, crashIn := range []string{celldb.TaskBlockDeviceMapping, celldb.TaskSpawning} {
		t.Run(crashIn, func(t *testing.T) {
			dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
				ctx := context.Background()
				e := newBFVCell(t, d, cellOpts{hosts: []string{"h1"}})
				img := bytes.Repeat([]byte("restart!"), 1000)
				e.images.data["img-1"] = img
				e.images.close()
				b := bfvBuild(wire.BlockDevice{UUID: "bdm-1", SourceType: "image", DestinationType: "volume", VolumeID: volID(1), New: true,
					AttachmentID: "att-1", ImageID: "img-1", ImageSize: int64(len(img)), VolumeSize: 1, BootIndex: 0})
				u := b.Instances[0].UUID
				accept(t, e.db, e.cd, "req-1", b)
				e.start(t)
				<-e.images.held
				if in := get(t, e.db, u); in.TaskState != celldb.TaskBlockDeviceMapping || in.Host != "h1" {
					t.Fatalf("instance in task %q on %q, want block_device_mapping on h1", in.TaskState, in.Host)
				}
				// The API cell was told of the wait (Nova's task state).
				testpoll.Eventually(t, wait, "the wait sent up", func() (bool, string) {
					st := e.sent.statesOf(t, u)
					return slices.ContainsFunc(st, func(s wire.InstanceState) bool { return s.TaskState == celldb.TaskBlockDeviceMapping }),
						fmt.Sprintf("%d states", len(st))
				})
				_ = e.cd.Shutdown(ctx)
				_ = e.m.Shutdown(ctx)
				if v, err := celldb.GetVolume(ctx, e.db, volID(1)); err != nil || v.Status != "creating" || v.Action != "create" {
					t.Fatalf("volume %+v, %v: want creating, its creation pending", v, err)
				}
				if crashIn == celldb.TaskSpawning {
					// The rows of a process that stopped in the spawn.
					waiting := celldb.TaskBlockDeviceMapping
					if err := e.db.InTx(ctx, func(tx *db.Tx) error {
						return celldb.Set(ctx, tx, u, &waiting, celldb.Change{TaskState: &crashIn}, time.Now())
					}); err != nil {
						t.Fatal(err)
					}
				}
				// A repeat of the preparation (a restarted build) changes nothing.
				if err := e.db.InTx(ctx, func(tx *db.Tx) error {
					return e.m.PrepareBuild(ctx, tx, get(t, e.db, u), "req-1")
				}); err != nil {
					t.Fatal(err)
				}
				e.images.open()
				m := e.newManager(t)
				e.newConductor(t, m)
				in := e.vmState(t, u, celldb.VMActive)
				e.status(t, volID(1), "in-use")
				if disks := e.driver.Disks(in.Host, u); disks["/dev/vda"] != e.path(t, volID(1)) {
					t.Errorf("disks %v, want /dev/vda the boot volume's file", disks)
				}
				if bdms, err := celldb.InstanceBDMs(ctx, e.db, u); err != nil || len(bdms) != 1 || bdms[0].DeviceName != "/dev/vda" {
					t.Errorf("mappings %v, %v: want the boot volume's alone", bdms, err)
				}
				if cl := claims(t, e.db); cl[u] != in.Host {
					t.Errorf("claims %v, want the instance's on %s", cl, in.Host)
				}
			})
		})
	}
}

// TestBootFromVolumeNotHandedBack: a build with an existing volume of the
// cell that no host here has room for fails to ERROR here; it is not
// handed back to the scheduling parent. The volume is left available.
func TestBootFromVolumeNotHandedBack(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newBFVCell(t, d, cellOpts{hosts: []string{"h1"}})
		e.createVolume(t, volID(3), 1)
		b := bfvBuild(wire.BlockDevice{UUID: "bdm-3", SourceType: "volume", DestinationType: "volume", VolumeID: volID(3),
			AttachmentID: "att-3", BootIndex: 0})
		b.Flavor.VCPUs = 1000
		u := b.Instances[0].UUID
		accept(t, e.db, e.cd, "req-1", b)
		e.start(t)
		in := e.vmState(t, u, celldb.VMError)
		if in.Fault == nil || !strings.HasPrefix(in.Fault.Message, "No valid host was found.") {
			t.Errorf("fault %+v, want No valid host", in.Fault)
		}
		if got := e.sent.buildFailed(t); len(got) != 0 {
			t.Errorf("build_failed sent %d times, want never", len(got))
		}
		if v, _ := celldb.GetVolume(context.Background(), e.db, volID(3)); v.Status != "available" {
			t.Errorf("volume %s, want available", v.Status)
		}
		// The volume is sent as it is, at a new version: the API cell's
		// copy drops the status it reserved it with.
		testpoll.Eventually(t, wait, "the volume sent again", func() (bool, string) {
			st := volumeStates(t, e.sent, volID(3))
			return len(st) >= 2 && st[len(st)-1].Status == "available", fmt.Sprintf("%+v", st)
		})
	})
}

// TestBootFromVolumeWithoutVolumeRole: a cell with no volume role fails a
// build with volume mappings to ERROR with a clear fault.
func TestBootFromVolumeWithoutVolumeRole(t *testing.T) {
	e := newCell(t, cellOpts{hosts: []string{"h1"}})
	b := bfvBuild(wire.BlockDevice{UUID: "bdm-1", SourceType: "blank", DestinationType: "volume", VolumeID: volID(1), New: true,
		AttachmentID: "att-1", VolumeSize: 1, BootIndex: 0})
	u := b.Instances[0].UUID
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)
	testpoll.Eventually(t, wait, "instance ERROR", func() (bool, string) {
		in := get(t, e.db, u)
		return in.VMState == celldb.VMError, fmt.Sprintf("vm %q", in.VMState)
	})
	if in := get(t, e.db, u); in.Fault == nil || !strings.Contains(in.Fault.Message, "has no volume service") {
		t.Errorf("fault %+v, want the cell's missing volume service", get(t, e.db, u).Fault)
	}
	// The new volume the API cell holds a copy of was never made: it is
	// sent as deleted.
	if st := waitSent(t, e.sent, volID(1), "the volume sent deleted", func(st wire.VolumeState) bool { return st.Deleted }); !st.Deleted || st.Cell != cell || st.Version != 1 {
		t.Errorf("volume last sent %+v, want its deletion at version 1 from this cell", st)
	}
}

// TestDeleteWhileWaitingForVolumes: an instance deleted while it waits in
// block_device_mapping for its boot volume (the image being read): its
// mapping goes, and the volume marked delete_on_termination is deleted
// once its creation ends (the creation's end finds the delete pending);
// the instance is never spawned.
func TestDeleteWhileWaitingForVolumes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := newBFVCell(t, d, cellOpts{hosts: []string{"h1"}})
		img := bytes.Repeat([]byte("deleted!"), 1000)
		e.images.data["img-1"] = img
		e.images.close()
		b := bfvBuild(wire.BlockDevice{UUID: "bdm-1", SourceType: "image", DestinationType: "volume", VolumeID: volID(1), New: true,
			AttachmentID: "att-1", ImageID: "img-1", ImageSize: int64(len(img)), VolumeSize: 1, BootIndex: 0, DeleteOnTermination: true})
		u := b.Instances[0].UUID
		accept(t, e.db, e.cd, "req-1", b)
		e.start(t)
		<-e.images.held
		if err := e.db.InTx(ctx, func(tx *db.Tx) error {
			return e.cd.DeleteInstances(ctx, tx, envelope("req-del", &wire.DeleteInstances{UUIDs: []string{u}}))
		}); err != nil {
			t.Fatal(err)
		}
		testpoll.Eventually(t, wait, "the instance deleted", func() (bool, string) {
			in := get(t, e.db, u)
			return in.Deleted, fmt.Sprintf("vm %q task %q", in.VMState, in.TaskState)
		})
		if v, err := celldb.GetVolume(ctx, e.db, volID(1)); err != nil || v.Status != "deleting" || v.Action != "delete" {
			t.Fatalf("volume %+v, %v: want deleting, its delete pending (its creation still running)", v, err)
		}
		e.images.open()
		e.status(t, volID(1), "deleted")
		if _, err := os.Stat(e.path(t, volID(1))); !os.IsNotExist(err) {
			t.Errorf("the boot volume's file: %v, want it gone", err)
		}
		if in := get(t, e.db, u); !in.LaunchedAt.IsZero() {
			t.Errorf("instance launched at %v, want never spawned", in.LaunchedAt)
		}
		waitSent(t, e.sent, volID(1), "the volume sent deleted", func(st wire.VolumeState) bool { return st.Deleted })
	})
}
