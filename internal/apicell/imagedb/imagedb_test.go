package imagedb_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for the store.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t *testing.T, d *db.DB) (*imagedb.Store, *clock) {
	t.Helper()
	if err := d.Migrate(context.Background(), imagedb.MigrationSet, imagedb.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	// Migrating again is a no-op.
	if err := d.Migrate(context.Background(), imagedb.MigrationSet, imagedb.Migrations); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	c := &clock{t: t0}
	return &imagedb.Store{Now: c.now}, c
}

func newImage(id, owner, visibility string) *imagedb.Image {
	return &imagedb.Image{ID: id, Name: "img-" + id[len(id)-4:], Status: imagedb.StatusQueued, Visibility: visibility, Owner: owner,
		DiskFormat: "qcow2", ContainerFormat: "bare", Properties: map[string]string{}, Tags: []string{}}
}

func id(n int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", n) }

func create(t *testing.T, d *db.DB, s *imagedb.Store, imgs ...*imagedb.Image) {
	t.Helper()
	ctx := context.Background()
	for _, img := range imgs {
		if err := d.InTx(ctx, func(tx *db.Tx) error { return s.Create(ctx, tx, img) }); err != nil {
			t.Fatalf("create %s: %v", img.ID, err)
		}
	}
}

func get(t *testing.T, d *db.DB, s *imagedb.Store, id string) *imagedb.Image {
	t.Helper()
	img, err := s.Get(context.Background(), d, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return img
}

func inTx(d *db.DB, f func(context.Context, *db.Tx) error) error {
	ctx := context.Background()
	return d.InTx(ctx, func(tx *db.Tx) error { return f(ctx, tx) })
}

func TestCreateGetAndDuplicates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, _ := setup(t, d)
		in := newImage("5F5C1B7E-6C2A-4E43-9A57-0D8C1C0C1C0C", "p1", imagedb.Private)
		in.Properties = map[string]string{"os_distro": "cirros", "hw_disk_bus": "virtio"}
		in.Tags = []string{"b", "a", "b"}
		in.MinRAM, in.MinDisk, in.Protected, in.Hidden = 512, 1, true, true
		create(t, d, s, in)

		// Ids are stored lower case and found in any case.
		got := get(t, d, s, "5f5c1b7e-6c2a-4e43-9a57-0d8c1c0c1c0c")
		if got2 := get(t, d, s, "5F5C1B7E-6c2a-4e43-9a57-0d8c1c0c1c0c"); !reflect.DeepEqual(got, got2) {
			t.Fatalf("get by upper-case id = %+v, want %+v", got2, got)
		}
		want := &imagedb.Image{ID: "5f5c1b7e-6c2a-4e43-9a57-0d8c1c0c1c0c", Name: in.Name, Status: imagedb.StatusQueued,
			Visibility: imagedb.Private, Protected: true, Hidden: true, Owner: "p1", MinDisk: 1, MinRAM: 512, DiskFormat: "qcow2",
			ContainerFormat: "bare", Tags: []string{"a", "b"}, Properties: in.Properties, CreatedAt: t0, UpdatedAt: t0, Version: 1}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("get = %+v\nwant  %+v", got, want)
		}
		if got.HasData() {
			t.Fatal("a queued image has data")
		}
		bare, err := s.GetWithoutDetails(context.Background(), d, "5F5C1B7E-6c2a-4e43-9a57-0d8c1c0c1c0c")
		wantBare := *want
		wantBare.Tags, wantBare.Properties = []string{}, map[string]string{}
		if err != nil || !reflect.DeepEqual(bare, &wantBare) {
			t.Fatalf("get without details = %+v, %v\nwant  %+v", bare, err, &wantBare)
		}
		// With its properties, in one query: no tags.
		withProps, err := s.GetWithProperties(context.Background(), d, "5F5C1B7E-6c2a-4e43-9a57-0d8c1c0c1c0c")
		wantProps := *want
		wantProps.Tags = []string{}
		if err != nil || !reflect.DeepEqual(withProps, &wantProps) {
			t.Fatalf("get with properties = %+v, %v\nwant  %+v", withProps, err, &wantProps)
		}
		// An image without properties, and one that is not there.
		plain := newImage(id(2), "p1", imagedb.Private)
		create(t, d, s, plain)
		if got, err := s.GetWithProperties(context.Background(), d, plain.ID); err != nil || len(got.Properties) != 0 || got.ID != plain.ID {
			t.Fatalf("get with properties of an image without: %+v, %v", got, err)
		}
		if _, err := s.GetWithProperties(context.Background(), d, id(3)); !errors.Is(err, imagedb.ErrNotFound) {
			t.Fatalf("get with properties of no image: %v, want ErrNotFound", err)
		}

		// An id is used once, even after a delete.
		err = inTx(d, func(ctx context.Context, tx *db.Tx) error {
			return s.Create(ctx, tx, newImage(want.ID, "p2", imagedb.Public))
		})
		if !errors.Is(err, imagedb.ErrDuplicate) {
			t.Fatalf("create with a used id: %v, want ErrDuplicate", err)
		}
		other := newImage(id(1), "p1", imagedb.Private)
		create(t, d, s, other)
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.Delete(ctx, tx, other.ID) }); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := s.Get(context.Background(), d, other.ID); !errors.Is(err, imagedb.ErrNotFound) {
			t.Fatalf("get deleted image: %v, want ErrNotFound", err)
		}
		err = inTx(d, func(ctx context.Context, tx *db.Tx) error {
			return s.Create(ctx, tx, newImage(other.ID, "p1", imagedb.Private))
		})
		if !errors.Is(err, imagedb.ErrDuplicate) {
			t.Fatalf("create with a deleted image's id: %v, want ErrDuplicate", err)
		}
		if _, err := s.Get(context.Background(), d, "nope"); !errors.Is(err, imagedb.ErrNotFound) {
			t.Fatalf("get missing: %v, want ErrNotFound", err)
		}
	})
}

func TestUploadStatusTransitions(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, clk := setup(t, d)
		img := newImage(id(1), "p1", imagedb.Private)
		noFormats := newImage(id(2), "p1", imagedb.Private)
		noFormats.DiskFormat = ""
		create(t, d, s, img, noFormats)

		var se *imagedb.StatusError
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.BeginUpload(ctx, tx, noFormats.ID) }); !errors.Is(err, imagedb.ErrNoFormats) {
			t.Fatalf("begin upload without disk_format: %v, want ErrNoFormats", err)
		}
		if got := get(t, d, s, noFormats.ID); got.Status != imagedb.StatusQueued {
			t.Fatalf("refused upload left status %s", got.Status)
		}
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.BeginUpload(ctx, tx, img.ID) }); err != nil {
			t.Fatalf("begin upload: %v", err)
		}
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.BeginUpload(ctx, tx, img.ID) }); !errors.As(err, &se) ||
			se.From != imagedb.StatusSaving || se.To != imagedb.StatusSaving {
			t.Fatalf("second begin upload: %v, want saving -> saving refused", err)
		}
		// Abort puts it back to queued; a new upload may start.
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.AbortUpload(ctx, tx, img.ID) }); err != nil {
			t.Fatalf("abort upload: %v", err)
		}
		if got := get(t, d, s, img.ID); got.Status != imagedb.StatusQueued || got.HasData() {
			t.Fatalf("after abort: status %s, has data %v", got.Status, got.HasData())
		}
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.BeginUpload(ctx, tx, img.ID) }); err != nil {
			t.Fatalf("begin upload again: %v", err)
		}
		clk.t = t0.Add(time.Minute)
		data := imagedb.Data{Size: 42, Checksum: "c", HashAlgo: imagedb.HashAlgo, HashValue: "h"}
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.FinishUpload(ctx, tx, img.ID, data) }); err != nil {
			t.Fatalf("finish upload: %v", err)
		}
		got := get(t, d, s, img.ID)
		if got.Status != imagedb.StatusActive || got.Size != 42 || got.Checksum != "c" || got.HashValue != "h" ||
			!got.HasData() || !got.UpdatedAt.Equal(clk.t) || !got.CreatedAt.Equal(t0) {
			t.Fatalf("after finish: %+v", got)
		}
		for name, f := range map[string]func(context.Context, *db.Tx) error{
			"begin":  func(ctx context.Context, tx *db.Tx) error { return s.BeginUpload(ctx, tx, img.ID) },
			"abort":  func(ctx context.Context, tx *db.Tx) error { return s.AbortUpload(ctx, tx, img.ID) },
			"finish": func(ctx context.Context, tx *db.Tx) error { return s.FinishUpload(ctx, tx, img.ID, data) },
		} {
			if err := inTx(d, f); !errors.As(err, &se) || se.From != imagedb.StatusActive {
				t.Fatalf("%s on an active image: %v, want a refused transition from active", name, err)
			}
		}
		if got2 := get(t, d, s, img.ID); !reflect.DeepEqual(got, got2) {
			t.Fatalf("refused transitions changed the image: %+v, was %+v", got2, got)
		}
		// A deleted image cannot finish an upload.
		third := newImage(id(3), "p1", imagedb.Private)
		create(t, d, s, third)
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error {
			if err := s.BeginUpload(ctx, tx, third.ID); err != nil {
				return err
			}
			return s.Delete(ctx, tx, third.ID)
		}); err != nil {
			t.Fatalf("begin then delete: %v", err)
		}
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.FinishUpload(ctx, tx, third.ID, data) }); !errors.Is(err, imagedb.ErrNotFound) {
			t.Fatalf("finish upload of a deleted image: %v, want ErrNotFound", err)
		}
	})
}

func TestResetUploads(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, _ := setup(t, d)
		a, b, c := newImage(id(1), "p1", imagedb.Private), newImage(id(2), "p1", imagedb.Private), newImage(id(3), "p1", imagedb.Private)
		create(t, d, s, a, b, c)
		for _, x := range []string{a.ID, b.ID} {
			if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.BeginUpload(ctx, tx, x) }); err != nil {
				t.Fatal(err)
			}
		}
		var reset []string
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) (err error) { reset, err = s.ResetUploads(ctx, tx); return err }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(reset, []string{a.ID, b.ID}) {
			t.Fatalf("reset %v, want %v", reset, []string{a.ID, b.ID})
		}
		for _, x := range []string{a.ID, b.ID, c.ID} {
			if st := get(t, d, s, x).Status; st != imagedb.StatusQueued {
				t.Fatalf("%s is %s after reset", x, st)
			}
		}
	})
}

func TestUpdateChecksVersion(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, clk := setup(t, d)
		img := newImage(id(1), "p1", imagedb.Private)
		img.Properties = map[string]string{"a": "1", "b": "2"}
		img.Tags = []string{"x"}
		create(t, d, s, img)

		cur := get(t, d, s, img.ID)
		stale := cur.Clone()
		cur.Name, cur.Visibility, cur.MinRAM = "renamed", imagedb.Community, 256
		cur.Properties = map[string]string{"b": "3", "c": "4"}
		cur.Tags = []string{"z", "y"}
		clk.t = t0.Add(time.Hour)
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.Update(ctx, tx, cur) }); err != nil {
			t.Fatalf("update: %v", err)
		}
		got := get(t, d, s, img.ID)
		if got.Name != "renamed" || got.Visibility != imagedb.Community || got.MinRAM != 256 || got.Version != 2 ||
			!reflect.DeepEqual(got.Properties, map[string]string{"b": "3", "c": "4"}) || !slices.Equal(got.Tags, []string{"y", "z"}) ||
			!got.UpdatedAt.Equal(clk.t) || !reflect.DeepEqual(got, cur) {
			t.Fatalf("after update: %+v\n(the caller's copy: %+v)", got, cur)
		}
		// A write based on the old version is refused and changes nothing.
		stale.Name = "lost"
		stale.Properties["lost"] = "yes"
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.Update(ctx, tx, stale) }); !errors.Is(err, imagedb.ErrStale) {
			t.Fatalf("stale update: %v, want ErrStale", err)
		}
		if got2 := get(t, d, s, img.ID); !reflect.DeepEqual(got, got2) {
			t.Fatalf("stale update changed the image: %+v", got2)
		}
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.Delete(ctx, tx, img.ID) }); err != nil {
			t.Fatal(err)
		}
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.Update(ctx, tx, got) }); !errors.Is(err, imagedb.ErrNotFound) {
			t.Fatalf("update of a deleted image: %v, want ErrNotFound", err)
		}
	})
}

func TestDeleteProtected(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, _ := setup(t, d)
		img := newImage(id(1), "p1", imagedb.Private)
		img.Protected = true
		create(t, d, s, img)
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.Delete(ctx, tx, img.ID) }); !errors.Is(err, imagedb.ErrProtected) {
			t.Fatalf("delete protected: %v, want ErrProtected", err)
		}
		cur := get(t, d, s, img.ID)
		cur.Protected = false
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error {
			if err := s.Update(ctx, tx, cur); err != nil {
				return err
			}
			return s.Delete(ctx, tx, img.ID)
		}); err != nil {
			t.Fatalf("unprotect and delete: %v", err)
		}
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.Delete(ctx, tx, img.ID) }); !errors.Is(err, imagedb.ErrNotFound) {
			t.Fatalf("delete again: %v, want ErrNotFound", err)
		}
	})
}

func TestHasDataFile(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, _ := setup(t, d)
		active, queued := newImage(id(1), "p1", imagedb.Private), newImage(id(2), "p1", imagedb.Private)
		create(t, d, s, active, queued)
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error {
			if err := s.BeginUpload(ctx, tx, active.ID); err != nil {
				return err
			}
			return s.FinishUpload(ctx, tx, active.ID, imagedb.Data{Size: 1, Checksum: "c", HashAlgo: imagedb.HashAlgo, HashValue: "h"})
		}); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			id   string
			want bool
		}{{active.ID, true}, {queued.ID, false}, {id(9), false}} {
			got, err := s.HasDataFile(context.Background(), d, c.id)
			if err != nil || got != c.want {
				t.Fatalf("HasDataFile(%s) = %v, %v; want %v", c.id, got, err, c.want)
			}
		}
	})
}

func TestVisibleAndMutable(t *testing.T) {
	cases := []struct {
		vis, owner, project string
		admin               bool
		visible, mutable    bool
	}{
		{imagedb.Private, "p1", "p1", false, true, true},
		{imagedb.Private, "p1", "p2", false, false, false},
		{imagedb.Private, "p1", "p2", true, true, true},
		{imagedb.Shared, "p1", "p2", false, false, false},
		{imagedb.Public, "p1", "p2", false, true, false},
		{imagedb.Community, "p1", "p2", false, true, false},
		{imagedb.Private, "", "", false, false, false},
	}
	for _, c := range cases {
		img := &imagedb.Image{Visibility: c.vis, Owner: c.owner}
		if got := img.VisibleTo(c.project, c.admin); got != c.visible {
			t.Errorf("%s image of %q: VisibleTo(%q, admin=%v) = %v", c.vis, c.owner, c.project, c.admin, got)
		}
		if got := img.MutableBy(c.project, c.admin); got != c.mutable {
			t.Errorf("%s image of %q: MutableBy(%q, admin=%v) = %v", c.vis, c.owner, c.project, c.admin, got)
		}
	}
}
