package image_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	imageapi "github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// data is deterministic image data of n bytes.
func data(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	return b
}

func TestUploadAndDownload(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		c := s.client(demo)
		img := s.create(t, demo, images.CreateOpts{Name: "disk", DiskFormat: "qcow2", ContainerFormat: "bare"})
		payload := data(300<<10, 7)
		// A reader that is not a bytes.Reader: the upload is chunked.
		if err := imagedata.Upload(ctx, c, img.ID, io.MultiReader(bytes.NewReader(payload))).ExtractErr(); err != nil {
			t.Fatalf("upload: %v", err)
		}
		sum, sha := md5.Sum(payload), sha512.Sum512(payload)
		got, err := images.Get(ctx, c, img.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != images.ImageStatusActive || got.SizeBytes != int64(len(payload)) || got.Checksum != hex.EncodeToString(sum[:]) ||
			got.Properties["os_hash_algo"] != "sha512" || got.Properties["os_hash_value"] != hex.EncodeToString(sha[:]) {
			t.Fatalf("after upload: status %s size %d checksum %s props %v", got.Status, got.SizeBytes, got.Checksum, got.Properties)
		}
		if !got.UpdatedAt.After(got.CreatedAt) && !got.UpdatedAt.Equal(got.CreatedAt) {
			t.Fatalf("updated_at %v before created_at %v", got.UpdatedAt, got.CreatedAt)
		}
		rc, err := imagedata.Download(ctx, c, img.ID).Extract()
		if err != nil {
			t.Fatalf("download: %v", err)
		}
		back, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(back, payload) {
			t.Fatalf("downloaded %d bytes (%v), want the %d uploaded", len(back), err, len(payload))
		}
		r := s.do(t, http.MethodGet, "/v2/images/"+img.ID+"/file", demo, nil)
		if r.Header.Get("Content-MD5") != hex.EncodeToString(sum[:]) || r.Header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("download headers %v", r.Header)
		}
		// Ranges, as Glance serves them.
		r = s.do(t, http.MethodGet, "/v2/images/"+img.ID+"/file", demo, nil, "Range", "bytes=10-19")
		if r.Status != http.StatusPartialContent || !bytes.Equal(r.Body, payload[10:20]) ||
			r.Header.Get("Content-Range") != "bytes 10-19/307200" {
			t.Fatalf("range: %d %v %q", r.Status, r.Header, r.Body)
		}
		if files := s.storeFiles(t); !slices.Equal(files, []string{img.ID}) {
			t.Fatalf("store files %v", files)
		}

		// A second upload is a refused status change, and the data stays.
		before := s.raw(t, admin, img.ID)
		err = imagedata.Upload(ctx, c, img.ID, bytes.NewReader([]byte("other"))).ExtractErr()
		if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			t.Fatalf("upload to an active image: %v, want 409", err)
		}
		wantError(t, s.do(t, http.MethodPut, "/v2/images/"+img.ID+"/file", demo, "x", "Content-Type", "application/octet-stream"),
			http.StatusConflict, "from active to saving")
		unchanged(t, s, img.ID, before, "a second upload")

		// An empty upload is data too.
		empty := s.create(t, demo, images.CreateOpts{Name: "empty", DiskFormat: "raw", ContainerFormat: "bare"})
		if err := imagedata.Upload(ctx, c, empty.ID, bytes.NewReader(nil)).ExtractErr(); err != nil {
			t.Fatalf("empty upload: %v", err)
		}
		if v := s.raw(t, demo, empty.ID); v["status"] != "active" || v["size"] != float64(0) || v["checksum"] != "d41d8cd98f00b204e9800998ecf8427e" {
			t.Fatalf("empty image: %v", v)
		}
	})
}

func TestDownloadWithoutData(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		img := s.create(t, demo, images.CreateOpts{Name: "nodata"})
		r := s.do(t, http.MethodGet, "/v2/images/"+img.ID+"/file", demo, nil)
		if r.Status != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("download of an image with no data: %s", r)
		}
		wantError(t, s.do(t, http.MethodGet, "/v2/images/00000000-0000-4000-8000-000000000000/file", demo, nil), http.StatusNotFound)
	})
}

// TestUploadBadInput checks that every refused or failed upload leaves the
// image queued with no data and no file in the store. An upload cut off
// after it began (the streamed one) took the image through saving and back,
// so only its updated_at may have moved on.
func TestUploadBadInput(t *testing.T) {
	const limit = 64 << 10
	forEach(t, func(t *testing.T, s *server) {
		octet := []string{"Content-Type", "application/octet-stream"}
		cases := []struct {
			name    string
			formats bool
			body    func() io.Reader
			header  []string
			status  int
			parts   []string
		}{
			{"no content type", true, func() io.Reader { return strings.NewReader("x") }, []string{"Content-Type", ""}, 415, []string{"content type"}},
			{"JSON content type", true, func() io.Reader { return strings.NewReader("{}") }, []string{"Content-Type", "application/json"}, 415, []string{"application/json"}},
			{"no formats", false, func() io.Reader { return strings.NewReader("x") }, octet, 400, []string{"disk_format", "container_format"}},
			{"bad size header", true, func() io.Reader { return strings.NewReader("x") }, append(slices.Clone(octet), "X-Openstack-Image-Size", "lots"), 400, []string{"size"}},
			{"declared too large", true, func() io.Reader { return bytes.NewReader(data(limit+1, 1)) }, octet, 413, []string{"too large"}},
			{"declared size too large", true, func() io.Reader { return strings.NewReader("x") }, append(slices.Clone(octet), "X-Openstack-Image-Size", "999999999"), 413, []string{"too large"}},
			{"streamed too large", true, func() io.Reader { return io.MultiReader(bytes.NewReader(data(limit+1, 1))) }, octet, 413, []string{"too large"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				opts := images.CreateOpts{Name: c.name}
				if c.formats {
					opts.DiskFormat, opts.ContainerFormat = "raw", "bare"
				}
				img := s.create(t, demo, opts)
				before := s.raw(t, admin, img.ID)
				r := s.do(t, http.MethodPut, "/v2/images/"+img.ID+"/file", demo, c.body(), c.header...)
				wantError(t, r, c.status, c.parts...)
				if strings.HasPrefix(c.name, "streamed") {
					after := s.raw(t, admin, img.ID)
					if after["updated_at"].(string) < before["updated_at"].(string) {
						t.Fatalf("updated_at went back: %v -> %v", before["updated_at"], after["updated_at"])
					}
					before["updated_at"] = after["updated_at"]
				}
				unchanged(t, s, img.ID, before, "a refused upload")
				if files := s.storeFiles(t); len(files) != 0 {
					t.Fatalf("files left in the store: %v", files)
				}
				// The upload can be tried again.
				if c.formats {
					if err := imagedata.Upload(context.Background(), s.client(demo), img.ID, strings.NewReader("ok")).ExtractErr(); err != nil {
						t.Fatalf("retry: %v", err)
					}
					if err := images.Delete(context.Background(), s.client(demo), img.ID).ExtractErr(); err != nil {
						t.Fatal(err)
					}
				}
			})
		}
	}, func(c *imageapi.Config) { c.MaxImageSize = limit })
}

// TestUploadInterrupted cuts an upload off half way: the image goes back
// to queued and no file stays.
func TestUploadInterrupted(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		img := s.create(t, demo, images.CreateOpts{Name: "cut", DiskFormat: "raw", ContainerFormat: "bare"})
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPut, s.srv.URL+mount+"/v2/images/"+img.ID+"/file", pr)
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("X-Auth-Token", demo)
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
		if _, err := pw.Write(data(32<<10, 3)); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, s, img.ID, "saving")
		pw.CloseWithError(errors.New("client went away"))
		<-done
		waitStatus(t, s, img.ID, "queued")
		testpoll.Eventually(t, 10*time.Second, "no file left", func() (bool, string) {
			f := s.storeFiles(t)
			return len(f) == 0, strings.Join(f, ",")
		})
		if err := imagedata.Upload(context.Background(), s.client(demo), img.ID, strings.NewReader("again")).ExtractErr(); err != nil {
			t.Fatalf("retry after an interrupted upload: %v", err)
		}
	})
}

// TestConcurrentUploads races two uploads to one image: one wins, the
// other gets 409, and the image holds the winner's data.
func TestConcurrentUploads(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		img := s.create(t, demo, images.CreateOpts{Name: "race", DiskFormat: "raw", ContainerFormat: "bare"})
		slow, pw := io.Pipe()
		first := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPut, s.srv.URL+mount+"/v2/images/"+img.ID+"/file", slow)
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("X-Auth-Token", demo)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				first <- 0
				return
			}
			resp.Body.Close()
			first <- resp.StatusCode
		}()
		if _, err := pw.Write([]byte("winner-")); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, s, img.ID, "saving")
		err := imagedata.Upload(context.Background(), s.client(demo), img.ID, strings.NewReader("loser")).ExtractErr()
		if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			t.Fatalf("second upload while the first is saving: %v, want 409", err)
		}
		if _, err := pw.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if st := <-first; st != http.StatusNoContent {
			t.Fatalf("first upload answered %d", st)
		}
		r := s.do(t, http.MethodGet, "/v2/images/"+img.ID+"/file", demo, nil)
		if string(r.Body) != "winner-data" {
			t.Fatalf("image data %q", r.Body)
		}
	})
}

// TestDeleteDuringUpload deletes an image while its data arrives: the
// upload answers 410 Gone and leaves no file.
func TestDeleteDuringUpload(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		img := s.create(t, demo, images.CreateOpts{Name: "gone", DiskFormat: "raw", ContainerFormat: "bare"})
		pr, pw := io.Pipe()
		var wg sync.WaitGroup
		var status int
		var body []byte
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodPut, s.srv.URL+mount+"/v2/images/"+img.ID+"/file", pr)
			req.Header.Set("Content-Type", "application/octet-stream")
			req.Header.Set("X-Auth-Token", demo)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			status = resp.StatusCode
			body, _ = io.ReadAll(resp.Body)
		})
		if _, err := pw.Write(data(1000, 9)); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, s, img.ID, "saving")
		if err := images.Delete(context.Background(), s.client(demo), img.ID).ExtractErr(); err != nil {
			t.Fatalf("delete during upload: %v", err)
		}
		pw.Close()
		wg.Wait()
		if status != http.StatusGone {
			t.Fatalf("upload of a deleted image answered %d: %s", status, body)
		}
		if files := s.storeFiles(t); len(files) != 0 {
			t.Fatalf("files left: %v", files)
		}
	})
}

func waitStatus(t *testing.T, s *server, id, status string) {
	t.Helper()
	testpoll.Eventually(t, 10*time.Second, "image "+id+" to be "+status, func() (bool, string) {
		v := s.raw(t, admin, id)
		return v["status"] == status, "status " + v["status"].(string)
	})
}
