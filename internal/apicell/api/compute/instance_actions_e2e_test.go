package compute_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestInstanceActionsPagingAndDeleted: 2.58 pages the actions of a server
// with limit and marker, and 2.21 shows the actions of a deleted server.
func TestInstanceActionsPagingAndDeleted(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	ctx := context.Background()
	id := create(t, tr, demo, map[string]any{"name": "paged", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	if err := servers.Stop(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHUTOFF")
	if err := servers.Start(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ACTIVE")

	type page struct {
		Actions []struct {
			Action    string `json:"action"`
			RequestID string `json:"request_id"`
		} `json:"instanceActions"`
		Links []struct{ Href string } `json:"links"`
	}
	get := func(ver, query string) page {
		var p page
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions"+query, demo, nil, "OpenStack-API-Version", "compute "+ver)
		if r.Status != http.StatusOK {
			t.Fatalf("list actions %s: %s", query, r)
		}
		r.JSON(t, &p)
		return p
	}
	first := get("2.58", "?limit=2")
	if len(first.Actions) != 2 || first.Actions[0].Action != "start" || first.Actions[1].Action != "stop" || len(first.Links) != 1 {
		t.Fatalf("first page: %+v", first)
	}
	rest := get("2.58", "?marker="+first.Actions[1].RequestID)
	if len(rest.Actions) != 1 || rest.Actions[0].Action != "create" || len(rest.Links) != 0 {
		t.Fatalf("second page: %+v", rest)
	}
	if p := get("2.58", "?changes-since=2999-01-01T00:00:00Z"); len(p.Actions) != 0 {
		t.Errorf("changes-since in the future: %+v", p)
	}
	testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions?marker=nope", demo, nil,
		"OpenStack-API-Version", "compute 2.58"), http.StatusBadRequest)

	if err := servers.Delete(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sc, id)
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions", demo, nil, "OpenStack-API-Version", "compute 2.20"); r.Status != http.StatusNotFound {
		t.Errorf("actions of a deleted server at 2.20: %s", r)
	}
	if p := get("2.21", ""); len(p.Actions) != 4 || p.Actions[0].Action != "delete" {
		t.Errorf("actions of a deleted server at 2.21: %+v", p)
	}
}
