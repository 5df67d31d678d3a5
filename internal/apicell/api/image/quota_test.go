package image_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	imageapi "github.com/cellcloud/cellcloud/internal/apicell/api/image"
)

// usage sums the sizes of project's images, as an admin lists them.
func (s *server) usage(t *testing.T, project string) int64 {
	t.Helper()
	r := s.do(t, http.MethodGet, "/v2/images?visibility=all&limit=1000", admin, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("list: %s", r)
	}
	var out struct {
		Images []struct {
			Owner string   `json:"owner"`
			Size  *float64 `json:"size"`
		} `json:"images"`
	}
	r.JSON(t, &out)
	var n int64
	for _, i := range out.Images {
		if i.Owner == project && i.Size != nil {
			n += int64(*i.Size)
		}
	}
	return n
}

// uploadRaw PUTs body as image id's data: with a Content-Length when body
// is a *bytes.Reader, chunked otherwise.
func (s *server) uploadRaw(t *testing.T, token, id string, body io.Reader) *response {
	t.Helper()
	return s.do(t, http.MethodPut, "/v2/images/"+id+"/file", token, body, "Content-Type", "application/octet-stream")
}

// refusedUpload checks that a refused upload left image id queued with no
// data (only its updated_at may have moved, when the upload began), no
// file of its own in the store, and the project's usage as it was.
func refusedUpload(t *testing.T, s *server, id string, before map[string]any, files []string, usage int64) {
	t.Helper()
	after := s.raw(t, admin, id)
	if after["status"] != "queued" || after["size"] != nil || after["checksum"] != nil {
		t.Fatalf("after a refused upload: %v", after)
	}
	before["updated_at"] = after["updated_at"]
	unchanged(t, s, id, before, "a refused upload")
	if got := s.storeFiles(t); !slices.Equal(got, files) {
		t.Fatalf("store files %v, want %v", got, files)
	}
	if got := s.usage(t, "demo"); got != usage {
		t.Fatalf("usage %d after a refused upload, want %d", got, usage)
	}
}

// TestStorageQuota: with a storage quota, an upload that fits is stored;
// one that would cross it is refused with Glance's 413 and message before
// it begins (known size) or when it crosses (streamed), and leaves the
// image queued, no data and the usage as it was; another project is not
// affected; deleting an image frees its bytes.
func TestStorageQuota(t *testing.T) {
	const quota = 1000
	forEach(t, func(t *testing.T, s *server) {
		disk := images.CreateOpts{Name: "disk", DiskFormat: "raw", ContainerFormat: "bare"}
		a := s.create(t, demo, disk)
		if r := s.uploadRaw(t, demo, a.ID, bytes.NewReader(data(600, 1))); r.Status != http.StatusNoContent {
			t.Fatalf("upload that fits: %s", r)
		}
		if u := s.usage(t, "demo"); u != 600 {
			t.Fatalf("usage %d, want 600", u)
		}
		stored := []string{a.ID}

		b := s.create(t, demo, disk)
		before := s.raw(t, admin, b.ID)
		r := s.uploadRaw(t, demo, b.ID, bytes.NewReader(data(500, 2)))
		wantError(t, r, http.StatusRequestEntityTooLarge,
			"Image exceeds the storage quota: The size of the data 500 will exceed the limit. 400 bytes remaining.")
		refusedUpload(t, s, b.ID, before, stored, 600)

		// Streamed, of unknown size: cut off when it crosses the quota.
		r = s.uploadRaw(t, demo, b.ID, io.MultiReader(bytes.NewReader(data(500, 2))))
		wantError(t, r, http.StatusRequestEntityTooLarge,
			"Image exceeds the storage quota: The size of the data None will exceed the limit. 400 bytes remaining.")
		refusedUpload(t, s, b.ID, before, stored, 600)

		// Another project has its own quota.
		c := s.create(t, other, disk)
		if r := s.uploadRaw(t, other, c.ID, bytes.NewReader(data(900, 3))); r.Status != http.StatusNoContent {
			t.Fatalf("another project's upload: %s", r)
		}
		stored = append(stored, c.ID)
		slices.Sort(stored)

		// What is left fits exactly; then nothing is left, and an upload
		// of unknown size is refused before it begins.
		if r := s.uploadRaw(t, demo, b.ID, io.MultiReader(bytes.NewReader(data(400, 4)))); r.Status != http.StatusNoContent {
			t.Fatalf("upload of what is left: %s", r)
		}
		stored = append(stored, b.ID)
		slices.Sort(stored)
		// An image that is not queued is a refused status change first,
		// as in Glance.
		wantError(t, s.uploadRaw(t, demo, b.ID, bytes.NewReader(data(500, 2))), http.StatusConflict, "from active to saving")
		d := s.create(t, demo, disk)
		before = s.raw(t, admin, d.ID)
		r = s.uploadRaw(t, demo, d.ID, io.MultiReader(bytes.NewReader([]byte("x"))))
		wantError(t, r, http.StatusRequestEntityTooLarge, "The size of the data None will exceed the limit. 0 bytes remaining.")
		refusedUpload(t, s, d.ID, before, stored, 1000)

		// Deleting an image frees its bytes.
		if err := images.Delete(context.Background(), s.client(demo), a.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := imagedata.Upload(context.Background(), s.client(demo), d.ID, bytes.NewReader(data(600, 5))).ExtractErr(); err != nil {
			t.Fatalf("upload after a delete freed the space: %v", err)
		}
		if u := s.usage(t, "demo"); u != 1000 {
			t.Fatalf("usage %d, want 1000", u)
		}
	}, func(c *imageapi.Config) { c.StorageQuota = quota })
}

// TestStorageQuotaCheckedAtEnd: two uploads of one project each fit when
// they begin; the one that completes second is over the quota and is
// refused when complete, as Glance rechecks, leaving nothing.
func TestStorageQuotaCheckedAtEnd(t *testing.T) {
	const quota = 1000
	forEach(t, func(t *testing.T, s *server) {
		disk := images.CreateOpts{Name: "disk", DiskFormat: "raw", ContainerFormat: "bare"}
		slow := s.create(t, demo, disk)
		before := s.raw(t, admin, slow.ID)
		pr, pw := io.Pipe()
		done := make(chan *response, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPut, s.srv.URL+mount+"/v2/images/"+slow.ID+"/file", pr)
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("X-Auth-Token", demo)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- &response{}
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			done <- &response{Status: resp.StatusCode, Header: resp.Header, Body: b}
		}()
		if _, err := pw.Write(data(300, 1)); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, s, slow.ID, "saving")
		fast := s.create(t, demo, disk)
		if r := s.uploadRaw(t, demo, fast.ID, bytes.NewReader(data(800, 2))); r.Status != http.StatusNoContent {
			t.Fatalf("second upload: %s", r)
		}
		if _, err := pw.Write(data(100, 3)); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		wantError(t, <-done, http.StatusRequestEntityTooLarge,
			"Image exceeds the storage quota: The size of the data 400 will exceed the limit. 200 bytes remaining.")
		refusedUpload(t, s, slow.ID, before, []string{fast.ID}, 800)
	}, func(c *imageapi.Config) { c.StorageQuota = quota })
}

// TestImageCountQuota: with a count quota, a project's create over it is
// refused with Glance's 413 (image_count_total); another project is not
// affected; a delete makes room.
func TestImageCountQuota(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		first := s.create(t, demo, images.CreateOpts{Name: "one"})
		s.create(t, demo, images.CreateOpts{Name: "two"})
		r := s.do(t, http.MethodPost, "/v2/images", demo, map[string]any{"name": "three"})
		wantError(t, r, http.StatusRequestEntityTooLarge, "quota threshold was breached",
			"Project demo is over a limit for [Resource image_count_total is over limit of 2 due to current usage 2 and delta 1]")
		if n := len(s.allIDs(t)); n != 2 {
			t.Fatalf("%d images after a refused create, want 2", n)
		}
		s.create(t, other, images.CreateOpts{Name: "other's"})
		if err := images.Delete(context.Background(), s.client(demo), first.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		s.create(t, demo, images.CreateOpts{Name: "three"})
	}, func(c *imageapi.Config) { c.CountQuota = 2 })
}
