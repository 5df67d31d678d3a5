package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestKnownDownCellAnswersAtOnce: once the API cell counts a cell down,
// every request for one object held there (console output, instance
// actions, a hypervisor, a host, a service update or delete) is a 503
// naming the cell, at once. The calls' deadline is made far longer than
// the test client's timeout, so a request that still asked the dead cell
// would fail the test with no answer. Showing a server of the cell reads
// the API copy as before: a 503 below 2.69, the partial record from it.
func TestKnownDownCellAnswersAtOnce(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2, CallTimeout: 10 * time.Minute})
	testpoll.Eventually(t, wait, "host mappings of 4 hosts", func() (bool, string) {
		var n int
		if err := tr.API.DB.QueryRow(t.Context(), `SELECT COUNT(*) FROM host_mappings WHERE kind = 'hypervisor'`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 4, fmt.Sprint(n, " mapped")
	})
	const down = "api!cell2"
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", admin, map[string]any{
		"server":             map[string]any{"name": "d", "flavorRef": "1", "imageRef": imageID},
		"os:scheduler_hints": map[string]any{"target_cell": down}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create in %s: %s", down, r)
	}
	var created struct {
		Server struct{ ID string } `json:"server"`
	}
	r.JSON(t, &created)
	id := created.Server.ID
	waitStatus(t, tr.Compute(admin), id, "ACTIVE")

	// What the cell holds, read while it is up.
	var actions struct {
		Actions []struct {
			RequestID string `json:"request_id"`
		} `json:"instanceActions"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions", admin, nil).JSON(t, &actions)
	if len(actions.Actions) == 0 {
		t.Fatalf("no instance actions of %s", id)
	}
	var hyp string
	for _, h := range allHypervisors(t, adminAt(tr, "2.1"), nil) {
		if strings.HasPrefix(h.Service.Host, down+"@") {
			hyp = h.ID
		}
	}
	pages, err := services.List(adminAt(tr, "2.53"), services.ListOpts{Binary: "nova-compute"}).AllPages(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := services.ExtractServices(pages)
	var svc, host string
	for _, s := range ss {
		if strings.HasPrefix(s.Host, down+"@") {
			svc, host = s.ID, s.Host
		}
	}
	if hyp == "" || svc == "" {
		t.Fatalf("no hypervisor (%q) or compute service (%q) of %s", hyp, svc, down)
	}

	for _, n := range tr.Cells {
		if n.Config().Cell == down {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			n.Shutdown(sctx)
			cancel()
		}
	}
	// Showing the server reads the API copy alone: its 503 says the API
	// cell counts the cell down.
	testpoll.Eventually(t, wait, down+" counted down", func() (bool, string) {
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil)
		return r.Status == http.StatusServiceUnavailable, r.String()
	})
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil), http.StatusServiceUnavailable, "Cell "+down+" is not responding")
	var one struct {
		Server map[string]any `json:"server"`
	}
	r = tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil, atVersion("2.69")...)
	r.JSON(t, &one)
	if r.Status != http.StatusOK || one.Server["status"] != "UNKNOWN" || one.Server["id"] != id {
		t.Errorf("show at 2.69 of a server of a down cell: %s", r)
	}
	if _, ok := one.Server["server_groups"]; ok {
		t.Errorf("show at 2.69 of a server of a down cell has server_groups: %s", r)
	}
	// From 2.71 the partial record has the server's groups too (none).
	one.Server = nil
	r = tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil, atVersion("2.71")...)
	r.JSON(t, &one)
	if gs, ok := one.Server["server_groups"].([]any); r.Status != http.StatusOK || one.Server["status"] != "UNKNOWN" || !ok || len(gs) != 0 {
		t.Errorf("show at 2.71 of a server of a down cell: %s", r)
	}

	for _, c := range []struct {
		method, path string
		body         any
		mv           string
	}{
		{http.MethodPost, "/v2.1/servers/" + id + "/action", map[string]any{"os-getConsoleOutput": map[string]any{}}, "2.1"},
		{http.MethodPost, "/v2.1/servers/" + id + "/action", map[string]any{"os-resetState": map[string]any{"state": "error"}}, "2.1"},
		{http.MethodGet, "/v2.1/servers/" + id + "/os-instance-actions", nil, "2.1"},
		{http.MethodGet, "/v2.1/servers/" + id + "/os-instance-actions/" + actions.Actions[0].RequestID, nil, "2.1"},
		{http.MethodGet, "/v2.1/os-hypervisors/" + hyp, nil, "2.1"},
		{http.MethodGet, "/v2.1/os-hosts/" + host, nil, "2.1"},
		{http.MethodPut, "/v2.1/os-hosts/" + host, map[string]any{"status": "disable"}, "2.1"},
		{http.MethodGet, "/v2.1/os-hosts/" + host + "/reboot", nil, "2.1"},
		{http.MethodPut, "/v2.1/os-services/disable", map[string]any{"host": host, "binary": "nova-compute"}, "2.1"},
		{http.MethodPut, "/v2.1/os-services/" + svc, map[string]any{"status": "disabled"}, "2.53"},
		{http.MethodDelete, "/v2.1/os-services/" + svc, nil, "2.53"},
	} {
		r := tr.Do(t, c.method, c.path, admin, c.body, atVersion(c.mv)...)
		if msg := testtree.Fault(t, r, http.StatusServiceUnavailable); !strings.Contains(msg, "Cell "+down+" is not responding") {
			t.Errorf("%s %s with %s down: %q, want a 503 naming the cell", c.method, c.path, down, msg)
		}
	}
}
