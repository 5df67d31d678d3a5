package image_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

var isoZ = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestCreateAndShow(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		before := time.Now().Add(-time.Second)
		img := s.create(t, demo, images.CreateOpts{
			Name: "ubuntu", ContainerFormat: "bare", DiskFormat: "qcow2", MinDisk: 2, MinRAM: 512,
			Tags: []string{"linux", "amd64"}, Protected: ptr(false),
			Properties: map[string]string{"os_distro": "ubuntu", "hw_disk_bus": "virtio"},
		})
		if img.ID == "" || img.Name != "ubuntu" || img.Status != images.ImageStatusQueued || img.Visibility != images.ImageVisibilityShared ||
			img.Owner != "demo" || img.ContainerFormat != "bare" || img.DiskFormat != "qcow2" || img.MinDiskGigabytes != 2 ||
			img.MinRAMMegabytes != 512 || img.Protected || img.Hidden || img.SizeBytes != 0 || img.Checksum != "" {
			t.Fatalf("created image: %+v", img)
		}
		if !slices.Equal(img.Tags, []string{"amd64", "linux"}) {
			t.Fatalf("tags %v", img.Tags)
		}
		if img.Properties["os_distro"] != "ubuntu" || img.Properties["hw_disk_bus"] != "virtio" {
			t.Fatalf("custom properties not at top level: %v", img.Properties)
		}
		if img.CreatedAt.Before(before) || !img.CreatedAt.Equal(img.UpdatedAt) {
			t.Fatalf("created_at %v updated_at %v", img.CreatedAt, img.UpdatedAt)
		}
		if img.File != "/v2/images/"+img.ID+"/file" || img.Schema != "/v2/schemas/image" {
			t.Fatalf("links: file %q schema %q", img.File, img.Schema)
		}

		// The raw view: Glance's fields, nulls where Glance has them.
		v := s.raw(t, demo, img.ID)
		for k, want := range map[string]any{"size": nil, "virtual_size": nil, "checksum": nil, "os_hash_algo": nil, "os_hash_value": nil,
			"self": "/v2/images/" + img.ID, "os_hidden": false, "protected": false, "visibility": "shared", "status": "queued"} {
			if got, ok := v[k]; !ok || got != want {
				t.Fatalf("view[%q] = %v (present %v), want %v; view %v", k, got, ok, want, v)
			}
		}
		for _, k := range []string{"created_at", "updated_at"} {
			if ts, _ := v[k].(string); !isoZ.MatchString(ts) {
				t.Fatalf("%s = %v, want ISO 8601 with Z", k, v[k])
			}
		}

		// Create answers 201 with a Location under the mount point.
		r := s.do(t, http.MethodPost, "/v2/images", demo, map[string]any{"id": "8E2F3C4A-0000-4000-8000-000000000001"})
		if r.Status != http.StatusCreated {
			t.Fatalf("create with an id: %s", r)
		}
		if loc := r.Header.Get("Location"); loc != s.srv.URL+mount+"/v2/images/8e2f3c4a-0000-4000-8000-000000000001" {
			t.Fatalf("Location %q", loc)
		}
		if id := r.Header.Get("X-Openstack-Request-Id"); !strings.HasPrefix(id, "req-") {
			t.Fatalf("request id %q", id)
		}
		var bare map[string]any
		r.JSON(t, &bare)
		if bare["name"] != nil || bare["disk_format"] != nil || bare["container_format"] != nil || bare["visibility"] != "shared" {
			t.Fatalf("image created with no attributes: %v", bare)
		}
		got, err := images.Get(ctx, s.client(demo), "8e2f3c4a-0000-4000-8000-000000000001").Extract()
		if err != nil || got.Owner != "demo" {
			t.Fatalf("get the image created with an id: %+v, %v", got, err)
		}
		// An admin may create an image for another project.
		r = s.do(t, http.MethodPost, "/v2/images", admin, map[string]any{"name": "x", "owner": "demo", "visibility": "public"})
		if r.Status != http.StatusCreated {
			t.Fatalf("admin create for demo: %s", r)
		}
		if _, err := images.Get(ctx, s.client(demo), "nope").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("get a missing image: %v, want 404", err)
		}
	})
}

// TestCreateBadInput sends create requests Glance refuses; each must get
// Glance's status, a message naming the attribute, and create nothing.
func TestCreateBadInput(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		existing := s.create(t, demo, images.CreateOpts{Name: "existing"})
		props := map[string]any{"name": "many"}
		for i := range 129 {
			props[fmt.Sprintf("p%03d", i)] = "v"
		}
		manyTags := make([]string, 129)
		for i := range manyTags {
			manyTags[i] = fmt.Sprintf("t%03d", i)
		}
		cases := []struct {
			name   string
			token  string
			body   any
			status int
			parts  []string
		}{
			{"name too long", demo, map[string]any{"name": strings.Repeat("n", 256)}, 400, []string{"name", "too long"}},
			{"name not a string", demo, map[string]any{"name": 5}, 400, []string{"instance['name']"}},
			{"bad disk_format", demo, map[string]any{"name": "x", "disk_format": "bogus"}, 400, []string{"disk_format", "'bogus' is not one of"}},
			{"bad container_format", demo, map[string]any{"container_format": 5}, 400, []string{"container_format"}},
			{"negative min_ram", demo, map[string]any{"min_ram": -1}, 400, []string{"min_ram", "negative"}},
			{"min_disk not an integer", demo, map[string]any{"min_disk": "ten"}, 400, []string{"min_disk", "integer"}},
			{"min_disk fraction", demo, map[string]any{"min_disk": 1.5}, 400, []string{"min_disk", "integer"}},
			{"min_ram too large", demo, map[string]any{"min_ram": 1 << 40}, 400, []string{"min_ram"}},
			{"bad visibility", demo, map[string]any{"visibility": "everyone"}, 400, []string{"visibility"}},
			{"tags not a list", demo, map[string]any{"tags": "linux"}, 400, []string{"tags", "array"}},
			{"tag not a string", demo, map[string]any{"tags": []any{1}}, 400, []string{"tags"}},
			{"tag too long", demo, map[string]any{"tags": []string{strings.Repeat("t", 256)}}, 400, []string{"tags", "too long"}},
			{"protected not a boolean", demo, map[string]any{"protected": "yes"}, 400, []string{"protected", "boolean"}},
			{"id not a uuid", demo, map[string]any{"id": "not-a-uuid"}, 400, []string{"id"}},
			{"custom property not a string", demo, map[string]any{"os_distro": 5}, 400, []string{"os_distro", "'string'"}},
			{"custom property name too long", demo, map[string]any{strings.Repeat("k", 256): "v"}, 400, []string{"255"}},
			{"custom property value too long", demo, map[string]any{"description": strings.Repeat("v", 70<<10)}, 400, []string{"description", "too long", "65535"}},
			{"status is read-only", demo, map[string]any{"status": "active"}, 403, []string{"'status' is read-only"}},
			{"size is read-only", demo, map[string]any{"size": 5}, 403, []string{"'size' is read-only"}},
			{"checksum is read-only", demo, map[string]any{"checksum": "x"}, 403, []string{"'checksum'"}},
			{"self is read-only", demo, map[string]any{"self": "x"}, 403, []string{"'self'"}},
			{"locations are reserved", demo, map[string]any{"locations": []any{}}, 403, []string{"'locations' is reserved"}},
			{"deleted is reserved", demo, map[string]any{"deleted": "x"}, 403, []string{"'deleted' is reserved"}},
			{"os_glance namespace", demo, map[string]any{"os_glance_foo": "x"}, 403, []string{"'os_glance_foo' is reserved"}},
			{"public by a member", demo, map[string]any{"visibility": "public"}, 403, []string{"publicize_image"}},
			{"another project's image", demo, map[string]any{"owner": "other"}, 403, []string{"owned by 'other'"}},
			{"too many properties", demo, props, 413, []string{"properties", "129"}},
			{"too many tags", demo, map[string]any{"tags": manyTags}, 413, []string{"tags", "129"}},
			{"duplicate id", demo, map[string]any{"id": existing.ID}, 409, []string{existing.ID}},
			{"not an object", demo, []any{"x"}, 400, []string{"object"}},
			{"malformed JSON", demo, `{"name": `, 400, []string{"Malformed JSON"}},
			{"empty body", demo, ``, 400, []string{"Body expected"}},
			{"scalar body", demo, `"x"`, 400, []string{"list/dict"}},
			{"body too large", demo, map[string]any{"x": strings.Repeat("v", 1<<20)}, 413, []string{"larger"}},
		}
		want := s.allIDs(t)
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := s.do(t, http.MethodPost, "/v2/images", c.token, c.body, "Content-Type", "application/json")
				wantError(t, r, c.status, c.parts...)
				if got := s.allIDs(t); !slices.Equal(got, want) {
					t.Fatalf("a refused create changed the images: %v, was %v", got, want)
				}
			})
		}
	})
}

func TestDelete(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		c := s.client(demo)
		img := s.create(t, demo, images.CreateOpts{Name: "doomed", DiskFormat: "raw", ContainerFormat: "bare", Protected: ptr(true)})
		if err := imagedata.Upload(ctx, c, img.ID, strings.NewReader("some data")).ExtractErr(); err != nil {
			t.Fatalf("upload: %v", err)
		}
		if files := s.storeFiles(t); !slices.Equal(files, []string{img.ID}) {
			t.Fatalf("store files %v", files)
		}
		// Protected: 403, as Glance answers, and nothing changes.
		before := s.raw(t, admin, img.ID)
		wantError(t, s.do(t, http.MethodDelete, "/v2/images/"+img.ID, demo, nil), http.StatusForbidden, "protected")
		wantError(t, s.do(t, http.MethodDelete, "/v2/images/"+img.ID, admin, nil), http.StatusForbidden, "protected")
		unchanged(t, s, img.ID, before, "deleting a protected image")
		if _, err := images.Update(ctx, c, img.ID, images.UpdateOpts{images.ReplaceImageProtected{NewProtected: false}}).Extract(); err != nil {
			t.Fatalf("unprotect: %v", err)
		}
		if err := images.Delete(ctx, c, img.ID).ExtractErr(); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := images.Get(ctx, c, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("get after delete: %v, want 404", err)
		}
		if err := images.Delete(ctx, c, img.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("delete again: %v, want 404", err)
		}
		if files := s.storeFiles(t); len(files) != 0 {
			t.Fatalf("data left after delete: %v", files)
		}
		// The id stays used, as in Glance.
		wantError(t, s.do(t, http.MethodPost, "/v2/images", demo, map[string]any{"id": img.ID}), http.StatusConflict, "already exists")
	})
}

// TestVisibility checks what each project sees and may change: private
// and shared images only their owner (and admins), public and community
// images everybody, but only the owner and admins change them.
func TestVisibility(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		private := s.create(t, demo, images.CreateOpts{Name: "private", Visibility: ptr(images.ImageVisibilityPrivate), DiskFormat: "raw", ContainerFormat: "bare"})
		shared := s.create(t, demo, images.CreateOpts{Name: "shared"})
		community := s.create(t, demo, images.CreateOpts{Name: "community", Visibility: ptr(images.ImageVisibilityCommunity)})
		public := s.create(t, admin, images.CreateOpts{Name: "public", Visibility: ptr(images.ImageVisibilityPublic), DiskFormat: "raw", ContainerFormat: "bare"})
		if err := imagedata.Upload(ctx, s.client(demo), private.ID, strings.NewReader("secret")).ExtractErr(); err != nil {
			t.Fatal(err)
		}

		names := func(token, query string) []string {
			t.Helper()
			pages, err := images.List(s.client(token), listOpts(query)).AllPages(ctx)
			if err != nil {
				t.Fatalf("list as %s: %v", token, err)
			}
			all, err := images.ExtractImages(pages)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, i := range all {
				out = append(out, i.Name)
			}
			slices.Sort(out)
			return out
		}
		for _, c := range []struct {
			token, visibility string
			want              []string
		}{
			{demo, "", []string{"community", "private", "public", "shared"}},
			{other, "", []string{"public"}},
			{other, "community", []string{"community"}},
			{other, "private", nil},
			{admin, "", []string{"private", "public", "shared"}},
			{admin, "all", []string{"community", "private", "public", "shared"}},
		} {
			if got := names(c.token, c.visibility); !slices.Equal(got, c.want) {
				t.Errorf("%s lists (visibility %q) %v, want %v", c.token, c.visibility, got, c.want)
			}
		}

		oc := s.client(other)
		for _, img := range []*images.Image{private, shared} {
			if _, err := images.Get(ctx, oc, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("other gets %s: %v, want 404", img.Name, err)
			}
			if _, err := images.Update(ctx, oc, img.ID, images.UpdateOpts{images.ReplaceImageName{NewName: "mine"}}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("other renames %s: %v, want 404", img.Name, err)
			}
			if err := images.Delete(ctx, oc, img.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("other deletes %s: %v, want 404", img.Name, err)
			}
			if err := imagedata.Upload(ctx, oc, img.ID, strings.NewReader("x")).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("other uploads to %s: %v, want 404", img.Name, err)
			}
			if _, err := imagedata.Download(ctx, oc, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("other downloads %s: %v, want 404", img.Name, err)
			}
		}
		// Visible but not theirs: 403.
		for _, img := range []*images.Image{community, public} {
			if _, err := images.Get(ctx, oc, img.ID).Extract(); err != nil {
				t.Errorf("other gets %s: %v", img.Name, err)
			}
			if _, err := images.Update(ctx, oc, img.ID, images.UpdateOpts{images.ReplaceImageName{NewName: "mine"}}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
				t.Errorf("other renames %s: %v, want 403", img.Name, err)
			}
			if err := images.Delete(ctx, oc, img.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
				t.Errorf("other deletes %s: %v, want 403", img.Name, err)
			}
		}
		// Making an image public is for admins.
		if _, err := images.Update(ctx, s.client(demo), private.ID, images.UpdateOpts{images.UpdateVisibility{Visibility: images.ImageVisibilityPublic}}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("demo publishes its image: %v, want 403", err)
		}
		if _, err := images.Update(ctx, s.client(admin), private.ID, images.UpdateOpts{images.UpdateVisibility{Visibility: images.ImageVisibilityPublic}}).Extract(); err != nil {
			t.Errorf("admin publishes demo's image: %v", err)
		}
		rc, err := imagedata.Download(ctx, oc, private.ID).Extract()
		if err != nil {
			t.Fatalf("other downloads the now public image: %v", err)
		}
		rc.Close()
	})
}

// listOpts makes list options from a visibility ("" for none).
func listOpts(visibility string) images.ListOpts {
	return images.ListOpts{Visibility: images.ImageVisibility(visibility), Limit: 2}
}
