package compute_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestDeferredDelete: with a reclaim interval, deleting a server that has
// run soft-deletes it (SOFT_DELETED, powered off, still counted), restore
// brings it back (409 from any other state), forceDelete deletes it for
// good at once, and a server that never ran is deleted for good, as in
// Nova.
func TestDeferredDelete(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{ReclaimInterval: time.Hour})
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "soft", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	del := func(id string) {
		t.Helper()
		if r := tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id, demo, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %s", r)
		}
	}
	action := func(id string, body map[string]any) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, body)
	}

	del(id)
	waitStatus(t, sc, id, "SOFT_DELETED")
	var shown struct{ Server map[string]any }
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil).JSON(t, &shown)
	if shown.Server["OS-EXT-STS:vm_state"] != "soft-delete" || shown.Server["OS-EXT-STS:power_state"] != float64(4) {
		t.Errorf("a soft-deleted server: vm_state %v, power_state %v", shown.Server["OS-EXT-STS:vm_state"], shown.Server["OS-EXT-STS:power_state"])
	}
	// It still counts (it can come back).
	var limits struct {
		Limits struct{ Absolute map[string]float64 } `json:"limits"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/limits", demo, nil).JSON(t, &limits)
	if limits.Limits.Absolute["totalInstancesUsed"] != 1 {
		t.Errorf("a soft-deleted server counts %v instances, want 1", limits.Limits.Absolute["totalInstancesUsed"])
	}

	if r := action(id, map[string]any{"restore": nil}); r.Status != http.StatusAccepted {
		t.Fatalf("restore: %s", r)
	}
	waitStatus(t, sc, id, "ACTIVE")
	msg := testtree.Fault(t, action(id, map[string]any{"restore": map[string]any{}}), http.StatusConflict)
	if want := "Cannot 'restore' instance " + id + " while it is in vm_state active"; msg != want {
		t.Errorf("restore of an active server: %q, want %q", msg, want)
	}

	// forceDelete: for good, at once, from SOFT_DELETED (or any state).
	del(id)
	waitStatus(t, sc, id, "SOFT_DELETED")
	testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", other, map[string]any{"forceDelete": nil}), http.StatusNotFound)
	if r := action(id, map[string]any{"forceDelete": nil}); r.Status != http.StatusAccepted {
		t.Fatalf("forceDelete: %s", r)
	}
	waitGone(t, sc, id)

	// A server that never ran (no cell could build it) is deleted for good.
	if r := tr.Do(t, http.MethodPost, "/v2.1/flavors", admin, map[string]any{"flavor": map[string]any{
		"name": "huge", "id": "huge", "ram": 1 << 30, "vcpus": 1, "disk": 1}}); r.Status != http.StatusOK {
		t.Fatalf("create flavor: %s", r)
	}
	lost := create(t, tr, admin, map[string]any{"name": "nowhere", "flavorRef": "huge", "imageRef": imageID})
	waitStatus(t, tr.Compute(admin), lost, "ERROR")
	if r := tr.Do(t, http.MethodDelete, "/v2.1/servers/"+lost, admin, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", r)
	}
	waitGone(t, tr.Compute(admin), lost)
}

// TestReclaim: a soft-deleted server is deleted for good once the reclaim
// interval has passed, in its cell too.
func TestReclaim(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{ReclaimInterval: time.Second})
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "reclaimed", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	if r := tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id, demo, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", r)
	}
	waitGone(t, sc, id)
	in, err := apidb.Get(context.Background(), tr.API.DB, id)
	if err != nil || !in.Deleted {
		t.Fatalf("the API copy after the reclaim: %+v, %v", in, err)
	}
	for _, n := range tr.Cells {
		testpoll.Eventually(t, wait, "the cell's row deleted", func() (bool, string) {
			var live int
			if err := n.DB.QueryRow(context.Background(), `SELECT COUNT(*) FROM instances WHERE uuid = ? AND deleted = 0`, id).Scan(&live); err != nil {
				return false, err.Error()
			}
			return live == 0, strings.Repeat("live ", live)
		})
	}
}
