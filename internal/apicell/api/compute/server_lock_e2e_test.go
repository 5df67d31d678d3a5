package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerLock locks and unlocks with gophercloud: a locked server
// refuses actions, metadata changes and delete to its project with Nova's
// 409, admins are not held by it, an admin's lock needs an admin to
// unlock, and locked shows in the view from 2.9.
func TestServerLock(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	adm := tr.Compute(admin)
	id := create(t, tr, demo, map[string]any{"name": "locky", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")

	locked := func(token string) any {
		t.Helper()
		var out struct {
			Server map[string]any `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, token, nil, atVersion("2.9")...).JSON(t, &out)
		return out.Server["locked"]
	}
	if l := locked(demo); l != false {
		t.Errorf("locked at 2.9 = %#v, want false", l)
	}
	if s, _ := servers.Get(ctx, sc, id).Extract(); s.Locked != nil {
		t.Errorf("locked shown at 2.1: %v", *s.Locked)
	}

	if err := servers.Lock(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatalf("lock: %v", err)
	}
	if err := servers.Lock(ctx, sc, id).ExtractErr(); err != nil {
		t.Errorf("lock again: %v", err)
	}
	if l := locked(demo); l != true {
		t.Errorf("locked = %#v after lock", l)
	}
	// Nova's lock (2.1–2.72) takes any value.
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, `{"lock": {"whatever": 1}}`); r.Status != http.StatusAccepted {
		t.Errorf("lock with a value: %s", r)
	}
	// Even a 70 KB locked_reason at 2.69: Nova's schema.lock for 2.1–2.72
	// is {"lock": {}}, and locked_reason (at most 255) is 2.73's
	// (TestLockReason). The value is not kept, so nothing of it shows; a
	// body over the request limit is a 413.
	long := map[string]any{"lock": map[string]any{"locked_reason": strings.Repeat("r", 70<<10)}}
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, long, atVersion("2.69")...); r.Status != http.StatusAccepted {
		t.Errorf("lock with a 70 KB reason at 2.69: %s", r)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, demo, nil, atVersion("2.69")...); strings.Contains(string(r.Body), "rrrr") {
		t.Errorf("the server shows the lock's reason: %.300s", r.Body)
	}
	huge := map[string]any{"lock": map[string]any{"locked_reason": strings.Repeat("r", 120<<10)}}
	testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, huge), http.StatusRequestEntityTooLarge)

	isLocked := "Instance " + id + " is locked"
	act := func(body string) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, body)
	}
	for _, body := range []string{
		`{"os-stop": null}`, `{"reboot": {"type": "HARD"}}`, `{"pause": null}`, `{"suspend": null}`, `{"rescue": null}`,
		`{"shelve": null}`, `{"resize": {"flavorRef": "2"}}`, `{"rebuild": {"imageRef": "` + imageID + `", "name": "rebuilt"}}`,
	} {
		faultHas(t, act(body), http.StatusConflict, isLocked)
	}
	faultHas(t, tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id, demo, nil), http.StatusConflict, isLocked)
	faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/metadata", demo, map[string]any{"metadata": map[string]string{"a": "b"}}),
		http.StatusConflict, isLocked)
	faultHas(t, tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id+"/metadata/a", demo, nil), http.StatusNotFound, "Metadata item was not found")
	if err := servers.Stop(ctx, sc, id).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("gophercloud stop of a locked server: %v, want a 409", err)
	}
	s, err := servers.Get(ctx, sc, id).Extract()
	if err != nil || s.Status != "ACTIVE" || s.TaskState != "" || s.Name != "locky" || len(s.Metadata) != 0 {
		t.Errorf("a refused request changed the server: %+v, %v", s, err)
	}
	// Reads and what Nova does not lock still work: the console, renaming.
	if _, err := servers.ShowConsoleOutput(ctx, sc, id, servers.ShowConsoleOutputOpts{}).Extract(); err != nil {
		t.Errorf("console output of a locked server: %v", err)
	}
	if _, err := servers.Update(ctx, sc, id, servers.UpdateOpts{Name: "still-locky"}).Extract(); err != nil {
		t.Errorf("rename of a locked server: %v", err)
	}

	// An admin is not held by the lock.
	if _, err := servers.UpdateMetadata(ctx, adm, id, servers.MetadataOpts{"by": "admin"}).Extract(); err != nil {
		t.Errorf("admin metadata on a locked server: %v", err)
	}
	if err := servers.Stop(ctx, adm, id).ExtractErr(); err != nil {
		t.Fatalf("admin stop of a locked server: %v", err)
	}
	waitStatus(t, sc, id, "SHUTOFF")

	// The owner unlocks its own lock; an admin's lock needs an admin.
	if err := servers.Unlock(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatalf("owner unlock: %v", err)
	}
	if l := locked(demo); l != false {
		t.Errorf("locked = %#v after unlock", l)
	}
	if err := servers.Lock(ctx, adm, id).ExtractErr(); err != nil {
		t.Fatalf("admin lock: %v", err)
	}
	faultHas(t, act(`{"unlock": null}`), http.StatusForbidden, "os_compute_api:os-lock-server:unlock:unlock_override")
	faultHas(t, act(`{"os-start": null}`), http.StatusConflict, isLocked)
	if l := locked(demo); l != true {
		t.Errorf("locked = %#v after a refused unlock", l)
	}
	if err := servers.Unlock(ctx, adm, id).ExtractErr(); err != nil {
		t.Fatalf("admin unlock: %v", err)
	}
	if err := servers.Start(ctx, sc, id).ExtractErr(); err != nil {
		t.Errorf("start after unlock: %v", err)
	}
	waitStatus(t, sc, id, "ACTIVE")

	// Another project's server is not found.
	if err := servers.Lock(ctx, tr.Compute(other), id).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("other project's lock: %v, want a 404", err)
	}
	if l := locked(demo); l != false {
		t.Errorf("locked = %#v after another project's lock", l)
	}
	// An unlocked server can be deleted again.
	deleteAll(t, tr, demo, []string{id})
}
