package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestMicroversionChanges checks what the microversions up to 2.60 change
// in the server resource: extended attributes (2.3), host_status (2.16),
// required networks with auto and none (2.37), the embedded flavor (2.47)
// and the end of personality (2.57).
func TestMicroversionChanges(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	const hv = "OpenStack-API-Version"
	at := func(v string) []string { return []string{hv, "compute " + v} }
	post := func(token, ver string, server map[string]any) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{"server": server}, at(ver)...)
	}
	base := func(extra map[string]any) map[string]any {
		s := map[string]any{"name": "mv", "flavorRef": "1", "imageRef": imageID}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	show := func(id, token, ver string) map[string]any {
		var out struct {
			Server map[string]any `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, token, nil, at(ver)...).JSON(t, &out)
		return out.Server
	}

	// 2.37: networks is required; auto and none are accepted.
	msg := testtree.Fault(t, post(demo, "2.37", base(nil)), http.StatusBadRequest)
	if !strings.Contains(msg, "'networks' is a required property") {
		t.Errorf("2.37 without networks: %q", msg)
	}
	testtree.Fault(t, post(demo, "2.37", base(map[string]any{"networks": "some"})), http.StatusBadRequest)
	testtree.Fault(t, post(demo, "2.36", base(map[string]any{"networks": "auto"})), http.StatusBadRequest)
	ids := map[string]string{}
	for _, mode := range []string{"auto", "none"} {
		r := post(demo, "2.37", base(map[string]any{"networks": mode}))
		if r.Status != http.StatusAccepted {
			t.Fatalf("2.37 networks %s: %s", mode, r)
		}
		var out struct{ Server struct{ ID string } }
		r.JSON(t, &out)
		ids[mode] = out.Server.ID
	}
	sc := tr.Compute(demo)
	for mode, id := range ids {
		s := waitStatus(t, sc, id, "ACTIVE")
		n := len(s.Addresses)
		if (mode == "none") != (n == 0) {
			t.Errorf("networks %s: addresses %v", mode, s.Addresses)
		}
	}
	id := ids["auto"]

	// 2.47: the flavor is embedded.
	old := show(id, demo, "2.46")["flavor"].(map[string]any)
	if old["id"] != "1" || old["links"] == nil || old["original_name"] != nil {
		t.Errorf("flavor at 2.46: %v", old)
	}
	emb := show(id, demo, "2.47")["flavor"].(map[string]any)
	if emb["original_name"] != "m1.tiny" || emb["ram"] != 512.0 || emb["vcpus"] != 1.0 || emb["id"] != nil {
		t.Errorf("flavor at 2.47: %v", emb)
	}
	if _, ok := emb["extra_specs"]; ok {
		t.Error("a member sees extra_specs in the embedded flavor")
	}
	if _, ok := show(id, admin, "2.47")["flavor"].(map[string]any)["extra_specs"]; !ok {
		t.Error("an admin does not see extra_specs in the embedded flavor")
	}

	// 2.3 and 2.16: admin-only attributes.
	v21, v23 := show(id, admin, "2.1"), show(id, admin, "2.16")
	if _, ok := v21["OS-EXT-SRV-ATTR:reservation_id"]; ok {
		t.Error("2.1 shows 2.3's attributes")
	}
	if v23["OS-EXT-SRV-ATTR:hostname"] != "mv" || v23["OS-EXT-SRV-ATTR:launch_index"] != 0.0 || v23["host_status"] != "UP" {
		t.Errorf("2.16 admin view: %v", v23)
	}
	if _, ok := show(id, demo, "2.16")["host_status"]; ok {
		t.Error("a member sees host_status")
	}

	// 2.19 description and 2.52 tags on create.
	testtree.Fault(t, post(demo, "2.18", base(map[string]any{"description": "d"})), http.StatusBadRequest)
	testtree.Fault(t, post(demo, "2.51", base(map[string]any{"networks": "auto", "tags": []string{"a"}})), http.StatusBadRequest)
	testtree.Fault(t, post(demo, "2.52", base(map[string]any{"networks": "auto", "tags": []string{"a/b"}})), http.StatusBadRequest)
	r := post(demo, "2.52", base(map[string]any{"networks": "auto", "description": "my box", "tags": []string{"web", "prod"}}))
	if r.Status != http.StatusAccepted {
		t.Fatalf("create with description and tags: %s", r)
	}
	var made struct{ Server struct{ ID string } }
	r.JSON(t, &made)
	got := show(made.Server.ID, demo, "2.52")
	if got["description"] != "my box" {
		t.Errorf("description = %v", got["description"])
	}
	if tags, _ := got["tags"].([]any); len(tags) != 2 {
		t.Errorf("tags = %v", got["tags"])
	}
	if d := show(id, demo, "2.19")["description"]; d != nil {
		t.Errorf("a 2.37 create without description shows %v, want null", d)
	}

	// 2.57: personality is gone.
	pers := []map[string]any{{"path": "/etc/motd", "contents": "aGk="}}
	testtree.Fault(t, post(demo, "2.57", base(map[string]any{"networks": "auto", "personality": pers})), http.StatusBadRequest)
	if r := post(demo, "2.56", base(map[string]any{"networks": "auto", "personality": pers})); r.Status != http.StatusAccepted {
		t.Errorf("2.56 with personality: %s", r)
	}
}
