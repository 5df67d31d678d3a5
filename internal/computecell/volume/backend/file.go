package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cellcloud/cellcloud/internal/privfs"
)

// FileConfig configures a File backend.
type FileConfig struct {
	// Dir is the backend's directory (required): volumes are
	// Dir/volumes/<id>.raw and snapshots Dir/snapshots/<id>.raw.
	Dir string
	// TotalGiB, if above zero, is the space the backend may use; zero
	// means the filesystem's size.
	TotalGiB int64
	// NoReflink makes every copy a sparse copy even where the filesystem
	// could share blocks (FICLONE): for a filesystem whose reflinks are
	// unwanted, and for tests of the copy path.
	NoReflink bool
}

// File is the default backend: a sparse raw file per volume and per
// snapshot. A blank volume takes no space until written; a copy shares
// blocks with its source where the filesystem has reflinks (XFS, Btrfs,
// bcachefs, ZFS 2.2) and otherwise copies only the written extents, so
// holes stay holes. New files are written under a temporary name in the
// same directory and renamed into place after fsync.
type File struct {
	cfg  FileConfig
	vols string
	snps string
	// unit is the bytes of one GiB of size; only tests make it smaller,
	// to compare whole volumes byte for byte.
	unit int64
}

// tmpPrefix starts the name of a file being written. No valid id starts
// with '.', so a temporary never collides with a volume.
const tmpPrefix = ".tmp-"

// rawExt is the extension of a volume's or snapshot's file.
const rawExt = ".raw"

// NewFile validates cfg, creates the directories (0700) and removes the
// temporaries that a crash left behind. One File owns a directory:
// two processes on the same directory would remove each other's
// temporaries.
func NewFile(cfg FileConfig) (*File, error) {
	return newFile(cfg, GiB)
}

func newFile(cfg FileConfig, unit int64) (*File, error) {
	if cfg.Dir == "" {
		return nil, errors.New("file volume backend: dir is required")
	}
	if cfg.TotalGiB < 0 {
		return nil, fmt.Errorf("file volume backend: total %d GiB is negative", cfg.TotalGiB)
	}
	b := &File{
		cfg:  cfg,
		vols: filepath.Join(cfg.Dir, "volumes"),
		snps: filepath.Join(cfg.Dir, "snapshots"),
		unit: unit,
	}
	for _, d := range []string{cfg.Dir, b.vols, b.snps} {
		if err := privfs.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("file volume backend: %w", err)
		}
	}
	for _, d := range []string{b.vols, b.snps} {
		if err := removeTemporaries(d); err != nil {
			return nil, fmt.Errorf("file volume backend: %w", err)
		}
	}
	return b, nil
}

var _ Backend = (*File)(nil)

// removeTemporaries removes the files a crash left half written.
func removeTemporaries(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// VolumePath is the file of volume id (for a hypervisor to attach).
func (b *File) VolumePath(id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	return b.volPath(id), nil
}

func (b *File) volPath(id string) string  { return filepath.Join(b.vols, id+rawExt) }
func (b *File) snapPath(id string) string { return filepath.Join(b.snps, id+rawExt) }

func (b *File) bytes(sizeGiB int) int64 { return int64(sizeGiB) * b.unit }

// Create makes a sparse file of the size: no blocks until written.
func (b *File) Create(ctx context.Context, id string, sizeGiB int) error {
	if err := firstErr(checkID(id), checkSize(sizeGiB), ctx.Err()); err != nil {
		return fmt.Errorf("create volume: %w", err)
	}
	err := b.write(b.vols, id, func(f *os.File) error {
		return f.Truncate(b.bytes(sizeGiB))
	})
	if err != nil {
		return fmt.Errorf("create volume %s: %w", id, err)
	}
	return nil
}

// CreateFromImage writes the image's bytes at the start of a sparse file
// of the size, leaving the image's zero chunks as holes.
func (b *File) CreateFromImage(ctx context.Context, id string, sizeGiB int, image io.Reader, imageSize int64) error {
	if err := firstErr(checkID(id), checkSize(sizeGiB), ctx.Err()); err != nil {
		return fmt.Errorf("create volume from image: %w", err)
	}
	size := b.bytes(sizeGiB)
	if imageSize < 0 {
		return fmt.Errorf("create volume %s from image: image size %d is negative", id, imageSize)
	}
	if imageSize > size {
		return fmt.Errorf("create volume %s from image: %w: the image is %d bytes, the volume %d GiB",
			id, ErrTooSmall, imageSize, sizeGiB)
	}
	err := b.write(b.vols, id, fillFromImage(ctx, size, image, imageSize))
	if err != nil {
		return fmt.Errorf("create volume %s from image: %w", id, err)
	}
	return nil
}

// fillFromImage writes a file of size bytes holding the image's imageSize
// bytes at its start, the image's zero chunks left as holes.
func fillFromImage(ctx context.Context, size int64, image io.Reader, imageSize int64) func(*os.File) error {
	return func(f *os.File) error {
		if err := f.Truncate(size); err != nil {
			return err
		}
		n, err := copyChunks(ctx, f, io.LimitReader(image, imageSize), 0)
		if err != nil {
			return fmt.Errorf("image: %w", err)
		}
		if n < imageSize {
			return fmt.Errorf("image: %w: %d of %d bytes", io.ErrUnexpectedEOF, n, imageSize)
		}
		// One byte more than declared: the image is not what its size
		// says, and a truncated copy of it must not become a volume.
		var one [1]byte
		if m, _ := io.ReadFull(image, one[:]); m > 0 {
			return fmt.Errorf("image: more than its declared %d bytes", imageSize)
		}
		return nil
	}
}

// Reimage writes a new file of the volume's size from the image under a
// temporary name and renames it over the volume's: a crash leaves the old
// file whole (and the temporary, removed at the next start).
func (b *File) Reimage(ctx context.Context, id string, image io.Reader, imageSize int64) error {
	if err := firstErr(checkID(id), ctx.Err()); err != nil {
		return fmt.Errorf("reimage volume: %w", err)
	}
	final := b.volPath(id)
	st, err := os.Stat(final)
	if err != nil {
		return fmt.Errorf("reimage volume %s: %w", id, notFound(err))
	}
	switch {
	case imageSize < 0:
		return fmt.Errorf("reimage volume %s: image size %d is negative", id, imageSize)
	case imageSize > st.Size():
		return fmt.Errorf("reimage volume %s: %w: the image is %d bytes, the volume %d", id, ErrTooSmall, imageSize, st.Size())
	}
	f, err := os.CreateTemp(b.vols, tmpPrefix+id+"-*")
	if err != nil {
		return fmt.Errorf("reimage volume %s: %w", id, err)
	}
	tmp := f.Name()
	err = fillFromImage(ctx, st.Size(), image, imageSize)(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, final)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("reimage volume %s: %w", id, err)
	}
	if err := syncDir(b.vols); err != nil {
		return fmt.Errorf("reimage volume %s: %w", id, err)
	}
	return nil
}

// Clone copies volume srcID into volume id.
func (b *File) Clone(ctx context.Context, srcID, id string, sizeGiB int) error {
	if err := firstErr(checkID(srcID), checkID(id), checkSize(sizeGiB), ctx.Err()); err != nil {
		return fmt.Errorf("clone volume: %w", err)
	}
	if err := b.copyInto(ctx, b.volPath(srcID), b.vols, id, b.bytes(sizeGiB)); err != nil {
		return fmt.Errorf("clone volume %s to %s: %w", srcID, id, err)
	}
	return nil
}

// Snapshot copies volume volumeID into snapshot snapshotID.
func (b *File) Snapshot(ctx context.Context, volumeID, snapshotID string) error {
	if err := firstErr(checkID(volumeID), checkID(snapshotID), ctx.Err()); err != nil {
		return fmt.Errorf("snapshot volume: %w", err)
	}
	// size -1: the source's size.
	if err := b.copyInto(ctx, b.volPath(volumeID), b.snps, snapshotID, -1); err != nil {
		return fmt.Errorf("snapshot volume %s as %s: %w", volumeID, snapshotID, err)
	}
	return nil
}

// CreateFromSnapshot copies snapshot snapshotID into volume id.
func (b *File) CreateFromSnapshot(ctx context.Context, snapshotID, id string, sizeGiB int) error {
	if err := firstErr(checkID(snapshotID), checkID(id), checkSize(sizeGiB), ctx.Err()); err != nil {
		return fmt.Errorf("create volume from snapshot: %w", err)
	}
	if err := b.copyInto(ctx, b.snapPath(snapshotID), b.vols, id, b.bytes(sizeGiB)); err != nil {
		return fmt.Errorf("create volume %s from snapshot %s: %w", id, snapshotID, err)
	}
	return nil
}

// Extend truncates the file upwards: the new tail is a hole.
func (b *File) Extend(ctx context.Context, id string, sizeGiB int) error {
	if err := firstErr(checkID(id), checkSize(sizeGiB), ctx.Err()); err != nil {
		return fmt.Errorf("extend volume: %w", err)
	}
	f, err := os.OpenFile(b.volPath(id), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("extend volume %s: %w", id, notFound(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("extend volume %s: %w", id, err)
	}
	size := b.bytes(sizeGiB)
	switch {
	case size < st.Size():
		return fmt.Errorf("extend volume %s: %w: %d GiB is below its %d bytes", id, ErrShrink, sizeGiB, st.Size())
	case size == st.Size():
		return nil
	}
	// Growing a file is one metadata change: a crash leaves the old size
	// or the new one, and the bytes below the old size are untouched.
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("extend volume %s: %w", id, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("extend volume %s: %w", id, err)
	}
	return nil
}

// Delete removes the volume's file.
func (b *File) Delete(ctx context.Context, id string) error {
	if err := firstErr(checkID(id), ctx.Err()); err != nil {
		return fmt.Errorf("delete volume: %w", err)
	}
	if err := b.remove(b.vols, b.volPath(id)); err != nil {
		return fmt.Errorf("delete volume %s: %w", id, err)
	}
	return nil
}

// DeleteSnapshot removes the snapshot's file.
func (b *File) DeleteSnapshot(ctx context.Context, snapshotID string) error {
	if err := firstErr(checkID(snapshotID), ctx.Err()); err != nil {
		return fmt.Errorf("delete snapshot: %w", err)
	}
	if err := b.remove(b.snps, b.snapPath(snapshotID)); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", snapshotID, err)
	}
	return nil
}

func (b *File) remove(dir, path string) error {
	if err := os.Remove(path); err != nil {
		return notFound(err)
	}
	return syncDir(dir)
}

// Open opens the volume's file for reading.
func (b *File) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := firstErr(checkID(id), ctx.Err()); err != nil {
		return nil, fmt.Errorf("open volume: %w", err)
	}
	f, err := os.Open(b.volPath(id))
	if err != nil {
		return nil, fmt.Errorf("open volume %s: %w", id, notFound(err))
	}
	return f, nil
}

// Capacity reads the filesystem (statfs) and, with a configured total,
// the blocks the files hold.
func (b *File) Capacity(ctx context.Context) (Capacity, error) {
	if err := ctx.Err(); err != nil {
		return Capacity{}, fmt.Errorf("volume capacity: %w", err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(b.cfg.Dir, &st); err != nil {
		return Capacity{}, fmt.Errorf("volume capacity: statfs %s: %w", b.cfg.Dir, err)
	}
	// The block counts are in fragments (f_frsize); Bsize is only the
	// preferred I/O size, though the two agree on most filesystems.
	bsize := int64(st.Frsize)
	if bsize <= 0 {
		bsize = int64(st.Bsize)
	}
	fsTotal := int64(st.Blocks) * bsize
	fsFree := int64(st.Bavail) * bsize
	provisioned, allocated, err := b.usage()
	if err != nil {
		return Capacity{}, fmt.Errorf("volume capacity: %w", err)
	}
	c := Capacity{TotalGiB: fsTotal / b.unit, FreeGiB: fsFree / b.unit, ProvisionedGiB: ceilDiv(provisioned, b.unit)}
	if b.cfg.TotalGiB > 0 {
		// The configured total is a budget for this backend's blocks,
		// and the filesystem may have less left than the budget does.
		c.TotalGiB = b.cfg.TotalGiB
		c.FreeGiB = min(b.cfg.TotalGiB*b.unit-allocated, fsFree) / b.unit
		c.FreeGiB = max(c.FreeGiB, 0)
	}
	return c, nil
}

// usage sums the files' sizes and the bytes of their allocated blocks.
func (b *File) usage() (provisioned, allocated int64, err error) {
	for _, dir := range []string{b.vols, b.snps} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return 0, 0, err
		}
		for _, e := range ents {
			// A temporary being written holds blocks but is no volume yet.
			tmp := strings.HasPrefix(e.Name(), tmpPrefix)
			if !tmp && !strings.HasSuffix(e.Name(), rawExt) {
				continue
			}
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(dir, e.Name()), &st); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				return 0, 0, err
			}
			if !tmp {
				provisioned += st.Size
			}
			allocated += st.Blocks * 512
		}
	}
	return provisioned, allocated, nil
}

// copyInto makes dir/<id>.raw a copy of src of size bytes (-1: src's
// size): ErrNotFound without src, ErrTooSmall when size is below src's.
func (b *File) copyInto(ctx context.Context, src, dir, id string, size int64) error {
	in, err := os.Open(src)
	if err != nil {
		return notFound(err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	if size < 0 {
		size = st.Size()
	}
	if size < st.Size() {
		return fmt.Errorf("%w: %d bytes requested, the source has %d", ErrTooSmall, size, st.Size())
	}
	return b.write(dir, id, func(out *os.File) error {
		if err := b.copyFile(ctx, out, in, st.Size()); err != nil {
			return err
		}
		return out.Truncate(size)
	})
}

// copyFile makes the empty out a copy of the srcSize bytes of in: a
// reflink where the filesystem has them, else the data extents only.
func (b *File) copyFile(ctx context.Context, out, in *os.File, srcSize int64) error {
	if !b.cfg.NoReflink {
		err := reflink(out, in)
		if err == nil {
			return nil
		}
		if !reflinkUnsupported(err) {
			return fmt.Errorf("reflink: %w", err)
		}
	}
	if err := out.Truncate(srcSize); err != nil {
		return err
	}
	return sparseCopy(ctx, out, in, srcSize)
}

// write creates dir/<id>.raw through fill on a temporary in dir, which
// it fsyncs and renames into place without replacing an existing file;
// on any error the temporary is removed.
func (b *File) write(dir, id string, fill func(*os.File) error) (err error) {
	final := filepath.Join(dir, id+rawExt)
	if _, err := os.Lstat(final); err == nil {
		return ErrExists
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// CreateTemp's mode is 0600 (privfs.FileMode).
	f, err := os.CreateTemp(dir, tmpPrefix+id+"-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := fill(f); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := renameNoReplace(tmp, final); err != nil {
		return err
	}
	return syncDir(dir)
}

// renameNoReplace renames old to new unless new exists (ErrExists): two
// creates of one id cannot both win.
func renameNoReplace(old, new string) error {
	err := unix.Renameat2(unix.AT_FDCWD, old, unix.AT_FDCWD, new, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST):
		return ErrExists
	case !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS):
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: err}
	}
	// A filesystem without RENAME_NOREPLACE: a hard link refuses an
	// existing name as well.
	if err := os.Link(old, new); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ErrExists
		}
		return err
	}
	return os.Remove(old)
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// notFound turns a missing file into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }
