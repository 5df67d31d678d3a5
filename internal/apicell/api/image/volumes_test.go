package image_test

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	imageapi "github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// TestVolumeUploadChunks: a volume's bytes written in chunks (a repeated
// chunk, a gap of zeros left out) become the image's data with Glance's
// checksums, and are read back in chunks as a volume made from the image
// reads them; a begin again starts from nothing; a chunk for an image no
// longer being uploaded to is ErrNotUploading; one whose temporary file a
// restart lost is ErrUploadLost; a failure deletes the image.
func TestVolumeUploadChunks(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		mk := func() string {
			return s.create(t, demo, images.CreateOpts{Name: "from-volume", DiskFormat: "raw", ContainerFormat: "bare"}).ID
		}
		id := mk()
		if err := s.api.BeginVolume(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.api.WriteChunk(ctx, id, 0, []byte("junk from a first try")); err != nil {
			t.Fatal(err)
		}
		// The cell began again (it restarted): the junk goes.
		if err := s.api.BeginVolume(ctx, id); err != nil {
			t.Fatal(err)
		}
		if st := s.raw(t, demo, id)["status"]; st != "saving" {
			t.Errorf("status while uploading %v, want saving", st)
		}
		want := make([]byte, 3000)
		copy(want, "head")
		copy(want[2000:], "tail")
		for range 2 { // a repeated chunk writes the same bytes again
			if err := s.api.WriteChunk(ctx, id, 0, want[:1000]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.api.WriteChunk(ctx, id, 2000, want[2000:2500]); err != nil {
			t.Fatal(err)
		}
		if err := s.api.FinishVolume(ctx, id, int64(len(want))); err != nil {
			t.Fatal(err)
		}
		img := s.raw(t, demo, id)
		sum := sha512.Sum512(want)
		if img["status"] != "active" || img["size"] != float64(len(want)) || img["os_hash_value"] != hex.EncodeToString(sum[:]) {
			t.Errorf("image after the upload: status %v size %v hash %v", img["status"], img["size"], img["os_hash_value"])
		}
		r := s.do(t, http.MethodGet, "/v2/images/"+id+"/file", demo, nil)
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, want) {
			t.Errorf("image data: %d, %d bytes, equal %v", r.Status, len(r.Body), bytes.Equal(r.Body, want))
		}
		var got []byte
		for off := int64(0); ; {
			data, size, err := s.api.ReadChunk(ctx, id, off, 1024)
			if err != nil {
				t.Fatal(err)
			}
			if size != int64(len(want)) {
				t.Fatalf("size %d, want %d", size, len(want))
			}
			got = append(got, data...)
			off += int64(len(data))
			if off == size {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Error("the chunks read back differ from the data written")
		}
		// The upload is over: more chunks are for an image no longer
		// being uploaded to.
		if err := s.api.WriteChunk(ctx, id, 0, []byte("x")); !errors.Is(err, imageapi.ErrNotUploading) {
			t.Errorf("chunk after the finish: %v, want ErrNotUploading", err)
		}
		if err := s.api.BeginVolume(ctx, id); !errors.Is(err, imageapi.ErrNotUploading) {
			t.Errorf("begin on an active image: %v, want ErrNotUploading", err)
		}

		// A restart of the API cell removed the temporary file.
		lost := mk()
		if err := s.api.BeginVolume(ctx, lost); err != nil {
			t.Fatal(err)
		}
		tmps, _ := filepath.Glob(filepath.Join(s.dir, ".upload-*"))
		for _, f := range tmps {
			os.Remove(f)
		}
		if err := s.api.WriteChunk(ctx, lost, 0, []byte("x")); !errors.Is(err, imageapi.ErrUploadLost) {
			t.Errorf("chunk after its file was lost: %v, want ErrUploadLost", err)
		}
		if err := s.api.FailVolume(ctx, lost); err != nil {
			t.Fatal(err)
		}
		if r := s.do(t, http.MethodGet, "/v2/images/"+lost, demo, nil); r.Status != http.StatusNotFound {
			t.Errorf("image of a failed upload: %d, want 404", r.Status)
		}
		if _, _, err := s.api.ReadChunk(ctx, lost, 0, 10); !errors.Is(err, notfound.Err) {
			t.Errorf("read of a deleted image: %v, want not found", err)
		}
		if err := s.api.BeginVolume(ctx, lost); !errors.Is(err, imageapi.ErrNotUploading) {
			t.Errorf("begin on a deleted image: %v, want ErrNotUploading", err)
		}
		if tmps, _ := filepath.Glob(filepath.Join(s.dir, ".upload-*")); len(tmps) != 0 {
			t.Errorf("temporary files left: %v", tmps)
		}
	})
}
