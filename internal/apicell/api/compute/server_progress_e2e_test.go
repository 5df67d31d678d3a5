package compute_test

import (
	"net/http"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerProgress: progress shows only at the statuses Nova's view
// shows it (ACTIVE, BUILD, REBUILD, RESIZE, VERIFY_RESIZE, MIGRATING), as
// 0; a SHUTOFF or PAUSED server has none, in show, detail and update.
func TestServerProgress(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	id := create(t, tr, demo, map[string]any{"name": "prog", "flavorRef": "1", "imageRef": imageID})
	waitIdle(t, tr, id, "ACTIVE")

	views := func() map[string]map[string]any {
		t.Helper()
		out := map[string]map[string]any{}
		var show struct {
			Server map[string]any `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, demo, nil).JSON(t, &show)
		out["show"] = show.Server
		for _, s := range listAll(t, tr, demo, "") {
			if s["id"] == id {
				out["detail"] = s
			}
		}
		var upd struct {
			Server map[string]any `json:"server"`
		}
		r := tr.Do(t, http.MethodPut, "/v2.1/servers/"+id, demo, map[string]any{"server": map[string]any{"name": "prog"}})
		if r.Status != http.StatusOK {
			t.Fatalf("update: %s", r)
		}
		r.JSON(t, &upd)
		out["update"] = upd.Server
		return out
	}
	check := func(status string, want bool) {
		t.Helper()
		for name, v := range views() {
			p, ok := v["progress"]
			if ok != want || (ok && p != 0.0) {
				t.Errorf("%s of a %s server: progress %v (present %v), want present %v and 0", name, status, p, ok, want)
			}
		}
	}
	check("ACTIVE", true)
	for _, c := range []struct{ action, status, back string }{{"os-stop", "SHUTOFF", "os-start"}, {"pause", "PAUSED", "unpause"}} {
		if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, map[string]any{c.action: nil}); r.Status != http.StatusAccepted {
			t.Fatalf("%s: %s", c.action, r)
		}
		waitIdle(t, tr, id, c.status)
		check(c.status, false)
		if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, map[string]any{c.back: nil}); r.Status != http.StatusAccepted {
			t.Fatalf("%s: %s", c.back, r)
		}
		waitIdle(t, tr, id, "ACTIVE")
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, map[string]any{"resize": map[string]any{"flavorRef": "2"}}); r.Status != http.StatusAccepted {
		t.Fatalf("resize: %s", r)
	}
	waitIdle(t, tr, id, "VERIFY_RESIZE")
	check("VERIFY_RESIZE", true)
}
