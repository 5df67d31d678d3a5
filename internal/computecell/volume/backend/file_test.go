package backend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// unit is the "GiB" of the tests' backends: small enough to compare whole
// volumes byte for byte, a multiple of any block size.
const unit = 1 << 20

func newTestFile(t *testing.T, cfg FileConfig) *File {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "vols")
	}
	b, err := newFile(cfg, unit)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// patch is bytes written at an offset of a volume.
type patch struct {
	off  int64
	data []byte
}

// pattern is non-zero bytes that differ from one offset to the next.
func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) + seed | 1
	}
	return p
}

// known is what the tests write into a 3-unit volume: its first bytes,
// bytes beyond a hole of more than a unit, and its last byte.
func known() []patch {
	return []patch{
		{0, pattern(5000, 1)},
		{unit + unit/2, pattern(70000, 2)},
		{3*unit - 1, []byte{0xEE}},
	}
}

// expect is a volume of size bytes holding the patches, zero elsewhere.
func expect(size int64, ps []patch) []byte {
	b := make([]byte, size)
	for _, p := range ps {
		copy(b[p.off:], p.data)
	}
	return b
}

func writePatches(t *testing.T, path string, ps []patch) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range ps {
		if _, err := f.WriteAt(p.data, p.off); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// readVolume reads a volume back through Open.
func readVolume(t *testing.T, b *File, id string) []byte {
	t.Helper()
	r, err := b.Open(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// allocated is the bytes of the blocks a file holds.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

func sameBytes(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("%s: byte %d is %#x, want %#x", what, i, got[i], want[i])
	}
}

func firstDiff(a, b []byte) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// names lists a directory, temporaries included.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// onlyFiles fails unless the backend's directories hold exactly the
// volumes and snapshots named (no temporaries, nothing partial).
func onlyFiles(t *testing.T, b *File, vols, snaps []string) {
	t.Helper()
	for _, c := range []struct {
		dir  string
		want []string
	}{{b.vols, vols}, {b.snps, snaps}} {
		var want []string
		for _, id := range c.want {
			want = append(want, id+rawExt)
		}
		got := names(t, c.dir)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("%s holds %q, want %q", c.dir, got, want)
		}
	}
}

const (
	vol1 = "0b7ad1f4-6f0e-4c1a-9a52-3f6f2a3c1d01"
	vol2 = "0b7ad1f4-6f0e-4c1a-9a52-3f6f2a3c1d02"
	snp1 = "5e1f0c9a-2b7d-4d3e-8f10-aa55aa55aa01"
)

// TestCopiesKeepTheBytes: a snapshot, a clone, a volume from a snapshot
// (the same size and larger) hold the source's bytes byte for byte, zero
// beyond the source's size, and keep its holes; the source is unchanged.
// Each with and without reflink (where the test's filesystem has none,
// both take the sparse copy).
func TestCopiesKeepTheBytes(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		// do makes the copy; where says which file it is; size its
		// size in units.
		do   func(b *File) error
		path func(b *File) string
		size int64
	}{
		{"snapshot", func(b *File) error { return b.Snapshot(ctx, vol1, snp1) },
			func(b *File) string { return b.snapPath(snp1) }, 3},
		{"clone same size", func(b *File) error { return b.Clone(ctx, vol1, vol2, 3) },
			func(b *File) string { return b.volPath(vol2) }, 3},
		{"clone larger", func(b *File) error { return b.Clone(ctx, vol1, vol2, 5) },
			func(b *File) string { return b.volPath(vol2) }, 5},
		{"from snapshot same size", func(b *File) error {
			if err := b.Snapshot(ctx, vol1, snp1); err != nil {
				return err
			}
			return b.CreateFromSnapshot(ctx, snp1, vol2, 3)
		}, func(b *File) string { return b.volPath(vol2) }, 3},
		{"from snapshot larger", func(b *File) error {
			if err := b.Snapshot(ctx, vol1, snp1); err != nil {
				return err
			}
			// The source changes after the snapshot: the new volume
			// has the snapshot's bytes.
			if err := b.Extend(ctx, vol1, 4); err != nil {
				return err
			}
			return b.CreateFromSnapshot(ctx, snp1, vol2, 6)
		}, func(b *File) string { return b.volPath(vol2) }, 6},
	}
	for _, noReflink := range []bool{false, true} {
		for _, c := range cases {
			name := c.name
			if noReflink {
				name += " sparse copy"
			}
			t.Run(name, func(t *testing.T) {
				b := newTestFile(t, FileConfig{NoReflink: noReflink})
				if err := b.Create(ctx, vol1, 3); err != nil {
					t.Fatal(err)
				}
				writePatches(t, b.volPath(vol1), known())
				if err := c.do(b); err != nil {
					t.Fatal(err)
				}
				want := expect(c.size*unit, known())
				sameBytes(t, "copy", readFile(t, c.path(b)), want)
				if st, err := os.Stat(c.path(b)); err != nil || st.Mode().Perm() != 0o600 {
					t.Fatalf("copy's mode %v (%v), want 0600", st.Mode(), err)
				}
				// The hole of more than a unit between the patches is
				// still a hole (a reflink or a sparse copy allocates
				// no blocks for it).
				if a := allocated(t, c.path(b)); a >= 2*unit {
					t.Errorf("copy allocates %d bytes: holes were filled", a)
				}
				// Reading the source back through Open gives its bytes.
				srcSize := int64(3)
				if c.name == "from snapshot larger" {
					srcSize = 4
				}
				sameBytes(t, "source", readVolume(t, b, vol1), expect(srcSize*unit, known()))
				if strings.HasPrefix(c.name, "clone") || strings.HasPrefix(c.name, "from") {
					sameBytes(t, "read back", readVolume(t, b, vol2), want)
				}
			})
		}
	}
}

// TestCopyIsIndependent: writing the source after a copy leaves the copy
// as it was (a reflink must not share writes).
func TestCopyIsIndependent(t *testing.T) {
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	if err := b.Create(ctx, vol1, 3); err != nil {
		t.Fatal(err)
	}
	writePatches(t, b.volPath(vol1), known())
	if err := b.Snapshot(ctx, vol1, snp1); err != nil {
		t.Fatal(err)
	}
	writePatches(t, b.volPath(vol1), []patch{{10, pattern(100, 9)}})
	sameBytes(t, "snapshot", readFile(t, b.snapPath(snp1)), expect(3*unit, known()))
}

// TestExtend: an extend keeps the bytes and sets the new size; the same
// size does nothing; a smaller size is ErrShrink and changes nothing.
func TestExtend(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		size     int
		wantErr  error
		wantSize int64
	}{
		{"grow", 7, nil, 7},
		{"same size", 3, nil, 3},
		{"shrink", 2, ErrShrink, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newTestFile(t, FileConfig{})
			if err := b.Create(ctx, vol1, 3); err != nil {
				t.Fatal(err)
			}
			writePatches(t, b.volPath(vol1), known())
			err := b.Extend(ctx, vol1, c.size)
			if !errors.Is(err, c.wantErr) || (err != nil) != (c.wantErr != nil) {
				t.Fatalf("extend to %d: %v, want %v", c.size, err, c.wantErr)
			}
			sameBytes(t, "volume", readVolume(t, b, vol1), expect(c.wantSize*unit, known()))
			onlyFiles(t, b, []string{vol1}, nil)
		})
	}
}

// TestTooSmallRefused: a clone or a volume from a snapshot smaller than
// its source is ErrTooSmall and leaves no file.
func TestTooSmallRefused(t *testing.T) {
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	if err := b.Create(ctx, vol1, 3); err != nil {
		t.Fatal(err)
	}
	if err := b.Snapshot(ctx, vol1, snp1); err != nil {
		t.Fatal(err)
	}
	if err := b.Clone(ctx, vol1, vol2, 2); !errors.Is(err, ErrTooSmall) {
		t.Errorf("clone to 2 of 3: %v, want ErrTooSmall", err)
	}
	if err := b.CreateFromSnapshot(ctx, snp1, vol2, 2); !errors.Is(err, ErrTooSmall) {
		t.Errorf("from snapshot 2 of 3: %v, want ErrTooSmall", err)
	}
	onlyFiles(t, b, []string{vol1}, []string{snp1})
}

// lyingReader gives n bytes of a pattern, whatever size is declared.
func lyingReader(n int) io.Reader { return bytes.NewReader(pattern(n, 3)) }

// cancelReader cancels its context after its first read: the copy stops
// half way.
type cancelReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel()
	return n, err
}

// TestCreateFromImage: the image's bytes at the start, zero after, and a
// zero chunk of the image left a hole; an image larger than the volume,
// an image with fewer or more bytes than declared, or a copy cancelled
// half way is an error and leaves no file.
func TestCreateFromImage(t *testing.T) {
	// An image of 2.5 units whose second unit is all zero.
	img := expect(5*unit/2, []patch{{0, pattern(unit, 4)}, {2 * unit, pattern(unit/2, 5)}})
	cases := []struct {
		name     string
		size     int
		image    func(ctx context.Context, cancel context.CancelFunc) io.Reader
		declared int64
		wantErr  error // nil: any error when fail
		fail     bool
	}{
		{"fits", 3, func(context.Context, context.CancelFunc) io.Reader { return bytes.NewReader(img) }, int64(len(img)), nil, false},
		{"exactly the size", 3, func(context.Context, context.CancelFunc) io.Reader { return lyingReader(3 * unit) }, 3 * unit, nil, false},
		{"empty image", 1, func(context.Context, context.CancelFunc) io.Reader { return bytes.NewReader(nil) }, 0, nil, false},
		{"larger than the volume", 2, func(context.Context, context.CancelFunc) io.Reader { return bytes.NewReader(img) }, int64(len(img)), ErrTooSmall, true},
		{"fewer bytes than declared", 3, func(context.Context, context.CancelFunc) io.Reader { return lyingReader(unit) }, 2 * unit, io.ErrUnexpectedEOF, true},
		{"more bytes than declared", 3, func(context.Context, context.CancelFunc) io.Reader { return lyingReader(2*unit + 1) }, 2 * unit, nil, true},
		{"cancelled half way", 3, func(_ context.Context, cancel context.CancelFunc) io.Reader {
			return &cancelReader{r: bytes.NewReader(img), cancel: cancel}
		}, int64(len(img)), context.Canceled, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			b := newTestFile(t, FileConfig{})
			r := c.image(ctx, cancel)
			err := b.CreateFromImage(ctx, vol1, c.size, r, c.declared)
			if c.fail {
				if err == nil || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
					t.Fatalf("%v, want an error %v", err, c.wantErr)
				}
				onlyFiles(t, b, nil, nil)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := make([]byte, int64(c.size)*unit)
			rr := c.image(ctx, cancel)
			if _, err := io.ReadFull(rr, want[:c.declared]); err != nil {
				t.Fatal(err)
			}
			sameBytes(t, "volume", readVolume(t, b, vol1), want)
			onlyFiles(t, b, []string{vol1}, nil)
		})
	}
	t.Run("zero chunk is a hole", func(t *testing.T) {
		b := newTestFile(t, FileConfig{})
		if err := b.CreateFromImage(context.Background(), vol1, 4, bytes.NewReader(img), int64(len(img))); err != nil {
			t.Fatal(err)
		}
		if a := allocated(t, b.volPath(vol1)); a >= 2*unit {
			t.Errorf("volume allocates %d bytes: the zero unit and the tail should be holes", a)
		}
	})
}

// TestBlankCreateIsSparse: a blank volume of 100 real GiB takes no
// blocks; its file is 0600 in 0700 directories.
func TestBlankCreateIsSparse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "vols")
	b, err := NewFile(FileConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Create(context.Background(), vol1, 100); err != nil {
		t.Fatal(err)
	}
	path, err := b.VolumePath(vol1)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != 100*GiB {
		t.Errorf("size %d, want %d", st.Size(), 100*GiB)
	}
	if a := allocated(t, path); a != 0 {
		t.Errorf("a blank volume allocates %d bytes", a)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("volume mode %v, want 0600", st.Mode().Perm())
	}
	for _, d := range []string{dir, filepath.Join(dir, "volumes"), filepath.Join(dir, "snapshots")} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %v, want 0700", d, st.Mode().Perm())
		}
	}
}

// TestDelete: deleting removes the file; deleting again is ErrNotFound;
// a volume's snapshot outlives it.
func TestDelete(t *testing.T) {
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	if err := b.Create(ctx, vol1, 1); err != nil {
		t.Fatal(err)
	}
	writePatches(t, b.volPath(vol1), []patch{{0, pattern(100, 6)}})
	if err := b.Snapshot(ctx, vol1, snp1); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, vol1); err != nil {
		t.Fatal(err)
	}
	onlyFiles(t, b, nil, []string{snp1})
	if err := b.CreateFromSnapshot(ctx, snp1, vol2, 1); err != nil {
		t.Fatalf("from the snapshot of a deleted volume: %v", err)
	}
	if err := b.DeleteSnapshot(ctx, snp1); err != nil {
		t.Fatal(err)
	}
	onlyFiles(t, b, []string{vol2}, nil)
	if err := b.Delete(ctx, vol1); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete again: %v, want ErrNotFound", err)
	}
	if err := b.DeleteSnapshot(ctx, snp1); !errors.Is(err, ErrNotFound) {
		t.Errorf("delete snapshot again: %v, want ErrNotFound", err)
	}
}

// TestMissing: every operation on a volume or snapshot that does not
// exist is ErrNotFound and creates nothing.
func TestMissing(t *testing.T) {
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	ops := []struct {
		name string
		do   func() error
	}{
		{"clone", func() error { return b.Clone(ctx, vol1, vol2, 1) }},
		{"snapshot", func() error { return b.Snapshot(ctx, vol1, snp1) }},
		{"from snapshot", func() error { return b.CreateFromSnapshot(ctx, snp1, vol2, 1) }},
		{"extend", func() error { return b.Extend(ctx, vol1, 2) }},
		{"delete", func() error { return b.Delete(ctx, vol1) }},
		{"delete snapshot", func() error { return b.DeleteSnapshot(ctx, snp1) }},
		{"open", func() error { _, err := b.Open(ctx, vol1); return err }},
	}
	for _, op := range ops {
		if err := op.do(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: %v, want ErrNotFound", op.name, err)
		}
	}
	onlyFiles(t, b, nil, nil)
}

// TestExists: an id in use is ErrExists and the existing file is kept;
// of concurrent creates of one id exactly one wins.
func TestExists(t *testing.T) {
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	if err := b.Create(ctx, vol1, 1); err != nil {
		t.Fatal(err)
	}
	writePatches(t, b.volPath(vol1), []patch{{0, pattern(100, 7)}})
	if err := b.Snapshot(ctx, vol1, snp1); err != nil {
		t.Fatal(err)
	}
	ops := []struct {
		name string
		do   func() error
	}{
		{"create", func() error { return b.Create(ctx, vol1, 2) }},
		{"from image", func() error { return b.CreateFromImage(ctx, vol1, 2, bytes.NewReader(nil), 0) }},
		{"clone", func() error { return b.Clone(ctx, vol1, vol1, 2) }},
		{"from snapshot", func() error { return b.CreateFromSnapshot(ctx, snp1, vol1, 2) }},
		{"snapshot", func() error { return b.Snapshot(ctx, vol1, snp1) }},
	}
	for _, op := range ops {
		if err := op.do(); !errors.Is(err, ErrExists) {
			t.Errorf("%s: %v, want ErrExists", op.name, err)
		}
	}
	sameBytes(t, "volume", readVolume(t, b, vol1), expect(unit, []patch{{0, pattern(100, 7)}}))
	onlyFiles(t, b, []string{vol1}, []string{snp1})

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { errs[i] = b.Clone(ctx, vol1, vol2, 1) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrExists):
			t.Errorf("concurrent clone: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d concurrent clones of one id succeeded, want 1", won)
	}
	onlyFiles(t, b, []string{vol1, vol2}, []string{snp1})
}

// TestInvalidID: an id that is not UUID-ish is refused by every operation
// before it touches a file.
func TestInvalidID(t *testing.T) {
	bad := []string{"", "../" + vol1, "a/b", "/etc/passwd", ".tmp-x", ".", "..", "-a", "_a",
		"a b", "a.raw", "a\x00b", "é", strings.Repeat("a", 65)}
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	if err := b.Create(ctx, vol1, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Snapshot(ctx, vol1, snp1); err != nil {
		t.Fatal(err)
	}
	for _, id := range bad {
		if ValidID(id) {
			t.Errorf("ValidID(%q) = true", id)
		}
		ops := map[string]func() error{
			"create":           func() error { return b.Create(ctx, id, 1) },
			"from image":       func() error { return b.CreateFromImage(ctx, id, 1, bytes.NewReader(nil), 0) },
			"clone to":         func() error { return b.Clone(ctx, vol1, id, 1) },
			"clone from":       func() error { return b.Clone(ctx, id, vol2, 1) },
			"snapshot of":      func() error { return b.Snapshot(ctx, id, snp1) },
			"snapshot as":      func() error { return b.Snapshot(ctx, vol1, id) },
			"from snapshot":    func() error { return b.CreateFromSnapshot(ctx, id, vol2, 1) },
			"from snapshot to": func() error { return b.CreateFromSnapshot(ctx, snp1, id, 1) },
			"extend":           func() error { return b.Extend(ctx, id, 2) },
			"delete":           func() error { return b.Delete(ctx, id) },
			"delete snapshot":  func() error { return b.DeleteSnapshot(ctx, id) },
			"open":             func() error { _, err := b.Open(ctx, id); return err },
			"volume path":      func() error { _, err := b.VolumePath(id); return err },
		}
		for name, op := range ops {
			if err := op(); !errors.Is(err, ErrInvalidID) {
				t.Errorf("%s %q: %v, want ErrInvalidID", name, id, err)
			}
		}
	}
	onlyFiles(t, b, []string{vol1}, []string{snp1})
	for _, id := range []string{vol1, "volume-1", "A", "a_b", strings.Repeat("f", 64)} {
		if !ValidID(id) {
			t.Errorf("ValidID(%q) = false", id)
		}
	}
}

// TestInvalidSize: sizes outside 1..MaxSizeGiB are refused.
func TestInvalidSize(t *testing.T) {
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	for _, size := range []int{0, -1, MaxSizeGiB + 1} {
		if err := b.Create(ctx, vol1, size); !errors.Is(err, ErrInvalidSize) {
			t.Errorf("create of %d: %v, want ErrInvalidSize", size, err)
		}
	}
	onlyFiles(t, b, nil, nil)
}

// TestStaleTemporariesRemovedAtStart: the temporaries a crash left are
// removed when the backend opens its directory; volumes and snapshots
// stay.
func TestStaleTemporariesRemovedAtStart(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "vols")
	b := newTestFile(t, FileConfig{Dir: dir})
	if err := b.Create(ctx, vol1, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.Snapshot(ctx, vol1, snp1); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(b.vols, tmpPrefix+vol2+"-123"), filepath.Join(b.snps, tmpPrefix+snp1+"-9")} {
		if err := os.WriteFile(p, []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b = newTestFile(t, FileConfig{Dir: dir})
	onlyFiles(t, b, []string{vol1}, []string{snp1})
}

// TestCapacity: the filesystem's figures without a configured total; with
// one, free is the total less the blocks written, and provisioned the sum
// of the sizes.
func TestCapacity(t *testing.T) {
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	c, err := b.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.TotalGiB <= 0 || c.FreeGiB > c.TotalGiB || c.ProvisionedGiB != 0 {
		t.Errorf("filesystem capacity %+v", c)
	}

	b = newTestFile(t, FileConfig{TotalGiB: 10})
	if err := b.Create(ctx, vol1, 4); err != nil {
		t.Fatal(err)
	}
	// Two units written, the rest a hole.
	writePatches(t, b.volPath(vol1), []patch{{0, pattern(2*unit, 8)}})
	if err := b.Snapshot(ctx, vol1, snp1); err != nil {
		t.Fatal(err)
	}
	c, err = b.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The snapshot's blocks are copied (about two units more), or
	// shared under a reflink; a filesystem may add a block of metadata.
	used := allocated(t, b.volPath(vol1)) + allocated(t, b.snapPath(snp1))
	if used < 2*unit {
		t.Fatalf("%d bytes allocated, want at least the two units written", used)
	}
	want := Capacity{TotalGiB: 10, FreeGiB: (10*unit - used) / unit, ProvisionedGiB: 8}
	if c != want {
		t.Errorf("capacity %+v, want %+v", c, want)
	}
}

// TestNewFileRefusesBadConfig: a directory is required.
func TestNewFileRefusesBadConfig(t *testing.T) {
	for _, cfg := range []FileConfig{{}, {Dir: t.TempDir(), TotalGiB: -1}} {
		if _, err := NewFile(cfg); err == nil {
			t.Errorf("NewFile(%+v) succeeded", cfg)
		}
	}
	// A file where the directory should be.
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewFile(FileConfig{Dir: f}); err == nil {
		t.Errorf("NewFile on a file succeeded")
	}
}

// TestReimage: a re-image writes the image over the volume, keeping its
// size (the image's bytes, zeros after, the old bytes gone); done again,
// the same bytes. An image larger than the volume (ErrTooSmall), a reader
// that gives fewer bytes than declared, or a volume the backend does not
// have (ErrNotFound) leave the volume as it was and no temporary.
func TestReimage(t *testing.T) {
	ctx := context.Background()
	b := newTestFile(t, FileConfig{})
	imgA, imgB := pattern(3*unit/2, 1), pattern(4000, 9)
	if err := b.CreateFromImage(ctx, "v1", 2, bytes.NewReader(imgA), int64(len(imgA))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := b.Reimage(ctx, "v1", bytes.NewReader(imgB), int64(len(imgB))); err != nil {
			t.Fatal(err)
		}
		sameBytes(t, "re-imaged volume", readVolume(t, b, "v1"), expect(2*unit, []patch{{0, imgB}}))
	}
	if err := b.Reimage(ctx, "v1", bytes.NewReader(pattern(2*unit+1, 2)), 2*unit+1); !errors.Is(err, ErrTooSmall) {
		t.Errorf("an image larger than the volume: %v, want ErrTooSmall", err)
	}
	if err := b.Reimage(ctx, "v1", bytes.NewReader(pattern(10, 2)), 100); err == nil {
		t.Error("a short image: no error")
	}
	sameBytes(t, "volume after failed re-images", readVolume(t, b, "v1"), expect(2*unit, []patch{{0, imgB}}))
	if err := b.Reimage(ctx, "nope", bytes.NewReader(imgB), int64(len(imgB))); !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing volume: %v, want ErrNotFound", err)
	}
	onlyFiles(t, b, []string{"v1"}, nil)
}
