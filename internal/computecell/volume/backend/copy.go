package backend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// chunk is the unit of copying, and of hole detection in an image.
const chunk = 1 << 20

// reflink makes out share in's blocks (FICLONE): the copy is instant and
// takes no space until either side is written.
func reflink(out, in *os.File) error {
	outConn, err := out.SyscallConn()
	if err != nil {
		return err
	}
	inConn, err := in.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = outConn.Control(func(outFD uintptr) {
		err := inConn.Control(func(inFD uintptr) {
			ioErr = unix.IoctlFileClone(int(outFD), int(inFD))
		})
		if err != nil {
			ioErr = err
		}
	})
	if err != nil {
		return err
	}
	return ioErr
}

// reflinkUnsupported reports whether FICLONE failed because the
// filesystem (or the pair of files) cannot share blocks, so a copy
// should be made instead.
func reflinkUnsupported(err error) bool {
	for _, e := range []error{unix.EOPNOTSUPP, unix.ENOTSUP, unix.EXDEV, unix.EINVAL, unix.ENOTTY, unix.ENOSYS, unix.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// sparseCopy copies the data extents of the first size bytes of in to the
// same offsets of out, which is already size bytes long and all hole:
// holes of in stay holes. A filesystem without SEEK_DATA gets a copy of
// every chunk that is not all zero.
func sparseCopy(ctx context.Context, out, in *os.File, size int64) error {
	buf := make([]byte, chunk)
	for off := int64(0); off < size; {
		data, err := in.Seek(off, unix.SEEK_DATA)
		switch {
		case errors.Is(err, unix.ENXIO):
			// Only a hole from off to the end.
			return nil
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP):
			_, err := copyChunksAt(ctx, out, io.NewSectionReader(in, off, size-off), off, buf)
			return err
		case err != nil:
			return err
		}
		if data >= size {
			return nil
		}
		hole, err := in.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		hole = min(hole, size)
		if err := copyRange(ctx, out, in, data, hole, buf); err != nil {
			return err
		}
		off = hole
	}
	return nil
}

// copyRange copies in's bytes [from, to) to the same offsets of out.
func copyRange(ctx context.Context, out, in *os.File, from, to int64, buf []byte) error {
	for off := from; off < to; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), to-off))
		if _, err := in.ReadAt(buf[:n], off); err != nil {
			return err
		}
		if _, err := out.WriteAt(buf[:n], off); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// copyChunks copies r to out from offset off, skipping the chunks that are
// all zero (out is already long enough and a hole there), and returns the
// bytes read.
func copyChunks(ctx context.Context, out *os.File, r io.Reader, off int64) (int64, error) {
	return copyChunksAt(ctx, out, r, off, make([]byte, chunk))
}

func copyChunksAt(ctx context.Context, out *os.File, r io.Reader, off int64, buf []byte) (int64, error) {
	zero := make([]byte, len(buf))
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := io.ReadFull(r, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := out.WriteAt(buf[:n], off+total); werr != nil {
				return total, werr
			}
		}
		total += int64(n)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return total, nil
		case err != nil:
			return total, err
		}
	}
}
