package compute_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/tags"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerTagsAPI drives the server tags of 2.26 with gophercloud's tags
// package and checks Nova's limits, errors and the tags in the server view.
func TestServerTagsAPI(t *testing.T) {
	t.Parallel()
	ver := needMicroversion(t, 26)
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	sc.Microversion = ver
	id := create(t, tr, demo, map[string]any{"name": "tagged", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	list := func() []string {
		t.Helper()
		ts, err := tags.List(ctx, sc, id).Extract()
		if err != nil {
			t.Fatalf("list tags: %v", err)
		}
		return ts
	}

	// Before 2.26 there are no tags.
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/tags", demo, nil, atVersion("2.25")...), http.StatusNotFound, "could not be found")
	faultHas(t, tr.Do(t, http.MethodPut, "/v2.1/servers/"+id+"/tags/a", demo, nil, atVersion("2.25")...), http.StatusNotFound, "could not be found")
	if s, _ := servers.Get(ctx, tr.Compute(demo), id).Extract(); s.Tags != nil {
		t.Errorf("tags shown at 2.1: %v", *s.Tags)
	}

	if ts := list(); len(ts) != 0 {
		t.Errorf("new server's tags %v", ts)
	}
	ts, err := tags.ReplaceAll(ctx, sc, id, tags.ReplaceAllOpts{Tags: []string{"web", "prod", "web"}}).Extract()
	if err != nil || strings.Join(ts, ",") != "prod,web" {
		t.Errorf("replace all: %v, %v; want prod,web", ts, err)
	}
	if ok, err := tags.Check(ctx, sc, id, "prod").Extract(); !ok || err != nil {
		t.Errorf("check prod: %v, %v", ok, err)
	}
	if ok, _ := tags.Check(ctx, sc, id, "dev").Extract(); ok {
		t.Error("check dev: found")
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/tags/dev", demo, nil, atVersion(ver)...), http.StatusNotFound,
		fmt.Sprintf("Server %s has no tag 'dev'", id))
	r := tr.Do(t, http.MethodPut, "/v2.1/servers/"+id+"/tags/blue%20green", demo, nil, atVersion(ver)...)
	if r.Status != http.StatusCreated || !strings.HasSuffix(r.Header.Get("Location"), "/servers/"+id+"/tags/blue%20green") || len(r.Body) != 0 {
		t.Errorf("add a tag: %s, Location %q", r, r.Header.Get("Location"))
	}
	if r := tr.Do(t, http.MethodPut, "/v2.1/servers/"+id+"/tags/prod", demo, nil, atVersion(ver)...); r.Status != http.StatusNoContent {
		t.Errorf("add a tag it has: %s, want 204", r)
	}
	if err := tags.Add(ctx, sc, id, "db").ExtractErr(); err != nil {
		t.Errorf("gophercloud add: %v", err)
	}
	if got := strings.Join(list(), ","); got != "blue green,db,prod,web" {
		t.Errorf("tags %s", got)
	}
	if err := tags.Delete(ctx, sc, id, "db").ExtractErr(); err != nil {
		t.Errorf("delete: %v", err)
	}
	faultHas(t, tr.Do(t, http.MethodDelete, "/v2.1/servers/"+id+"/tags/db", demo, nil, atVersion(ver)...), http.StatusNotFound,
		fmt.Sprintf("Instance %s has no tag 'db'", id))

	// The server view shows them from 2.26.
	s, err := servers.Get(ctx, sc, id).Extract()
	if err != nil || s.Tags == nil || strings.Join(*s.Tags, ",") != "blue green,prod,web" {
		t.Errorf("server view tags: %v, %v", s.Tags, err)
	}

	// Bad tags: 400s, nothing written.
	before := list()
	fifty := make([]string, 51)
	for i := range fifty {
		fifty[i] = fmt.Sprintf("t%02d", i)
	}
	for _, c := range []struct {
		method, path string
		body         any
		want         string
	}{
		{"PUT", "/tags", map[string]any{"tags": []string{"ok", "a/b"}}, "Invalid input for field/attribute 1. Value: a/b. 'a/b' does not match '^[^,/]*$'"},
		{"PUT", "/tags", map[string]any{"tags": []string{"a,b"}}, "does not match"},
		{"PUT", "/tags", map[string]any{"tags": []string{""}}, "'' should be non-empty"},
		{"PUT", "/tags", map[string]any{"tags": []string{strings.Repeat("t", 61)}}, "is too long"},
		{"PUT", "/tags", map[string]any{"tags": fifty}, "Invalid input for field/attribute tags"},
		{"PUT", "/tags", map[string]any{"tags": "web"}, "is not of type 'array'"},
		{"PUT", "/tags", map[string]any{"tag": []string{"x"}}, "'tags' is a required property"},
		{"PUT", "/tags", map[string]any{"tags": []string{"x"}, "more": 1}, "Additional properties are not allowed ('more' was unexpected)"},
		{"PUT", "/tags/a,b", nil, "Tag 'a,b' is invalid. It must be a non empty string without characters '/' and ','."},
		{"PUT", "/tags/a%2Fb", nil, "Tag 'a/b' is invalid"},
		{"PUT", "/tags/" + strings.Repeat("t", 61), nil, "is too long"},
		{"PUT", "/tags/x", map[string]any{"tag": "x"}, "is not of type 'null'"},
	} {
		faultHas(t, tr.Do(t, c.method, "/v2.1/servers/"+id+c.path, demo, c.body, atVersion(ver)...), http.StatusBadRequest, c.want)
	}
	if got := list(); !slices.Equal(got, before) {
		t.Errorf("bad requests wrote tags: %v, was %v", got, before)
	}
	// 50 tags at most, one at a time too.
	if _, err := tags.ReplaceAll(ctx, sc, id, tags.ReplaceAllOpts{Tags: fifty[:50]}).Extract(); err != nil {
		t.Fatal(err)
	}
	faultHas(t, tr.Do(t, http.MethodPut, "/v2.1/servers/"+id+"/tags/one-more", demo, nil, atVersion(ver)...), http.StatusBadRequest,
		"The number of tags exceeded the per-server limit 50")
	if n := len(list()); n != 50 {
		t.Errorf("%d tags after adding past the limit", n)
	}
	if err := tags.DeleteAll(ctx, sc, id).ExtractErr(); err != nil {
		t.Errorf("delete all: %v", err)
	}
	if ts := list(); len(ts) != 0 {
		t.Errorf("after delete all: %v", ts)
	}

	// Another project's server is not found (Nova says 403 here; cellcloud
	// hides other projects' servers on every route); an unknown server
	// has no mapping (404).
	osc := tr.Compute(other)
	osc.Microversion = ver
	if _, err := tags.List(ctx, osc, id).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("other project's tags: %v, want a 404", err)
	}
	faultHas(t, tr.Do(t, http.MethodPut, "/v2.1/servers/"+id+"/tags/x", other, nil, atVersion(ver)...), http.StatusNotFound,
		"could not be found")
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers/00000000-0000-0000-0000-000000000000/tags", demo, nil, atVersion(ver)...), http.StatusNotFound,
		"has no mapping to a cell")
	// An admin may tag anyone's server.
	asc := tr.Compute(admin)
	asc.Microversion = ver
	if err := tags.Add(ctx, asc, id, "by-admin").ExtractErr(); err != nil {
		t.Errorf("admin add: %v", err)
	}

	// Changes need an active, paused, suspended or stopped server.
	if err := servers.ResetState(ctx, asc, id, servers.StateError).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ERROR")
	for _, c := range []struct{ method, path, action string }{
		{"PUT", "/tags/x", "update tag"}, {"DELETE", "/tags/by-admin", "delete tag"}, {"DELETE", "/tags", "delete tags"},
	} {
		faultHas(t, tr.Do(t, c.method, "/v2.1/servers/"+id+c.path, demo, nil, atVersion(ver)...), http.StatusConflict,
			fmt.Sprintf("Cannot '%s' instance %s while it is in vm_state error", c.action, id))
	}
	faultHas(t, tr.Do(t, http.MethodPut, "/v2.1/servers/"+id+"/tags", demo, map[string]any{"tags": []string{}}, atVersion(ver)...),
		http.StatusConflict, "Cannot 'update tags'")
	if got := strings.Join(list(), ","); got != "by-admin" {
		t.Errorf("tags changed in error: %s", got)
	}
}
