package volume_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The cell under test sits two levels below the root, so that the root
// and the cell's parent are different paths.
const (
	cell = "api!region!cell1"
	root = "api"
)

const gib = backend.GiB

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is the managers' clock, moved by the tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// message is one message sent; it is recorded only when the transaction
// that sent it commits, as the outbox would.
type message struct {
	To, Method, RequestID string
	Payload               json.RawMessage
}

type recorder struct {
	mu   sync.Mutex
	msgs []message
}

var _ volume.Sender = (*recorder)(nil)

func (r *recorder) Send(_ context.Context, tx *db.Tx, to, method, requestID string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	m := message{To: to, Method: method, RequestID: requestID, Payload: b}
	tx.AfterCommit(func() {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	})
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

// updates decodes every volume_update sent, checking it went to the root.
func (r *recorder) updates(t *testing.T) []wire.VolumeUpdate {
	t.Helper()
	r.mu.Lock()
	msgs := slices.Clone(r.msgs)
	r.mu.Unlock()
	var out []wire.VolumeUpdate
	for _, m := range msgs {
		if m.Method == wire.MethodVolumeMoveDone {
			continue // to the other cell of a move (move_test.go)
		}
		if m.Method != wire.MethodVolumeUpdate {
			t.Errorf("sent %s, want only volume_update", m.Method)
			continue
		}
		if m.To != root {
			t.Errorf("volume_update sent to %q, want the root %q", m.To, root)
		}
		var u wire.VolumeUpdate
		if err := json.Unmarshal(m.Payload, &u); err != nil {
			t.Fatalf("volume_update payload: %v", err)
		}
		out = append(out, u)
	}
	return out
}

// volumeStates returns every state sent for volume id, in order.
func (r *recorder) volumeStates(t *testing.T, id string) []wire.VolumeState {
	t.Helper()
	var out []wire.VolumeState
	for _, u := range r.updates(t) {
		for _, s := range u.Volumes {
			if s.ID == id {
				out = append(out, s)
			}
		}
	}
	return out
}

// snapshotStates returns every state sent for snapshot id, in order.
func (r *recorder) snapshotStates(t *testing.T, id string) []wire.SnapshotState {
	t.Helper()
	var out []wire.SnapshotState
	for _, u := range r.updates(t) {
		for _, s := range u.Snapshots {
			if s.ID == id {
				out = append(out, s)
			}
		}
	}
	return out
}

// checkVersions checks that the versions sent for each volume and each
// snapshot strictly increase (heal resends excepted: they repeat a
// version), that every state names this cell, and that the first is at
// version 1 or more.
func (r *recorder) checkVersions(t *testing.T) {
	t.Helper()
	last := map[string]int64{}
	for _, u := range r.updates(t) {
		for _, s := range u.Volumes {
			checkVersion(t, last, "volume "+s.ID, s.Version, s.Cell, u.Heal)
		}
		for _, s := range u.Snapshots {
			checkVersion(t, last, "snapshot "+s.ID, s.Version, s.Cell, u.Heal)
		}
	}
}

func checkVersion(t *testing.T, last map[string]int64, key string, v int64, c string, heal bool) {
	t.Helper()
	if c != cell {
		t.Errorf("%s sent with cell %q, want %q", key, c, cell)
	}
	if v < 1 {
		t.Errorf("%s sent at version %d, want 1 or more", key, v)
	}
	if heal {
		if v > last[key] {
			t.Errorf("%s healed at version %d, above the %d sent before", key, v, last[key])
		}
		return
	}
	if v <= last[key] {
		t.Errorf("%s sent at version %d after %d: versions must strictly increase", key, v, last[key])
	}
	last[key] = v
}

// images is the API cell's image store as the manager reaches it.
type images struct {
	mu     sync.Mutex
	data   map[string][]byte
	reads  []int // lengths asked for
	writes []wire.ImageWrite
	// goneAt, if above zero, answers Gone from the goneAt-th write on.
	goneAt int
	// failData fails every write that carries data.
	failData bool
	// held, when set, holds every read until its context ends, and
	// is told of each read held.
	held chan struct{}
}

func newImages() *images { return &images{data: map[string][]byte{}} }

func (im *images) ReadImage(ctx context.Context, id string, off int64, n int) (wire.ImageChunk, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.held != nil {
		held := im.held
		im.mu.Unlock()
		select {
		case held <- struct{}{}:
		default:
		}
		<-ctx.Done()
		im.mu.Lock()
		return wire.ImageChunk{}, ctx.Err()
	}
	im.reads = append(im.reads, n)
	b, ok := im.data[id]
	if !ok {
		return wire.ImageChunk{}, wire.Errorf(wire.CodeNotFound, "image %s not found", id)
	}
	if off > int64(len(b)) {
		return wire.ImageChunk{}, errors.New("offset past the end")
	}
	end := min(off+int64(n), int64(len(b)))
	return wire.ImageChunk{Data: slices.Clone(b[off:end]), Size: int64(len(b))}, nil
}

func (im *images) WriteImage(_ context.Context, w *wire.ImageWrite) (wire.ImageWritten, error) {
	im.mu.Lock()
	defer im.mu.Unlock()
	c := *w
	c.Data = slices.Clone(w.Data)
	im.writes = append(im.writes, c)
	if im.failData && len(w.Data) > 0 {
		return wire.ImageWritten{}, wire.Errorf(wire.CodeTimeout, "image_write timed out")
	}
	if im.goneAt > 0 && len(im.writes) >= im.goneAt {
		return wire.ImageWritten{Gone: true}, nil
	}
	return wire.ImageWritten{}, nil
}

func (im *images) written() []wire.ImageWrite {
	im.mu.Lock()
	defer im.mu.Unlock()
	return slices.Clone(im.writes)
}

// env is a cell's volume role on a database and a backend directory.
type env struct {
	t      *testing.T
	d      *db.DB
	dir    string
	b      *backend.File
	rec    *recorder
	images *images
	clock  *clock
	// hosts is the compute hosts as the manager reaches them: the fake
	// driver (attach.go's tests).
	hosts *hosts
	// maxDevices is the managers' MaxDiskDevices.
	maxDevices int
	m          *volume.Manager
	started    bool

	// cellPath is the managers' cell ("": cell) and peers their Peers
	// (move_test.go).
	cellPath string
	peers    volume.Peers
}

func migrated(t *testing.T, d *db.DB) {
	t.Helper()
	if err := d.Migrate(context.Background(), "compute", celldb.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

// newEnv makes a manager, not started (start runs it).
func newEnv(t *testing.T, d *db.DB) *env {
	t.Helper()
	migrated(t, d)
	e := &env{t: t, d: d, dir: t.TempDir(), rec: &recorder{}, images: newImages(), clock: &clock{now: t0}, hosts: newHosts(t)}
	e.m = e.newManager()
	t.Cleanup(func() {
		if err := e.m.Shutdown(context.Background()); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return e
}

// newManager makes a manager on the env's database, backend directory,
// sender and images, as a restarted process would.
func (e *env) newManager() *volume.Manager {
	e.t.Helper()
	b, err := backend.NewFile(backend.FileConfig{Dir: e.dir, TotalGiB: 10})
	if err != nil {
		e.t.Fatal(err)
	}
	e.b = b
	path := cell
	if e.cellPath != "" {
		path = e.cellPath
	}
	m, err := volume.New(volume.Config{Cell: path, DB: e.d, Peers: e.peers, Backend: b, Sender: e.rec, Images: e.images,
		Workers: 2, PollInterval: 20 * time.Millisecond, HealInterval: time.Hour, Hosts: e.hosts, MaxDiskDevices: e.maxDevices,
		Logger: slog.New(slog.DiscardHandler), Now: e.clock.Now})
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) start() {
	e.t.Helper()
	if err := e.m.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.started = true
}

// restart replaces the manager with a new one on the same database and
// directory, started.
func (e *env) restart() {
	e.t.Helper()
	if err := e.m.Shutdown(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.m = e.newManager()
	e.start()
}

func envelope(t *testing.T, method, requestID string, payload any) *wire.Envelope {
	t.Helper()
	b, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	return &wire.Envelope{ID: "msg-" + requestID, Method: method, RequestID: requestID, Payload: b}
}

// create delivers volume_create, as the cells service does.
func (e *env) create(requestID string, spec wire.VolumeSpec) {
	e.t.Helper()
	env := envelope(e.t, wire.MethodVolumeCreate, requestID, wire.VolumeCreate{Volume: spec})
	if err := e.d.InTx(context.Background(), func(tx *db.Tx) error { return e.m.Create(context.Background(), tx, env) }); err != nil {
		e.t.Fatalf("volume_create %s: %v", spec.ID, err)
	}
}

// act delivers volume_action.
func (e *env) act(requestID string, a wire.VolumeAction) {
	e.t.Helper()
	env := envelope(e.t, wire.MethodVolumeAction, requestID, a)
	if err := e.d.InTx(context.Background(), func(tx *db.Tx) error { return e.m.Action(context.Background(), tx, env) }); err != nil {
		e.t.Fatalf("volume_action %s on %s: %v", a.Action, a.VolumeID, err)
	}
}

func (e *env) volume(id string) *celldb.Volume {
	e.t.Helper()
	v, err := celldb.GetVolume(context.Background(), e.d, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func (e *env) snapshot(id string) *celldb.VolumeSnapshot {
	e.t.Helper()
	s, err := celldb.GetVolumeSnapshot(context.Background(), e.d, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// settled waits until volume id has no pending action and is in status,
// and its state is sent.
func (e *env) settled(id, status string) *celldb.Volume {
	e.t.Helper()
	var v *celldb.Volume
	testpoll.Eventually(e.t, 30*time.Second, "volume "+id+" "+status, func() (bool, string) {
		var err error
		v, err = celldb.GetVolume(context.Background(), e.d, id)
		if err != nil {
			return false, err.Error()
		}
		if v.Action != "" || v.Status != status {
			return false, fmt.Sprintf("status %s, pending %q, fault %q", v.Status, v.Action, v.Fault)
		}
		// The update is recorded after the commit: wait for it too.
		sent := e.rec.volumeStates(e.t, id)
		return len(sent) > 0 && sent[len(sent)-1].Version >= v.Version, fmt.Sprintf("version %d not sent yet", v.Version)
	})
	return v
}

// snapSettled waits until snapshot id has no pending operation and is in
// status, and its state is sent.
func (e *env) snapSettled(id, status string) *celldb.VolumeSnapshot {
	e.t.Helper()
	var s *celldb.VolumeSnapshot
	testpoll.Eventually(e.t, 30*time.Second, "snapshot "+id+" "+status, func() (bool, string) {
		var err error
		s, err = celldb.GetVolumeSnapshot(context.Background(), e.d, id)
		if err != nil {
			return false, err.Error()
		}
		if s.Pending != "" || s.Status != status {
			return false, fmt.Sprintf("status %s, pending %q, fault %q", s.Status, s.Pending, s.Fault)
		}
		sent := e.rec.snapshotStates(e.t, id)
		return len(sent) > 0 && sent[len(sent)-1].Version >= s.Version, fmt.Sprintf("version %d not sent yet", s.Version)
	})
	return s
}

// patch is bytes at an offset of a volume.
type patch struct {
	off  int64
	data []byte
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed | 1
	}
	return b
}

// write writes patches into volume id's file (a guest writing).
func (e *env) write(id string, ps ...patch) {
	e.t.Helper()
	path, err := e.b.VolumePath(id)
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	for _, p := range ps {
		if _, err := f.WriteAt(p.data, p.off); err != nil {
			e.t.Fatal(err)
		}
	}
}

// expectBytes checks, byte for byte, that r holds size bytes: the patches,
// zero elsewhere.
func expectBytes(t *testing.T, what string, r io.Reader, size int64, ps ...patch) {
	t.Helper()
	const chunk = 1 << 20
	got := make([]byte, chunk)
	want := make([]byte, chunk)
	var off int64
	for {
		n, err := io.ReadFull(r, got)
		if n > 0 {
			clear(want[:n])
			for _, p := range ps {
				lo, hi := max(p.off, off), min(p.off+int64(len(p.data)), off+int64(n))
				if lo < hi {
					copy(want[lo-off:hi-off], p.data[lo-p.off:hi-p.off])
				}
			}
			if !bytes.Equal(got[:n], want[:n]) {
				for i := range n {
					if got[i] != want[i] {
						t.Fatalf("%s: byte %d is %#x, want %#x", what, off+int64(i), got[i], want[i])
					}
				}
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if off != size {
		t.Fatalf("%s: %d bytes, want %d", what, off, size)
	}
}

// expectVolume checks volume id's file byte for byte: its size, the
// bytes of its data extents, and that its holes (which read as zero) hold
// no patch byte that is not zero. Reading only the data keeps a check of
// a sparse GiB cheap.
func (e *env) expectVolume(id string, size int64, ps ...patch) {
	e.t.Helper()
	path, err := e.b.VolumePath(id)
	if err != nil {
		e.t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		e.t.Fatalf("volume %s: %v", id, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		e.t.Fatal(err)
	}
	if st.Size() != size {
		e.t.Fatalf("volume %s: %d bytes, want %d", id, st.Size(), size)
	}
	fd := int(f.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			data = size
		} else if err != nil {
			e.t.Fatalf("volume %s: seek data: %v", id, err)
		}
		for _, p := range ps {
			lo, hi := max(p.off, off), min(p.off+int64(len(p.data)), data)
			if lo < hi && !bytes.Equal(p.data[lo-p.off:hi-p.off], make([]byte, hi-lo)) {
				e.t.Fatalf("volume %s: bytes %d..%d are a hole, want the patch at %d", id, lo, hi, p.off)
			}
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			e.t.Fatalf("volume %s: seek hole: %v", id, err)
		}
		var in []patch
		for _, p := range ps {
			lo, hi := max(p.off, data), min(p.off+int64(len(p.data)), hole)
			if lo < hi {
				in = append(in, patch{lo - data, p.data[lo-p.off : hi-p.off]})
			}
		}
		expectBytes(e.t, fmt.Sprintf("volume %s at %d", id, data), io.NewSectionReader(f, data, hole-data), hole-data, in...)
		off = hole
	}
}

// exists reports whether the backend has volume (or snapshot) id's file
// (docs/volume-backends.md: Dir/volumes/<id>.raw, Dir/snapshots/<id>.raw).
func (e *env) exists(kind, id string) bool {
	_, err := os.Stat(filepath.Join(e.dir, kind, id+".raw"))
	return err == nil
}

func vid(n int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", n) }
func sid(n int) string { return fmt.Sprintf("5a000000-0000-0000-0000-%012d", n) }

func blank(id string, size int) wire.VolumeSpec {
	return wire.VolumeSpec{ID: id, ProjectID: "p1", UserID: "u1", SizeGB: size, TypeID: "t1", TypeName: "__DEFAULT__", CreatedAt: t0}
}

// last returns the last of states, failing when there are none.
func last[T any](t *testing.T, what string, states []T) T {
	t.Helper()
	if len(states) == 0 {
		t.Fatalf("no state sent for %s", what)
	}
	return states[len(states)-1]
}
