package compute_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// serverAt is a server as GET /servers/{id} shows it at mv.
func serverAt(t *testing.T, tr *testtree.Tree, token, id, mv string) map[string]any {
	t.Helper()
	r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, token, nil, atVersion(mv)...)
	if r.Status != http.StatusOK {
		t.Fatalf("show %s at %s: %s", id, mv, r)
	}
	var out struct {
		Server map[string]any `json:"server"`
	}
	r.JSON(t, &out)
	return out.Server
}

// serverOf is the server of an answer {"server": {...}} of status want.
func serverOf(t *testing.T, r *testtree.Response, want int) map[string]any {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s; want %d", r, want)
	}
	var out struct {
		Server map[string]any `json:"server"`
	}
	r.JSON(t, &out)
	return out.Server
}

// detailOf is the server id in GET /servers/detail at mv.
func detailOf(t *testing.T, tr *testtree.Tree, token, id, mv string) map[string]any {
	t.Helper()
	r := tr.Do(t, http.MethodGet, "/v2.1/servers/detail", token, nil, atVersion(mv)...)
	if r.Status != http.StatusOK {
		t.Fatalf("list at %s: %s", mv, r)
	}
	var out struct {
		Servers []map[string]any `json:"servers"`
	}
	r.JSON(t, &out)
	for _, s := range out.Servers {
		if s["id"] == id {
			return s
		}
	}
	t.Fatalf("server %s is not in the detailed list at %s", id, mv)
	return nil
}

// TestServerGroupsInViews (2.71): server_groups, the group of a server
// (an empty list when it is in none), in show, update and rebuild from
// 2.71, not in the detailed list, and nowhere at 2.70.
func TestServerGroupsInViews(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	g := sgCreate(t, sc, "views", "anti-affinity")
	in := sgBoot(t, tr, demo, g.ID, 1)[0]
	alone := create(t, tr, demo, map[string]any{"name": "alone", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, in, "ACTIVE")
	waitStatus(t, sc, alone, "ACTIVE")

	groups := func(v map[string]any) any {
		t.Helper()
		gs, ok := v["server_groups"]
		if !ok {
			return "absent"
		}
		return gs
	}
	want := []any{g.ID}
	if gs := groups(serverAt(t, tr, demo, in, "2.71")); !slices.Equal(asList(gs), want) {
		t.Errorf("show at 2.71: server_groups %v; want %v", gs, want)
	}
	if gs := groups(serverAt(t, tr, demo, alone, "2.71")); gs == "absent" || len(asList(gs)) != 0 {
		t.Errorf("show of a server in no group at 2.71: server_groups %v; want []", gs)
	}
	if gs := groups(serverAt(t, tr, demo, in, "2.70")); gs != "absent" {
		t.Errorf("show at 2.70: server_groups %v", gs)
	}
	if gs := groups(detailOf(t, tr, demo, in, "2.71")); gs != "absent" {
		t.Errorf("detailed list at 2.71: server_groups %v; Nova leaves it out", gs)
	}
	update := func(mv string) map[string]any {
		t.Helper()
		return serverOf(t, tr.Do(t, http.MethodPut, "/v2.1/servers/"+in, demo, map[string]any{"server": map[string]any{"name": "renamed"}},
			atVersion(mv)...), http.StatusOK)
	}
	if gs := groups(update("2.71")); !slices.Equal(asList(gs), want) {
		t.Errorf("update at 2.71: server_groups %v", gs)
	}
	if gs := groups(update("2.70")); gs != "absent" {
		t.Errorf("update at 2.70: server_groups %v", gs)
	}
	rebuild := func(mv string) map[string]any {
		t.Helper()
		v := serverOf(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+in+"/action", demo, map[string]any{"rebuild": map[string]any{"imageRef": imageID}},
			atVersion(mv)...), http.StatusAccepted)
		waitStatus(t, sc, in, "ACTIVE")
		return v
	}
	if gs := groups(rebuild("2.71")); !slices.Equal(asList(gs), want) {
		t.Errorf("rebuild at 2.71: server_groups %v", gs)
	}
	if gs := groups(rebuild("2.70")); gs != "absent" {
		t.Errorf("rebuild at 2.70: server_groups %v", gs)
	}
	// A deleted group is no longer shown.
	if r := tr.Do(t, http.MethodDelete, "/v2.1/os-server-groups/"+g.ID, demo, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete the group: %s", r)
	}
	if gs := groups(serverAt(t, tr, demo, in, "2.71")); len(asList(gs)) != 0 {
		t.Errorf("show after the group's deletion: server_groups %v", gs)
	}
}

// asList is a JSON list (nil for anything else).
func asList(v any) []any {
	l, _ := v.([]any)
	return l
}
