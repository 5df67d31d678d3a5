package image_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	imageapi "github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/db"
)

func imagesCreateOpts(name string) images.CreateOpts {
	return images.CreateOpts{Name: name, Properties: map[string]string{"custom": "x"}}
}

func TestSeed(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		cirros := imageapi.Cirros()
		if !bytes.Equal(cirros.Data, imageapi.Cirros().Data) || len(cirros.Data) < 4096 {
			t.Fatal("the seed image's data is not deterministic")
		}
		for range 2 {
			if err := s.api.Seed(ctx, cirros); err != nil {
				t.Fatalf("seed: %v", err)
			}
		}
		if ids := s.allIDs(t); !slices.Equal(ids, []string{imageapi.CirrosID}) {
			t.Fatalf("images after seeding twice: %v", ids)
		}
		// Everybody sees it, active, public, with its data.
		img, err := images.Get(ctx, s.client(other), imageapi.CirrosID).Extract()
		sum := md5.Sum(cirros.Data)
		if err != nil || img.Name != "cirros-0.6.2-x86_64-disk" || img.Status != images.ImageStatusActive ||
			img.Visibility != images.ImageVisibilityPublic || img.DiskFormat != "qcow2" || img.ContainerFormat != "bare" ||
			img.SizeBytes != int64(len(cirros.Data)) || img.Checksum != hex.EncodeToString(sum[:]) || img.Owner != "admin" {
			t.Fatalf("seeded image: %+v, %v", img, err)
		}
		rc, err := imagedata.Download(ctx, s.client(other), imageapi.CirrosID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, cirros.Data) {
			t.Fatal("downloaded data differs from the seed's")
		}
		// The Compute API's view of it: the store type, by any case of id.
		rec, err := (&imagedb.Store{}).Get(ctx, s.db, strings.ToUpper(imageapi.CirrosID))
		if err != nil || rec.ID != imageapi.CirrosID || rec.Status != imagedb.StatusActive || rec.Size != int64(len(cirros.Data)) ||
			rec.Properties["os_distro"] != "cirros" || !rec.VisibleTo("anyone", false) {
			t.Fatalf("store record: %+v, %v", rec, err)
		}

		// A data file that went missing is written again.
		if err := os.Remove(filepath.Join(s.dir, imageapi.CirrosID)); err != nil {
			t.Fatal(err)
		}
		if err := s.api.Seed(ctx, cirros); err != nil {
			t.Fatal(err)
		}
		if r := s.do(t, http.MethodGet, "/v2/images/"+imageapi.CirrosID+"/file", demo, nil); !bytes.Equal(r.Body, cirros.Data) {
			t.Fatalf("after reseeding a lost file: %d bytes", len(r.Body))
		}
		// An operator's delete sticks.
		if err := images.Delete(ctx, s.client(admin), imageapi.CirrosID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := s.api.Seed(ctx, cirros); err != nil {
			t.Fatal(err)
		}
		if ids := s.allIDs(t); len(ids) != 0 {
			t.Fatalf("a deleted seed image came back: %v", ids)
		}
		if files := s.storeFiles(t); len(files) != 0 {
			t.Fatalf("files left: %v", files)
		}
		// Bad seeds are refused.
		bad := cirros
		bad.DiskFormat = "floppy"
		if err := s.api.Seed(ctx, bad); err == nil {
			t.Fatal("a seed with a bad disk_format was accepted")
		}
		bad = cirros
		bad.ID = "cirros"
		if err := s.api.Seed(ctx, bad); err == nil {
			t.Fatal("a seed with a bad id was accepted")
		}
	})
}

// TestRecoverAtStart restarts the API over what a stopped process left: an
// image stuck saving, a half-written temporary file, and data no active
// image owns. The image goes back to queued and only active data stays.
func TestRecoverAtStart(t *testing.T) {
	forEach(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		kept := s.create(t, demo, images.CreateOpts{Name: "kept", DiskFormat: "raw", ContainerFormat: "bare"})
		if err := imagedata.Upload(ctx, s.client(demo), kept.ID, strings.NewReader("kept")).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		stuck := s.create(t, demo, images.CreateOpts{Name: "stuck", DiskFormat: "raw", ContainerFormat: "bare"})
		store := &imagedb.Store{}
		if err := s.db.InTx(ctx, func(tx *db.Tx) error { return store.BeginUpload(ctx, tx, stuck.ID) }); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{
			".upload-123":                          "partial",
			stuck.ID:                               "renamed but never recorded",
			"00000000-0000-4000-8000-000000000bad": "orphan",
			"README":                               "not the store's",
		} {
			if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		s2 := start(t, s.db, func(c *imageapi.Config) { c.StoreDir = s.dir })
		if st := s2.raw(t, demo, stuck.ID)["status"]; st != "queued" {
			t.Fatalf("stuck upload is %v after a restart", st)
		}
		files := s2.storeFiles(t)
		slices.Sort(files)
		want := []string{"README", kept.ID}
		slices.Sort(want)
		if !slices.Equal(files, want) {
			t.Fatalf("store after restart %v, want %v", files, want)
		}
		if r := s2.do(t, http.MethodGet, "/v2/images/"+kept.ID+"/file", demo, nil); string(r.Body) != "kept" {
			t.Fatalf("kept data %q", r.Body)
		}
		if err := imagedata.Upload(ctx, s2.client(demo), stuck.ID, strings.NewReader("now")).ExtractErr(); err != nil {
			t.Fatalf("upload after recovery: %v", err)
		}
		if _, err := os.Stat(filepath.Join(s.dir, stuck.ID)); err != nil {
			t.Fatal(errors.Join(errors.New("no data after the retried upload"), err))
		}
	})
}

func TestNewValidates(t *testing.T) {
	if _, err := imageapi.New(imageapi.Config{StoreDir: t.TempDir()}); err == nil {
		t.Fatal("New without a database worked")
	}
}
