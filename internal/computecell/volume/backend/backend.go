// Package backend is a compute cell's volume storage: where a volume's
// blocks live and how they are created, copied, grown and read, behind a
// small interface so that a cell can use a directory of sparse files (the
// default, package-local File), and later LVM or Ceph RBD
// (docs/volume-backends.md), without the volume manager knowing which.
//
// A backend knows only ids and sizes in GiB. Which volume may be deleted
// (not one with snapshots, not one attached), its status and its quota
// are the volume manager's: Cinder checks them in its API and manager,
// not in its drivers. The manager also serialises the operations on one
// volume (its task state); a backend need not.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// GiB is the unit of volume sizes.
const GiB int64 = 1 << 30

// MaxSizeGiB bounds a size, far above any real volume, so that a size in
// bytes cannot overflow.
const MaxSizeGiB = 1 << 20

// The errors of a backend, matched with errors.Is.
var (
	// ErrNotFound: the volume or snapshot does not exist.
	ErrNotFound = errors.New("volume backend: not found")
	// ErrExists: a volume or snapshot with that id exists already.
	ErrExists = errors.New("volume backend: already exists")
	// ErrTooSmall: the requested size is smaller than the image, the
	// source volume or the snapshot it is made from.
	ErrTooSmall = errors.New("volume backend: size smaller than the source")
	// ErrShrink: an extend asked for less than the volume's size.
	ErrShrink = errors.New("volume backend: a volume cannot shrink")
	// ErrInvalidID: an id a backend does not accept (see ValidID).
	ErrInvalidID = errors.New("volume backend: invalid id")
	// ErrInvalidSize: a size not in 1..MaxSizeGiB.
	ErrInvalidSize = errors.New("volume backend: invalid size")
	// ErrBusy: the volume or snapshot cannot be deleted yet because a
	// copy still shares its storage (an RBD clone of a snapshot that was
	// not flattened; Cinder's SnapshotIsBusy). The file backend's copies
	// are independent and it never returns ErrBusy.
	ErrBusy = errors.New("volume backend: in use by a dependent copy")
)

// Capacity is what a backend reports to the scheduler, in GiB (Cinder's
// total_capacity_gb, free_capacity_gb, provisioned_capacity_gb).
type Capacity struct {
	// TotalGiB is the configured total, or the filesystem's size.
	TotalGiB int64
	// FreeGiB is what may still be written, rounded down.
	FreeGiB int64
	// ProvisionedGiB is the sum of the sizes of the volumes and
	// snapshots held: above TotalGiB when the backend is thin
	// (sparse files, thin pools, RBD) and over-subscribed.
	ProvisionedGiB int64
}

// Backend stores volumes and snapshots. Every method may be called
// concurrently for different ids. A method that fails leaves nothing
// behind: no new volume or snapshot, and an extend that fails leaves the
// volume as it was.
type Backend interface {
	// Create makes a blank (all zero) volume of sizeGiB.
	Create(ctx context.Context, id string, sizeGiB int) error
	// CreateFromImage makes a volume of sizeGiB holding the image's
	// imageSize bytes from image at its start, zero after. An image
	// larger than the volume is ErrTooSmall; an image whose reader
	// gives more or fewer bytes than imageSize is an error.
	CreateFromImage(ctx context.Context, id string, sizeGiB int, image io.Reader, imageSize int64) error
	// Reimage writes the image over volume id, keeping its size: the
	// image's imageSize bytes at its start, zero after (Cinder's
	// reimage). An image larger than the volume is ErrTooSmall, a volume
	// the backend does not have ErrNotFound. It leaves the volume whole:
	// its old bytes, or the image's, never a mix; done again, it writes
	// the same bytes.
	Reimage(ctx context.Context, id string, image io.Reader, imageSize int64) error
	// Clone makes volume id a copy of volume srcID, grown to sizeGiB
	// (ErrTooSmall below the source's size).
	Clone(ctx context.Context, srcID, id string, sizeGiB int) error
	// Snapshot makes snapshot snapshotID, a copy of volume volumeID as it
	// is now, of the volume's size.
	Snapshot(ctx context.Context, volumeID, snapshotID string) error
	// CreateFromSnapshot makes volume id a copy of snapshot snapshotID,
	// grown to sizeGiB (ErrTooSmall below the snapshot's size).
	CreateFromSnapshot(ctx context.Context, snapshotID, id string, sizeGiB int) error
	// Extend grows volume id to sizeGiB, keeping its bytes. A smaller
	// size is ErrShrink; the same size does nothing.
	Extend(ctx context.Context, id string, sizeGiB int) error
	// Delete removes volume id. The manager deletes a volume's
	// snapshots first (Cinder's API refuses to delete a volume that has
	// snapshots, and a cascade delete removes them first): a backend
	// whose snapshots live inside their volume (RBD, thick LVM) relies
	// on that; the file backend's snapshots are independent files.
	Delete(ctx context.Context, id string) error
	// DeleteSnapshot removes snapshot snapshotID (ErrBusy if the backend
	// still shares it with a volume made from it).
	DeleteSnapshot(ctx context.Context, snapshotID string) error
	// Open returns the bytes of volume id (all of its size) for upload to
	// an image. The caller closes it; the volume must not be written
	// meanwhile (the manager holds it in the uploading state).
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// Capacity reports the space of the backend.
	Capacity(ctx context.Context) (Capacity, error)
}

// maxIDLen bounds an id (a UUID is 36).
const maxIDLen = 64

// ValidID reports whether id is acceptable to a backend: 1 to 64 ASCII
// letters, digits, '-' or '_', starting with a letter or digit — a UUID
// passes, and no id can name a path ('/', '.'), hide as a dot file, or
// carry characters that a shell, lvcreate or rbd would treat specially.
func ValidID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

func checkID(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: %q", ErrInvalidID, id)
	}
	return nil
}

func checkSize(sizeGiB int) error {
	if sizeGiB < 1 || sizeGiB > MaxSizeGiB {
		return fmt.Errorf("%w: %d GiB", ErrInvalidSize, sizeGiB)
	}
	return nil
}
