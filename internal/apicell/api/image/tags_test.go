package image_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// TestTags adds and removes tags one by one: an unknown tag or image is a
// 404, another project's image that it sees (community) a 403.
func TestTags(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		img := s.create(t, demo, images.CreateOpts{Name: "tagged", Tags: []string{"b", "a"}, Visibility: ptr(images.ImageVisibilityCommunity)})
		if r := s.do(t, http.MethodPut, "/v2/images/"+img.ID+"/tags/c", demo, nil); r.Status != http.StatusNoContent {
			t.Fatalf("add tag: %s", r)
		}
		if r := s.do(t, http.MethodDelete, "/v2/images/"+img.ID+"/tags/a", demo, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete tag: %s", r)
		}
		wantError(t, s.do(t, http.MethodDelete, "/v2/images/"+img.ID+"/tags/zzz", demo, nil), http.StatusNotFound, "zzz")
		wantError(t, s.do(t, http.MethodPut, "/v2/images/"+img.ID+"/tags/x", other, nil), http.StatusForbidden, "Not allowed")
		if tags := s.raw(t, demo, img.ID)["tags"]; !slices.Equal(anyStrings(tags), []string{"b", "c"}) {
			t.Fatalf("tags %v", tags)
		}
		missing := "00000000-0000-0000-0000-000000000000"
		wantError(t, s.do(t, http.MethodPut, "/v2/images/"+missing+"/tags/x", demo, nil), http.StatusNotFound, "Image "+missing+" not found.")
	})
}
