package volume_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// bootFromVolume makes instance 1 on h1 active with volume 1 (made from
// image img-a) as its boot volume, in-use.
func (e *env) bootFromVolume(imgA []byte) string {
	e.t.Helper()
	e.images.data["img-a"] = imgA
	spec := blank(vid(1), 1)
	spec.ImageID, spec.ImageSize = "img-a", int64(len(imgA))
	e.create("req-create", spec)
	e.settled(vid(1), "available")
	u := e.instance(1, "h1", celldb.VMActive)
	if err := e.prepare(u, wire.BlockDevice{UUID: bid(1), SourceType: "volume", DestinationType: "volume", VolumeID: vid(1),
		AttachmentID: aid(1), BootIndex: 0}); err != nil {
		e.t.Fatal(err)
	}
	e.m.Wake()
	e.settled(vid(1), "in-use")
	return u
}

// reimageBoot asks for the re-image as instanceops does, in a transaction.
func (e *env) reimageBoot(r volume.ReimageRequest) error {
	ctx := context.Background()
	return e.d.InTx(ctx, func(tx *db.Tx) error { return e.m.ReimageBoot(ctx, tx, r) })
}

func (e *env) bootReimage(uuid, requestID string) volume.ReimageStatus {
	e.t.Helper()
	st, err := e.m.BootReimage(context.Background(), e.d, uuid, requestID)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// TestReimageBoot: the re-image of an instance's boot volume (a rebuild at
// 2.93) is accepted in status downloading (sent up), writes the new
// image's bytes over the volume (its size kept, zeros after), and ends
// in-use, its state sent with the new image's metadata; a repeat of the
// request changes nothing. A process stopped mid-copy leaves it pending
// and downloading; the next manager copies again from the start and ends
// it (nothing stays downloading).
func TestReimageBoot(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		imgA, imgB := pattern(wire.ImageChunkSize+100, 1), pattern(2*wire.ImageChunkSize+7, 9)
		u := e.bootFromVolume(imgA)
		e.images.data["img-b"] = imgB
		e.images.mu.Lock()
		e.images.held = make(chan struct{}, 1)
		e.images.mu.Unlock()
		meta := map[string]string{"image_id": "img-b", "image_name": "b"}
		r := volume.ReimageRequest{InstanceUUID: u, ImageID: "img-b", ImageSize: int64(len(imgB)), ImageMetadata: meta, RequestID: "req-rebuild"}
		if err := e.reimageBoot(r); err != nil {
			t.Fatal(err)
		}
		if st := last(t, vid(1), e.rec.volumeStates(t, vid(1))); st.Status != "downloading" || st.ImageMetadata != nil {
			t.Errorf("sent on acceptance %+v, want downloading without image metadata", st)
		}
		// The copy is under way: the process stops.
		<-e.images.held
		if err := e.m.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if v := e.volume(vid(1)); v.Status != "downloading" || v.Action != "reimage" {
			t.Fatalf("after a stop mid-copy: %+v, want downloading with the re-image pending", v)
		}
		if st := e.bootReimage(u, "req-rebuild"); st.Done {
			t.Errorf("re-image status %+v after a stop mid-copy, want not done", st)
		}
		e.expectVolume(vid(1), gib, patch{0, imgA}) // the old bytes, whole
		e.images.mu.Lock()
		e.images.held = nil
		e.images.mu.Unlock()
		e.restart()
		// The rebuild resumed: its request again is a repeat.
		if err := e.reimageBoot(r); err != nil {
			t.Fatal(err)
		}
		v := e.settled(vid(1), "in-use")
		e.expectVolume(vid(1), gib, patch{0, imgB})
		if st := e.bootReimage(u, "req-rebuild"); !st.Done || st.Fault != "" {
			t.Errorf("re-image status %+v, want done without a fault", st)
		}
		st := last(t, vid(1), e.rec.volumeStates(t, vid(1)))
		if st.Status != "in-use" || st.ImageMetadata["image_id"] != "img-b" || len(st.Attachments) != 1 || st.Version != v.Version {
			t.Errorf("sent at the end %+v, want in-use with img-b's metadata and the attachment", st)
		}
		// A repeat once done changes nothing.
		if err := e.reimageBoot(r); err != nil {
			t.Fatal(err)
		}
		if got := e.volume(vid(1)); got.Version != v.Version || got.Action != "" {
			t.Errorf("a repeat after the end: %+v, want unchanged at version %d", got, v.Version)
		}
		e.rec.checkVersions(t)
	})
}

// TestReimageBootRefusedOrFailed: Cinder's checks refuse an image larger
// than the volume, or whose min_disk is, with its message and nothing
// changed; a copy that fails (the image gone) leaves the volume in error
// with the fault, its bytes as they were.
func TestReimageBootRefusedOrFailed(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		imgA := pattern(1000, 1)
		u := e.bootFromVolume(imgA)
		v0 := e.volume(vid(1))
		for _, c := range []struct {
			r    volume.ReimageRequest
			want string
		}{
			{volume.ReimageRequest{InstanceUUID: u, ImageID: "img-big", ImageSize: gib + 1, RequestID: "req-big"},
				"Invalid input received: Size of specified image 2GB is larger than volume size 1GB."},
			{volume.ReimageRequest{InstanceUUID: u, ImageID: "img-min", ImageSize: 10, ImageMinDisk: 2, RequestID: "req-min"},
				"Invalid input received: Volume size 1GB cannot be smaller than the image minDisk size 2GB."},
		} {
			err := e.reimageBoot(c.r)
			var we *wire.Error
			if !errors.As(err, &we) || we.Code != wire.CodeInvalid || we.Message != c.want {
				t.Errorf("%s: %v, want invalid %q", c.r.ImageID, err, c.want)
			}
		}
		if v := e.volume(vid(1)); v.Version != v0.Version || v.Status != "in-use" {
			t.Errorf("after refusals: %+v, want unchanged", v)
		}

		// An image that cannot be read: error, with the fault.
		err := e.reimageBoot(volume.ReimageRequest{InstanceUUID: u, ImageID: "img-gone", ImageSize: 100, RequestID: "req-gone"})
		if err != nil {
			t.Fatal(err)
		}
		v := e.settled(vid(1), "error")
		if !strings.Contains(v.Fault, "img-gone") {
			t.Errorf("fault %q, want the image read's", v.Fault)
		}
		if st := e.bootReimage(u, "req-gone"); !st.Done || st.Fault == "" {
			t.Errorf("re-image status %+v, want done with a fault", st)
		}
		e.expectVolume(vid(1), gib, patch{0, imgA})
		e.rec.checkVersions(t)
	})
}

// TestReimageBootInstanceGone: an instance deleted while its boot volume
// is being re-imaged (InstanceGone takes its attachment; the volume,
// downloading, keeps its re-image) leaves the volume, once the copy
// ends, with its attachments' status — available — not the in-use it had.
func TestReimageBootInstanceGone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newEnv(t, d)
		e.start()
		u := e.bootFromVolume(pattern(1000, 1))
		imgB := pattern(3000, 5)
		e.images.data["img-b"] = imgB
		e.images.mu.Lock()
		e.images.held = make(chan struct{}, 1)
		e.images.mu.Unlock()
		if err := e.reimageBoot(volume.ReimageRequest{InstanceUUID: u, ImageID: "img-b", ImageSize: int64(len(imgB)), RequestID: "req-rebuild"}); err != nil {
			t.Fatal(err)
		}
		<-e.images.held
		if err := e.m.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := d.InTx(ctx, func(tx *db.Tx) error { return e.m.InstanceGone(ctx, tx, u, "req-delete") }); err != nil {
			t.Fatal(err)
		}
		if v := e.volume(vid(1)); v.Status != "downloading" || v.Action != "reimage" {
			t.Fatalf("after the instance's delete: %+v, want downloading with the re-image pending", v)
		}
		e.images.mu.Lock()
		e.images.held = nil
		e.images.mu.Unlock()
		e.restart()
		e.settled(vid(1), "available")
		e.expectVolume(vid(1), gib, patch{0, imgB})
		if st := last(t, vid(1), e.rec.volumeStates(t, vid(1))); st.Status != "available" || len(st.Attachments) != 0 || st.ImageMetadata["image_id"] != "img-b" {
			t.Errorf("sent at the end %+v, want available, no attachment, img-b's metadata", st)
		}
		e.rec.checkVersions(t)
	})
}
