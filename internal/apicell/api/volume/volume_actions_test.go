package volume_test

import (
	"fmt"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// lastAction is the last volume_action sent and its target.
func (e *volEnv) lastAction() (string, wire.VolumeAction) {
	e.t.Helper()
	sent := e.sent.all()
	for i := len(sent) - 1; i >= 0; i-- {
		if sent[i].method == wire.MethodVolumeAction {
			return sent[i].target, *sent[i].payload.(*wire.VolumeAction)
		}
	}
	e.t.Fatal("no volume_action sent")
	return "", wire.VolumeAction{}
}

// TestVolumeExtend: accepted, the copy is extending (version unchanged)
// and the cell is sent extend; the cell's newer state replaces the status
// whatever it says; Cinder's refusals write nothing.
func TestVolumeExtend(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 2})
	act := func(body map[string]any) *response {
		return e.send("POST", e.demoPath("/volumes/"+id+"/action"), e.demo, body)
	}
	e.quotas.set("gigabytes", 5)
	e.quotas.set("per_volume_gigabytes", 10)
	n0 := len(e.sent.all())
	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		msg    string
	}{
		{"not larger", map[string]any{"os-extend": map[string]any{"new_size": 2}}, 400, "Invalid input received: New size for extend must be greater than current size. (current: 2, extended: 2)."},
		{"above per volume", map[string]any{"os-extend": map[string]any{"new_size": 11}}, 413, "Requested volume size 11G is larger than maximum allowed limit 10G."},
		{"above gigabytes", map[string]any{"os-extend": map[string]any{"new_size": 6}}, 413, "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 4G, quota is 5G and 2G has been consumed."},
		{"no new size", map[string]any{"os-extend": map[string]any{}}, 400, "Invalid input for field/attribute os-extend. Value: {}. 'new_size' is a required property"},
		{"unknown action", map[string]any{"os-fly": nil}, 400, "There is no such action: os-fly"},
		{"reset status by a member", map[string]any{"os-reset_status": map[string]any{"status": "error"}}, 403, "Policy doesn't allow volume_extension:volume_admin_actions:reset_status to be performed."},
		{"force delete by a member", map[string]any{"os-force_delete": nil}, 403, "Policy doesn't allow volume_extension:volume_admin_actions:force_delete to be performed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := map[int]string{400: "badRequest", 403: "forbidden", 413: "overLimit"}[tc.status]
			if msg := act(tc.body).fault(t, tc.status, name); msg != tc.msg {
				t.Errorf("%q, want %q", msg, tc.msg)
			}
		})
	}
	if row := e.volumeRow(id); row.Status != "available" || len(e.sent.all()) != n0 {
		t.Fatalf("a refused action wrote: %+v, %d messages", row, len(e.sent.all())-n0)
	}
	act(map[string]any{"os-extend": map[string]any{"new_size": 3}}).empty(t, 202)
	if target, a := e.lastAction(); target != cell1 || a != (wire.VolumeAction{VolumeID: id, Action: wire.VolumeExtend, SizeGB: 3}) {
		t.Errorf("sent %s %+v", target, a)
	}
	if row := e.volumeRow(id); row.Status != "extending" || row.Version != 1 {
		t.Errorf("copy %+v", row)
	}
	// While extending, another extend is refused with Cinder's text.
	if msg := act(map[string]any{"os-extend": map[string]any{"new_size": 4}}).fault(t, 400, "badRequest"); msg != "Invalid volume: Volume "+id+" status must be '{'status': 'available'}' to extend, currently extending." {
		t.Errorf("second extend: %q", msg)
	}
	// A heal resend of version 1 leaves extending; the cell's refusal (v2, as it was) ends it.
	e.cellSays([]wire.VolumeState{{ID: id, Cell: cell1, Version: 1, Status: "available", SizeGB: 2}}, nil)
	if e.volumeRow(id).Status != "extending" {
		t.Error("an old state replaced the accepted action's status")
	}
	e.cellSays([]wire.VolumeState{{ID: id, Cell: cell1, Version: 2, Status: "available", SizeGB: 3}}, nil)
	if row := e.volumeRow(id); row.Status != "available" || row.SizeGB != 3 {
		t.Errorf("after the cell's state: %+v", row)
	}
}

// TestVolumeSmallActions: os-set_bootable (200, no message),
// os-update_readonly_flag (the view's metadata), os-reset_status (admin:
// the copy at once and the cell), os-force_delete (admin).
func TestVolumeSmallActions(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 1})
	path := e.demoPath("/volumes/" + id + "/action")
	n0 := len(e.sent.all())
	e.send("POST", path, e.demo, map[string]any{"os-set_bootable": map[string]any{"bootable": "yes"}}).empty(t, 200)
	e.send("POST", path, e.demo, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": true}}).empty(t, 202)
	v := e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil).json(t, 200)["volume"].(map[string]any)
	if v["bootable"] != "true" || fmt.Sprint(v["metadata"]) != "map[readonly:True]" {
		t.Errorf("after set_bootable and readonly: %v", v)
	}
	if len(e.sent.all()) != n0 {
		t.Error("set_bootable or readonly sent a message")
	}
	for _, tc := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"os-set_bootable": map[string]any{}}, "Must specify bootable in request."},
		{map[string]any{"os-set_bootable": map[string]any{"bootable": "maybe"}}, "Unrecognized value 'maybe', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"},
		{map[string]any{"os-update_readonly_flag": map[string]any{}}, "Must specify readonly in request."},
	} {
		if msg := e.send("POST", path, e.demo, tc.body).fault(t, 400, "badRequest"); msg != tc.msg {
			t.Errorf("%v: %q, want %q", tc.body, msg, tc.msg)
		}
	}
	apath := e.adminPath("/volumes/" + id + "/action")
	for _, tc := range []struct{ status, msg string }{
		{"deleting", "Cannot reset-state to deleting"},
		{"in-use", "Cannot reset-state to in-use because volume does not have any attachments."},
		{"weird", "Must specify a valid status"},
	} {
		if msg := e.send("POST", apath, e.admin, map[string]any{"os-reset_status": map[string]any{"status": tc.status}}).fault(t, 400, "badRequest"); msg != tc.msg {
			t.Errorf("reset to %s: %q, want %q", tc.status, msg, tc.msg)
		}
	}
	e.send("POST", apath, e.admin, map[string]any{"os-reset_status": map[string]any{"status": "error"}}).empty(t, 202)
	if target, a := e.lastAction(); target != cell1 || a != (wire.VolumeAction{VolumeID: id, Action: wire.VolumeResetStatus, Status: "error"}) {
		t.Errorf("reset sent %s %+v", target, a)
	}
	if row := e.volumeRow(id); row.Status != "error" || row.Version != 1 {
		t.Errorf("after reset: %+v", row)
	}
	// The readonly flag needs available.
	if msg := e.send("POST", path, e.demo, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": false}}).fault(t, 400, "badRequest"); msg != "Invalid volume: Volume "+id+" status must be available to update readonly flag, but current status is: error." {
		t.Errorf("readonly in error: %q", msg)
	}
	e.send("POST", apath, e.admin, map[string]any{"os-force_delete": map[string]any{}}).empty(t, 202)
	if _, a := e.lastAction(); a.Action != wire.VolumeDelete || a.VolumeID != id {
		t.Errorf("force delete sent %+v", a)
	}
}

// TestVolumeUploadImage: the image is made queued in the store, the
// volume is uploading, the cell is sent upload_image, and the answer is
// Cinder's os-volume_upload_image body.
func TestVolumeUploadImage(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 1, "description": "dd"})
	path := e.demoPath("/volumes/" + id + "/action")
	if msg := e.send("POST", path, e.demo, map[string]any{"os-volume_upload_image": map[string]any{}}).fault(t, 400, "badRequest"); msg != "No image_name was specified in request." {
		t.Errorf("no name: %q", msg)
	}
	if msg := e.send("POST", path, e.demo, map[string]any{"os-volume_upload_image": map[string]any{"image_name": "i", "visibility": "public"}},
		"OpenStack-API-Version", "volume 3.1").fault(t, 403, "forbidden"); msg != "Policy doesn't allow volume_extension:volume_actions:upload_public to be performed." {
		t.Errorf("public by a member: %q", msg)
	}
	r := e.send("POST", path, e.demo, map[string]any{"os-volume_upload_image": map[string]any{"image_name": "img", "disk_format": "qcow2"}}).json(t, 202)
	u := r["os-volume_upload_image"].(map[string]any)
	for k, want := range map[string]any{"id": id, "status": "uploading", "display_description": "dd", "size": float64(1),
		"container_format": "bare", "disk_format": "qcow2", "image_name": "img", "visibility": "private", "protected": false} {
		if fmt.Sprint(u[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, u[k], want)
		}
	}
	if len(e.images.created) != 1 || e.images.created[0].ID != u["image_id"] || e.images.created[0].Status != "queued" {
		t.Fatalf("images made %+v", e.images.created)
	}
	if target, a := e.lastAction(); target != cell1 || a != (wire.VolumeAction{VolumeID: id, Action: wire.VolumeUploadImage, ImageID: u["image_id"].(string)}) {
		t.Errorf("sent %s %+v", target, a)
	}
	if e.volumeRow(id).Status != "uploading" {
		t.Error("not uploading")
	}
	if msg := e.send("POST", path, e.demo, map[string]any{"os-volume_upload_image": map[string]any{"image_name": "again"}}).fault(t, 400, "badRequest"); msg != "Invalid volume: Volume "+id+" status must be available" {
		t.Errorf("while uploading: %q", msg)
	}
	if len(e.images.created) != 1 {
		t.Error("a refused upload made an image")
	}
}

// TestVolumeMetadata: the metadata routes (merge, replace, one key).
func TestVolumeMetadata(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 1, "metadata": map[string]string{"a": "1"}})
	p := e.demoPath("/volumes/" + id + "/metadata")
	if got := e.send("POST", p, e.demo, map[string]any{"metadata": map[string]string{"b": "2"}}).json(t, 200)["metadata"]; fmt.Sprint(got) != "map[a:1 b:2]" {
		t.Errorf("POST merges: %v", got)
	}
	if got := e.send("GET", p, e.demo, nil).json(t, 200)["metadata"]; fmt.Sprint(got) != "map[a:1 b:2]" {
		t.Errorf("GET: %v", got)
	}
	if got := e.send("PUT", p, e.demo, map[string]any{"metadata": map[string]string{"c": "3"}}).json(t, 200)["metadata"]; fmt.Sprint(got) != "map[c:3]" {
		t.Errorf("PUT replaces: %v", got)
	}
	if got := e.send("PUT", p+"/d", e.demo, map[string]any{"meta": map[string]string{"d": "4"}}).json(t, 200)["meta"]; fmt.Sprint(got) != "map[d:4]" {
		t.Errorf("PUT key: %v", got)
	}
	if got := e.send("GET", p+"/d", e.demo, nil).json(t, 200)["meta"]; fmt.Sprint(got) != "map[d:4]" {
		t.Errorf("GET key: %v", got)
	}
	if msg := e.send("PUT", p+"/d", e.demo, map[string]any{"meta": map[string]string{"e": "5"}}).fault(t, 400, "badRequest"); msg != "Request body and URI mismatch" {
		t.Errorf("mismatch: %q", msg)
	}
	if msg := e.send("PUT", p+"/d", e.demo, map[string]any{"meta": map[string]string{"d": "5", "e": "5"}}).fault(t, 400, "badRequest"); msg != "Request body contains too many items" {
		t.Errorf("too many: %q", msg)
	}
	e.send("DELETE", p+"/d", e.demo, nil).empty(t, 200)
	if msg := e.send("DELETE", p+"/d", e.demo, nil).fault(t, 404, "itemNotFound"); msg != "Volume "+id+" has no metadata with key d." {
		t.Errorf("delete a missing key: %q", msg)
	}
	if msg := e.send("GET", p+"/zz", e.demo, nil).fault(t, 404, "itemNotFound"); msg != "Volume "+id+" has no metadata with key zz." {
		t.Errorf("get a missing key: %q", msg)
	}
	if msg := e.send("GET", e.demoPath("/volumes/nope/metadata"), e.demo, nil).fault(t, 404, "itemNotFound"); msg != "Volume nope could not be found." {
		t.Errorf("unknown volume: %q", msg)
	}
	e.send("POST", e.demoPath("/volumes/"+id+"/action"), e.demo, map[string]any{"os-volume_upload_image": map[string]any{"image_name": "i"}}).json(t, 202)
	if msg := e.send("POST", p, e.demo, map[string]any{"metadata": map[string]string{"x": "1"}}).fault(t, 400, "badRequest"); msg != "Invalid volume: Updating volume metadata is not allowed for volumes in uploading status." {
		t.Errorf("while uploading: %q", msg)
	}
}
