package testtree_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestVolumesProxyAPIs: Nova's proxy APIs os-volumes and os-snapshots (up
// to 2.35), as tempest's compute volume tests drive them at 2.1: a volume
// made through the proxy is a Block Storage volume (it becomes available
// in a cell and Cinder lists it), shown in Nova's view (displayName,
// availabilityZone, attachments [{}], metadata); a snapshot of it through
// os-snapshots; both deleted (then Nova's 404 texts); Nova's schema
// refusals; Cinder's refusal of a size 0 in Nova's words; limit and
// offset; 404 from 2.36.
func TestVolumesProxyAPIs(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 1})
	do := func(method, path string, body any, headers ...string) *testtree.Response {
		t.Helper()
		return tr.Do(t, method, path, adminP, body, headers...)
	}
	r := do(http.MethodPost, "/v2.1/os-volumes", map[string]any{"volume": map[string]any{"size": "1", "display_name": "pv",
		"display_description": "proxied", "metadata": map[string]any{"a": "b"}}})
	if r.Status != http.StatusOK {
		t.Fatalf("create through os-volumes: %s", r)
	}
	v := r.Map(t)["volume"].(map[string]any)
	id, _ := v["id"].(string)
	if v["displayName"] != "pv" || v["displayDescription"] != "proxied" || v["size"] != float64(1) ||
		v["metadata"].(map[string]any)["a"] != "b" || v["volumeType"] != "__DEFAULT__" || v["snapshotId"] != nil {
		t.Errorf("the created volume's view: %v", v)
	}
	if loc := r.Header.Get("Location"); !strings.HasSuffix(loc, "/v2.1/os-volumes/"+id) {
		t.Errorf("Location %q", loc)
	}
	testpoll.Eventually(t, 30*time.Second, "the proxied volume available", func() (bool, string) {
		r := do(http.MethodGet, "/v2.1/os-volumes/"+id, nil)
		v, _ := r.Map(t)["volume"].(map[string]any)
		return r.Status == 200 && v["status"] == "available", r.String()
	})
	v = do(http.MethodGet, "/v2.1/os-volumes/"+id, nil).Map(t)["volume"].(map[string]any)
	if atts, _ := v["attachments"].([]any); len(atts) != 1 || len(atts[0].(map[string]any)) != 0 {
		t.Errorf("an unattached volume's attachments: %v, want [{}]", v["attachments"])
	}
	if v["availabilityZone"] != "nova" || v["createdAt"] == nil {
		t.Errorf("view: %v", v)
	}
	if r := do(http.MethodGet, "/volume/v3/p/volumes/"+id, nil); r.Status != 200 {
		t.Errorf("Cinder does not have the proxied volume: %s", r)
	}
	for _, path := range []string{"/v2.1/os-volumes", "/v2.1/os-volumes/detail"} {
		list := do(http.MethodGet, path, nil).Map(t)["volumes"].([]any)
		if len(list) != 1 || list[0].(map[string]any)["id"] != id {
			t.Errorf("%s: %v", path, list)
		}
	}
	if list := do(http.MethodGet, "/v2.1/os-volumes?offset=1", nil).Map(t)["volumes"].([]any); len(list) != 0 {
		t.Errorf("offset 1 of one volume: %v", list)
	}

	r = do(http.MethodPost, "/v2.1/os-snapshots", map[string]any{"snapshot": map[string]any{"volume_id": id, "display_name": "ps", "force": "true"}})
	if r.Status != http.StatusOK {
		t.Fatalf("snapshot through os-snapshots: %s", r)
	}
	s := r.Map(t)["snapshot"].(map[string]any)
	sid, _ := s["id"].(string)
	if s["volumeId"] != id || s["displayName"] != "ps" || s["size"] != float64(1) {
		t.Errorf("the snapshot's view: %v", s)
	}
	testpoll.Eventually(t, 30*time.Second, "the proxied snapshot available", func() (bool, string) {
		r := do(http.MethodGet, "/v2.1/os-snapshots/"+sid, nil)
		s, _ := r.Map(t)["snapshot"].(map[string]any)
		return r.Status == 200 && s["status"] == "available", r.String()
	})
	if list := do(http.MethodGet, "/v2.1/os-snapshots/detail", nil).Map(t)["snapshots"].([]any); len(list) != 1 {
		t.Errorf("os-snapshots/detail: %v", list)
	}

	for _, tc := range []struct {
		name, path string
		body       map[string]any
		status     int
		prefix     string
	}{
		{"no size", "/v2.1/os-volumes", map[string]any{"volume": map[string]any{"display_name": "x"}}, 400, "Invalid input for field/attribute volume. Value: {'display_name': 'x'}. 'size' is a required property"},
		{"size not digits", "/v2.1/os-volumes", map[string]any{"volume": map[string]any{"size": "one"}}, 400, "Invalid input for field/attribute size. Value: one. 'one' does not match '^[0-9]+$'"},
		{"unknown field", "/v2.1/os-volumes", map[string]any{"volume": map[string]any{"size": 1, "name": "x"}}, 400, "Invalid input for field/attribute volume. Value: {'name': 'x', 'size': 1}. Additional properties are not allowed ('name' was unexpected)"},
		{"size 0 (Cinder's refusal)", "/v2.1/os-volumes", map[string]any{"volume": map[string]any{"size": "0"}}, 400, "Invalid input received: "},
		{"snapshot of no volume", "/v2.1/os-snapshots", map[string]any{"snapshot": map[string]any{"volume_id": "00000000-0000-4000-8000-000000000000"}}, 404, "Volume 00000000-0000-4000-8000-000000000000 could not be found."},
		{"snapshot without force of a volume with none", "/v2.1/os-snapshots", map[string]any{"snapshot": map[string]any{}}, 400, "Invalid input for field/attribute snapshot. Value: {}. 'volume_id' is a required property"},
	} {
		r := do(http.MethodPost, tc.path, tc.body)
		var f map[string]map[string]any
		r.JSON(t, &f)
		msg := ""
		for _, v := range f {
			msg, _ = v["message"].(string)
		}
		if r.Status != tc.status || !strings.HasPrefix(msg, tc.prefix) {
			t.Errorf("%s: %s, want %d %q", tc.name, r, tc.status, tc.prefix)
		}
	}
	if r := do(http.MethodGet, "/v2.1/os-volumes", nil, "OpenStack-API-Version", "compute 2.36"); r.Status != http.StatusNotFound {
		t.Errorf("os-volumes at 2.36: %s, want 404", r)
	}

	if r := do(http.MethodDelete, "/v2.1/os-snapshots/"+sid, nil); r.Status != http.StatusAccepted {
		t.Fatalf("delete the snapshot: %s", r)
	}
	testpoll.Eventually(t, 30*time.Second, "the snapshot gone", func() (bool, string) {
		r := do(http.MethodGet, "/v2.1/os-snapshots/"+sid, nil)
		return r.Status == 404 && strings.Contains(string(r.Body), "Snapshot "+sid+" could not be found."), r.String()
	})
	if r := do(http.MethodDelete, "/v2.1/os-volumes/"+id, nil); r.Status != http.StatusAccepted {
		t.Fatalf("delete the volume: %s", r)
	}
	testpoll.Eventually(t, 30*time.Second, "the volume gone", func() (bool, string) {
		r := do(http.MethodGet, "/v2.1/os-volumes/"+id, nil)
		return r.Status == 404 && strings.Contains(string(r.Body), "Volume "+id+" could not be found."), r.String()
	})
}
