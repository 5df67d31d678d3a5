package compute_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
)

func allHypervisors(t *testing.T, sc *gophercloud.ServiceClient, opts hypervisors.ListOptsBuilder) []hypervisors.Hypervisor {
	t.Helper()
	pages, err := hypervisors.List(sc, opts).AllPages(ctxT(t))
	if err != nil {
		t.Fatalf("list hypervisors: %v", err)
	}
	hs, err := hypervisors.ExtractHypervisors(pages)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// TestHypervisors: os-hypervisors across two cells with gophercloud. Ids
// name their cell below 2.53 and are UUIDs from 2.53; a show is routed to
// the owning cell; statistics sum both cells; servers on a hypervisor are
// listed; bad ids and patterns are refused clearly.
func TestHypervisors(t *testing.T) {
	tr := operatorTree(t)
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "on-a-host", "flavorRef": "1", "imageRef": imageID})
	srv := waitStatus(t, sc, id, "ACTIVE")

	// Below 2.53: integer ids, unique in the cloud (as Nova's, which
	// clients check), and the CPU info as text below 2.28.
	old := allHypervisors(t, adminAt(tr, "2.1"), nil)
	if len(old) != 4 {
		t.Fatalf("%d hypervisors at 2.1, want 4 (2 cells x 2 hosts)", len(old))
	}
	cells := map[string]int{}
	ids := map[string]bool{}
	for _, h := range old {
		if n, err := strconv.ParseInt(h.ID, 10, 64); err != nil || n <= 0 || ids[h.ID] {
			t.Errorf("hypervisor id %q is not an integer of its own", h.ID)
		}
		ids[h.ID] = true
		cell, _, _ := strings.Cut(h.Service.Host, "@")
		if n, err := strconv.ParseInt(h.Service.ID, 10, 64); err != nil || n <= 0 || ids[h.Service.ID] {
			t.Errorf("service id %q of hypervisor %s is not an integer of its own", h.Service.ID, h.ID)
		}
		cells[cell]++
		if h.HypervisorType != "fake" || h.VCPUs != 16 || h.State != "up" || h.Status != "enabled" ||
			!strings.HasPrefix(h.Service.Host, cell+"@") || h.CPUInfo.Arch != "x86_64" {
			t.Errorf("hypervisor %+v", h)
		}
	}
	if cells["api!cell1"] != 2 || cells["api!cell2"] != 2 {
		t.Errorf("hypervisors by cell: %v", cells)
	}
	one, err := hypervisors.Get(ctx, adminAt(tr, "2.1"), old[3].ID).Extract()
	if err != nil || one.HypervisorHostname != old[3].HypervisorHostname || one.ID != old[3].ID {
		t.Errorf("show %s: %+v %v", old[3].ID, one, err)
	}
	// The cell-qualified form of the cell's own number is still taken.
	one, err = hypervisors.Get(ctx, adminAt(tr, "2.1"), "api%21cell1@1").Extract()
	if err != nil || !strings.HasPrefix(one.Service.Host, "api!cell1@") || one.ID == "1" && old[0].ID != "1" {
		t.Errorf("show api!cell1@1: %+v %v", one, err)
	}

	// From 2.53: UUIDs, with servers.
	yes := true
	now := allHypervisors(t, adminAt(tr, "2.53"), hypervisors.ListOpts{WithServers: &yes})
	var withServer []string
	for _, h := range now {
		if len(h.ID) != 36 || len(h.Service.ID) != 36 {
			t.Errorf("ids at 2.53: hypervisor %q service %q", h.ID, h.Service.ID)
		}
		if h.Servers == nil {
			continue
		}
		for _, s := range *h.Servers {
			if s.UUID == srv.ID {
				withServer = append(withServer, h.HypervisorHostname)
			}
		}
	}
	if len(withServer) != 1 {
		t.Fatalf("the server is on %v, want one hypervisor", withServer)
	}
	got, err := hypervisors.Get(ctx, adminAt(tr, "2.53"), now[0].ID).Extract()
	if err != nil || got.ID != now[0].ID || got.HypervisorHostname != now[0].HypervisorHostname {
		t.Errorf("show by uuid: %+v %v", got, err)
	}
	pattern := withServer[0]
	found := allHypervisors(t, adminAt(tr, "2.53"), hypervisors.ListOpts{HypervisorHostnamePattern: &pattern, WithServers: &yes})
	if len(found) != 1 || found[0].Servers == nil || len(*found[0].Servers) != 1 || (*found[0].Servers)[0].UUID != srv.ID {
		t.Errorf("hypervisors matching %q with servers: %+v", pattern, found)
	}

	// Paging (2.33): one at a time through both cells.
	one1 := 1
	paged := allHypervisors(t, adminAt(tr, "2.53"), hypervisors.ListOpts{Limit: &one1})
	if len(paged) != 4 {
		t.Errorf("paged one at a time: %d hypervisors, want 4", len(paged))
	}

	stats, err := hypervisors.GetStatistics(ctx, adminAt(tr, "2.1")).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if stats.Count != 4 || stats.VCPUs != 64 || stats.RunningVMs != 1 || stats.VCPUsUsed != 1 {
		t.Errorf("statistics %+v, want 4 hypervisors, 64 vCPUs, 1 running", stats)
	}

	// Bad input.
	for _, c := range []struct {
		mv, path string
		status   int
		msg      string
	}{
		{"2.1", "/v2.1/os-hypervisors/7000", 404, "Hypervisor with ID '7000' could not be found."},
		{"2.1", "/v2.1/os-hypervisors/nope", 404, "Hypervisor with ID 'nope' could not be found."},
		{"2.1", "/v2.1/os-hypervisors/" + old[0].Service.ID, 404, "could not be found"},
		{"2.1", "/v2.1/os-hypervisors/api!cell9@1", 404, "Hypervisor with ID 'api!cell9@1' could not be found."},
		{"2.1", "/v2.1/os-hypervisors/api!cell1@x", 404, "Hypervisor with ID 'api!cell1@x' could not be found."},
		{"2.1", "/v2.1/os-hypervisors/api!cell1@999", 404, "Hypervisor with ID 'api!cell1@999' could not be found."},
		{"2.53", "/v2.1/os-hypervisors/api!cell1@1", 400, "Invalid uuid api!cell1@1"},
		{"2.53", "/v2.1/os-hypervisors/" + srv.ID, 404, "could not be found"},
		{"2.1", "/v2.1/os-hypervisors/no-such-host/search", 404, "No hypervisor matching 'no-such-host' could be found."},
		{"2.53", "/v2.1/os-hypervisors?hypervisor_hostname_pattern=nope", 404, "No hypervisor matching 'nope' could be found."},
		{"2.53", "/v2.1/os-hypervisors?hypervisor_hostname_pattern=cell&limit=1", 400, "Paging over hypervisors"},
		{"2.53", "/v2.1/os-hypervisors?marker=nope", 400, "marker [nope] not found"},
		{"2.53", "/v2.1/os-hypervisors?bogus=1", 400, "'bogus' was unexpected"},
		{"2.53", "/v2.1/os-hypervisors/x/search", 404, "The resource could not be found."},
		{"2.1", "/v2.1/os-hypervisors/" + old[0].ID + "/uptime", 501, "not supported"},
	} {
		r := tr.Do(t, "GET", c.path, admin, nil, "X-OpenStack-Nova-API-Version", c.mv)
		if r.Status != c.status || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("GET %s at %s: %d %s, want %d %q", c.path, c.mv, r.Status, r.Body, c.status, c.msg)
		}
	}
	if r := tr.Do(t, "GET", "/v2.1/os-hypervisors", demo, nil); r.Status != http.StatusForbidden {
		t.Errorf("a member lists hypervisors: %d", r.Status)
	}
}

// TestHypervisorsV288: from 2.88 a hypervisor's detail and show drop the
// resource counts and cpu_info and gain uptime (null: the fake driver
// cannot tell it); /os-hypervisors/statistics and /{id}/uptime are 404.
// At 2.87 all is as before.
func TestHypervisorsV288(t *testing.T) {
	mv := needMicroversion(t, 88)
	tr := operatorTree(t)
	gone := []string{"current_workload", "cpu_info", "vcpus", "vcpus_used", "free_disk_gb", "local_gb",
		"local_gb_used", "disk_available_least", "free_ram_mb", "memory_mb", "memory_mb_used", "running_vms"}
	kept := []string{"id", "hypervisor_hostname", "state", "status", "hypervisor_type", "hypervisor_version", "host_ip", "service"}

	var list struct {
		Hypervisors []map[string]any `json:"hypervisors"`
	}
	tr.Do(t, "GET", "/v2.1/os-hypervisors/detail", admin, nil, atVersion(mv)...).JSON(t, &list)
	if len(list.Hypervisors) != 4 {
		t.Fatalf("%d hypervisors at %s, want 4", len(list.Hypervisors), mv)
	}
	check := func(where string, h map[string]any) {
		t.Helper()
		for _, f := range gone {
			if _, ok := h[f]; ok {
				t.Errorf("%s has %s at 2.88: %v", where, f, h)
			}
		}
		for _, f := range kept {
			if _, ok := h[f]; !ok {
				t.Errorf("%s lacks %s at 2.88: %v", where, f, h)
			}
		}
		if u, ok := h["uptime"]; !ok || u != nil {
			t.Errorf("%s uptime = %v (present %v), want null", where, u, ok)
		}
	}
	for _, h := range list.Hypervisors {
		check("detail", h)
	}
	id := list.Hypervisors[0]["id"].(string)
	var one struct {
		Hypervisor map[string]any `json:"hypervisor"`
	}
	tr.Do(t, "GET", "/v2.1/os-hypervisors/"+id, admin, nil, atVersion(mv)...).JSON(t, &one)
	check("show", one.Hypervisor)
	// The summary list never had them.
	var summary struct {
		Hypervisors []map[string]any `json:"hypervisors"`
	}
	tr.Do(t, "GET", "/v2.1/os-hypervisors", admin, nil, atVersion(mv)...).JSON(t, &summary)
	if _, ok := summary.Hypervisors[0]["uptime"]; ok {
		t.Errorf("the summary list has uptime: %v", summary.Hypervisors[0])
	}

	faultHas(t, tr.Do(t, "GET", "/v2.1/os-hypervisors/statistics", admin, nil, atVersion(mv)...), 404, "The resource could not be found.")
	faultHas(t, tr.Do(t, "GET", "/v2.1/os-hypervisors/"+id+"/uptime", admin, nil, atVersion(mv)...), 404, "The resource could not be found.")

	// At 2.87: the counts, no uptime; statistics and the uptime route served.
	var old struct {
		Hypervisor map[string]any `json:"hypervisor"`
	}
	tr.Do(t, "GET", "/v2.1/os-hypervisors/"+id, admin, nil, atVersion("2.87")...).JSON(t, &old)
	for _, f := range gone {
		if _, ok := old.Hypervisor[f]; !ok {
			t.Errorf("show at 2.87 lacks %s: %v", f, old.Hypervisor)
		}
	}
	if _, ok := old.Hypervisor["uptime"]; ok {
		t.Errorf("show at 2.87 has uptime: %v", old.Hypervisor)
	}
	if r := tr.Do(t, "GET", "/v2.1/os-hypervisors/statistics", admin, nil, atVersion("2.87")...); r.Status != http.StatusOK {
		t.Errorf("statistics at 2.87: %d %s", r.Status, r.Body)
	}
	faultHas(t, tr.Do(t, "GET", "/v2.1/os-hypervisors/"+id+"/uptime", admin, nil, atVersion("2.87")...), 501, "not supported")
}
