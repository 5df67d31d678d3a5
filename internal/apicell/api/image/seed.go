package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// SeedImage is an image registered at start, active, with its data.
type SeedImage struct {
	ID              string
	Name            string
	DiskFormat      string
	ContainerFormat string
	// Visibility defaults to public.
	Visibility string
	// Owner defaults to "admin" (the noauth admin project).
	Owner      string
	MinRAM     int
	MinDisk    int
	Properties map[string]string
	Tags       []string
	Data       []byte
}

// CirrosID is the id of the image `cellcloud up` registers for a first
// boot.
const CirrosID = "5f5c1b7e-6c2a-4e43-9a57-0d8c1c0c1c0c"

// CirrosName is that image's name.
const CirrosName = "cirros-0.6.2-x86_64-disk"

// Cirros is the first-boot image: named like the CirrOS image devstack
// registers, qcow2 in a bare container, with 16 KiB of deterministic data
// (a qcow2 magic number, then filler: the fake driver boots anything).
func Cirros() SeedImage {
	data := make([]byte, 16<<10)
	copy(data, []byte{'Q', 'F', 'I', 0xfb, 0, 0, 0, 3})
	block := sha256.Sum256([]byte("cellcloud cirros-0.6.2-x86_64-disk"))
	for off, n := 8, uint64(0); off < len(data); n++ {
		var ctr [8]byte
		binary.BigEndian.PutUint64(ctr[:], n)
		block = sha256.Sum256(append(block[:], ctr[:]...))
		off += copy(data[off:], block[:])
	}
	return SeedImage{
		ID: CirrosID, Name: CirrosName, DiskFormat: "qcow2", ContainerFormat: "bare",
		Properties: map[string]string{"os_distro": "cirros", "os_version": "0.6.2"},
		Data:       data,
	}
}

// Seed registers s as an active image with its data, idempotently: an image
// that already has the id and the same data is left as it is (its data
// file is written again if it went missing); an image with the id and other
// data, or a deleted one, is left alone and logged, since an operator chose
// it.
func (a *API) Seed(ctx context.Context, s SeedImage) error {
	img, err := s.image()
	if err != nil {
		return err
	}
	log := a.b.log.With("image", img.ID, "name", s.Name)
	tmp, d, err := a.b.files.receive(bytes.NewReader(s.Data), int64(len(s.Data)))
	if err != nil {
		return fmt.Errorf("seed image %s: %w", img.ID, err)
	}
	defer os.Remove(tmp) // gone already once committed
	img.Size, img.Checksum, img.HashAlgo, img.HashValue = d.Size, d.Checksum, d.HashAlgo, d.HashValue

	cur, err := a.b.store.Get(ctx, a.b.cfg.DB, img.ID)
	switch {
	case err == nil && cur.Status == imagedb.StatusActive && cur.HashValue == d.HashValue:
		if a.b.files.size(img.ID) == d.Size {
			return nil
		}
		log.Warn("seeded image's data file is missing; writing it again")
		return a.b.files.commit(tmp, img.ID)
	case err == nil:
		log.Warn("an image with the seed image's id exists with other data or status; left as it is", "status", cur.Status)
		return nil
	case !errors.Is(err, imagedb.ErrNotFound):
		return fmt.Errorf("seed image %s: %w", img.ID, err)
	}
	// Data first, then the record that points at it: a stop in between
	// leaves a file the next start removes.
	if err := a.b.files.commit(tmp, img.ID); err != nil {
		return fmt.Errorf("seed image %s: %w", img.ID, err)
	}
	err = a.b.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return a.b.store.Create(ctx, tx, img) })
	if errors.Is(err, imagedb.ErrDuplicate) {
		// Deleted by an operator, or seeded meanwhile by another process.
		cur, gerr := a.b.store.Get(ctx, a.b.cfg.DB, img.ID)
		if gerr == nil && cur.HashValue == d.HashValue {
			return nil
		}
		if rerr := a.b.files.remove(img.ID); rerr != nil {
			return rerr
		}
		log.Info("the seed image's id belongs to a deleted image; not registering it again")
		return nil
	}
	if err != nil {
		if rerr := a.b.files.remove(img.ID); rerr != nil {
			log.Error("removing the data of a seed image not registered", "err", rerr)
		}
		return fmt.Errorf("seed image %s: %w", img.ID, err)
	}
	log.Info("image registered", "size", d.Size)
	return nil
}

// image checks s and makes its record (without data).
func (s SeedImage) image() (*imagedb.Image, error) {
	img := &imagedb.Image{
		ID: imagedb.NormalizeID(s.ID), Name: s.Name, Status: imagedb.StatusActive, Visibility: s.Visibility, Owner: s.Owner,
		MinRAM: s.MinRAM, MinDisk: s.MinDisk, DiskFormat: s.DiskFormat, ContainerFormat: s.ContainerFormat,
		Properties: maps.Clone(s.Properties), Tags: imagedb.SortTags(s.Tags),
	}
	if img.Visibility == "" {
		img.Visibility = imagedb.Public
	}
	if img.Owner == "" {
		img.Owner = "admin"
	}
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	switch {
	case !uuidRE.MatchString(s.ID):
		return nil, fmt.Errorf("seed image: id %q is not a UUID", s.ID)
	case s.Name == "" || len(s.Name) > 255:
		return nil, fmt.Errorf("seed image %s: name must be 1 to 255 characters", s.ID)
	case !slices.Contains(diskFormats, s.DiskFormat):
		return nil, fmt.Errorf("seed image %s: disk_format %q is not one of %v", s.ID, s.DiskFormat, diskFormats)
	case !slices.Contains(containerFormats, s.ContainerFormat):
		return nil, fmt.Errorf("seed image %s: container_format %q is not one of %v", s.ID, s.ContainerFormat, containerFormats)
	case !slices.Contains(visibilities, img.Visibility):
		return nil, fmt.Errorf("seed image %s: visibility %q is not one of %v", s.ID, img.Visibility, visibilities)
	case s.MinRAM < 0 || s.MinDisk < 0:
		return nil, fmt.Errorf("seed image %s: min_ram and min_disk must not be negative", s.ID)
	}
	for k := range img.Properties {
		if slices.Contains(baseAttrs, k) || slices.Contains(readOnly, k) || checkCustomKey(k) != nil {
			return nil, fmt.Errorf("seed image %s: property %q is not a custom property name", s.ID, k)
		}
	}
	return img, nil
}
