package compute_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// waitCached waits until each host (cell index to host names) has cached
// exactly images in its cell's fake hypervisor.
func waitCached(t *testing.T, tr *testtree.Tree, want map[int][]string, images ...string) {
	t.Helper()
	slices.Sort(images)
	testpoll.Eventually(t, wait, fmt.Sprintf("hosts %v to cache %v", want, images), func() (bool, string) {
		for cell, hosts := range want {
			for _, h := range hosts {
				if got := tr.Cells[cell].CachedImages(h); !slices.Equal(got, images) {
					return false, fmt.Sprintf("%s has %v", h, got)
				}
			}
		}
		return true, ""
	})
}

// TestAggregateImages (2.81): POST /os-aggregates/{id}/images is Nova's:
// the body schema (400s), the rule compute:aggregates:images (403; given
// here to the user demo too by a policy file, so that the rule and not
// the image's visibility is what refuses the user other), the id (400),
// duplicate images (400), the aggregate (404), the images (400 for one
// the image store does not have); then 202 without a body, and the hosts
// of the aggregate, in both cells, cache the images in their
// hypervisors; a host outside it does not. An aggregate without hosts is
// a 202 that sends nothing. At 2.80 the route is a 404.
func TestAggregateImages(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 81)
	file := filepath.Join(t.TempDir(), "policy.yaml")
	rule := "\"compute:aggregates:images\": \"rule:context_is_admin or user_id:demo\"\n"
	if err := os.WriteFile(file, []byte(rule), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2, PolicyFile: file})
	ctx := ctxT(t)
	ag := adminAt(tr, "2.41")
	c1, c2 := tr.Cells[0].Config().Cell, tr.Cells[1].Config().Cell
	a, err := aggregates.Create(ctx, ag, aggregates.CreateOpts{Name: "warm"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "the hosts to be mapped", func() (bool, string) {
		_, err := aggregates.AddHost(ctx, ag, a.ID, aggregates.AddHostOpts{Host: c1 + "@cell1-host001"}).Extract()
		return err == nil, fmt.Sprint(err)
	})
	if _, err := aggregates.AddHost(ctx, ag, a.ID, aggregates.AddHostOpts{Host: c2 + "@cell2-host002"}).Extract(); err != nil {
		t.Fatal(err)
	}
	empty, err := aggregates.Create(ctx, ag, aggregates.CreateOpts{Name: "empty"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/v2.1/os-aggregates/%d/images", a.ID)
	at := atVersion(mv)
	post := func(tok, p string, body any, hdr []string) *testtree.Response {
		return tr.Do(t, http.MethodPost, p, tok, body, hdr...)
	}
	const missing = "11111111-2222-4333-8444-555555555555"
	for _, c := range []struct {
		body any
		want string
	}{
		{map[string]any{}, "'cache' is a required property"},
		{map[string]any{"cache": []any{}}, "should be non-empty"},
		{map[string]any{"cache": "x"}, "is not of type 'array'"},
		{map[string]any{"cache": []any{"x"}}, "is not of type 'object'"},
		{map[string]any{"cache": []any{map[string]any{}}}, "'id' is a required property"},
		{map[string]any{"cache": []any{map[string]any{"id": "not-a-uuid"}}}, "'not-a-uuid' is not a 'uuid'"},
		{map[string]any{"cache": []any{map[string]any{"id": imageID, "name": "x"}}}, "Additional properties are not allowed ('name' was unexpected)"},
		{map[string]any{"cache": []any{map[string]any{"id": imageID}}, "x": 1}, "Additional properties are not allowed ('x' was unexpected)"},
	} {
		faultHas(t, post(admin, path, c.body, at), http.StatusBadRequest, c.want)
	}
	one := map[string]any{"cache": []any{map[string]any{"id": imageID}}}
	testtree.Fault(t, post(other, path, one, at), http.StatusForbidden)
	faultHas(t, post(admin, "/v2.1/os-aggregates/x/images", one, at), http.StatusBadRequest, "id must be an integer")
	faultHas(t, post(admin, path, map[string]any{"cache": []any{map[string]any{"id": imageID}, map[string]any{"id": imageID}}}, at),
		http.StatusBadRequest, "Duplicate images in request")
	faultHas(t, post(admin, "/v2.1/os-aggregates/9999/images", one, at), http.StatusNotFound, "Aggregate 9999 could not be found.")
	faultHas(t, post(admin, path, map[string]any{"cache": []any{map[string]any{"id": imageID}, map[string]any{"id": missing}}}, at),
		http.StatusBadRequest, "Image "+missing+" could not be found.")
	faultHas(t, post(admin, path, one, atVersion("2.80")), http.StatusNotFound, "The resource could not be found.")
	if got := tr.Cells[0].CachedImages("cell1-host001"); len(got) != 0 {
		t.Fatalf("refused requests cached %v", got)
	}

	if r := post(admin, fmt.Sprintf("/v2.1/os-aggregates/%d/images", empty.ID), one, at); r.Status != http.StatusAccepted {
		t.Errorf("images of an aggregate without hosts: %s", r)
	}
	r := post(demo, path, one, at)
	if r.Status != http.StatusAccepted || len(r.Body) != 0 {
		t.Fatalf("images: %s", r)
	}
	waitCached(t, tr, map[int][]string{0: {"cell1-host001"}, 1: {"cell2-host002"}}, imageID)
	for cell, h := range map[int]string{0: "cell1-host002", 1: "cell2-host001"} {
		if got := tr.Cells[cell].CachedImages(h); len(got) != 0 {
			t.Errorf("%s, outside the aggregate, cached %v", h, got)
		}
	}
	// Asked again: nothing new.
	if r := post(admin, path, one, at); r.Status != http.StatusAccepted {
		t.Fatalf("images again: %s", r)
	}
	waitCached(t, tr, map[int][]string{0: {"cell1-host001"}, 1: {"cell2-host002"}}, imageID)
}
