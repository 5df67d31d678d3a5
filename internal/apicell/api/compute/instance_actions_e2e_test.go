package compute_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

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

// TestInstanceActionsMicroversions: the events of an instance action carry
// hostId, and host for admins (2.62); changes-before bounds the list
// (2.66), refused before.
func TestInstanceActionsMicroversions(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	at := func(v string) []string { return []string{"X-OpenStack-Nova-API-Version", v} }
	id := create(t, tr, demo, map[string]any{"name": "mv69", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")

	// 2.62: hostId on every event, host for admins.
	var acts struct {
		Actions []struct {
			RequestID string `json:"request_id"`
		} `json:"instanceActions"`
	}
	tr.Do(t, "GET", "/v2.1/servers/"+id+"/os-instance-actions", demo, nil).JSON(t, &acts)
	if len(acts.Actions) == 0 {
		t.Fatal("no instance action for the create")
	}
	rid := acts.Actions[0].RequestID
	event := func(token, ver string) map[string]any {
		var out struct {
			Action struct {
				Events []map[string]any `json:"events"`
			} `json:"instanceAction"`
		}
		tr.Do(t, "GET", "/v2.1/servers/"+id+"/os-instance-actions/"+rid, token, nil, at(ver)...).JSON(t, &out)
		if len(out.Action.Events) == 0 {
			t.Fatalf("no events at %s", ver)
		}
		return out.Action.Events[len(out.Action.Events)-1]
	}
	if e := event(demo, "2.61"); e["hostId"] != nil {
		t.Errorf("hostId before 2.62: %v", e)
	}
	if e := event(demo, "2.62"); len(e["hostId"].(string)) != 56 || e["host"] != nil {
		t.Errorf("a member's event at 2.62: %v", e)
	}
	if e := event(admin, "2.62"); !strings.HasPrefix(e["host"].(string), "cell1-host") {
		t.Errorf("an admin's event at 2.62: %v", e)
	}

	// 2.66: changes-before.
	past := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	future := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	for _, c := range []struct{ path, msg string }{
		{"/v2.1/servers/" + id + "/os-instance-actions?changes-before=foo", "'foo' is not a 'date-time'"},
		{"/v2.1/servers/" + id + "/os-instance-actions?changes-since=" + future + "&changes-before=" + past, "must be less than or equal to changes-before"},
	} {
		r := tr.Do(t, "GET", c.path, demo, nil, at("2.66")...)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("GET %s: %d %s, want 400 %q", c.path, r.Status, r.Body, c.msg)
		}
	}
	r := tr.Do(t, "GET", "/v2.1/servers/"+id+"/os-instance-actions?changes-before="+future, demo, nil, at("2.65")...)
	if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "('changes-before' was unexpected)") {
		t.Errorf("changes-before on instance actions at 2.65: %d %s", r.Status, r.Body)
	}
	var listed struct {
		Actions []any `json:"instanceActions"`
	}
	tr.Do(t, "GET", "/v2.1/servers/"+id+"/os-instance-actions?changes-before="+past, demo, nil, at("2.66")...).JSON(t, &listed)
	if len(listed.Actions) != 0 {
		t.Errorf("instance actions changed before an hour ago: %v", listed.Actions)
	}
}

// TestInstanceActionEventDetailsV284: from 2.84 an admin (rule
// os-instance-actions:events:details) sees each event's details, null for
// an event that did not fail (a failed one's is its fault message:
// TestEventDetails, as no test driver fails an operation). A member never
// sees it, nor anyone before 2.84.
func TestInstanceActionEventDetailsV284(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 84)
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "somewhere", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	var acts struct {
		Actions []struct {
			RequestID string `json:"request_id"`
		} `json:"instanceActions"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions", demo, nil).JSON(t, &acts)
	if len(acts.Actions) == 0 {
		t.Fatal("no instance action for the create")
	}
	events := func(token, ver string) []map[string]any {
		t.Helper()
		var out struct {
			Action struct {
				Events []map[string]any `json:"events"`
			} `json:"instanceAction"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions/"+acts.Actions[0].RequestID, token, nil, atVersion(ver)...).JSON(t, &out)
		if len(out.Action.Events) == 0 {
			t.Fatalf("no events at %s", ver)
		}
		return out.Action.Events
	}
	for _, e := range events(admin, mv) {
		if d, ok := e["details"]; !ok || d != nil || e["result"] != "Success" {
			t.Errorf("an admin's successful event at %s: details %v (present %v), want null: %v", mv, d, ok, e)
		}
	}
	for _, c := range []struct{ token, ver string }{{demo, mv}, {admin, "2.83"}, {demo, "2.83"}} {
		for _, e := range events(c.token, c.ver) {
			if _, ok := e["details"]; ok {
				t.Errorf("details shown to %s at %s: %v", c.token, c.ver, e)
			}
		}
	}
}
