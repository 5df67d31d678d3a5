package volume_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const (
	server1 = "00000000-0000-4000-8000-0000000000b1"
	server2 = "00000000-0000-4000-8000-0000000000b2"
)

var attachedAt = time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)

// attachIn makes the volume's cell say it is attached to server as the
// attachment att (status attached) at version.
func (e *volEnv) attachIn(volume, att, server, status string, version int64) {
	e.t.Helper()
	vs := "in-use"
	if status != "attached" {
		vs = status
	}
	e.cellSays([]wire.VolumeState{{ID: volume, Cell: cell1, Version: version, Status: vs, SizeGB: 1,
		Attachments: []wire.AttachmentState{{ID: att, InstanceUUID: server, Status: status, Device: "/dev/vdb", Mode: "rw",
			BDMUUID: "bdm-" + att, BootIndex: -1, AttachedAt: attachedAt}}}}, nil)
}

// TestVolumeViewAttachments: the volume view's attachments are the
// mirror's attached ones, in Cinder's shape (the volume's id as id,
// host_name null), with status and attach_status from the copy; one still
// attaching is not listed; a detach empties them.
func TestVolumeViewAttachments(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 1})
	e.attachIn(id, "att-1", server1, "attaching", 2)
	v := e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil).json(t, 200)["volume"].(map[string]any)
	if v["status"] != "attaching" || len(v["attachments"].([]any)) != 0 {
		t.Fatalf("attaching: status %v, attachments %v", v["status"], v["attachments"])
	}
	e.attachIn(id, "att-1", server1, "attached", 3)
	v = e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil).json(t, 200)["volume"].(map[string]any)
	atts := v["attachments"].([]any)
	if v["status"] != "in-use" || len(atts) != 1 {
		t.Fatalf("in use: status %v, attachments %v", v["status"], atts)
	}
	want := map[string]any{"server_id": server1, "attachment_id": "att-1", "attached_at": "2026-12-06T13:00:00.000000",
		"host_name": nil, "volume_id": id, "device": "/dev/vdb", "id": id}
	got := atts[0].(map[string]any)
	if len(got) != len(want) {
		t.Fatalf("attachment %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("attachment %s = %v, want %v", k, got[k], w)
		}
	}
	// The detailed list reads them for the page too.
	list := e.send("GET", e.demoPath("/volumes/detail"), e.demo, nil).json(t, 200)["volumes"].([]any)
	if len(list) != 1 || len(list[0].(map[string]any)["attachments"].([]any)) != 1 {
		t.Fatalf("detail list: %v", list)
	}
	// An attached volume is refused by delete, extend and upload (its
	// status already says in-use), and reset-state to in-use is allowed.
	del := e.send("DELETE", e.demoPath("/volumes/"+id), e.demo, nil).fault(t, 400, "badRequest")
	if !strings.Contains(del, "must not be migrating, attached") {
		t.Errorf("delete of an attached volume: %s", del)
	}
	if r := e.send("POST", e.adminPath("/volumes/"+id+"/action"), e.admin, map[string]any{"os-reset_status": map[string]any{"status": "in-use"}}); r.status != http.StatusAccepted {
		t.Errorf("reset-state to in-use of an attached volume: %d %s", r.status, r.body)
	}
	// Detached: none.
	e.cellSays([]wire.VolumeState{{ID: id, Cell: cell1, Version: 4, Status: "available", SizeGB: 1}}, nil)
	v = e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil).json(t, 200)["volume"].(map[string]any)
	if v["status"] != "available" || len(v["attachments"].([]any)) != 0 {
		t.Fatalf("detached: status %v, attachments %v", v["status"], v["attachments"])
	}
	msg := e.send("POST", e.adminPath("/volumes/"+id+"/action"), e.admin, map[string]any{"os-reset_status": map[string]any{"status": "in-use"}}).fault(t, 400, "badRequest")
	if msg != "Cannot reset-state to in-use because volume does not have any attachments." {
		t.Errorf("reset-state to in-use of a detached volume: %s", msg)
	}
}

// TestDeleteRefusesAttachmentsWhateverTheStatus: a volume whose status an
// admin reset to available while the mirror still has its attachment is
// refused by delete, extend and upload-to-image with Cinder's texts, and
// nothing is sent.
func TestDeleteRefusesAttachmentsWhateverTheStatus(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 1})
	e.cellSays([]wire.VolumeState{{ID: id, Cell: cell1, Version: 2, Status: "available", SizeGB: 1,
		Attachments: []wire.AttachmentState{{ID: "a", InstanceUUID: server1, Status: "attached", Device: "/dev/vdb", BootIndex: -1}}}}, nil)
	before := len(e.sent.all())
	if msg := e.send("DELETE", e.demoPath("/volumes/"+id), e.demo, nil).fault(t, 400, "badRequest"); !strings.HasPrefix(msg, "Invalid volume: Volume status must be available or error") {
		t.Errorf("delete: %s", msg)
	}
	act := func(body map[string]any) string {
		return e.send("POST", e.demoPath("/volumes/"+id+"/action"), e.demo, body).fault(t, 400, "badRequest")
	}
	if msg := act(map[string]any{"os-extend": map[string]any{"new_size": 2}}); !strings.Contains(msg, "status must be '{'status': 'available'}' to extend") {
		t.Errorf("extend: %s", msg)
	}
	if msg := act(map[string]any{"os-volume_upload_image": map[string]any{"image_name": "x"}}); msg != "Invalid volume: Volume "+id+" status must be available" {
		t.Errorf("upload: %s", msg)
	}
	if n := len(e.sent.all()); n != before {
		t.Errorf("%d messages sent for refused actions", n-before)
	}
	if v := e.volumeRow(id); v.Status != "available" {
		t.Errorf("status after the refusals: %s", v.Status)
	}
}

// TestAttachmentsAPI: GET /attachments, /attachments/detail and
// /attachments/{id} from 3.27 (404 below), Cinder's views and filters, a
// member sees its project's only, an admin all with all_tenants.
func TestAttachmentsAPI(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 1})
	e.attachIn(id, "att-1", server1, "attached", 2)
	v327 := []string{"OpenStack-API-Version", "volume 3.27"}
	v331 := []string{"OpenStack-API-Version", "volume 3.31"}

	// Below 3.27: Cinder's 404.
	if msg := e.send("GET", e.demoPath("/attachments"), e.demo, nil).fault(t, 404, "itemNotFound"); msg != "The resource could not be found." {
		t.Errorf("below 3.27: %s", msg)
	}
	list := e.send("GET", e.demoPath("/attachments"), e.demo, nil, v327...).json(t, 200)["attachments"].([]any)
	if len(list) != 1 {
		t.Fatalf("list: %v", list)
	}
	sum := list[0].(map[string]any)
	if len(sum) != 4 || sum["id"] != "att-1" || sum["status"] != "attached" || sum["instance"] != server1 || sum["volume_id"] != id {
		t.Errorf("summary %v", sum)
	}
	det := e.send("GET", e.demoPath("/attachments/detail"), e.demo, nil, v327...).json(t, 200)["attachments"].([]any)[0].(map[string]any)
	if len(det) != 8 || det["attached_at"] != "2026-12-06T13:00:00.000000" || det["detached_at"] != "" || det["attach_mode"] != "rw" ||
		det["connection_info"] != nil {
		t.Errorf("detail %v", det)
	}
	one := e.send("GET", e.demoPath("/attachments/att-1"), e.demo, nil, v327...).json(t, 200)["attachment"].(map[string]any)
	if one["id"] != "att-1" || one["attach_mode"] != "rw" {
		t.Errorf("show %v", one)
	}
	if msg := e.send("GET", e.demoPath("/attachments/nope"), e.demo, nil, v327...).fault(t, 404, "itemNotFound"); msg != "Volume attachment could not be found with filter: attachment_id = nope." {
		t.Errorf("show unknown: %s", msg)
	}
	// Filters.
	for q, n := range map[string]int{"?volume_id=" + id: 1, "?volume_id=other": 0, "?instance_id=" + server1: 1, "?instance_id=" + server2: 0,
		"?status=attached": 1, "?attach_status=detaching": 0, "?limit=1": 1, "?offset=1": 0} {
		if got := e.send("GET", e.demoPath("/attachments"+q), e.demo, nil, v327...).json(t, 200)["attachments"].([]any); len(got) != n {
			t.Errorf("%s: %d attachments, want %d", q, len(got), n)
		}
	}
	// An unknown filter: dropped before 3.31, a 400 from it.
	if got := e.send("GET", e.demoPath("/attachments?foo=1"), e.demo, nil, v327...).json(t, 200)["attachments"].([]any); len(got) != 1 {
		t.Errorf("an unknown filter at 3.27 filtered: %v", got)
	}
	if msg := e.send("GET", e.demoPath("/attachments?foo=1"), e.demo, nil, v331...).fault(t, 400, "badRequest"); msg != "Invalid filters foo are found in query options." {
		t.Errorf("unknown filter at 3.31: %s", msg)
	}
	// The admin's project has none; all_tenants lists the demo's.
	if got := e.send("GET", e.adminPath("/attachments"), e.admin, nil, v327...).json(t, 200)["attachments"].([]any); len(got) != 0 {
		t.Errorf("admin's own project: %v", got)
	}
	if got := e.send("GET", e.adminPath("/attachments?all_tenants=1"), e.admin, nil, v327...).json(t, 200)["attachments"].([]any); len(got) != 1 {
		t.Errorf("admin all_tenants: %v", got)
	}
	// Without the cells to call, POST, PUT, DELETE and os-complete are
	// not served (no route: 404).
	for _, m := range []struct{ method, path string }{{"POST", "/attachments"}, {"PUT", "/attachments/att-1"},
		{"DELETE", "/attachments/att-1"}, {"POST", "/attachments/att-1/action"}} {
		if r := e.send(m.method, e.demoPath(m.path), e.demo, map[string]any{}, v327...); r.status != http.StatusNotFound {
			t.Errorf("%s %s: %d, want 404", m.method, m.path, r.status)
		}
	}
}
