package image_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"

	imageapi "github.com/cellcloud/cellcloud/internal/apicell/api/image"
)

func TestListPagination(t *testing.T) {
	// A clock that ticks a second per call: distinct, known creation times.
	clock := func(c *imageapi.Config) {
		var n int64
		c.Now = func() time.Time {
			n++
			return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Second)
		}
	}
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		var created []string // oldest first
		for i := range 7 {
			name := fmt.Sprintf("img-%d", i)
			if i%2 == 1 {
				name = "odd"
			}
			created = append(created, s.create(t, demo, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare",
				Tags: []string{fmt.Sprintf("n%d", i%3)}}).ID)
		}
		s.create(t, other, images.CreateOpts{Name: "not demo's"})
		newest := slices.Clone(created)
		slices.Reverse(newest)

		// gophercloud follows the "next" links.
		var pages [][]string
		err := images.List(s.client(demo), images.ListOpts{Limit: 3}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
			imgs, err := images.ExtractImages(p)
			if err != nil {
				return false, err
			}
			var ids []string
			for _, i := range imgs {
				ids = append(ids, i.ID)
			}
			pages = append(pages, ids)
			return true, nil
		})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if want := [][]string{newest[0:3], newest[3:6], newest[6:7]}; !slices.EqualFunc(pages, want, slices.Equal) {
			t.Fatalf("pages %v, want %v", pages, want)
		}

		// The links themselves, as Glance writes them.
		r := s.do(t, http.MethodGet, "/v2/images?limit=3&name=odd", demo, nil)
		var body struct {
			Images []struct{ ID string } `json:"images"`
			First  string                `json:"first"`
			Next   string                `json:"next"`
			Schema string                `json:"schema"`
		}
		r.JSON(t, &body)
		if body.Schema != "/v2/schemas/images" || !strings.HasPrefix(body.First, "/v2/images?") || len(body.Images) != 3 {
			t.Fatalf("list body: %s", r.Body)
		}
		next, err := url.Parse(body.Next)
		if err != nil || next.Path != "/v2/images" || next.Query().Get("marker") != body.Images[2].ID || next.Query().Get("name") != "odd" ||
			next.Query().Get("limit") != "3" {
			t.Fatalf("next %q", body.Next)
		}
		r = s.do(t, http.MethodGet, body.Next, demo, nil)
		body.Next = ""
		r.JSON(t, &body)
		if len(body.Images) != 0 || body.Next != "" {
			t.Fatalf("the page after the last full one: %s", r.Body)
		}

		list := func(query string) []string {
			t.Helper()
			r := s.do(t, http.MethodGet, "/v2/images?"+query, demo, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("list ?%s: %s", query, r)
			}
			var body struct {
				Images []struct{ ID string } `json:"images"`
			}
			r.JSON(t, &body)
			var ids []string
			for _, i := range body.Images {
				ids = append(ids, i.ID)
			}
			return ids
		}
		for _, c := range []struct {
			query string
			want  []string
		}{
			{"", newest},
			{"sort_key=created_at&sort_dir=asc", created},
			{"sort=created_at:asc", created},
			{"name=odd", []string{created[5], created[3], created[1]}},
			{"name=in:img-0,img-2", []string{created[2], created[0]}},
			{"name=odd&sort_dir=asc", []string{created[1], created[3], created[5]}},
			{"sort_key=name&sort_dir=asc&limit=2", []string{created[0], created[2]}},
			{"sort_key=name&sort_dir=asc&marker=" + created[6], []string{created[1], created[3], created[5]}},
			{"status=queued&owner=demo&visibility=shared", newest},
			{"owner=other", nil},
			{"tag=n1", []string{created[4], created[1]}},
			{"id=" + created[2], []string{created[2]}},
			{"created_at=gt:2025-01-01T00:00:05Z", newest[:2]},
			{"marker=" + created[2], []string{created[1], created[0]}},
			{"limit=0", nil},
		} {
			if got := list(c.query); !slices.Equal(got, c.want) {
				t.Errorf("?%s: got %v, want %v", c.query, got, c.want)
			}
		}
		for _, c := range []struct{ query, part string }{
			{"limit=x", "integer"},
			{"limit=-1", "positive"},
			{"sort_key=owner", "Invalid sort key"},
			{"sort_dir=up", "Invalid sort direction"},
			{"sort=name&sort_key=name", "combined"},
			{"visibility=world", "visibility"},
			{"os_hidden=maybe", "os_hidden"},
			{"protected=maybe", "protected"},
			{"name=like:x", "unknown operator 'like'"},
			{"size_min=big", "non-numeric"},
			{"created_at=gt:yesterday", "created_at"},
			{"marker=00000000-0000-4000-8000-00000000dead", "No image found"},
			{"changes-since=2020-01-01", "changes-since"},
		} {
			wantError(t, s.do(t, http.MethodGet, "/v2/images?"+c.query, demo, nil), http.StatusBadRequest, c.part)
		}
	}, clock)
}

func TestListPropertyFilter(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		a := s.create(t, demo, images.CreateOpts{Name: "a", Properties: map[string]string{"os_distro": "ubuntu"}})
		s.create(t, demo, images.CreateOpts{Name: "b", Properties: map[string]string{"os_distro": "fedora"}})
		pages, err := images.List(s.client(demo), images.ListOpts{}).AllPages(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		all, _ := images.ExtractImages(pages)
		if len(all) != 2 {
			t.Fatalf("listed %d images", len(all))
		}
		r := s.do(t, http.MethodGet, "/v2/images?os_distro=ubuntu", demo, nil)
		var body struct {
			Images []map[string]any `json:"images"`
		}
		r.JSON(t, &body)
		if len(body.Images) != 1 || body.Images[0]["id"] != a.ID || body.Images[0]["os_distro"] != "ubuntu" {
			t.Fatalf("property filter: %s", r.Body)
		}
	})
}
