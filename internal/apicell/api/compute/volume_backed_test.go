package compute

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const (
	bfvImage = "00000000-0000-4000-8000-00000000e001"
	bfvOther = "00000000-0000-4000-8000-00000000e002"
	bfvRescu = "00000000-0000-4000-8000-00000000e003"
	bfvPath  = "/v2.1/servers/" + vaServer + "/action"
)

// newVBEnv is newVAEnv with an image store and vaServer volume-backed:
// no image_ref of its own, vaRoot its boot volume (boot index 0, made from
// bfvImage, rootMeta more of its volume_image_metadata). bfvOther is
// another image; bfvRescu an image with hw_rescue_bus and
// hw_rescue_device.
func newVBEnv(t *testing.T, d *db.DB, rootMeta map[string]string) *vaEnv {
	t.Helper()
	e := newVAEnv(t, d)
	ctx := context.Background()
	if err := d.Migrate(ctx, imagedb.MigrationSet, imagedb.Migrations); err != nil {
		t.Fatal(err)
	}
	for _, im := range []struct {
		id    string
		props map[string]string
	}{{bfvImage, map[string]string{}}, {bfvOther, map[string]string{}}, {bfvRescu, map[string]string{"hw_rescue_bus": "virtio", "hw_rescue_device": "disk"}}} {
		img := &imagedb.Image{ID: im.id, Name: "img", Status: imagedb.StatusActive, Visibility: imagedb.Public, Owner: "admin",
			DiskFormat: "qcow2", ContainerFormat: "bare", Size: 1, Checksum: "c", Properties: im.props, Tags: []string{}}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return (&imagedb.Store{}).Create(ctx, tx, img) }); err != nil {
			t.Fatal(err)
		}
	}
	meta := map[string]string{"image_id": bfvImage}
	for k, v := range rootMeta {
		meta[k] = v
	}
	b, _ := json.Marshal(meta)
	e.sql(`UPDATE volumes SET volume_image_metadata = ?, bootable = 1 WHERE id = ?`, string(b), vaRoot)
	e.sql(`UPDATE instances SET image_ref = '' WHERE uuid = ?`, vaServer)
	e.attached(vaRoot, vaServer, "/dev/vda", 0, "", true)
	return e
}

// sentActions are the instance_action messages the API cell sent.
func (e *vaEnv) sentActions() []*wire.InstanceAction {
	e.sender.mu.Lock()
	defer e.sender.mu.Unlock()
	var out []*wire.InstanceAction
	for _, m := range e.sender.msgs {
		if m.method == wire.MethodInstanceAction {
			out = append(out, m.payload.(*wire.InstanceAction))
		}
	}
	return out
}

func (e *vaEnv) copyOf(uuid string) *apidb.Instance {
	e.t.Helper()
	in, err := apidb.Get(context.Background(), e.d, uuid)
	if err != nil {
		e.t.Fatal(err)
	}
	return in
}

// TestRebuildVolumeBacked: Nova below 2.93. Another image than the root
// volume's is refused with Nova's 400 and nothing sent or changed; the
// root volume's own image is a plain rebuild that keeps the copy's
// image_ref "" (the 202's "image" is ""), and sends the image to the cell
// (which keeps the instance's image_ref "" too, instanceops). A repeat
// while it runs is refused by the state (409).
func TestRebuildVolumeBacked(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVBEnv(t, d, nil)
		r := e.do(demo, "POST", bfvPath, "2.89", map[string]any{"rebuild": map[string]any{"imageRef": bfvOther}})
		want := "Image " + bfvOther + " is unacceptable: Unable to rebuild with a different image for a volume-backed server."
		if r.code != 400 || r.msg() != want {
			t.Errorf("rebuild with another image: %d %s, want 400 %q", r.code, r.raw, want)
		}
		if n := len(e.sentActions()); n != 0 {
			t.Errorf("%d actions sent after a refused rebuild", n)
		}
		if in := e.copyOf(vaServer); in.TaskState != "" || in.ImageRef != "" {
			t.Errorf("copy after a refused rebuild: task %q image %q", in.TaskState, in.ImageRef)
		}

		r = e.do(demo, "POST", bfvPath, "2.89", map[string]any{"rebuild": map[string]any{"imageRef": bfvImage, "name": "again"}})
		if r.code != 202 {
			t.Fatalf("rebuild with the root volume's image: %d %s", r.code, r.raw)
		}
		if s := r.body["server"].(map[string]any); s["image"] != "" || s["name"] != "again" {
			t.Errorf("rebuild view: image %v name %v, want \"\" and again", s["image"], s["name"])
		}
		if in := e.copyOf(vaServer); in.TaskState != "rebuilding" || in.ImageRef != "" || in.Name != "again" {
			t.Errorf("copy after the rebuild: task %q image %q name %q", in.TaskState, in.ImageRef, in.Name)
		}
		acts := e.sentActions()
		var p wire.ActionParams
		if len(acts) != 1 || acts[0].Action != "rebuild" || json.Unmarshal(acts[0].Params, &p) != nil || p.ImageRef != bfvImage {
			t.Errorf("actions sent: %+v, want one rebuild of %s", acts, bfvImage)
		}
		if r := e.do(demo, "POST", bfvPath, "2.89", map[string]any{"rebuild": map[string]any{"imageRef": bfvImage}}); r.code != 409 {
			t.Errorf("repeat while rebuilding: %d %s, want 409", r.code, r.raw)
		}
	})
}

// TestVolumeBackedWithImageRef: a server booted from an image whose
// mappings gave it a boot volume keeps the image as its image_ref (Nova),
// and is volume-backed all the same (its root attachment): its rebuild
// takes only its root volume's image and keeps its image_ref, its shelve
// offloads at once (no image), and its createImage snapshots its volumes.
func TestVolumeBackedWithImageRef(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVBEnv(t, d, nil)
		e.sql(`UPDATE instances SET image_ref = ? WHERE uuid = ?`, bfvRescu, vaServer)
		r := e.do(demo, "POST", bfvPath, "2.89", map[string]any{"rebuild": map[string]any{"imageRef": bfvOther}})
		if r.code != 400 || r.msg() != "Image "+bfvOther+" is unacceptable: Unable to rebuild with a different image for a volume-backed server." {
			t.Errorf("rebuild with another image: %d %s", r.code, r.raw)
		}
		r = e.do(demo, "POST", bfvPath, "2.89", map[string]any{"rebuild": map[string]any{"imageRef": bfvImage}})
		if r.code != 202 {
			t.Fatalf("rebuild with the root volume's image: %d %s", r.code, r.raw)
		}
		if in := e.copyOf(vaServer); in.ImageRef != bfvRescu {
			t.Errorf("image_ref after the rebuild %q, want %s", in.ImageRef, bfvRescu)
		}
		e.sql(`UPDATE instances SET task_state = '' WHERE uuid = ?`, vaServer)
		if r := e.do(demo, "POST", bfvPath, "2.45", map[string]any{"createImage": map[string]any{"name": "s"}}); r.code != 202 {
			t.Fatalf("createImage: %d %s", r.code, r.raw)
		} else if img, err := (&imagedb.Store{}).GetWithProperties(context.Background(), d, r.body["image_id"].(string)); err != nil ||
			img.Properties["bdm_v2"] != "True" {
			t.Errorf("createImage of a volume-backed server with an image_ref: %+v %v", img, err)
		}
		if r := e.do(demo, "POST", bfvPath, "2.89", map[string]any{"shelve": nil}); r.code != 202 {
			t.Fatalf("shelve: %d %s", r.code, r.raw)
		}
		acts := e.sentActions()
		if a := acts[len(acts)-1]; a.Action != "shelve" || len(a.Params) != 0 {
			t.Errorf("shelve sent %+v, want an offload (no image)", a)
		}
	})
}

// TestRescueVolumeBacked: below 2.87 a volume-backed server cannot be
// rescued; from 2.87 it can when the rescue image, or with none its root
// volume's image metadata, has hw_rescue_bus and hw_rescue_device. Each
// refusal is Nova's 400 and leaves the copy as it was with nothing sent; a
// refused state comes first (409). A server booted from an image is
// rescued at any version.
func TestRescueVolumeBacked(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVBEnv(t, d, nil)
		refused := "Instance " + vaServer + " cannot be rescued: Cannot rescue a volume-backed instance"
		for _, c := range []struct {
			ver   string
			image string
			want  string
		}{
			{"2.86", "", refused},
			{"2.86", bfvRescu, refused},
			{"2.87", "", refused},
			{"2.87", bfvOther, refused},
			{"2.87", vaMissing, "Requested rescue image '" + vaMissing + "' is not supported"},
		} {
			body := map[string]any{"rescue": nil}
			if c.image != "" {
				body = map[string]any{"rescue": map[string]any{"rescue_image_ref": c.image}}
			}
			r := e.do(demo, "POST", bfvPath, c.ver, body)
			if r.code != 400 || r.msg() != c.want {
				t.Errorf("rescue at %s with image %q: %d %s, want 400 %q", c.ver, c.image, r.code, r.raw, c.want)
			}
		}
		if n := len(e.sentActions()); n != 0 {
			t.Errorf("%d actions sent after refused rescues", n)
		}
		if in := e.copyOf(vaServer); in.TaskState != "" {
			t.Errorf("copy after refused rescues: task %q", in.TaskState)
		}
		r := e.do(demo, "POST", bfvPath, "2.87", map[string]any{"rescue": map[string]any{"rescue_image_ref": bfvRescu}})
		if r.code != 200 || r.body["adminPass"] == nil {
			t.Fatalf("rescue at 2.87 with a rescue image for volumes: %d %s", r.code, r.raw)
		}
		if acts := e.sentActions(); len(acts) != 1 || acts[0].Action != "rescue" {
			t.Errorf("actions sent: %+v, want one rescue", acts)
		}
		// The state is checked first: a server already rescuing is a 409.
		if r := e.do(demo, "POST", bfvPath, "2.86", map[string]any{"rescue": nil}); r.code != 409 {
			t.Errorf("rescue of a rescuing server: %d %s, want 409", r.code, r.raw)
		}
		// A server booted from an image is rescued below 2.87.
		if r := e.do(other, "POST", "/v2.1/servers/"+vaOther+"/action", "2.86", map[string]any{"rescue": nil}); r.code != 200 {
			t.Errorf("rescue of an image-backed server: %d %s", r.code, r.raw)
		}
	})
}

// TestRescueVolumeBackedByItsRootImage: from 2.87, with no rescue image,
// the root volume's image metadata decides.
func TestRescueVolumeBackedByItsRootImage(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVBEnv(t, d, map[string]string{"hw_rescue_bus": "usb", "hw_rescue_device": "disk"})
		if r := e.do(demo, "POST", bfvPath, "2.86", map[string]any{"rescue": nil}); r.code != 400 {
			t.Errorf("rescue at 2.86: %d %s, want 400", r.code, r.raw)
		}
		if r := e.do(demo, "POST", bfvPath, "2.87", map[string]any{"rescue": nil}); r.code != 200 {
			t.Errorf("rescue at 2.87 by the root volume's image: %d %s, want 200", r.code, r.raw)
		}
	})
}

// TestShelveVolumeBacked: the shelve of a volume-backed server makes no
// "<name>-shelved" image and names none on the copy or in the action
// (the cell offloads at once, instanceops); its unshelve, once the cell
// says it is offloaded, needs no image either (no image_missing). A
// server booted from an image still gets its shelved image.
func TestShelveVolumeBacked(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVBEnv(t, d, nil)
		images := func() int {
			var n int
			if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM images`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := images()
		if r := e.do(demo, "POST", bfvPath, "2.89", map[string]any{"shelve": nil}); r.code != 202 {
			t.Fatalf("shelve: %d %s", r.code, r.raw)
		}
		if n := images(); n != before {
			t.Errorf("%d images after the shelve, want %d (no snapshot)", n, before)
		}
		if in := e.copyOf(vaServer); in.ShelvedImageID != "" || in.TaskState != "shelving" {
			t.Errorf("copy after the shelve: shelved image %q task %q", in.ShelvedImageID, in.TaskState)
		}
		acts := e.sentActions()
		if len(acts) != 1 || acts[0].Action != "shelve" || len(acts[0].Params) != 0 {
			t.Fatalf("actions sent: %+v, want one shelve naming no image", acts)
		}
		// The cell offloaded it (its update, as the copy applies it).
		e.sql(`UPDATE instances SET vm_state = 'shelved_offloaded', task_state = '', host = '', node = '' WHERE uuid = ?`, vaServer)
		if r := e.do(demo, "POST", bfvPath, "2.89", map[string]any{"unshelve": nil}); r.code != 202 {
			t.Fatalf("unshelve: %d %s", r.code, r.raw)
		}
		acts = e.sentActions()
		if len(acts) != 2 || acts[1].Action != "unshelve" || len(acts[1].Params) != 0 {
			t.Errorf("actions sent: %+v, want an unshelve naming no image", acts)
		}
		// A server booted from an image is snapshotted.
		if r := e.do(other, "POST", "/v2.1/servers/"+vaOther+"/action", "2.89", map[string]any{"shelve": nil}); r.code != 202 {
			t.Fatalf("shelve of an image-backed server: %d %s", r.code, r.raw)
		}
		if in := e.copyOf(vaOther); in.ShelvedImageID == "" || images() != before+1 {
			t.Errorf("image-backed shelve: shelved image %q, %d images", in.ShelvedImageID, images())
		}
	})
}

// TestVolumeBackedRebuildAndRescueChecks: an attached volume not in-use
// makes the rebuild a 400 and the rescue a 409 (Nova's _check_volume_status),
// with nothing sent.
func TestVolumeBackedRebuildAndRescueChecks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVBEnv(t, d, map[string]string{"hw_rescue_bus": "usb", "hw_rescue_device": "disk"})
		e.sql(`UPDATE volumes SET status = 'detaching' WHERE id = ?`, vaRoot)
		want := "Invalid volume: volume '" + vaRoot + "' status must be 'in-use'. Currently in 'detaching' status"
		if r := e.do(demo, "POST", bfvPath, "2.89", map[string]any{"rebuild": map[string]any{"imageRef": bfvImage}}); r.code != 400 || r.msg() != want {
			t.Errorf("rebuild with a detaching volume: %d %s, want 400 %q", r.code, r.raw, want)
		}
		if r := e.do(demo, "POST", bfvPath, "2.89", map[string]any{"rescue": nil}); r.code != 409 || r.msg() != want {
			t.Errorf("rescue with a detaching volume: %d %s, want 409 %q", r.code, r.raw, want)
		}
		if n := len(e.sentActions()); n != 0 {
			t.Errorf("%d actions sent", n)
		}
	})
}

// fixedVolumeQuotas is a VolumeQuotaStore with the same limits for every
// project.
type fixedVolumeQuotas map[string]int64

func (f fixedVolumeQuotas) Limits(context.Context, db.Querier, string) (map[string]int64, error) {
	return f, nil
}

// volumeMessages are the volume_action messages sent, with their targets.
func (e *vaEnv) volumeMessages() (acts []*wire.VolumeAction, to []string) {
	e.sender.mu.Lock()
	defer e.sender.mu.Unlock()
	for _, m := range e.sender.msgs {
		if m.method == wire.MethodVolumeAction {
			acts = append(acts, m.payload.(*wire.VolumeAction))
			to = append(to, m.to)
		}
	}
	return acts, to
}

// TestCreateImageVolumeBacked: Nova's snapshot_volume_backed. With room
// for one snapshot only, the server's two volumes are a 403 and nothing is
// made; with room, each volume gets a forced snapshot (creating, in its
// cell, volume_action snapshot_create there), and the image is active
// (Nova's force_activate), of size 0, raw and bare, holding the mapping
// (Nova's JSON list, the root first), bdm_v2 and root_device_name, and the root volume's image
// properties; the answer is 2.45's, and the server's state is untouched
// (no task state, no instance_action). The extra policy refuses with 403.
func TestCreateImageVolumeBacked(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVBEnv(t, d, map[string]string{"hw_disk_bus": "virtio", "min_disk": "3"})
		e.attached(vaVol, vaServer, "/dev/vdb", -1, "", false)
		// The server runs on its host (its root device is named).
		e.sql(`UPDATE instances SET host = 'h1', launched_at = 1 WHERE uuid = ?`, vaServer)
		quotas := fixedVolumeQuotas{"snapshots": 1}
		pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules), nil)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
		newAPI := func(p *policy.Enforcer) {
			var err error
			e.a, err = New(Config{Cell: "api", DB: d, Sender: e.sender, Caller: e.caller, Auth: serviceAuth{}, Policy: p,
				Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }, VolumeQuotas: quotas})
			if err != nil {
				t.Fatal(err)
			}
		}
		newAPI(pol)
		body := map[string]any{"createImage": map[string]any{"name": "snap", "metadata": map[string]any{"k": "v"}}}
		r := e.do(demo, "POST", bfvPath, "2.45", body)
		if r.code != 403 || r.msg() != "Quota exceeded for resources: snapshots" {
			t.Errorf("over the snapshot quota: %d %s", r.code, r.raw)
		}
		snapshots := func() int {
			var n int
			if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM volume_snapshots`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := snapshots(); n != 0 {
			t.Errorf("%d snapshots after the refusal", n)
		}
		quotas["snapshots"] = 2
		r = e.do(demo, "POST", bfvPath, "2.45", body)
		if r.code != 202 {
			t.Fatalf("createImage: %d %s", r.code, r.raw)
		}
		id, _ := r.body["image_id"].(string)
		img, err := (&imagedb.Store{}).GetWithProperties(context.Background(), d, id)
		if err != nil {
			t.Fatalf("image %q: %v", id, err)
		}
		if img.Name != "snap" || img.Status != imagedb.StatusActive || img.Size != 0 || img.DiskFormat != "raw" || img.ContainerFormat != "bare" ||
			img.Owner != "demo" || img.Visibility != imagedb.Private || img.MinDisk != 3 {
			t.Errorf("image: %+v", img)
		}
		acts, to := e.volumeMessages()
		if len(acts) != 2 || to[0] != vaCell || to[1] != vaCell || acts[0].VolumeID != vaRoot || acts[1].VolumeID != vaVol ||
			acts[0].Action != wire.SnapshotCreate {
			t.Fatalf("volume actions: %+v to %v", acts, to)
		}
		for _, a := range acts {
			s, err := voldb.GetSnapshot(context.Background(), d, a.SnapshotID)
			if err != nil || s.Status != voldb.StatusCreating || s.VolumeID != a.VolumeID || s.Cell != vaCell || s.Name != "snapshot for snap" {
				t.Errorf("snapshot %s: %+v (%v)", a.SnapshotID, s, err)
			}
		}
		wantMap := `[{"boot_index": 0, "delete_on_termination": true, "destination_type": "volume", "device_name": "/dev/vda", ` +
			`"device_type": "disk", "disk_bus": null, "encrypted": null, "encryption_format": null, "encryption_options": null, ` +
			`"encryption_secret_uuid": null, "guest_format": null, "image_id": null, "no_device": null, "snapshot_id": "` + acts[0].SnapshotID +
			`", "source_type": "snapshot", "tag": null, "volume_id": null, "volume_size": 1, "volume_type": null}, ` +
			`{"boot_index": null, "delete_on_termination": false, "destination_type": "volume", "device_name": "/dev/vdb", ` +
			`"device_type": "disk", "disk_bus": null, "encrypted": null, "encryption_format": null, "encryption_options": null, ` +
			`"encryption_secret_uuid": null, "guest_format": null, "image_id": null, "no_device": null, "snapshot_id": "` + acts[1].SnapshotID +
			`", "source_type": "snapshot", "tag": null, "volume_id": null, "volume_size": 1, "volume_type": null}]`
		p := img.Properties
		if p["block_device_mapping"] != wantMap || p["bdm_v2"] != "True" || p["root_device_name"] != "/dev/vda" || p["hw_disk_bus"] != "virtio" ||
			p["k"] != "v" || p["image_id"] != "" || p["min_disk"] != "" {
			t.Errorf("image properties: %v\nmapping want %s", p, wantMap)
		}
		if in := e.copyOf(vaServer); in.TaskState != "" {
			t.Errorf("server's task state %q", in.TaskState)
		}
		if n := len(e.sentActions()); n != 0 {
			t.Errorf("%d instance actions sent", n)
		}
		// The extra policy.
		strict, err := policy.NewFromRules(slices.Concat(policy.Base, Rules), map[string]string{ruleCreateImageVolumeBacked: "role:admin"})
		if err != nil {
			t.Fatal(err)
		}
		newAPI(strict)
		if r := e.do(demo, "POST", bfvPath, "2.45", body); r.code != 403 {
			t.Errorf("createImage without the volume-backed policy: %d %s", r.code, r.raw)
		}
	})
}
