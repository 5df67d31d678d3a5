package volume_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// fingerprint is every row of the volume tables and the quota locks, and
// what was sent and made.
func (e *volEnv) fingerprint() string {
	e.t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT id, name, description, size_gb, status, bootable, readonly, cell_path, version, deleted, updated_at FROM volumes ORDER BY id`,
		`SELECT volume_id, meta_key, meta_value FROM volume_metadata ORDER BY volume_id, meta_key`,
		`SELECT id, name, description, status, cell_path, version, deleted, updated_at FROM volume_snapshots ORDER BY id`,
		`SELECT snapshot_id, meta_key, meta_value FROM snapshot_metadata ORDER BY snapshot_id, meta_key`,
		`SELECT project_id, checks FROM quota_locks ORDER BY project_id`,
	} {
		rows, err := e.d.Query(context.Background(), q)
		if err != nil {
			e.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				e.t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	fmt.Fprintln(&b, len(e.sent.all()), len(e.images.created))
	return b.String()
}

// TestNothingWrittenOnRefusal: every route's 4xx leaves the database,
// the outbox and the image store as they were.
func TestNothingWrittenOnRefusal(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	vol := e.available(map[string]any{"size": 1, "metadata": map[string]string{"a": "1"}})
	creating := e.createVolume(map[string]any{"size": 1})
	snap := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": map[string]any{"volume_id": vol}}).json(t, 202)["snapshot"].(map[string]any)["id"].(string)
	e.cellSays(nil, []wire.SnapshotState{{ID: snap, VolumeID: vol, Cell: cell1, Version: 1, Status: "creating", SizeGB: 1}})
	adminVol := e.send("POST", e.adminPath("/volumes"), e.admin, map[string]any{"volume": map[string]any{"size": 1}}).json(t, 202)["volume"].(map[string]any)["id"].(string)
	before := e.fingerprint()
	v, s := "/volumes/"+vol, "/snapshots/"+snap
	for _, tc := range []struct {
		method, path string
		admin        bool
		body         any
		status       int
	}{
		{"POST", "/volumes", false, map[string]any{"volume": map[string]any{"size": -1}}, 400},
		{"POST", "/volumes", false, map[string]any{"volume": map[string]any{"size": 2000}}, 413},
		{"POST", "/volumes", false, map[string]any{"volume": map[string]any{"size": 1, "volume_type": "nope"}}, 404},
		{"PUT", v, false, map[string]any{"volume": map[string]any{"size": 2}}, 400},
		{"PUT", "/volumes/" + adminVol, false, map[string]any{"volume": map[string]any{"name": "x"}}, 404},
		{"DELETE", v, false, nil, 400},
		{"DELETE", "/volumes/" + creating, false, nil, 400},
		{"POST", v + "/action", false, map[string]any{"os-extend": map[string]any{"new_size": 1}}, 400},
		{"POST", v + "/action", false, map[string]any{"os-extend": map[string]any{"new_size": 5000}}, 413},
		{"POST", "/volumes/" + creating + "/action", false, map[string]any{"os-extend": map[string]any{"new_size": 5}}, 400},
		{"POST", v + "/action", false, map[string]any{"os-set_bootable": map[string]any{"bootable": "x"}}, 400},
		{"POST", "/volumes/" + creating + "/action", false, map[string]any{"os-update_readonly_flag": map[string]any{"readonly": true}}, 400},
		{"POST", v + "/action", false, map[string]any{"os-reset_status": map[string]any{"status": "error"}}, 403},
		{"POST", v + "/action", true, map[string]any{"os-reset_status": map[string]any{"status": "deleting"}}, 400},
		{"POST", "/volumes/" + creating + "/action", false, map[string]any{"os-volume_upload_image": map[string]any{"image_name": "i"}}, 400},
		{"POST", v + "/action", false, map[string]any{"os-volume_upload_image": map[string]any{"image_name": "i", "disk_format": "iso"}}, 400},
		{"POST", v + "/action", false, map[string]any{"os-nothing": map[string]any{}}, 400},
		{"PUT", v + "/metadata/a", false, map[string]any{"meta": map[string]string{"b": "1"}}, 400},
		{"DELETE", v + "/metadata/zz", false, nil, 404},
		{"POST", v + "/metadata", false, map[string]any{"metadata": map[string]string{"bad/key": "1"}}, 400},
		{"POST", "/snapshots", false, map[string]any{"snapshot": map[string]any{"volume_id": creating}}, 400},
		{"PUT", s, false, map[string]any{"snapshot": map[string]any{"size": 1}}, 400},
		{"DELETE", s, false, nil, 400},
		{"POST", s + "/action", true, map[string]any{"os-reset_status": map[string]any{"status": "nope"}}, 400},
		{"POST", s + "/action", false, map[string]any{"os-force_delete": map[string]any{}}, 403},
		{"DELETE", s + "/metadata/zz", false, nil, 404},
	} {
		token, path := e.demo, e.demoPath(tc.path)
		if tc.admin {
			token, path = e.admin, e.adminPath(tc.path)
		}
		if r := e.send(tc.method, path, token, tc.body); r.status != tc.status {
			t.Errorf("%s %s %v: %d, want %d: %s", tc.method, tc.path, tc.body, r.status, tc.status, r.body)
		}
	}
	if after := e.fingerprint(); after != before {
		t.Errorf("a refusal wrote:\nbefore\n%s\nafter\n%s", before, after)
	}
}

// TestSendFailureWritesNothing: the copy's row (or status) and the
// message are one transaction: when the send fails halfway, the answer is
// a 500 and nothing of the request is left; a retry then works.
func TestSendFailureWritesNothing(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	vol := e.available(map[string]any{"size": 1})
	before := e.fingerprint()
	e.sent.mu.Lock()
	e.sent.fail = fmt.Errorf("outbox unavailable")
	e.sent.mu.Unlock()
	for _, tc := range []struct {
		method, path string
		body         any
	}{
		{"POST", "/volumes", map[string]any{"volume": map[string]any{"size": 1}}},
		{"DELETE", "/volumes/" + vol, nil},
		{"POST", "/volumes/" + vol + "/action", map[string]any{"os-extend": map[string]any{"new_size": 2}}},
		{"POST", "/volumes/" + vol + "/action", map[string]any{"os-volume_upload_image": map[string]any{"image_name": "i"}}},
		{"POST", "/snapshots", map[string]any{"snapshot": map[string]any{"volume_id": vol}}},
	} {
		r := e.send(tc.method, e.demoPath(tc.path), e.demo, tc.body)
		if msg := r.fault(t, 500, "computeFault"); !strings.HasPrefix(msg, "The server has either erred") {
			t.Errorf("%s %s: %q", tc.method, tc.path, msg)
		}
	}
	if after := e.fingerprint(); after != before {
		t.Errorf("a failed send left:\nbefore\n%s\nafter\n%s", before, after)
	}
	e.sent.mu.Lock()
	e.sent.fail = nil
	e.sent.mu.Unlock()
	e.send("POST", e.demoPath("/volumes/"+vol+"/action"), e.demo, map[string]any{"os-extend": map[string]any{"new_size": 2}}).empty(t, 202)
}
