package image_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	imageapi "github.com/cellcloud/cellcloud/internal/apicell/api/image"
)

// deadlineWriter is a response writer whose connection deadlines can be
// set, as http.ResponseController sets a server connection's; it records
// them.
type deadlineWriter struct {
	*httptest.ResponseRecorder
	read, write time.Time
}

func (d *deadlineWriter) SetReadDeadline(t time.Time) error  { d.read = t; return nil }
func (d *deadlineWriter) SetWriteDeadline(t time.Time) error { d.write = t; return nil }

// TestDataRoutesExtendTheirDeadlines: an upload (PUT …/file) gets the data
// timeout as its read and write deadlines and a download (GET …/file) as
// its write deadline, in place of the server's short ones; no other route,
// and no caller who may not upload or download, gets them.
func TestDataRoutesExtendTheirDeadlines(t *testing.T) {
	const long = 3 * time.Hour
	forEach(t, func(t *testing.T, s *server) {
		img := s.create(t, demo, images.CreateOpts{Name: "disk", DiskFormat: "raw", ContainerFormat: "bare"})
		serve := func(method, path, token, body string) (*deadlineWriter, time.Time) {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req.Header.Set("X-Auth-Token", token)
			if body != "" {
				req.Header.Set("Content-Type", "application/octet-stream")
			}
			w := &deadlineWriter{ResponseRecorder: httptest.NewRecorder()}
			before := time.Now()
			s.api.ServeHTTP(w, req)
			return w, before
		}
		file := "/v2/images/" + img.ID + "/file"

		for _, c := range []struct{ method, path, token, body string }{
			{http.MethodPut, file, other, "data"},
			{http.MethodGet, file, other, ""},
			{http.MethodGet, "/v2/images", demo, ""},
			{http.MethodGet, "/v2/images/" + img.ID, demo, ""},
		} {
			w, _ := serve(c.method, c.path, c.token, c.body)
			if !w.read.IsZero() || !w.write.IsZero() {
				t.Errorf("%s %s as %s (%d): deadlines read %v write %v, want the server's", c.method, c.path, c.token, w.Code, w.read, w.write)
			}
		}

		w, before := serve(http.MethodPut, file, demo, "data")
		if w.Code != http.StatusNoContent {
			t.Fatalf("upload: %d %s", w.Code, w.Body)
		}
		if w.read.Before(before.Add(long)) || w.write.Before(before.Add(long)) {
			t.Errorf("upload deadlines read %v write %v, want at least %v", w.read, w.write, before.Add(long))
		}
		w, before = serve(http.MethodGet, file, demo, "")
		if w.Code != http.StatusOK || w.Body.String() != "data" {
			t.Fatalf("download: %d %q", w.Code, w.Body)
		}
		if w.write.Before(before.Add(long)) {
			t.Errorf("download write deadline %v, want at least %v", w.write, before.Add(long))
		}
	}, func(c *imageapi.Config) { c.DataTimeout = long })
}
