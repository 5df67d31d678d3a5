package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// get sends an admin GET to the Compute API and decodes the answer.
func (tr *tree) get(t *testing.T, path string, out any) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", strings.TrimSuffix(tr.api, "/")+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", "admin:admin")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("GET %s: %v: %s", path, err, b)
		}
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return resp.StatusCode, resp.Header
}

// TestDownCell kills a compute cell's process. The operator APIs still
// answer, with what the live cell says and the dead cell named as missing;
// os-cells shows it down; the servers it held are still listed from the
// API cell's copy; new builds go to the live cell; a request for one of
// its hypervisors is a 503 naming it. Nothing answers 500. And the API
// cell's process never opened another cell's database.
func TestDownCell(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	tr := startTree(t, []cellSpec{{path: "api"}, {path: "api!cell1", hosts: 2, parent: "api"}, {path: "api!cell2", hosts: 2, parent: "api"}})
	ctx := context.Background()
	admin := tr.client("admin:admin")
	demo := tr.client("demo:demo")

	testpoll.Eventually(t, 60*time.Second, "4 hypervisors in 2 cells", func() (bool, string) {
		pages, err := hypervisors.List(admin, nil).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		hs, _ := hypervisors.ExtractHypervisors(pages)
		return len(hs) == 4, fmt.Sprint(len(hs))
	})
	testpoll.Eventually(t, 30*time.Second, "both cells up in os-cells", func() (bool, string) {
		var body struct {
			Cells []struct{ Name, State string } `json:"cells"`
		}
		tr.get(t, "/os-cells", &body)
		up := 0
		for _, c := range body.Cells {
			if c.State == "up" {
				up++
			}
		}
		return up == 2, fmt.Sprint(body.Cells)
	})

	apiDB := tr.openDB("api")
	testpoll.Eventually(t, 30*time.Second, "capacity reports of both cells at the API cell", hostsReported(ctx, apiDB, map[string]int{"api!cell1": 2, "api!cell2": 2}))

	// Two servers in each cell, placed by the admin's target_cell hint.
	for _, cell := range []string{"api!cell1", "api!cell2"} {
		opts := servers.CreateOpts{Name: "pre", FlavorRef: "1", ImageRef: imageID, Min: 2, Max: 2}
		hints := map[string]any{"target_cell": cell}
		if _, err := servers.Create(ctx, admin, schedulerHints{opts, hints}, nil).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	testpoll.Eventually(t, 60*time.Second, "4 ACTIVE servers, 2 in each cell", func() (bool, string) {
		byCell := map[string]int{}
		states := map[string]int{}
		for _, a := range apiInstances(t, apiDB) {
			states[a.cell+" "+a.vmState+" "+a.taskState]++
			if a.vmState == "active" && !a.deleted {
				byCell[a.cell]++
			}
		}
		return byCell["api!cell1"] == 2 && byCell["api!cell2"] == 2, fmt.Sprint(states)
	})
	var cell2Hyp string
	{
		pages, err := hypervisors.List(admin, nil).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hs, _ := hypervisors.ExtractHypervisors(pages)
		for _, h := range hs {
			if strings.HasPrefix(h.Service.Host, "api!cell2@") {
				cell2Hyp = h.ID
			}
		}
	}

	tr.procs["api!cell2"].kill()

	// Lists gathered from every cell: the live cell's part, the dead one
	// named. The first answers may wait for the gather's deadline; once
	// the API cell counts the cell down they come at once.
	var hyps struct {
		Hypervisors []map[string]any `json:"hypervisors"`
	}
	code, hdr := tr.get(t, "/os-hypervisors", &hyps)
	if code != http.StatusOK || len(hyps.Hypervisors) != 2 || hdr.Get("X-Cellcloud-Missing-Cells") != "api!cell2" {
		t.Errorf("hypervisors with api!cell2 down: %d, %d listed, missing %q", code, len(hyps.Hypervisors), hdr.Get("X-Cellcloud-Missing-Cells"))
	}
	testpoll.Eventually(t, 30*time.Second, "api!cell2 down in os-cells", func() (bool, string) {
		var body struct {
			Cells []struct{ Name, State string } `json:"cells"`
		}
		tr.get(t, "/os-cells", &body)
		for _, c := range body.Cells {
			if c.Name == "api!cell2" {
				return c.State == "down", c.State
			}
		}
		return false, fmt.Sprint(body.Cells)
	})
	var stats struct {
		S struct {
			Count   int      `json:"count"`
			Missing []string `json:"missing_cells"`
		} `json:"hypervisor_statistics"`
	}
	tr.get(t, "/os-hypervisors/statistics", &stats)
	if stats.S.Count != 2 || len(stats.S.Missing) != 1 || stats.S.Missing[0] != "api!cell2" {
		t.Errorf("statistics with api!cell2 down: %+v", stats.S)
	}
	pages, err := services.List(admin, nil).AllPages(ctx)
	if err != nil {
		t.Fatalf("services with a cell down: %v", err)
	}
	ss, _ := services.ExtractServices(pages)
	for _, s := range ss {
		if strings.HasPrefix(s.Host, "api!cell2@") {
			t.Errorf("a service of the down cell is listed as if it answered: %+v", s)
		}
	}
	if len(ss) == 0 {
		t.Errorf("no services listed with one cell down")
	}
	for _, p := range []string{"/os-hosts", "/os-availability-zone/detail", "/os-simple-tenant-usage", "/os-instance_usage_audit_log", "/os-cells/detail"} {
		if code, hdr := tr.get(t, p, nil); code != http.StatusOK || hdr.Get("X-Cellcloud-Missing-Cells") != "api!cell2" {
			t.Errorf("GET %s with api!cell2 down: %d, missing %q", p, code, hdr.Get("X-Cellcloud-Missing-Cells"))
		}
	}
	if code, _ := tr.get(t, "/os-hypervisors/"+strings.ReplaceAll(cell2Hyp, "!", "%21"), nil); code != http.StatusServiceUnavailable {
		t.Errorf("a hypervisor of the down cell: %d, want 503", code)
	}

	// The servers of the down cell: left out below 2.69 (as Nova does),
	// listed first as UNKNOWN from 2.69, shown from the API cell's copy
	// with what it knows for certain.
	all, err := servers.List(admin, nil).AllPages(ctx)
	if err != nil {
		t.Fatalf("server list with a cell down: %v", err)
	}
	if list, _ := servers.ExtractServers(all); len(list) != 2 {
		t.Errorf("%d servers listed at 2.1 with a cell down, want the 2 of the live cell", len(list))
	}
	var down []string
	for u, a := range apiInstances(t, apiDB) {
		if a.cell == "api!cell2" {
			down = append(down, u)
		}
	}
	admin69 := tr.client("admin:admin")
	admin69.Microversion = "2.69"
	all, err = servers.List(admin69, nil).AllPages(ctx)
	if err != nil {
		t.Fatalf("server list at 2.69: %v", err)
	}
	list, _ := servers.ExtractServers(all)
	if len(list) != 4 || list[0].Status != "UNKNOWN" || list[1].Status != "UNKNOWN" || list[2].Status != "ACTIVE" ||
		list[0].TenantID != "admin" || list[0].Name != "" {
		t.Errorf("server list at 2.69 with a cell down: %+v", list)
	}
	var idx struct {
		Servers []map[string]any `json:"servers"`
	}
	if code, _ := tr.get(t, "/servers", &idx); code != http.StatusOK {
		t.Errorf("index: %d", code)
	}
	req69 := func(path string, out any) int {
		req, _ := http.NewRequest("GET", strings.TrimSuffix(tr.api, "/")+path, nil)
		req.Header.Set("X-Auth-Token", "admin:admin")
		req.Header.Set("X-OpenStack-Nova-API-Version", "2.69")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil {
			_ = json.Unmarshal(b, out)
		}
		return resp.StatusCode
	}
	var index struct {
		Servers []map[string]any `json:"servers"`
	}
	req69("/servers", &index)
	if len(index.Servers) != 4 || len(index.Servers[0]) != 3 || index.Servers[0]["status"] != "UNKNOWN" {
		t.Errorf("index at 2.69: %v", index.Servers)
	}
	var paged struct {
		Servers []map[string]any `json:"servers"`
	}
	req69("/servers?limit=10", &paged)
	if len(paged.Servers) != 2 {
		t.Errorf("a paged list at 2.69 leaves the down cell out (as Nova does): %d servers", len(paged.Servers))
	}
	var one struct {
		Server map[string]any `json:"server"`
	}
	if code := req69("/servers/"+down[0], &one); code != http.StatusOK || one.Server["status"] != "UNKNOWN" ||
		one.Server["flavor"] == nil || one.Server["OS-EXT-STS:power_state"] != float64(0) || one.Server["name"] != nil {
		t.Errorf("show at 2.69 of a down cell's server: %d %v", code, one.Server)
	}
	var svcs struct {
		Services []map[string]any `json:"services"`
	}
	req69("/os-services", &svcs)
	unknown := 0
	for _, s := range svcs.Services {
		if s["status"] == "UNKNOWN" {
			unknown++
			if !strings.HasPrefix(s["host"].(string), "api!cell2@") || s["binary"] != "nova-compute" || len(s) != 3 {
				t.Errorf("an UNKNOWN service: %v", s)
			}
		}
	}
	if unknown != 2 {
		t.Errorf("os-services at 2.69 with api!cell2 down: %d UNKNOWN compute services, want 2: %v", unknown, svcs.Services)
	}
	if code, _ := tr.get(t, "/servers/"+down[0], nil); code != http.StatusServiceUnavailable {
		t.Errorf("show at 2.1 of a down cell's server: %d, want 503", code)
	}

	// New builds go to the live cell.
	if _, err := servers.Create(ctx, demo, servers.CreateOpts{Name: "after", FlavorRef: "1", ImageRef: imageID, Min: 3, Max: 3}, nil).Extract(); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 60*time.Second, "3 more servers ACTIVE in api!cell1", func() (bool, string) {
		n := 0
		for _, a := range apiInstances(t, apiDB) {
			if a.vmState == "active" && a.cell == "api!cell1" && !a.deleted {
				n++
			}
		}
		return n == 5, fmt.Sprint(n)
	})

	// The API cell's process has no other cell's database open.
	pid := tr.procs["api"].cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot read the API process's open files: %v", err)
	}
	opened := 0
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue
		}
		opened++
		for _, c := range []string{"api!cell1", "api!cell2"} {
			dir := filepath.Join(tr.dir, strings.ReplaceAll(c, "!", "_"))
			if strings.HasPrefix(target, dir) || target == tr.dbs[c] {
				t.Errorf("the API cell's process has %s open (a file of %s)", target, c)
			}
		}
	}
	if opened == 0 {
		t.Errorf("read no open files of the API process")
	}
}

// schedulerHints adds os:scheduler_hints to a create.
type schedulerHints struct {
	servers.CreateOptsBuilder
	hints map[string]any
}

func (h schedulerHints) ToServerCreateMap() (map[string]any, error) {
	m, err := h.CreateOptsBuilder.ToServerCreateMap()
	if err != nil {
		return nil, err
	}
	m["os:scheduler_hints"] = h.hints
	return m, nil
}
