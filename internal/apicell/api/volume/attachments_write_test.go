package volume_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// fakeCell plays the volumes' cells for attachment_write: answer says
// what the cell answers (nil: the call is a test failure).
type fakeCell struct {
	mu     sync.Mutex
	calls  []wire.AttachmentWrite
	answer func(*wire.AttachmentWrite) (wire.VolumeState, error)
	down   []string
}

func (f *fakeCell) Call(_ context.Context, target, method, _ string, payload, out any) error {
	f.mu.Lock()
	req := *payload.(*wire.AttachmentWrite)
	f.calls = append(f.calls, req)
	answer := f.answer
	f.mu.Unlock()
	if method != wire.MethodAttachmentWrite || target != cell1 || answer == nil {
		return wire.Errorf(wire.CodeInternal, "unexpected call %s to %s", method, target)
	}
	st, err := answer(&req)
	if err != nil {
		return err
	}
	b, err := json.Marshal(wire.AttachmentWritten{Volume: st})
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

func (f *fakeCell) Down(context.Context) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down, nil
}

func (f *fakeCell) made() []wire.AttachmentWrite {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]wire.AttachmentWrite(nil), f.calls...)
}

func newAttEnv(t *testing.T) (*volEnv, *fakeCell) {
	t.Helper()
	cell := &fakeCell{}
	e := newVolEnvWith(t, dbtest.Open(t, "sqlite"), func(c *volume.Config) { c.Calls, c.DownCells = cell, cell })
	return e, cell
}

const (
	consumerID = "6f1f0a3e-6a55-4b7e-9d3a-1c2b3d4e5f60"
	unknownVol = "0b6f3c1e-2d4a-4c8e-9f10-2a3b4c5d6e7f"
)

// attachmentRows counts the mirror's attachments.
func (e *volEnv) attachmentRows() int {
	e.t.Helper()
	var n int
	if err := e.d.QueryRow(context.Background(), `SELECT COUNT(*) FROM volume_attachments`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestAttachmentWritesRefused: Cinder's 404 below 3.27 (and os-complete
// below 3.44), its schema's 400s (mode below 3.54 among them), the
// volume or attachment not found, the reserve's 400 on the copy's status,
// and the 409 of an attachment the Compute API made: no cell is asked and
// nothing is written.
func TestAttachmentWritesRefused(t *testing.T) {
	e, cell := newAttEnv(t)
	vol := e.available(map[string]any{"size": 1})
	used := e.available(map[string]any{"size": 1})
	e.attachIn(used, "att-nova", server1, "attached", 2)
	failed := e.createVolume(map[string]any{"size": 1})
	e.cellSays([]wire.VolumeState{{ID: failed, Cell: cell1, Version: 1, Status: "error", SizeGB: 1}}, nil)
	adminVol := e.send("POST", e.adminPath("/volumes"), e.admin, map[string]any{"volume": map[string]any{"size": 1}}).json(t, 202)["volume"].(map[string]any)["id"].(string)
	e.cellSays([]wire.VolumeState{{ID: adminVol, Cell: cell1, Version: 1, Status: "available", SizeGB: 1}}, nil)
	before, rows := e.fingerprint(), e.attachmentRows()

	at := func(v string) []string { return []string{"OpenStack-API-Version", "volume " + v} }
	create := func(att any) map[string]any { return map[string]any{"attachment": att} }
	for _, c := range []struct {
		what, method, path, version string
		body                        any
		status                      int
		msg                         string
	}{
		{"below 3.27", "POST", "/attachments", "3.26", create(map[string]any{"volume_uuid": vol}), 404, "The resource could not be found."},
		{"no attachment", "POST", "/attachments", "3.27", map[string]any{}, 400, "'attachment' is a required property"},
		{"no volume", "POST", "/attachments", "3.27", create(map[string]any{}), 400,
			"Invalid input for field/attribute attachment. Value: {}. 'volume_uuid' is a required property"},
		{"a volume that is no uuid", "POST", "/attachments", "3.27", create(map[string]any{"volume_uuid": "abc"}), 400,
			"Invalid input for field/attribute volume_uuid. Value: abc. 'abc' is not a 'uuid'"},
		{"an instance that is no uuid", "POST", "/attachments", "3.27", create(map[string]any{"volume_uuid": vol, "instance_uuid": ""}), 400,
			"Invalid input for field/attribute instance_uuid. Value: . '' is not a 'uuid'"},
		{"mode below 3.54", "POST", "/attachments", "3.53", create(map[string]any{"volume_uuid": vol, "mode": "ro"}), 400,
			"Invalid input for field/attribute attachment. Value: {'mode': 'ro', 'volume_uuid': '" + vol + "'}. Additional properties are not allowed ('mode' was unexpected)"},
		{"a mode of none", "POST", "/attachments", "3.54", create(map[string]any{"volume_uuid": vol, "mode": "rx"}), 400,
			"Invalid input for field/attribute mode. Value: rx. 'rx' is not one of ['rw', 'ro']"},
		{"a connector that is no object", "POST", "/attachments", "3.27", create(map[string]any{"volume_uuid": vol, "connector": 1}), 400,
			"Invalid input for field/attribute connector. Value: 1. 1 is not of type 'object', 'null'"},
		{"an unknown volume", "POST", "/attachments", "3.27", create(map[string]any{"volume_uuid": unknownVol}), 404,
			"Volume " + unknownVol + " could not be found."},
		{"another project's volume", "POST", "/attachments", "3.27", create(map[string]any{"volume_uuid": adminVol}), 404,
			"Volume " + adminVol + " could not be found."},
		{"a volume in use", "POST", "/attachments", "3.27", create(map[string]any{"volume_uuid": used, "instance_uuid": consumerID}), 400,
			"Invalid volume: Volume " + used + " status must be available or downloading to reserve, but the current status is in-use."},
		{"a volume in error", "POST", "/attachments", "3.27", create(map[string]any{"volume_uuid": failed}), 400,
			"Invalid volume: Volume attachments can not be created if the volume is in an error state. The Volume " + failed + " currently has a status of: error "},
		{"an empty connector", "PUT", "/attachments/att-nova", "3.27", create(map[string]any{"connector": map[string]any{}}), 400,
			"Invalid input for field/attribute connector. Value: {}. {} does not have enough properties"},
		{"an update of an unknown attachment", "PUT", "/attachments/nope", "3.27", create(map[string]any{"connector": map[string]any{"host": "h"}}), 404,
			"Volume attachment could not be found with filter: attachment_id = nope."},
		{"an update of the Compute API's", "PUT", "/attachments/att-nova", "3.27", create(map[string]any{"connector": map[string]any{"host": "h"}}), 409,
			"Detach volume from instance " + server1 + " using the Compute API"},
		{"a delete of the Compute API's", "DELETE", "/attachments/att-nova", "3.27", nil, 409,
			"Detach volume from instance " + server1 + " using the Compute API"},
		{"a delete of an unknown attachment", "DELETE", "/attachments/nope", "3.27", nil, 404,
			"Volume attachment could not be found with filter: attachment_id = nope."},
		{"os-complete below 3.44", "POST", "/attachments/att-nova/action", "3.43", map[string]any{"os-complete": nil}, 404,
			"The resource could not be found."},
		{"an unknown action", "POST", "/attachments/att-nova/action", "3.44", map[string]any{"os-foo": nil}, 400,
			"There is no such action: os-foo"},
		{"os-complete with more", "POST", "/attachments/att-nova/action", "3.44", map[string]any{"os-complete": nil, "x": 1}, 400,
			"Additional properties are not allowed ('x' was unexpected)"},
		{"os-complete of the Compute API's", "POST", "/attachments/att-nova/action", "3.44", map[string]any{"os-complete": nil}, 409,
			"Detach volume from instance " + server1 + " using the Compute API"},
	} {
		r := e.send(c.method, e.demoPath(c.path), e.demo, c.body, at(c.version)...)
		if r.status != c.status || !strings.Contains(string(r.body), c.msg) {
			t.Errorf("%s: %d %s, want %d %q", c.what, r.status, r.body, c.status, c.msg)
		}
	}
	if n := len(cell.made()); n != 0 {
		t.Errorf("%d calls to the cell for refused requests", n)
	}
	if after := e.fingerprint(); after != before || e.attachmentRows() != rows {
		t.Errorf("refusals wrote:\n%s\nwant\n%s", after, before)
	}
}

// TestAttachmentWritesThroughTheCell: the API asks the volume's cell and
// applies its answer to the copy before it answers (the next read shows
// it); the cell's refusals are Cinder's 400 and 409; a cell known to be
// down is a 503 with no call, and so is a call it does not answer.
func TestAttachmentWritesThroughTheCell(t *testing.T) {
	e, cell := newAttEnv(t)
	vol := e.available(map[string]any{"size": 1})
	v327 := []string{"OpenStack-API-Version", "volume 3.27"}
	var version int64 = 1
	cell.answer = func(req *wire.AttachmentWrite) (wire.VolumeState, error) {
		version++
		switch req.Op {
		case wire.AttachmentCreate:
			return wire.VolumeState{ID: vol, Cell: cell1, Version: version, Status: "reserved", SizeGB: 1,
				Attachments: []wire.AttachmentState{{ID: req.AttachmentID, InstanceUUID: req.InstanceUUID, Status: "reserved",
					Mode: "null", BootIndex: -1, ConnectionInfo: json.RawMessage(`{}`)}}}, nil
		case wire.AttachmentDelete:
			return wire.VolumeState{ID: vol, Cell: cell1, Version: version, Status: "available", SizeGB: 1}, nil
		}
		return wire.VolumeState{}, wire.Errorf(wire.CodeInternal, "unexpected op %s", req.Op)
	}
	att := e.send("POST", e.demoPath("/attachments"), e.demo, map[string]any{"attachment": map[string]any{"volume_uuid": vol,
		"instance_uuid": consumerID}}, v327...).json(t, 200)["attachment"].(map[string]any)
	id, _ := att["id"].(string)
	ci, _ := att["connection_info"].(map[string]any)
	if att["status"] != "reserved" || att["instance"] != consumerID || att["attach_mode"] != "null" || ci == nil || len(ci) != 0 ||
		att["attached_at"] != "" || att["detached_at"] != "" || len(att) != 8 {
		t.Errorf("created %v", att)
	}
	calls := cell.made()
	if len(calls) != 1 || calls[0].Op != wire.AttachmentCreate || calls[0].AttachmentID != id || calls[0].VolumeID != vol ||
		calls[0].InstanceUUID != consumerID || calls[0].Mode != "" || calls[0].Multiattach || calls[0].ReadOnly {
		t.Errorf("calls %+v", calls)
	}
	if v := e.volumeRow(vol); v.Status != "reserved" || v.Version != 2 {
		t.Errorf("the copy after the create: %s at %d, want reserved at 2", v.Status, v.Version)
	}
	got := e.send("GET", e.demoPath("/attachments/"+id), e.demo, nil, v327...).json(t, 200)["attachment"].(map[string]any)
	if got["status"] != "reserved" || got["connection_info"] == nil {
		t.Errorf("read back %v", got)
	}

	// The cell's refusals.
	for _, c := range []struct {
		err    error
		status int
		msg    string
	}{
		{wire.Errorf(wire.CodeInvalid, "Volume %s status must be available or downloading to reserve, but the current status is in-use.", vol), 400,
			"Invalid volume: Volume " + vol + " status must be available or downloading to reserve, but the current status is in-use."},
		{wire.Errorf(wire.CodeConflict, "duplicate connectors detected on volume %s", vol), 409,
			"Resource conflict: duplicate connectors detected on volume " + vol},
		{wire.Errorf(wire.CodeNotFound, "attachment %s is not in the cell", id), 404,
			"Volume attachment could not be found with filter: attachment_id = " + id + "."},
		{wire.Errorf(wire.CodeTimeout, "no answer"), 503, "is not responding; try again later."},
	} {
		cell.answer = func(*wire.AttachmentWrite) (wire.VolumeState, error) { return wire.VolumeState{}, c.err }
		r := e.send("PUT", e.demoPath("/attachments/"+id), e.demo, map[string]any{"attachment": map[string]any{"connector": map[string]any{"host": "h"}}}, v327...)
		if r.status != c.status || !strings.Contains(string(r.body), c.msg) {
			t.Errorf("cell says %v: %d %s, want %d %q", c.err, r.status, r.body, c.status, c.msg)
		}
	}
	if v := e.volumeRow(vol); v.Status != "reserved" || v.Version != 2 {
		t.Errorf("the copy after the refusals: %s at %d", v.Status, v.Version)
	}

	// The cell down: a 503 and no call.
	cell.mu.Lock()
	cell.down = []string{cell1}
	cell.mu.Unlock()
	n := len(cell.made())
	r := e.send("DELETE", e.demoPath("/attachments/"+id), e.demo, nil, v327...)
	if r.status != 503 || !strings.Contains(string(r.body), `"serviceUnavailable"`) || len(cell.made()) != n {
		t.Errorf("delete while the cell is down: %d %s, %d calls", r.status, r.body, len(cell.made())-n)
	}
	cell.mu.Lock()
	cell.down = nil
	cell.mu.Unlock()

	// Delete: the attachments left (none), the copy available.
	cell.answer = func(req *wire.AttachmentWrite) (wire.VolumeState, error) {
		return wire.VolumeState{ID: vol, Cell: cell1, Version: 3, Status: "available", SizeGB: 1}, nil
	}
	left := e.send("DELETE", e.demoPath("/attachments/"+id), e.demo, nil, v327...).json(t, 200)
	if l, ok := left["attachments"].([]any); !ok || len(l) != 0 || len(left) != 1 {
		t.Errorf("delete answered %v", left)
	}
	if v := e.volumeRow(vol); v.Status != "available" || e.attachmentRows() != 0 {
		t.Errorf("the copy after the delete: %s, %d attachments", v.Status, e.attachmentRows())
	}
}
