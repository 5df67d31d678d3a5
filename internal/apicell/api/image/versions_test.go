package image_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

func TestVersionsAndRouting(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		for _, c := range []struct {
			path   string
			status int
		}{{"", http.StatusMultipleChoices}, {"/", http.StatusMultipleChoices}, {"/versions", http.StatusOK}, {"/v9/images", http.StatusMultipleChoices}} {
			r := s.do(t, http.MethodGet, c.path, "", nil)
			if r.Status != c.status {
				t.Fatalf("GET %s%s: %s", mount, c.path, r)
			}
			var doc struct {
				Versions []struct {
					ID, Status string
					Links      []struct{ Rel, Href string }
				}
			}
			r.JSON(t, &doc)
			var current []string
			for _, v := range doc.Versions {
				if v.Status == "CURRENT" {
					current = append(current, v.ID)
				}
				if len(v.Links) != 1 || v.Links[0].Rel != "self" || v.Links[0].Href != s.srv.URL+mount+"/v2/" {
					t.Fatalf("version %s links %v", v.ID, v.Links)
				}
			}
			if !slices.Equal(current, []string{"v2.7"}) || len(doc.Versions) < 2 {
				t.Fatalf("versions %s", r.Body)
			}
		}
		// A minor version in the URL is the v2 API.
		if r := s.do(t, http.MethodGet, "/v2.1/images", demo, nil); r.Status != http.StatusOK {
			t.Fatalf("GET /v2.1/images: %s", r)
		}
		wantError(t, s.do(t, http.MethodGet, "/v2/nothing", demo, nil), http.StatusNotFound)
		r := s.do(t, http.MethodPost, "/v2/images/00000000-0000-4000-8000-000000000000", demo, map[string]any{})
		wantError(t, r, http.StatusMethodNotAllowed)
		if allow := r.Header.Get("Allow"); !strings.Contains(allow, "PATCH") || !strings.Contains(allow, "DELETE") {
			t.Fatalf("Allow %q", allow)
		}
		wantError(t, s.do(t, http.MethodGet, "/v2/images", ":", nil), http.StatusUnauthorized)
		if r := s.do(t, http.MethodGet, "/v2/info/import", demo, nil); r.Status != http.StatusOK || !strings.Contains(string(r.Body), "import-methods") {
			t.Fatalf("import info: %s", r)
		}
	})
}
