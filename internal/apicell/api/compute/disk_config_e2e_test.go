package compute_test

import (
	"net/http"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestDiskConfig: OS-DCF:diskConfig is stored and shown as Nova's
// auto_disk_config — given on create, rebuild, resize and update, or
// taken from the image's auto_disk_config property on create and rebuild
// (MANUAL on a resize that names none); AUTO is refused for an image that
// disables it, and nothing is written then.
func TestDiskConfig(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	autoImage := activeImage(t, tr, "auto-by-default", "auto_disk_config", "True")
	fixedImage := activeImage(t, tr, "fixed-disk", "auto_disk_config", "disabled")

	shown := func(id string) string {
		t.Helper()
		var out struct {
			Server map[string]any `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, demo, nil).JSON(t, &out)
		return out.Server["OS-DCF:diskConfig"].(string)
	}
	boot := func(server map[string]any) (string, string) {
		t.Helper()
		server["flavorRef"], server["name"] = "1", "dc"
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": server})
		if r.Status != http.StatusAccepted {
			t.Fatalf("create %v: %s", server, r)
		}
		var out struct {
			Server map[string]any `json:"server"`
		}
		r.JSON(t, &out)
		return out.Server["id"].(string), out.Server["OS-DCF:diskConfig"].(string)
	}
	for _, c := range []struct {
		image, asked, want string
	}{
		{imageID, "", "MANUAL"},
		{imageID, "AUTO", "AUTO"},
		{autoImage, "", "AUTO"},
		{autoImage, "MANUAL", "MANUAL"},
		{fixedImage, "", "MANUAL"},
		{fixedImage, "MANUAL", "MANUAL"},
	} {
		server := map[string]any{"imageRef": c.image}
		if c.asked != "" {
			server["OS-DCF:diskConfig"] = c.asked
		}
		id, answered := boot(server)
		if answered != c.want || shown(id) != c.want {
			t.Errorf("create from %s asking %q: answered %s, shown %s, want %s", c.image, c.asked, answered, shown(id), c.want)
		}
	}
	msg := testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "dc", "flavorRef": "1", "imageRef": fixedImage, "OS-DCF:diskConfig": "AUTO"}}), http.StatusBadRequest)
	if want := "Requested image " + fixedImage + " has automatic disk resize disabled."; msg != want {
		t.Errorf("AUTO on an image that disables it: %q, want %q", msg, want)
	}
	testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "dc", "flavorRef": "1", "imageRef": imageID, "OS-DCF:diskConfig": "auto"}}), http.StatusBadRequest)

	id, _ := boot(map[string]any{"imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	action := func(body map[string]any) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, body)
	}
	// Update.
	for _, want := range []string{"AUTO", "MANUAL", "AUTO"} {
		if r := tr.Do(t, http.MethodPut, "/v2.1/servers/"+id, demo, map[string]any{"server": map[string]any{"OS-DCF:diskConfig": want}}); r.Status != http.StatusOK {
			t.Fatalf("update to %s: %s", want, r)
		}
		if got := shown(id); got != want {
			t.Errorf("after an update to %s: %s", want, got)
		}
	}
	// Rebuild: the one given, or the new image's.
	for _, c := range []struct{ image, asked, want string }{
		{imageID, "", "MANUAL"}, {autoImage, "", "AUTO"}, {imageID, "AUTO", "AUTO"}, {fixedImage, "", "MANUAL"},
	} {
		body := map[string]any{"imageRef": c.image}
		if c.asked != "" {
			body["OS-DCF:diskConfig"] = c.asked
		}
		r := action(map[string]any{"rebuild": body})
		if r.Status != http.StatusAccepted {
			t.Fatalf("rebuild %v: %s", body, r)
		}
		var out struct {
			Server map[string]any `json:"server"`
		}
		r.JSON(t, &out)
		if out.Server["OS-DCF:diskConfig"] != c.want || shown(id) != c.want {
			t.Errorf("rebuild onto %s asking %q: answered %v, shown %s, want %s", c.image, c.asked, out.Server["OS-DCF:diskConfig"], shown(id), c.want)
		}
		waitStatus(t, sc, id, "ACTIVE")
	}
	if msg := testtree.Fault(t, action(map[string]any{"rebuild": map[string]any{"imageRef": fixedImage, "OS-DCF:diskConfig": "AUTO"}}), http.StatusBadRequest); msg != "Requested image "+fixedImage+" has automatic disk resize disabled." {
		t.Errorf("rebuild AUTO onto an image that disables it: %q", msg)
	}
	// Resize: the one given, MANUAL when none is (the server now runs an
	// image that disables AUTO, so go back to one that does not first).
	if r := action(map[string]any{"rebuild": map[string]any{"imageRef": imageID, "OS-DCF:diskConfig": "AUTO"}}); r.Status != http.StatusAccepted {
		t.Fatalf("rebuild: %s", r)
	}
	waitStatus(t, sc, id, "ACTIVE")
	if r := action(map[string]any{"resize": map[string]any{"flavorRef": "2"}}); r.Status != http.StatusAccepted {
		t.Fatalf("resize: %s", r)
	}
	if got := shown(id); got != "MANUAL" {
		t.Errorf("after a resize naming no diskConfig: %s, want MANUAL", got)
	}
	waitStatus(t, sc, id, "VERIFY_RESIZE")
	if r := action(map[string]any{"confirmResize": nil}); r.Status >= 300 {
		t.Fatalf("confirm: %s", r)
	}
	waitStatus(t, sc, id, "ACTIVE")
	if r := action(map[string]any{"resize": map[string]any{"flavorRef": "1", "OS-DCF:diskConfig": "AUTO"}}); r.Status != http.StatusAccepted {
		t.Fatalf("resize with AUTO: %s", r)
	}
	if got := shown(id); got != "AUTO" {
		t.Errorf("after a resize with AUTO: %s", got)
	}
	waitStatus(t, sc, id, "VERIFY_RESIZE")
	testtree.Fault(t, action(map[string]any{"resize": map[string]any{"flavorRef": "2", "OS-DCF:diskConfig": "SOMETIMES"}}), http.StatusBadRequest)
}
