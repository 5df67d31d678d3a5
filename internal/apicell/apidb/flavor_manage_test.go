package apidb_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var (
	admin = apidb.FlavorViewer{Admin: true, ProjectID: "admin"}
	p1    = apidb.FlavorViewer{ProjectID: "p1"}
	p2    = apidb.FlavorViewer{ProjectID: "p2"}
)

func strp(s string) *string { return &s }

func createFlavor(t *testing.T, d *db.DB, f apidb.FlavorDetail, now time.Time) error {
	t.Helper()
	ctx := context.Background()
	return d.InTx(ctx, func(tx *db.Tx) error { return apidb.CreateFlavorDetail(ctx, tx, f, now) })
}

func inTx(t *testing.T, d *db.DB, f func(tx *db.Tx) error) error {
	t.Helper()
	return d.InTx(context.Background(), f)
}

func flavorIDs(fs []apidb.FlavorDetail) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func TestFlavorManage(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		if err := apidb.SeedFlavors(ctx, d); err != nil {
			t.Fatal(err)
		}

		priv := apidb.FlavorDetail{Flavor: wire.Flavor{ID: "priv", Name: "private.big", VCPUs: 16, RAMMB: 65536, RootGB: 500,
			EphemeralGB: 10, SwapMB: 1024}, RxTxFactor: 2.5, Description: strp("")}
		if err := createFlavor(t, d, priv, t0); err != nil {
			t.Fatalf("create private flavor: %v", err)
		}
		got, err := apidb.GetFlavorDetail(ctx, d, "priv", admin)
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "private.big" || got.VCPUs != 16 || got.RAMMB != 65536 || got.RootGB != 500 || got.EphemeralGB != 10 ||
			got.SwapMB != 1024 || got.RxTxFactor != 2.5 || got.IsPublic || got.Disabled || got.Description == nil ||
			*got.Description != "" || !got.CreatedAt.Equal(t0) {
			t.Errorf("private flavor = %+v", got)
		}
		// A seeded flavor has no description (null, not "").
		if tiny, err := apidb.GetFlavorDetail(ctx, d, "1", p1); err != nil || tiny.Description != nil || !tiny.IsPublic || tiny.RxTxFactor != 1 {
			t.Errorf("m1.tiny = %+v, %v; want public, rxtx 1, no description", tiny, err)
		}

		// Only admins and projects with access see a private flavor.
		if _, err := apidb.GetFlavorDetail(ctx, d, "priv", p1); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("p1 sees the private flavor before access: %v", err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error { return apidb.AddFlavorAccess(ctx, tx, "priv", "p1") }); err != nil {
			t.Fatal(err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error { return apidb.AddFlavorAccess(ctx, tx, "priv", "p1") }); !errors.Is(err, apidb.ErrAccessExists) {
			t.Errorf("second access for p1: %v, want ErrAccessExists", err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error { return apidb.AddFlavorAccess(ctx, tx, "nosuch", "p1") }); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("access to a missing flavor: %v, want ErrNotFound", err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error { return apidb.AddFlavorAccess(ctx, tx, "priv", "P0") }); err != nil {
			t.Fatal(err)
		}
		if ps, err := apidb.FlavorProjects(ctx, d, "priv"); err != nil || !slices.Equal(ps, []string{"P0", "p1"}) {
			t.Errorf("FlavorProjects = %v, %v; want [P0 p1]", ps, err)
		}
		if _, err := apidb.GetFlavorDetail(ctx, d, "priv", p1); err != nil {
			t.Errorf("p1 with access: %v", err)
		}
		if _, err := apidb.GetFlavorDetail(ctx, d, "priv", p2); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("p2 without access: %v, want ErrNotFound", err)
		}

		// Conflicts: a live id or name.
		dup := apidb.FlavorDetail{Flavor: wire.Flavor{ID: "priv", Name: "other", VCPUs: 1, RAMMB: 1}, RxTxFactor: 1}
		if err := createFlavor(t, d, dup, t0); !errors.Is(err, apidb.ErrFlavorIDExists) {
			t.Errorf("duplicate id: %v, want ErrFlavorIDExists", err)
		}
		dup.ID, dup.Name = "new", "m1.tiny"
		if err := createFlavor(t, d, dup, t0); !errors.Is(err, apidb.ErrFlavorNameExists) {
			t.Errorf("duplicate name: %v, want ErrFlavorNameExists", err)
		}

		list := func(o apidb.FlavorListOptions) []string {
			t.Helper()
			fs, err := apidb.ListFlavorDetails(ctx, d, o)
			if err != nil {
				t.Fatalf("list %+v: %v", o, err)
			}
			return flavorIDs(fs)
		}
		yes, no := true, false
		for _, c := range []struct {
			name string
			o    apidb.FlavorListOptions
			want []string
		}{
			{"member", apidb.FlavorListOptions{Viewer: p2, IsPublic: &yes}, []string{"1", "2", "3", "4", "5"}},
			{"member with access", apidb.FlavorListOptions{Viewer: p1, IsPublic: &yes}, []string{"1", "2", "3", "4", "5", "priv"}},
			{"admin default", apidb.FlavorListOptions{Viewer: admin, IsPublic: &yes, IncludeDisabled: true}, []string{"1", "2", "3", "4", "5"}},
			{"admin all", apidb.FlavorListOptions{Viewer: admin, IncludeDisabled: true}, []string{"1", "2", "3", "4", "5", "priv"}},
			{"admin private", apidb.FlavorListOptions{Viewer: admin, IsPublic: &no, IncludeDisabled: true}, []string{"priv"}},
			{"min ram", apidb.FlavorListOptions{Viewer: admin, MinRAMMB: ptr(int64(8192))}, []string{"4", "5", "priv"}},
			{"min disk", apidb.FlavorListOptions{Viewer: p1, IsPublic: &yes, MinRootGB: ptr(int64(100))}, []string{"5", "priv"}},
			{"by ram desc", apidb.FlavorListOptions{Viewer: admin, SortKey: "memory_mb", SortDir: "desc"}, []string{"priv", "5", "4", "3", "2", "1"}},
			{"by name", apidb.FlavorListOptions{Viewer: admin, SortKey: "name"}, []string{"4", "3", "2", "1", "5", "priv"}},
			{"by vcpus", apidb.FlavorListOptions{Viewer: admin, SortKey: "vcpus"}, []string{"1", "2", "3", "4", "5", "priv"}},
			{"limit", apidb.FlavorListOptions{Viewer: admin, Limit: 2}, []string{"1", "2"}},
			{"marker", apidb.FlavorListOptions{Viewer: admin, Marker: "4"}, []string{"5", "priv"}},
		} {
			if got := list(c.o); !slices.Equal(got, c.want) {
				t.Errorf("%s: %v, want %v", c.name, got, c.want)
			}
		}
		if _, err := apidb.ListFlavorDetails(ctx, d, apidb.FlavorListOptions{Viewer: p2, Marker: "priv"}); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("marker the viewer cannot see: %v, want ErrNotFound", err)
		}
		if _, err := apidb.ListFlavorDetails(ctx, d, apidb.FlavorListOptions{Viewer: admin, SortKey: "ram; DROP TABLE flavors"}); err == nil {
			t.Errorf("a sort key that is no key was accepted")
		}

		// Every sort key, both ways, pages into the same order as one list.
		for key := range apidb.FlavorSortKeys {
			for _, dir := range []string{"asc", "desc"} {
				o := apidb.FlavorListOptions{Viewer: admin, SortKey: key, SortDir: dir}
				whole := list(o)
				if len(whole) != 6 {
					t.Fatalf("sort %s %s: %v", key, dir, whole)
				}
				var paged []string
				o.Limit = 4
				for range 4 {
					page := list(o)
					paged = append(paged, page...)
					if len(page) < o.Limit {
						break
					}
					o.Marker = page[len(page)-1]
					o.Limit = 1
				}
				if !slices.Equal(paged, whole) {
					t.Errorf("sort %s %s: pages %v, list %v", key, dir, paged, whole)
				}
			}
		}

		// Extra specs merge, and the flavor a build copies has them.
		specs := func(id string, m map[string]string) error {
			return inTx(t, d, func(tx *db.Tx) error { _, err := apidb.SetFlavorExtraSpecs(ctx, tx, id, m); return err })
		}
		if err := specs("priv", map[string]string{"hw:cpu_policy": "dedicated", "a": "1"}); err != nil {
			t.Fatal(err)
		}
		if err := specs("priv", map[string]string{"a": "2", "b": "3"}); err != nil {
			t.Fatal(err)
		}
		wantSpecs := map[string]string{"hw:cpu_policy": "dedicated", "a": "2", "b": "3"}
		if f, err := apidb.GetFlavor(ctx, d, "priv"); err != nil || fmt.Sprint(f.ExtraSpecs) != fmt.Sprint(wantSpecs) {
			t.Errorf("GetFlavor extra specs = %v, %v; want %v", f.ExtraSpecs, err, wantSpecs)
		}
		delSpec := func(id, key string) error {
			return inTx(t, d, func(tx *db.Tx) error { return apidb.DeleteFlavorExtraSpec(ctx, tx, id, key) })
		}
		if err := delSpec("priv", "a"); err != nil {
			t.Fatal(err)
		}
		if err := delSpec("priv", "a"); !errors.Is(err, apidb.ErrExtraSpecNotFound) {
			t.Errorf("second extra spec delete: %v, want ErrExtraSpecNotFound", err)
		}
		if err := delSpec("nosuch", "a"); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("extra spec of a missing flavor: %v, want ErrNotFound", err)
		}
		if err := specs("nosuch", map[string]string{"a": "1"}); !errors.Is(err, apidb.ErrNotFound) {
			t.Errorf("extra specs of a missing flavor: %v, want ErrNotFound", err)
		}

		// Description: set, then cleared back to null.
		var f apidb.FlavorDetail
		if err := inTx(t, d, func(tx *db.Tx) (err error) {
			f, err = apidb.SetFlavorDescription(ctx, tx, "1", strp("the smallest"), t0.Add(time.Hour))
			return err
		}); err != nil || f.Description == nil || *f.Description != "the smallest" {
			t.Fatalf("set description: %+v, %v", f, err)
		}
		if f, _ := apidb.GetFlavorDetail(ctx, d, "1", p1); f.Description == nil || *f.Description != "the smallest" || !f.UpdatedAt.Equal(t0.Add(time.Hour)) {
			t.Errorf("after setting the description: %+v", f)
		}
		if err := inTx(t, d, func(tx *db.Tx) (err error) { _, err = apidb.SetFlavorDescription(ctx, tx, "1", nil, t0); return err }); err != nil {
			t.Fatal(err)
		}
		if f, _ := apidb.GetFlavorDetail(ctx, d, "1", p1); f.Description != nil {
			t.Errorf("cleared description = %q, want nil", *f.Description)
		}

		// Remove access.
		rm := func(id, project string) error {
			return inTx(t, d, func(tx *db.Tx) error { return apidb.RemoveFlavorAccess(ctx, tx, id, project) })
		}
		if err := rm("priv", "P0"); err != nil {
			t.Fatal(err)
		}
		if err := rm("priv", "P0"); !errors.Is(err, apidb.ErrAccessNotFound) {
			t.Errorf("second remove: %v, want ErrAccessNotFound", err)
		}

		// Delete: gone everywhere, not reseeded, and its id and name free.
		del := func(id string) error {
			return inTx(t, d, func(tx *db.Tx) error { return apidb.DeleteFlavor(ctx, tx, id, t0) })
		}
		for _, id := range []string{"1", "priv"} {
			if err := del(id); err != nil {
				t.Fatalf("delete %s: %v", id, err)
			}
			if err := del(id); !errors.Is(err, apidb.ErrNotFound) {
				t.Errorf("second delete of %s: %v, want ErrNotFound", id, err)
			}
			if _, err := apidb.GetFlavor(ctx, d, id); !errors.Is(err, apidb.ErrNotFound) {
				t.Errorf("GetFlavor(%s) after delete: %v", id, err)
			}
			if _, err := apidb.GetFlavorDetail(ctx, d, id, admin); !errors.Is(err, apidb.ErrNotFound) {
				t.Errorf("GetFlavorDetail(%s) after delete: %v", id, err)
			}
		}
		if err := apidb.SeedFlavors(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := list(apidb.FlavorListOptions{Viewer: admin, IncludeDisabled: true}); !slices.Equal(got, []string{"2", "3", "4", "5"}) {
			t.Errorf("after deleting 1 and priv and reseeding: %v", got)
		}
		if fs, _ := apidb.ListFlavors(ctx, d); len(fs) != 4 {
			t.Errorf("ListFlavors after deletes = %d flavors, want 4", len(fs))
		}
		again := apidb.FlavorDetail{Flavor: wire.Flavor{ID: "priv", Name: "m1.tiny", VCPUs: 1, RAMMB: 256}, RxTxFactor: 1}
		if err := createFlavor(t, d, again, t0.Add(time.Minute)); err != nil {
			t.Fatalf("create with a deleted flavor's id and a deleted default's name: %v", err)
		}
		f, err = apidb.GetFlavorDetail(ctx, d, "priv", admin)
		if err != nil || f.Name != "m1.tiny" || len(f.ExtraSpecs) != 0 || f.RAMMB != 256 {
			t.Errorf("recreated flavor = %+v, %v; want a fresh one", f, err)
		}
		if ps, _ := apidb.FlavorProjects(ctx, d, "priv"); len(ps) != 0 {
			t.Errorf("recreated flavor inherited access %v", ps)
		}
	})
}

// TestFlavorExtraSpecsConcurrent: concurrent writers of different keys
// all land (the read-modify-write holds the flavor's row).
func TestFlavorExtraSpecsConcurrent(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		if err := createFlavor(t, d, apidb.FlavorDetail{Flavor: wire.Flavor{ID: "f", Name: "f", VCPUs: 1, RAMMB: 1}, RxTxFactor: 1}, t0); err != nil {
			t.Fatal(err)
		}
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- d.InTx(ctx, func(tx *db.Tx) error {
					_, err := apidb.SetFlavorExtraSpecs(ctx, tx, "f", map[string]string{fmt.Sprintf("k%02d", i): "v"})
					return err
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		f, err := apidb.GetFlavorDetail(ctx, d, "f", admin)
		if err != nil {
			t.Fatal(err)
		}
		keys := make([]string, 0, len(f.ExtraSpecs))
		for k := range f.ExtraSpecs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) != n {
			t.Errorf("after %d concurrent writers: keys %v", n, keys)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestFlavorManageUpgrade: a database made before flavor management keeps
// its flavors, public and without a description.
func TestFlavorManageUpgrade(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations[:1]); err != nil {
			t.Fatal(err)
		}
		if err := apidb.SeedFlavors(ctx, d); err != nil {
			t.Fatal(err)
		}
		migrated(t, d)
		fs, err := apidb.ListFlavorDetails(ctx, d, apidb.FlavorListOptions{Viewer: p1, IsPublic: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		if got := flavorIDs(fs); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
			t.Fatalf("after the upgrade: %v", got)
		}
		for _, f := range fs {
			if !f.IsPublic || f.Disabled || f.Description != nil || f.RxTxFactor != 1 {
				t.Errorf("flavor %s after the upgrade: %+v", f.ID, f)
			}
		}
	})
}
