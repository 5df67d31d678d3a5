package image_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

func TestUpdate(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		c := s.client(demo)
		img := s.create(t, demo, images.CreateOpts{Name: "before", Tags: []string{"old"},
			Properties: map[string]string{"os_distro": "ubuntu", "drop_me": "x"}})
		got, err := images.Update(ctx, c, img.ID, images.UpdateOpts{
			images.ReplaceImageName{NewName: "after"},
			images.ReplaceImageTags{NewTags: []string{"b", "a"}},
			images.ReplaceImageMinRam{NewMinRam: 1024},
			images.ReplaceImageMinDisk{NewMinDisk: 10},
			images.ReplaceImageProtected{NewProtected: true},
			images.ReplaceImageHidden{NewHidden: true},
			images.UpdateVisibility{Visibility: images.ImageVisibilityCommunity},
			images.UpdateImageProperty{Op: images.AddOp, Name: "hw_disk_bus", Value: "scsi"},
			images.UpdateImageProperty{Op: images.ReplaceOp, Name: "os_distro", Value: "debian"},
			images.UpdateImageProperty{Op: images.RemoveOp, Name: "drop_me"},
			images.UpdateImageProperty{Op: images.AddOp, Name: "disk_format", Value: "raw"},
			images.UpdateImageProperty{Op: images.ReplaceOp, Name: "container_format", Value: "bare"},
		}).Extract()
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if got.Name != "after" || !slices.Equal(got.Tags, []string{"a", "b"}) || got.MinRAMMegabytes != 1024 || got.MinDiskGigabytes != 10 ||
			!got.Protected || !got.Hidden || got.Visibility != images.ImageVisibilityCommunity || got.DiskFormat != "raw" ||
			got.ContainerFormat != "bare" || got.Properties["hw_disk_bus"] != "scsi" || got.Properties["os_distro"] != "debian" {
			t.Fatalf("after update: %+v", got)
		}
		if _, ok := got.Properties["drop_me"]; ok {
			t.Fatalf("removed property still there: %v", got.Properties)
		}
		if !got.UpdatedAt.After(img.UpdatedAt) && !got.UpdatedAt.Equal(img.UpdatedAt) {
			t.Fatalf("updated_at went back: %v < %v", got.UpdatedAt, img.UpdatedAt)
		}
		shown, err := images.Get(ctx, c, img.ID).Extract()
		if err != nil || shown.Name != "after" || shown.Properties["os_distro"] != "debian" {
			t.Fatalf("get after update: %+v, %v", shown, err)
		}
		// An empty patch changes nothing and answers the image.
		r := s.do(t, http.MethodPatch, "/v2/images/"+img.ID, demo, []any{}, "Content-Type", "application/openstack-images-v2.1-json-patch")
		if r.Status != http.StatusOK {
			t.Fatalf("empty patch: %s", r)
		}
		// Draft 4 (v2.0) patches, too; name to null.
		r = s.do(t, http.MethodPatch, "/v2/images/"+img.ID, demo, []any{map[string]any{"replace": "/name", "value": nil},
			map[string]any{"add": "/new_prop", "value": "v"}}, "Content-Type", "application/openstack-images-v2.0-json-patch")
		if r.Status != http.StatusOK {
			t.Fatalf("v2.0 patch: %s", r)
		}
		var v map[string]any
		r.JSON(t, &v)
		if v["name"] != nil || v["new_prop"] != "v" {
			t.Fatalf("after v2.0 patch: %v", v)
		}
	})
}

func anyStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestUpdateBadInput sends patches Glance refuses: each gets Glance's
// status, and the image does not change at all, even when valid
// operations come before the bad one.
func TestUpdateBadInput(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		img := s.create(t, demo, images.CreateOpts{Name: "stable", DiskFormat: "raw", ContainerFormat: "bare",
			Properties: map[string]string{"os_distro": "ubuntu"}})
		active := s.create(t, demo, images.CreateOpts{Name: "active", DiskFormat: "raw", ContainerFormat: "bare"})
		if r := s.do(t, http.MethodPut, "/v2/images/"+active.ID+"/file", demo, "x", "Content-Type", "application/octet-stream"); r.Status != http.StatusNoContent {
			t.Fatalf("upload: %s", r)
		}
		rename := map[string]any{"op": "replace", "path": "/name", "value": "changed"}
		op := func(op, path string, value ...any) map[string]any {
			m := map[string]any{"op": op, "path": path}
			if len(value) > 0 {
				m["value"] = value[0]
			}
			return m
		}
		const v21 = "application/openstack-images-v2.1-json-patch"
		cases := []struct {
			name   string
			id     string
			token  string
			ctype  string
			body   any
			status int
			parts  []string
		}{
			{"JSON content type", img.ID, demo, "application/json", []any{rename}, 415, []string{"application/openstack-images-v2.1-json-patch"}},
			{"not a list", img.ID, demo, v21, map[string]any{"op": "replace"}, 400, []string{"JSON array"}},
			{"not an object", img.ID, demo, v21, []any{"replace"}, 400, []string{"JSON objects"}},
			{"no op", img.ID, demo, v21, []any{map[string]any{"path": "/name", "value": "x"}}, 400, []string{"op"}},
			{"bad op", img.ID, demo, v21, []any{rename, op("move", "/name", "x")}, 400, []string{"move"}},
			{"no path", img.ID, demo, v21, []any{map[string]any{"op": "add", "value": "x"}}, 400, []string{"path"}},
			{"no value", img.ID, demo, v21, []any{op("replace", "/name")}, 400, []string{"value"}},
			{"pointer without slash", img.ID, demo, v21, []any{op("replace", "name", "x")}, 400, []string{"name"}},
			{"pointer too deep", img.ID, demo, v21, []any{op("add", "/tags/-", "x")}, 400, []string{"/tags/-"}},
			{"bad escape", img.ID, demo, v21, []any{op("add", "/a~2b", "x")}, 400, []string{"~"}},
			{"status read-only", img.ID, demo, v21, []any{rename, op("replace", "/status", "active")}, 403, []string{"'status' is read-only"}},
			{"id read-only", img.ID, demo, v21, []any{op("replace", "/id", "x")}, 403, []string{"'id'"}},
			{"reserved", img.ID, demo, v21, []any{op("add", "/os_glance_x", "y")}, 403, []string{"reserved"}},
			{"locations", img.ID, demo, v21, []any{op("add", "/locations/-", map[string]any{"url": "x", "metadata": map[string]any{}})}, 403, []string{"locations"}},
			{"bad min_ram", img.ID, demo, v21, []any{rename, op("replace", "/min_ram", "lots")}, 400, []string{"min_ram", "integer"}},
			{"negative min_disk", img.ID, demo, v21, []any{rename, op("replace", "/min_disk", -5)}, 400, []string{"min_disk", "negative"}},
			{"bad visibility", img.ID, demo, v21, []any{op("replace", "/visibility", "world")}, 400, []string{"visibility"}},
			{"bad disk_format", img.ID, demo, v21, []any{op("replace", "/disk_format", "floppy")}, 400, []string{"disk_format"}},
			{"tags not a list", img.ID, demo, v21, []any{op("replace", "/tags", "a,b")}, 400, []string{"tags"}},
			{"property not a string", img.ID, demo, v21, []any{op("add", "/os_version", 22)}, 400, []string{"os_version", "'string'"}},
			{"property value too long", img.ID, demo, v21, []any{rename, op("add", "/os_version", strings.Repeat("v", 70<<10))}, 400, []string{"os_version", "too long", "65535"}},
			{"replaced property value too long", img.ID, demo, v21, []any{rename, op("replace", "/os_distro", strings.Repeat("v", 65536))}, 400, []string{"os_distro", "too long"}},
			{"replace missing property", img.ID, demo, v21, []any{rename, op("replace", "/nope", "x")}, 409, []string{"nope does not exist"}},
			{"remove missing property", img.ID, demo, v21, []any{rename, op("remove", "/nope")}, 409, []string{"nope does not exist"}},
			{"remove base attribute", img.ID, demo, v21, []any{rename, op("remove", "/name")}, 403, []string{"name may not be removed"}},
			{"owner by a member", img.ID, demo, v21, []any{rename, op("replace", "/owner", "other")}, 403, []string{"Owner"}},
			{"public by a member", img.ID, demo, v21, []any{rename, op("replace", "/visibility", "public")}, 403, []string{"publicize_image"}},
			{"disk_format once active", active.ID, demo, v21, []any{op("replace", "/disk_format", "qcow2")}, 403, []string{"queued"}},
			{"draft 4 add of an existing attribute", img.ID, demo, "application/openstack-images-v2.0-json-patch",
				[]any{map[string]any{"add": "/name", "value": "x"}}, 409, []string{"already present"}},
			{"draft 4 two operations in one", img.ID, demo, "application/openstack-images-v2.0-json-patch",
				[]any{map[string]any{"add": "/a", "replace": "/b", "value": "x"}}, 400, []string{"only one"}},
			{"missing image", "00000000-0000-4000-8000-00000000dead", demo, v21, []any{rename}, 404, []string{"No image found"}},
			{"someone else's image", img.ID, other, v21, []any{rename}, 404, []string{"No image found"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				before := s.raw(t, admin, img.ID)
				beforeActive := s.raw(t, admin, active.ID)
				r := s.do(t, http.MethodPatch, "/v2/images/"+c.id, c.token, c.body, "Content-Type", c.ctype)
				wantError(t, r, c.status, c.parts...)
				if c.status == http.StatusUnsupportedMediaType && !strings.Contains(r.Header.Get("Accept-Patch"), "v2.1-json-patch") {
					t.Fatalf("415 without Accept-Patch: %v", r.Header)
				}
				unchanged(t, s, img.ID, before, "a refused patch")
				unchanged(t, s, active.ID, beforeActive, "a refused patch")
			})
		}
		// The owner can still change it.
		if _, err := images.Update(ctx, s.client(demo), img.ID, images.UpdateOpts{images.ReplaceImageName{NewName: "ok"}}).Extract(); err != nil {
			t.Fatal(err)
		}
	})
}
