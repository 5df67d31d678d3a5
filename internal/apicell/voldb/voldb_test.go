package voldb_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/notfound"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func migrate(t *testing.T, d *db.DB) {
	t.Helper()
	ctx := context.Background()
	if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, voldb.MigrationSet, voldb.Migrations); err != nil {
		t.Fatal(err)
	}
}

func create(t *testing.T, d *db.DB, v *voldb.Volume) {
	t.Helper()
	if v.Status == "" {
		v.Status = voldb.StatusCreating
	}
	if v.ProjectID == "" {
		v.ProjectID = "p1"
	}
	if v.UserID == "" {
		v.UserID = "u1"
	}
	if v.SizeGB == 0 {
		v.SizeGB = 1
	}
	if v.CreatedAt.IsZero() {
		v.CreatedAt = t0
	}
	if v.TypeName == "" {
		v.TypeID, v.TypeName = "t-default", "__DEFAULT__"
	}
	if err := d.InTx(context.Background(), func(tx *db.Tx) error { return voldb.Create(context.Background(), tx, v) }); err != nil {
		t.Fatal(err)
	}
}

func apply(t *testing.T, d *db.DB, vols []wire.VolumeState, snaps []wire.SnapshotState) []voldb.Applied {
	t.Helper()
	var out []voldb.Applied
	if err := d.InTx(context.Background(), func(tx *db.Tx) error {
		var err error
		out, err = voldb.Apply(context.Background(), tx, vols, snaps, t0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCreateGetMetadata(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1", Name: "a", Metadata: map[string]string{"k": "v", "x": "y"},
			ImageMetadata: map[string]string{"image_id": "i1"}, Bootable: true})
		v, err := voldb.Get(ctx, d, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if v.Name != "a" || v.Status != "creating" || v.Version != 0 || v.Cell != "" || !v.Bootable || v.AttachStatus != "detached" ||
			v.Metadata["k"] != "v" || len(v.Metadata) != 2 || v.ImageMetadata["image_id"] != "i1" || !v.CreatedAt.Equal(t0) {
			t.Fatalf("volume %+v", v)
		}
		if _, err := voldb.Get(ctx, d, "nope"); !errors.Is(err, voldb.ErrNotFound) || !errors.Is(err, notfound.Err) {
			t.Errorf("unknown volume: %v", err)
		}
		name := "b"
		err = d.InTx(ctx, func(tx *db.Tx) error {
			return voldb.UpdateFields(ctx, tx, "v1", voldb.Fields{Name: &name, Metadata: map[string]string{"k": "w", "n": "1"}, Now: t0})
		})
		if err != nil {
			t.Fatal(err)
		}
		v, _ = voldb.Get(ctx, d, "v1")
		if v.Name != "b" || v.Metadata["k"] != "w" || v.Metadata["n"] != "1" || v.Metadata["x"] != "y" {
			t.Errorf("merged: %+v", v)
		}
		key := "nope"
		err = d.InTx(ctx, func(tx *db.Tx) error {
			return voldb.UpdateFields(ctx, tx, "v1", voldb.Fields{DeleteMetadataKey: &key, Now: t0})
		})
		if !errors.Is(err, voldb.ErrNoMetadataKey) {
			t.Errorf("delete a missing key: %v", err)
		}
		err = d.InTx(ctx, func(tx *db.Tx) error {
			return voldb.UpdateFields(ctx, tx, "v1", voldb.Fields{Metadata: map[string]string{"only": "1"}, ReplaceMetadata: true, Now: t0})
		})
		if err != nil {
			t.Fatal(err)
		}
		v, _ = voldb.Get(ctx, d, "v1")
		if len(v.Metadata) != 1 || v.Metadata["only"] != "1" {
			t.Errorf("replaced: %+v", v.Metadata)
		}
	})
}

// TestApplyVersionRules: a newer state applies and names the cell; a
// late, repeated or reordered one changes nothing; a state from another
// cell is ignored; a deletion from the copy's cell wins whatever its
// version and is final; an unknown id is ignored; a heal resend of what
// the copy holds is a no-op.
func TestApplyVersionRules(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1"})
		get := func() *voldb.Volume {
			v, err := voldb.GetAny(ctx, d, "v1")
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		// The first state names the cell.
		a := apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 2, Status: "available", SizeGB: 1}}, nil)
		if !a[0].Changed {
			t.Fatal("first state not applied")
		}
		if v := get(); v.Cell != "/c1" || v.Version != 2 || v.Status != "available" {
			t.Fatalf("after v2: %+v", v)
		}
		// A late (older) and a repeated state change nothing.
		for _, st := range []wire.VolumeState{
			{ID: "v1", Cell: "/c1", Version: 1, Status: "creating", SizeGB: 1},
			{ID: "v1", Cell: "/c1", Version: 2, Status: "error", SizeGB: 1},
		} {
			if a := apply(t, d, []wire.VolumeState{st}, nil); a[0].Changed {
				t.Errorf("state %+v applied", st)
			}
		}
		if v := get(); v.Version != 2 || v.Status != "available" {
			t.Fatalf("after late states: %+v", v)
		}
		// Reordered: v4 then v3; v3 loses.
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 4, Status: "available", SizeGB: 3}}, nil)
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 3, Status: "extending", SizeGB: 1}}, nil)
		if v := get(); v.Version != 4 || v.SizeGB != 3 || v.Status != "available" {
			t.Fatalf("after reordered: %+v", v)
		}
		// Another cell's state is ignored.
		if a := apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c2", Version: 9, Status: "error"}}, nil); a[0].Changed {
			t.Error("a state of another cell applied")
		}
		// An API status change keeps the version; the next state replaces it.
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			ok, err := voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: "v1", From: []string{"available"}, To: "extending", Now: t0})
			if !ok {
				t.Error("set status did not take")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if v := get(); v.Version != 4 || v.Status != "extending" {
			t.Fatalf("after SetStatus: %+v", v)
		}
		// Heal: the same version again is a no-op.
		if a := apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 4, Status: "available", SizeGB: 3}}, nil); a[0].Changed {
			t.Error("a heal resend applied")
		}
		// A deletion from the copy's cell at an older version wins.
		if a := apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 1, Deleted: true}}, nil); !a[0].Deleted {
			t.Error("deletion not applied")
		}
		if v := get(); !v.Deleted || v.Version != 4 {
			t.Fatalf("after delete: %+v", v)
		}
		if _, err := voldb.Get(ctx, d, "v1"); !errors.Is(err, voldb.ErrNotFound) {
			t.Errorf("deleted volume found: %v", err)
		}
		// Deletion is final.
		if a := apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 10, Status: "available"}}, nil); a[0].Changed {
			t.Error("a state after the deletion applied")
		}
		// An unknown id is ignored.
		if a := apply(t, d, []wire.VolumeState{{ID: "ghost", Cell: "/c1", Version: 1, Status: "available"}}, nil); a[0].Changed {
			t.Error("an unknown id applied")
		}
	})
}

// TestApplyNoCell: a volume that found no cell goes to error with no cell
// (the API alone deletes it: Destroy); a later state from a real cell
// names it.
func TestApplyNoCell(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1"})
		create(t, d, &voldb.Volume{ID: "v2"})
		apply(t, d, []wire.VolumeState{{ID: "v1", Version: 1, Status: "error"}, {ID: "v2", Cell: "/c1", Version: 1, Status: "available"}}, nil)
		v, _ := voldb.Get(ctx, d, "v1")
		if v.Status != "error" || v.Cell != "" || v.Version != 1 {
			t.Fatalf("no cell: %+v", v)
		}
		var ok1, ok2 bool
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			if ok1, err = voldb.Destroy(ctx, tx, "v1", t0); err != nil {
				return err
			}
			ok2, err = voldb.Destroy(ctx, tx, "v2", t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if !ok1 || ok2 {
			t.Errorf("destroy: without cell %v (want true), with a cell %v (want false)", ok1, ok2)
		}
	})
}

func TestApplySnapshots(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1", Cell: "/c1", Status: "available"})
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return voldb.CreateSnapshot(ctx, tx, &voldb.Snapshot{ID: "s1", VolumeID: "v1", ProjectID: "p1", UserID: "u1", SizeGB: 1,
				Status: "creating", Cell: "/c1", CreatedAt: t0, Metadata: map[string]string{"a": "b"}})
		}); err != nil {
			t.Fatal(err)
		}
		apply(t, d, nil, []wire.SnapshotState{{ID: "s1", VolumeID: "v1", Cell: "/c1", Version: 2, Status: "available", Progress: "100%", SizeGB: 1}})
		s, err := voldb.GetSnapshot(ctx, d, "s1")
		if err != nil || s.Status != "available" || s.Progress != "100%" || s.Version != 2 || s.Metadata["a"] != "b" {
			t.Fatalf("snapshot %+v %v", s, err)
		}
		apply(t, d, nil, []wire.SnapshotState{{ID: "s1", Cell: "/c1", Version: 1, Status: "creating"}})
		if s, _ := voldb.GetSnapshot(ctx, d, "s1"); s.Status != "available" {
			t.Errorf("late snapshot state applied: %+v", s)
		}
		// The volume cannot be deleted without cascade while it has one.
		var ok bool
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			ok, err = voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: "v1", From: []string{"available"}, To: "deleting", NoSnapshots: true, Now: t0})
			return err
		}); err != nil || ok {
			t.Errorf("delete with a snapshot took: %v %v", ok, err)
		}
		apply(t, d, nil, []wire.SnapshotState{{ID: "s1", Cell: "/c1", Version: 3, Deleted: true}})
		if _, err := voldb.GetSnapshot(ctx, d, "s1"); !errors.Is(err, voldb.ErrSnapshotNotFound) {
			t.Errorf("deleted snapshot: %v", err)
		}

		if err := d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			ok, err = voldb.SetStatus(ctx, tx, voldb.StatusChange{ID: "v1", From: []string{"available"}, To: "deleting", NoSnapshots: true, Now: t0})
			return err
		}); err != nil || !ok {
			t.Errorf("delete without snapshots: %v %v", ok, err)
		}
	})
}

func TestListFiltersSortPaging(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		for i := range 5 {
			create(t, d, &voldb.Volume{ID: fmt.Sprintf("v%d", i), Name: fmt.Sprintf("n%d", i%2), SizeGB: i + 1,
				CreatedAt: t0.Add(time.Duration(i) * time.Minute), Bootable: i == 3, AvailabilityZone: "nova",
				Metadata: map[string]string{"even": fmt.Sprint(i%2 == 0)}})
		}
		create(t, d, &voldb.Volume{ID: "other", ProjectID: "p2", CreatedAt: t0})
		ids := func(vs []*voldb.Volume) string {
			s := ""
			for _, v := range vs {
				s += v.ID + " "
			}
			return s
		}
		tr := true
		for _, tc := range []struct {
			name string
			f    voldb.Filter
			p    voldb.Page
			want string
		}{
			{"default order is created_at desc", voldb.Filter{ProjectID: "p1"}, voldb.Page{}, "v4 v3 v2 v1 v0 "},
			{"all projects", voldb.Filter{}, voldb.Page{Sort: []voldb.Sort{{Key: "id"}}}, "other v0 v1 v2 v3 v4 "},
			{"name", voldb.Filter{ProjectID: "p1", Name: "n1"}, voldb.Page{}, "v3 v1 "},
			{"metadata", voldb.Filter{ProjectID: "p1", Metadata: map[string]string{"even": "true"}}, voldb.Page{}, "v4 v2 v0 "},
			{"bootable", voldb.Filter{ProjectID: "p1", Bootable: &tr}, voldb.Page{}, "v3 "},
			{"name like", voldb.Filter{ProjectID: "p1", NameLike: "1"}, voldb.Page{}, "v3 v1 "},
			{"created_at gt", voldb.Filter{ProjectID: "p1", CreatedAt: []voldb.TimeFilter{{Op: "gt", At: t0.Add(2 * time.Minute)}}}, voldb.Page{}, "v4 v3 "},
			{"sort name asc then size desc", voldb.Filter{ProjectID: "p1"}, voldb.Page{Sort: []voldb.Sort{{Key: "name"}, {Key: "size", Desc: true}}}, "v4 v2 v0 v3 v1 "},
			{"limit", voldb.Filter{ProjectID: "p1"}, voldb.Page{Limit: 2}, "v4 v3 "},
			{"marker", voldb.Filter{ProjectID: "p1"}, voldb.Page{Limit: 2, Marker: "v3"}, "v2 v1 "},
			{"marker with a two-key sort", voldb.Filter{ProjectID: "p1"}, voldb.Page{Sort: []voldb.Sort{{Key: "name"}, {Key: "size", Desc: true}}, Marker: "v2"}, "v0 v3 v1 "},
			{"offset", voldb.Filter{ProjectID: "p1"}, voldb.Page{Offset: 3}, "v1 v0 "},
		} {
			t.Run(tc.name, func(t *testing.T) {
				vs, err := voldb.List(ctx, d, tc.f, tc.p)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(vs); got != tc.want {
					t.Errorf("got %q, want %q", got, tc.want)
				}
			})
		}
		if n, err := voldb.Count(ctx, d, voldb.Filter{ProjectID: "p1", Name: "n0"}); err != nil || n != 3 {
			t.Errorf("count %d %v", n, err)
		}
		if _, err := voldb.List(ctx, d, voldb.Filter{}, voldb.Page{Marker: "nope"}); !errors.Is(err, voldb.ErrMarkerNotFound) {
			t.Errorf("unknown marker: %v", err)
		}
		if _, err := voldb.List(ctx, d, voldb.Filter{}, voldb.Page{Sort: []voldb.Sort{{Key: "bogus"}}}); !errors.Is(err, voldb.ErrSortKey) {
			t.Errorf("bad sort key: %v", err)
		}
	})
}

func TestUsageAndTypeInUse(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1", SizeGB: 2})
		create(t, d, &voldb.Volume{ID: "v2", SizeGB: 3, TypeID: "t-gold", TypeName: "gold", Cell: "/c1"})
		create(t, d, &voldb.Volume{ID: "v3", SizeGB: 5})
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := voldb.CreateSnapshot(ctx, tx, &voldb.Snapshot{ID: "s1", VolumeID: "v2", ProjectID: "p1", UserID: "u1", SizeGB: 3, Status: "creating", Cell: "/c1", CreatedAt: t0}); err != nil {
				return err
			}
			_, err := voldb.Destroy(ctx, tx, "v3", t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		u, err := voldb.Usage(ctx, d, "p1")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{"volumes": 2, "gigabytes": 8, "snapshots": 1, "volumes___DEFAULT__": 1, "gigabytes___DEFAULT__": 2,
			"volumes_gold": 1, "gigabytes_gold": 6, "snapshots_gold": 1, "backups": 0, "backup_gigabytes": 0, "groups": 0}
		for k, v := range want {
			if u[k] != v {
				t.Errorf("usage %s = %d, want %d (%v)", k, u[k], v, u)
			}
		}
		for typ, want := range map[string]bool{"t-gold": true, "t-default": true, "t-none": false} {
			if got, err := voldb.TypeInUse(ctx, d, typ); err != nil || got != want {
				t.Errorf("TypeInUse(%s) = %v, %v", typ, got, err)
			}
		}
	})
}

// TestQuotaLockSerialises: N concurrent creates, each taking the
// project's lock and counting usage in its transaction, against a limit:
// exactly the limit succeeds.
func TestQuotaLockSerialises(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		const n, limit = 8, 3
		var wg sync.WaitGroup
		errs := make([]error, n)
		over := errors.New("over quota")
		for i := range n {
			wg.Go(func() {
				errs[i] = d.InTx(ctx, func(tx *db.Tx) error {
					if err := voldb.LockQuota(ctx, tx, "p1"); err != nil {
						return err
					}
					u, err := voldb.Usage(ctx, tx, "p1")
					if err != nil {
						return err
					}
					if u["volumes"]+1 > limit {
						return over
					}
					return voldb.Create(ctx, tx, &voldb.Volume{ID: fmt.Sprint("q", i), ProjectID: "p1", UserID: "u", SizeGB: 1,
						Status: "creating", CreatedAt: t0})
				})
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, over):
				t.Errorf("create: %v", err)
			}
		}
		if ok != limit {
			t.Errorf("%d creates succeeded, want %d", ok, limit)
		}
	})
}

// TestApplyVolumeDeletionTakesSnapshots: a volume's deletion takes the
// snapshots its cell has not reported deleted with it.
func TestApplyVolumeDeletionTakesSnapshots(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1", Cell: "/c1", Status: "available"})
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return voldb.CreateSnapshot(ctx, tx, &voldb.Snapshot{ID: "s1", VolumeID: "v1", ProjectID: "p1", UserID: "u1", SizeGB: 1,
				Status: "available", Cell: "/c1", CreatedAt: t0})
		}); err != nil {
			t.Fatal(err)
		}
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 3, Deleted: true}}, nil)
		if _, err := voldb.GetSnapshot(ctx, d, "s1"); !errors.Is(err, voldb.ErrSnapshotNotFound) {
			t.Errorf("a snapshot outlived its volume: %v", err)
		}
		if u, err := voldb.Usage(ctx, d, "p1"); err != nil || u["snapshots"] != 0 || u["volumes"] != 0 {
			t.Errorf("usage after the deletion: %v %v", u, err)
		}
	})
}

// TestApplyImageMetadata: a state with image metadata (a re-image's end)
// replaces the copy's volume_image_metadata and makes it bootable when
// it applies; a newer state without it leaves it; an older one with
// other metadata is ignored with the rest of it.
func TestApplyImageMetadata(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrate(t, d)
		ctx := context.Background()
		create(t, d, &voldb.Volume{ID: "v1", ImageMetadata: map[string]string{"image_id": "img-a", "min_disk": "0"}})
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 3, Status: "in-use", SizeGB: 1,
			ImageMetadata: map[string]string{"image_id": "img-b"}}}, nil)
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 4, Status: "in-use", SizeGB: 1}}, nil)
		apply(t, d, []wire.VolumeState{{ID: "v1", Cell: "/c1", Version: 2, Status: "downloading", SizeGB: 1,
			ImageMetadata: map[string]string{"image_id": "img-old"}}}, nil)
		v, err := voldb.Get(ctx, d, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if len(v.ImageMetadata) != 1 || v.ImageMetadata["image_id"] != "img-b" || !v.Bootable || v.Version != 4 || v.Status != "in-use" {
			t.Errorf("copy %+v (metadata %v), want img-b's metadata only, bootable, in-use at version 4", v, v.ImageMetadata)
		}
	})
}
