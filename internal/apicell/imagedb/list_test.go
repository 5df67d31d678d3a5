package imagedb_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

func ids(imgs []*imagedb.Image) []string {
	out := make([]string, len(imgs))
	for i, img := range imgs {
		out[i] = img.ID
	}
	return out
}

func list(t *testing.T, d *db.DB, s *imagedb.Store, o imagedb.ListOptions) []string {
	t.Helper()
	imgs, err := s.List(context.Background(), d, o)
	if err != nil {
		t.Fatalf("list %+v: %v", o, err)
	}
	return ids(imgs)
}

func TestListVisibilityAndFilters(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, clk := setup(t, d)
		type spec struct {
			n          int
			owner, vis string
			edit       func(*imagedb.Image)
		}
		specs := []spec{
			{1, "p1", imagedb.Private, func(i *imagedb.Image) { i.Tags = []string{"x86", "linux"}; i.Properties["os_distro"] = "ubuntu" }},
			{2, "p1", imagedb.Shared, func(i *imagedb.Image) { i.Tags = []string{"x86"} }},
			{3, "p1", imagedb.Community, nil},
			{4, "p2", imagedb.Private, func(i *imagedb.Image) { i.Properties["os_distro"] = "ubuntu" }},
			{5, "p2", imagedb.Public, func(i *imagedb.Image) { i.Name = "shared-name"; i.Protected = true }},
			{6, "p2", imagedb.Community, func(i *imagedb.Image) { i.Name = "shared-name" }},
			{7, "p2", imagedb.Public, func(i *imagedb.Image) { i.Hidden = true }},
			{8, "p3", imagedb.Private, func(i *imagedb.Image) { i.DiskFormat = "raw"; i.MinRAM = 64 }},
		}
		for _, sp := range specs {
			img := newImage(id(sp.n), sp.owner, sp.vis)
			if sp.edit != nil {
				sp.edit(img)
			}
			clk.t = t0.Add(time.Duration(sp.n) * time.Second)
			create(t, d, s, img)
		}
		deleted := newImage(id(9), "p1", imagedb.Public)
		create(t, d, s, deleted)
		if err := inTx(d, func(ctx context.Context, tx *db.Tx) error { return s.Delete(ctx, tx, deleted.ID) }); err != nil {
			t.Fatal(err)
		}
		p := func(o imagedb.ListOptions) imagedb.ListOptions {
			if o.Project == "" && !o.Admin {
				o.Project = "p1"
			}
			return o
		}
		b := func(v bool) *bool { return &v }
		i64 := func(v int64) *int64 { return &v }
		cases := []struct {
			name string
			o    imagedb.ListOptions
			want []int
		}{
			{"p1 default: own images and public ones, newest first; no hidden, no deleted", p(imagedb.ListOptions{}), []int{5, 3, 2, 1}},
			{"p2 default: other projects' community images are not listed", imagedb.ListOptions{Project: "p2"}, []int{6, 5, 4}},
			{"p1 community", p(imagedb.ListOptions{Visibility: imagedb.Community}), []int{6, 3}},
			{"p1 all", p(imagedb.ListOptions{Visibility: "all"}), []int{6, 5, 3, 2, 1}},
			{"p1 private", p(imagedb.ListOptions{Visibility: imagedb.Private}), []int{1}},
			{"p1 shared", p(imagedb.ListOptions{Visibility: imagedb.Shared}), []int{2}},
			{"p3 public", imagedb.ListOptions{Project: "p3", Visibility: imagedb.Public}, []int{5}},
			{"admin default: everything but others' community images", imagedb.ListOptions{Project: "admin", Admin: true}, []int{8, 5, 4, 2, 1}},
			{"admin all", imagedb.ListOptions{Project: "admin", Admin: true, Visibility: "all"}, []int{8, 6, 5, 4, 3, 2, 1}},
			{"hidden", p(imagedb.ListOptions{Hidden: true}), []int{7}},
			{"tags must all match", p(imagedb.ListOptions{Tags: []string{"x86", "linux"}}), []int{1}},
			{"one tag", p(imagedb.ListOptions{Tags: []string{"x86"}}), []int{2, 1}},
			{"property", imagedb.ListOptions{Project: "admin", Admin: true, Properties: map[string]string{"os_distro": "ubuntu"}}, []int{4, 1}},
			{"names", p(imagedb.ListOptions{Visibility: "all", Names: []string{"shared-name"}}), []int{6, 5}},
			{"ids", p(imagedb.ListOptions{IDs: []string{id(1), id(5), id(4)}}), []int{5, 1}},
			{"owner", p(imagedb.ListOptions{Owner: "p2"}), []int{5}},
			{"protected", p(imagedb.ListOptions{Protected: b(true)}), []int{5}},
			{"not protected", p(imagedb.ListOptions{Protected: b(false)}), []int{3, 2, 1}},
			{"statuses", p(imagedb.ListOptions{Statuses: []string{imagedb.StatusActive}}), nil},
			{"disk format", imagedb.ListOptions{Project: "admin", Admin: true, DiskFormats: []string{"raw"}}, []int{8}},
			{"min_ram", imagedb.ListOptions{Project: "admin", Admin: true, MinRAM: new(64)}, []int{8}},
			{"no size without data", p(imagedb.ListOptions{SizeMin: i64(0)}), nil},
			{"created_at gt", p(imagedb.ListOptions{CreatedAt: []imagedb.TimeFilter{{Op: "gt", At: t0.Add(2 * time.Second)}}}), []int{5, 3}},
			{"created_at eq", p(imagedb.ListOptions{CreatedAt: []imagedb.TimeFilter{{Op: "eq", At: t0.Add(2 * time.Second)}}}), []int{2}},
			{"created_at lte", p(imagedb.ListOptions{CreatedAt: []imagedb.TimeFilter{{Op: "lte", At: t0.Add(2 * time.Second)}}}), []int{2, 1}},
			{"limit", p(imagedb.ListOptions{Limit: 2}), []int{5, 3}},
			{"name ascending", p(imagedb.ListOptions{Sort: []imagedb.Sort{{Key: "name"}}}), []int{1, 2, 3, 5}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var want []string
				for _, n := range c.want {
					want = append(want, id(n))
				}
				if got := list(t, d, s, c.o); !slices.Equal(got, want) {
					t.Fatalf("got %v\nwant %v", got, want)
				}
			})
		}
	})
}

// TestListPagination pages through every sort order with markers, with
// ties on the sort keys, and checks the pages add up to the full order.
func TestListPagination(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, clk := setup(t, d)
		var all []*imagedb.Image
		names := []string{"b", "a", "c", "a", "b", "", "c", "a", "d", "b", "", "e"}
		for n, name := range names {
			img := newImage(id(n+1), "p1", imagedb.Private)
			img.Name = name
			// Several images share a creation time: id breaks the tie.
			clk.t = t0.Add(time.Duration(n/3) * time.Second)
			create(t, d, s, img)
			all = append(all, get(t, d, s, img.ID))
		}
		orders := [][]imagedb.Sort{
			nil,
			{{Key: "name"}},
			{{Key: "name", Desc: true}},
			{{Key: "name"}, {Key: "created_at", Desc: true}},
			{{Key: "id"}},
			{{Key: "size", Desc: true}},
			{{Key: "status"}, {Key: "name", Desc: true}},
		}
		for _, order := range orders {
			full := list(t, d, s, imagedb.ListOptions{Project: "p1", Sort: order})
			if want := expectedOrder(all, order); !slices.Equal(full, want) {
				t.Fatalf("sort %v: got %v\nwant %v", order, full, want)
			}
			for _, limit := range []int{1, 2, 5} {
				var paged []string
				marker := ""
				for range len(all) + 1 {
					page := list(t, d, s, imagedb.ListOptions{Project: "p1", Sort: order, Limit: limit, Marker: marker})
					paged = append(paged, page...)
					if len(page) < limit {
						break
					}
					marker = page[len(page)-1]
				}
				if !slices.Equal(paged, full) {
					t.Fatalf("sort %v, pages of %d: got %v\nwant %v", order, limit, paged, full)
				}
			}
		}
	})
}

// expectedOrder sorts imgs as List documents: the keys, then created_at
// and id in the first key's direction.
func expectedOrder(imgs []*imagedb.Image, order []imagedb.Sort) []string {
	if len(order) == 0 {
		order = []imagedb.Sort{{Key: "created_at", Desc: true}}
	}
	keys := slices.Clone(order)
	for _, k := range []string{"created_at", "id"} {
		if !slices.ContainsFunc(keys, func(s imagedb.Sort) bool { return s.Key == k }) {
			keys = append(keys, imagedb.Sort{Key: k, Desc: order[0].Desc})
		}
	}
	sorted := slices.Clone(imgs)
	slices.SortFunc(sorted, func(a, b *imagedb.Image) int {
		for _, k := range keys {
			var c int
			switch k.Key {
			case "name":
				c = cmp.Compare(a.Name, b.Name)
			case "status":
				c = cmp.Compare(a.Status, b.Status)
			case "size":
				c = cmp.Compare(a.Size, b.Size)
			case "id":
				c = cmp.Compare(a.ID, b.ID)
			case "created_at":
				c = a.CreatedAt.Compare(b.CreatedAt)
			}
			if k.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return ids(sorted)
}

func TestListMarkerMustBeVisible(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		s, _ := setup(t, d)
		create(t, d, s, newImage(id(1), "p1", imagedb.Private), newImage(id(2), "p2", imagedb.Private))
		for _, m := range []string{id(2), id(3), "not-an-id"} {
			if _, err := s.List(context.Background(), d, imagedb.ListOptions{Project: "p1", Marker: m}); !errors.Is(err, imagedb.ErrMarker) {
				t.Fatalf("marker %s: %v, want ErrMarker", m, err)
			}
		}
		if got := list(t, d, s, imagedb.ListOptions{Project: "admin", Admin: true, Marker: id(2)}); !slices.Equal(got, []string{id(1)}) {
			t.Fatalf("admin after %s: %v", id(2), got)
		}
		if _, err := s.List(context.Background(), d, imagedb.ListOptions{Sort: []imagedb.Sort{{Key: "owner"}}}); err == nil {
			t.Fatal("sorting by an unknown key worked")
		}
	})
}
