package compute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerLifecycle boots one server with gophercloud, follows it to
// ACTIVE, and deletes it.
func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)

	created, err := servers.Create(ctx, sc, servers.CreateOpts{Name: "web", FlavorRef: "1", ImageRef: imageID}, nil).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.ID == "" || created.AdminPass == "" {
		t.Fatalf("create answered %+v, want an id and an adminPass", created)
	}

	s := waitStatus(t, sc, created.ID, "ACTIVE")
	if s.Name != "web" || s.TenantID != "demo" || s.UserID != "demo" {
		t.Errorf("server name %q tenant %q user %q, want web, demo, demo", s.Name, s.TenantID, s.UserID)
	}
	if s.VmState != "active" || s.TaskState != "" || s.PowerState != servers.RUNNING {
		t.Errorf("vm_state %q task_state %q power_state %v, want active, none, RUNNING", s.VmState, s.TaskState, s.PowerState)
	}
	addrs := addresses(t, s, "private")
	if len(addrs) != 1 || net.ParseIP(addrs[0]).To4() == nil {
		t.Errorf("addresses in private %v, want one IPv4 address", addrs)
	}
	if s.Created.IsZero() || s.Updated.IsZero() || s.LaunchedAt.IsZero() {
		t.Errorf("created %v updated %v launched_at %v: want all set", s.Created, s.Updated, s.LaunchedAt)
	}
	if len(s.HostID) != 56 {
		t.Errorf("hostId %q, want a sha224 hex digest", s.HostID)
	}
	if s.Host != "" {
		t.Errorf("a non-admin sees the host %q", s.Host)
	}

	as, err := servers.Get(ctx, tr.Compute(admin), created.ID).Extract()
	if err != nil {
		t.Fatalf("admin get: %v", err)
	}
	if !strings.HasPrefix(as.Host, "cell1-host") && !strings.HasPrefix(as.Host, "cell2-host") {
		t.Errorf("admin sees host %q, want a host of cell1 or cell2", as.Host)
	}
	if as.HypervisorHostname == "" || !strings.HasPrefix(as.InstanceName, "instance-") {
		t.Errorf("admin sees hypervisor_hostname %q instance_name %q", as.HypervisorHostname, as.InstanceName)
	}

	r := tr.Do(t, http.MethodDelete, "/v2.1/servers/"+created.ID, demo, nil)
	if r.Status != http.StatusNoContent || len(r.Body) != 0 {
		t.Fatalf("delete: %s, want 204 and no body", r)
	}
	waitGone(t, sc, created.ID)
	// Gone everywhere: not listed, and a second delete is a 404 too.
	for _, v := range listAll(t, tr, admin, "?all_tenants=1") {
		if v["id"] == created.ID {
			t.Errorf("deleted server still listed: %v", v)
		}
	}
	testtree.Fault(t, tr.Do(t, http.MethodDelete, "/v2.1/servers/"+created.ID, demo, nil), http.StatusNotFound)
	// gophercloud's Delete agrees on a missing server.
	if err := servers.Delete(ctx, sc, created.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("gophercloud delete of a deleted server: %v, want a 404", err)
	}
	// A deleted server is still a valid marker, as in Nova.
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers?marker="+created.ID, demo, nil); r.Status != http.StatusOK {
		t.Errorf("list with a deleted server as marker: %s", r)
	}

	// A delete that overtakes the build (the API copy has no cell yet, or
	// the cell is still scheduling) follows the instance to its cell.
	t.Run("delete while building", func(t *testing.T) {
		var ids []string
		for range 3 {
			ids = append(ids, create(t, tr, demo, map[string]any{"name": "quick", "flavorRef": "1", "imageRef": imageID}))
		}
		deleteAll(t, tr, demo, ids)
		if n := len(listAll(t, tr, admin, "?all_tenants=1")); n != 0 {
			t.Errorf("%d servers left after deleting all", n)
		}
	})
}

// TestMultiCreate boots ten servers in one request. Each host holds two
// m1.tiny, so a compute cell holds eight: the build must spill into the
// second cell.
func TestMultiCreate(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Host: config.HostSpec{RAMMB: 1024}})
	ctx := ctxT(t)
	sc := tr.Compute(demo)

	created, err := servers.Create(ctx, sc, servers.CreateOpts{Name: "batch", FlavorRef: "1", ImageRef: imageID, Min: 10, Max: 10}, nil).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}

	var all []servers.Server
	testpoll.Eventually(t, wait, "ten servers ACTIVE", func() (bool, string) {
		pages, err := servers.List(sc, servers.ListOpts{}).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		all, err = servers.ExtractServers(pages)
		if err != nil {
			return false, err.Error()
		}
		active := 0
		for _, s := range all {
			if s.Status == "ERROR" {
				t.Fatalf("server %s (%s) went to ERROR: %+v", s.ID, s.Name, s.Fault)
			}
			if s.Status == "ACTIVE" {
				active++
			}
		}
		return len(all) == 10 && active == 10, fmt.Sprintf("%d servers, %d ACTIVE", len(all), active)
	})
	if !slices.ContainsFunc(all, func(s servers.Server) bool { return s.ID == created.ID }) {
		t.Errorf("the server the create answered with (%s) is not among the ten", created.ID)
	}

	// Names follow Nova's multi_instance_display_name_template, %(name)s-%(count)d.
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	slices.Sort(names)
	for i := 1; i <= 10; i++ {
		if !slices.Contains(names, fmt.Sprintf("batch-%d", i)) {
			t.Errorf("no server named batch-%d among %v", i, names)
		}
	}

	// Both cells took part, and no address is handed out twice.
	pages, err := servers.List(tr.Compute(admin), servers.ListOpts{AllTenants: true}).AllPages(ctx)
	if err != nil {
		t.Fatalf("admin list: %v", err)
	}
	adm, err := servers.ExtractServers(pages)
	if err != nil {
		t.Fatalf("admin list: %v", err)
	}
	perCell := map[string]int{}
	perHost := map[string]int{}
	seen := map[string]string{}
	for _, s := range adm {
		cell, _, _ := strings.Cut(s.Host, "-")
		perCell[cell]++
		perHost[s.Host]++
		for _, a := range addresses(t, &s, "private") {
			if prev, dup := seen[a]; dup {
				t.Errorf("address %s given to both %s and %s", a, prev, s.ID)
			}
			seen[a] = s.ID
		}
	}
	if perCell["cell1"] == 0 || perCell["cell2"] == 0 || perCell["cell1"]+perCell["cell2"] != 10 {
		t.Errorf("servers per cell %v, want all ten spread over cell1 and cell2", perCell)
	}
	for h, n := range perHost {
		if n > 2 {
			t.Errorf("host %s holds %d m1.tiny but has room for 2: oversubscribed", h, n)
		}
	}

	// return_reservation_id answers with the reservation only.
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "resv", "flavorRef": "1", "imageRef": imageID, "min_count": 2, "max_count": 2, "return_reservation_id": true}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create with return_reservation_id: %s", r)
	}
	var resv map[string]any
	r.JSON(t, &resv)
	id, _ := resv["reservation_id"].(string)
	if len(resv) != 1 || !regexp.MustCompile(`^r-[0-9A-Za-z]{8}$`).MatchString(id) {
		t.Errorf("return_reservation_id answered %s, want {\"reservation_id\": \"r-xxxxxxxx\"}", r.Body)
	}
	testpoll.Eventually(t, wait, "twelve servers", func() (bool, string) {
		n := len(listAll(t, tr, demo, ""))
		return n == 12, fmt.Sprintf("%d servers", n)
	})

	var ids []string
	for _, s := range listAll(t, tr, demo, "") {
		ids = append(ids, s["id"].(string))
	}
	deleteAll(t, tr, demo, ids)

	// m1.small fits no host: the build ends in ERROR with Nova's fault,
	// and the server can still be deleted.
	t.Run("fits nowhere", func(t *testing.T) {
		id := create(t, tr, demo, map[string]any{"name": "big", "flavorRef": "2", "imageRef": imageID})
		s := waitStatus(t, sc, id, "ERROR")
		if s.Fault.Code != 500 || !strings.Contains(s.Fault.Message, "No valid host was found") || s.Fault.Created.IsZero() {
			t.Errorf("fault %+v, want code 500, No valid host was found, and a time", s.Fault)
		}
		if s.VmState != "error" || s.TaskState != "" || len(s.Addresses) != 0 {
			t.Errorf("vm_state %q task_state %q addresses %v", s.VmState, s.TaskState, s.Addresses)
		}
		as, err := servers.Get(ctx, tr.Compute(admin), id).Extract()
		if err != nil || as.Host != "" {
			t.Errorf("admin sees host %q (%v), want none", as.Host, err)
		}
		deleteAll(t, tr, demo, []string{id})
	})
}

// TestConcurrentCreates boots servers from many clients at once into
// cells with room for all of them.
func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Host: config.HostSpec{RAMMB: 1024}})
	const n = 14 // of 16 m1.tiny that fit
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := tr.Send(http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
				"name": fmt.Sprintf("c%d", i), "flavorRef": "1", "imageRef": imageID}})
			if err == nil && r.Status != http.StatusAccepted {
				err = fmt.Errorf("status %s", r)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("create %d: %v", i, err)
		}
	}
	testpoll.Eventually(t, wait, "every server ACTIVE", func() (bool, string) {
		var states []string
		active := 0
		for _, s := range listAll(t, tr, demo, "") {
			states = append(states, s["status"].(string))
			if s["status"] == "ACTIVE" {
				active++
			}
		}
		return active == n, strings.Join(states, " ")
	})
	perHost := map[string]int{}
	for _, s := range listAll(t, tr, admin, "?all_tenants=1") {
		perHost[s["OS-EXT-SRV-ATTR:host"].(string)]++
	}
	for h, c := range perHost {
		if c > 2 {
			t.Errorf("host %s holds %d m1.tiny but has room for 2", h, c)
		}
	}
}

// TestListAndIsolation walks pages with gophercloud and checks that a
// project sees only its own servers.
func TestListAndIsolation(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)

	// Seven servers: five from one request (they share a created_at, so the
	// marker must break ties) and two more on their own.
	create(t, tr, demo, map[string]any{"name": "p", "flavorRef": "1", "imageRef": imageID, "max_count": 5})
	create(t, tr, demo, map[string]any{"name": "q", "flavorRef": "1", "imageRef": imageID})
	create(t, tr, demo, map[string]any{"name": "r", "flavorRef": "1", "imageRef": imageID})
	mine := listAll(t, tr, demo, "")
	if len(mine) != 7 {
		t.Fatalf("demo lists %d servers, want 7", len(mine))
	}
	theirs := create(t, tr, other, map[string]any{"name": "theirs", "flavorRef": "1", "imageRef": imageID})

	t.Run("pages", func(t *testing.T) {
		for _, list := range []func(*gophercloud.ServiceClient, servers.ListOptsBuilder) pagination.Pager{servers.List, servers.ListSimple} {
			var ids []string
			pages := 0
			err := list(sc, servers.ListOpts{Limit: 3}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
				ss, err := servers.ExtractServers(p)
				if err != nil {
					return false, err
				}
				if len(ss) > 3 {
					t.Errorf("page of %d servers with limit 3", len(ss))
				}
				pages++
				for _, s := range ss {
					ids = append(ids, s.ID)
				}
				return true, nil
			})
			if err != nil {
				t.Fatalf("walk pages: %v", err)
			}
			if pages != 3 {
				t.Errorf("%d pages of at most 3 for 7 servers, want 3", pages)
			}
			want := make([]string, 0, len(mine))
			for _, s := range mine {
				want = append(want, s["id"].(string))
			}
			// The pages list the servers in the same order as one list.
			if !slices.Equal(ids, want) {
				t.Errorf("pages walked %v, want each of %v exactly once, in order", ids, want)
			}
		}

		// AllPages follows servers_links too.
		all, err := servers.List(sc, servers.ListOpts{Limit: 2}).AllPages(ctx)
		if err != nil {
			t.Fatalf("all pages: %v", err)
		}
		ss, err := servers.ExtractServers(all)
		if err != nil || len(ss) != 7 {
			t.Errorf("AllPages with limit 2: %d servers (%v), want 7", len(ss), err)
		}

		// The last page is short and has no next link; a full page does.
		r := tr.Do(t, http.MethodGet, "/v2.1/servers?limit=7", demo, nil)
		var page struct {
			Servers []map[string]any    `json:"servers"`
			Links   []map[string]string `json:"servers_links"`
		}
		r.JSON(t, &page)
		if len(page.Servers) != 7 || len(page.Links) != 1 || page.Links[0]["rel"] != "next" ||
			!strings.Contains(page.Links[0]["href"], "marker="+mine[6]["id"].(string)) {
			t.Errorf("limit=7 of 7: %s, want 7 servers and a next link with the last as marker", r.Body)
		}
		r = tr.Do(t, http.MethodGet, "/v2.1/servers?limit=8", demo, nil)
		page.Links = nil
		r.JSON(t, &page)
		if len(page.Servers) != 7 || page.Links != nil {
			t.Errorf("limit=8 of 7: %s, want 7 servers and no next link", r.Body)
		}
		// limit=0 lists nothing, as Nova.
		r = tr.Do(t, http.MethodGet, "/v2.1/servers?limit=0", demo, nil)
		page.Servers, page.Links = nil, nil
		r.JSON(t, &page)
		if r.Status != http.StatusOK || len(page.Servers) != 0 || page.Links != nil {
			t.Errorf("limit=0: %s, want an empty list", r)
		}
	})

	t.Run("bad paging", func(t *testing.T) {
		for _, q := range []string{"?marker=00000000-0000-0000-0000-000000000000", "?marker=nope", "?limit=-1", "?limit=x"} {
			for _, p := range []string{"/v2.1/servers", "/v2.1/servers/detail"} {
				msg := testtree.Fault(t, tr.Do(t, http.MethodGet, p+q, demo, nil), http.StatusBadRequest)
				if !strings.Contains(msg, "marker") && !strings.Contains(msg, "limit") {
					t.Errorf("GET %s%s: message %q names neither marker nor limit", p, q, msg)
				}
			}
		}
		// gophercloud surfaces it as a 400.
		err := servers.List(sc, servers.ListOpts{Marker: "00000000-0000-0000-0000-000000000000"}).EachPage(ctx,
			func(context.Context, pagination.Page) (bool, error) { return true, nil })
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Errorf("gophercloud list with a bad marker: %v, want a 400", err)
		}
	})

	t.Run("isolation", func(t *testing.T) {
		mineID := mine[0]["id"].(string)
		osc := tr.Compute(other)
		if _, err := servers.Get(ctx, osc, mineID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("other gets demo's server: %v, want a 404", err)
		}
		testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers/"+mineID, other, nil), http.StatusNotFound)
		testtree.Fault(t, tr.Do(t, http.MethodDelete, "/v2.1/servers/"+mineID, other, nil), http.StatusNotFound)
		if _, err := servers.Get(ctx, sc, mineID).Extract(); err != nil {
			t.Errorf("demo's server after other's delete: %v", err)
		}
		for _, s := range listAll(t, tr, other, "") {
			if s["tenant_id"] != "other" {
				t.Errorf("other lists a server of %v", s["tenant_id"])
			}
		}
		if n := len(listAll(t, tr, other, "")); n != 1 {
			t.Errorf("other lists %d servers, want its 1", n)
		}
		for _, s := range listAll(t, tr, demo, "") {
			if s["id"] == theirs {
				t.Errorf("demo lists other's server")
			}
		}
		// all_tenants is an admin's filter (Nova's
		// os_compute_api:servers:detail:get_all_tenants policy).
		testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers/detail?all_tenants=1", other, nil), http.StatusForbidden)
		testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers?all_tenants=1", other, nil), http.StatusForbidden)

		// An admin lists its own project alone, and everyone's with all_tenants.
		if n := len(listAll(t, tr, admin, "")); n != 0 {
			t.Errorf("admin lists %d servers of its own project, want 0", n)
		}
		all := listAll(t, tr, admin, "?all_tenants=1")
		if len(all) != 8 {
			t.Errorf("admin with all_tenants lists %d servers, want 8", len(all))
		}
		if !slices.ContainsFunc(all, func(s map[string]any) bool { return s["id"] == mineID }) {
			t.Errorf("admin with all_tenants does not list demo's server")
		}
		pages, err := servers.List(tr.Compute(admin), servers.ListOpts{AllTenants: true, Limit: 3}).AllPages(ctx)
		if err != nil {
			t.Fatalf("admin list: %v", err)
		}
		if ss, _ := servers.ExtractServers(pages); len(ss) != 8 {
			t.Errorf("admin with all_tenants over pages of 3 lists %d servers, want 8", len(ss))
		}
		if n := len(listAll(t, tr, admin, "?all_tenants=1&project_id=other")); n != 1 {
			t.Errorf("admin with all_tenants and project_id=other lists %d servers, want 1", n)
		}
		// all_tenants=0 is off (strutils.bool_from_string).
		if n := len(listAll(t, tr, admin, "?all_tenants=0")); n != 0 {
			t.Errorf("admin with all_tenants=0 lists %d servers, want 0", n)
		}
		as, err := servers.Get(ctx, tr.Compute(admin), mineID).Extract()
		if err != nil || as.TenantID != "demo" {
			t.Errorf("admin gets demo's server: %v %v", as, err)
		}

		// The project id may be in the URL, as Nova allows; it must be
		// the caller's.
		if r := tr.Do(t, http.MethodGet, "/v2.1/demo/servers/"+mineID, demo, nil); r.Status != http.StatusOK {
			t.Errorf("GET /v2.1/demo/servers/{id} as demo: %s", r)
		}
		testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/demo/servers/"+mineID, other, nil), http.StatusBadRequest)
	})
}

// addressShape is one entry of a server's addresses.
type addressShape struct {
	Version int    `json:"version"`
	Addr    string `json:"addr"`
	Type    string `json:"OS-EXT-IPS:type"`
	MAC     string `json:"OS-EXT-IPS-MAC:mac_addr"`
}

// TestServerView checks a server's fields as Nova shows them at 2.1.
func TestServerView(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "view", "flavorRef": "1", "imageRef": imageID, "metadata": map[string]string{"role": "db"}})
	waitStatus(t, sc, id, "ACTIVE")

	api := tr.APIURL()
	root := strings.TrimSuffix(api, "/v2.1")
	iso := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	isoMicro := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)

	check := func(t *testing.T, v map[string]any) {
		t.Helper()
		want := map[string]any{
			"id": id, "name": "view", "status": "ACTIVE", "tenant_id": "demo", "user_id": "demo",
			"OS-EXT-STS:vm_state": "active", "OS-EXT-STS:task_state": nil, "OS-EXT-STS:power_state": 1.0,
			"key_name": nil, "accessIPv4": "", "accessIPv6": "", "progress": 0.0, "OS-DCF:diskConfig": "MANUAL",
			"config_drive": "", "OS-SRV-USG:terminated_at": nil,
			// Nova shows the zone of the instance's host.
			"OS-EXT-AZ:availability_zone": "nova",
		}
		for k, w := range want {
			got, ok := v[k]
			if !ok {
				t.Errorf("field %s missing", k)
				continue
			}
			if got != w {
				t.Errorf("%s = %#v, want %#v", k, got, w)
			}
		}
		for _, k := range []string{"created", "updated"} {
			if s, _ := v[k].(string); !iso.MatchString(s) {
				t.Errorf("%s = %#v, want ISO 8601 with Z", k, v[k])
			}
		}
		if s, _ := v["OS-SRV-USG:launched_at"].(string); !isoMicro.MatchString(s) {
			t.Errorf("OS-SRV-USG:launched_at = %#v, want 2006-01-02T15:04:05.000000", v["OS-SRV-USG:launched_at"])
		}
		if m, _ := v["metadata"].(map[string]any); m["role"] != "db" || len(m) != 1 {
			t.Errorf("metadata = %v", v["metadata"])
		}
		if h, _ := v["hostId"].(string); !regexp.MustCompile(`^[0-9a-f]{56}$`).MatchString(h) {
			t.Errorf("hostId = %#v", v["hostId"])
		}
		for _, k := range []string{"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-SRV-ATTR:instance_name", "fault"} {
			if _, ok := v[k]; ok {
				t.Errorf("a non-admin sees %s", k)
			}
		}
		if sg, _ := json.Marshal(v["security_groups"]); string(sg) != `[{"name":"default"}]` {
			t.Errorf("security_groups = %s", sg)
		}
		if vols, ok := v["os-extended-volumes:volumes_attached"].([]any); !ok || len(vols) != 0 {
			t.Errorf("os-extended-volumes:volumes_attached = %#v, want []", v["os-extended-volumes:volumes_attached"])
		}

		// addresses: {"private": [{"version": 4, "addr": ..., "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": ...}]}
		b, _ := json.Marshal(v["addresses"])
		var addrs map[string][]addressShape
		if err := json.Unmarshal(b, &addrs); err != nil || len(addrs) != 1 || len(addrs["private"]) != 1 {
			t.Fatalf("addresses = %s, want one address in private", b)
		}
		a := addrs["private"][0]
		if a.Version != 4 || net.ParseIP(a.Addr).To4() == nil || a.Type != "fixed" {
			t.Errorf("address %+v, want version 4, an IPv4 addr, type fixed", a)
		}
		if _, err := net.ParseMAC(a.MAC); err != nil {
			t.Errorf("mac_addr %q: %v", a.MAC, err)
		}

		// links name the project, as Nova's do.
		wantLinks := []map[string]string{
			{"rel": "self", "href": api + "/demo/servers/" + id},
			{"rel": "bookmark", "href": root + "/demo/servers/" + id},
		}
		if b, w := mustJSON(v["links"]), mustJSON(wantLinks); b != w {
			t.Errorf("links = %s, want %s", b, w)
		}
		flavor, _ := v["flavor"].(map[string]any)
		if b, w := mustJSON(flavor), mustJSON(map[string]any{"id": "1", "links": []map[string]string{{"rel": "bookmark", "href": root + "/demo/flavors/1"}}}); b != w {
			t.Errorf("flavor = %s, want %s", b, w)
		}
		image, _ := v["image"].(map[string]any)
		if b, w := mustJSON(image), mustJSON(map[string]any{"id": imageID, "links": []map[string]string{{"rel": "bookmark", "href": root + "/demo/images/" + imageID}}}); b != w {
			t.Errorf("image = %s, want %s", b, w)
		}
	}

	t.Run("show", func(t *testing.T) {
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, demo, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("show: %s", r)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if r.Header.Get("X-Openstack-Request-Id") == "" || !strings.HasPrefix(r.Header.Get("X-Compute-Request-Id"), "req-") {
			t.Errorf("request id headers %v", r.Header)
		}
		var body struct {
			Server map[string]any `json:"server"`
		}
		r.JSON(t, &body)
		check(t, body.Server)
	})
	t.Run("detail", func(t *testing.T) {
		s := listAll(t, tr, demo, "")
		if len(s) != 1 {
			t.Fatalf("detail lists %d servers", len(s))
		}
		check(t, s[0])
	})
	t.Run("index", func(t *testing.T) {
		r := tr.Do(t, http.MethodGet, "/v2.1/servers", demo, nil)
		want := fmt.Sprintf(`{"servers":[{"id":%q,"links":[{"href":%q,"rel":"self"},{"href":%q,"rel":"bookmark"}],"name":"view"}]}`,
			id, api+"/demo/servers/"+id, root+"/demo/servers/"+id)
		if got := mustJSON(r.Map(t)); got != want {
			t.Errorf("index = %s, want %s", got, want)
		}
	})
	t.Run("admin", func(t *testing.T) {
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil)
		var body struct {
			Server map[string]any `json:"server"`
		}
		r.JSON(t, &body)
		v := body.Server
		if h, _ := v["OS-EXT-SRV-ATTR:host"].(string); !strings.HasPrefix(h, "cell1-host") && !strings.HasPrefix(h, "cell2-host") {
			t.Errorf("OS-EXT-SRV-ATTR:host = %#v", v["OS-EXT-SRV-ATTR:host"])
		}
		if v["OS-EXT-SRV-ATTR:instance_name"] != "instance-"+id[:8] {
			t.Errorf("OS-EXT-SRV-ATTR:instance_name = %#v", v["OS-EXT-SRV-ATTR:instance_name"])
		}
	})
	t.Run("gophercloud", func(t *testing.T) {
		s, err := servers.Get(ctxT(t), sc, id).Extract()
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if s.Created.IsZero() || s.Updated.Before(s.Created) || s.LaunchedAt.IsZero() || !s.TerminatedAt.IsZero() {
			t.Errorf("created %v updated %v launched %v terminated %v", s.Created, s.Updated, s.LaunchedAt, s.TerminatedAt)
		}
		if s.Metadata["role"] != "db" || s.Image["id"] != imageID || s.Flavor["id"] != "1" || s.KeyName != "" {
			t.Errorf("metadata %v image %v flavor %v key_name %q", s.Metadata, s.Image, s.Flavor, s.KeyName)
		}
		if s.DiskConfig != servers.Manual || s.ConfigDrive {
			t.Errorf("disk config %q config drive %v", s.DiskConfig, s.ConfigDrive)
		}
	})
	t.Run("create response", func(t *testing.T) {
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
			"name": "second", "flavorRef": root + "/flavors/1", "imageRef": imageID, "adminPass": "s3cret"}})
		if r.Status != http.StatusAccepted {
			t.Fatalf("create: %s", r)
		}
		var body struct {
			Server map[string]any `json:"server"`
		}
		r.JSON(t, &body)
		v := body.Server
		nid, _ := v["id"].(string)
		want := map[string]any{"id": nid, "adminPass": "s3cret", "OS-DCF:diskConfig": "MANUAL",
			"security_groups": []any{map[string]any{"name": "default"}},
			"links":           []any{map[string]any{"rel": "self", "href": api + "/demo/servers/" + nid}, map[string]any{"rel": "bookmark", "href": root + "/demo/servers/" + nid}}}
		if got, w := mustJSON(v), mustJSON(want); got != w {
			t.Errorf("create answered %s, want %s", got, w)
		}
		s := waitStatus(t, sc, nid, "ACTIVE")
		if s.Flavor["id"] != "1" {
			t.Errorf("a flavorRef given as a URL booted flavor %v, want 1", s.Flavor)
		}
	})
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// TestMicroversionChanges checks what the microversions up to 2.60 change
// in the server resource: extended attributes (2.3), host_status (2.16),
// required networks with auto and none (2.37), the embedded flavor (2.47)
// and the end of personality (2.57).
func TestMicroversionChanges(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	const hv = "OpenStack-API-Version"
	at := func(v string) []string { return []string{hv, "compute " + v} }
	post := func(token, ver string, server map[string]any) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{"server": server}, at(ver)...)
	}
	base := func(extra map[string]any) map[string]any {
		s := map[string]any{"name": "mv", "flavorRef": "1", "imageRef": imageID}
		for k, v := range extra {
			s[k] = v
		}
		return s
	}
	show := func(id, token, ver string) map[string]any {
		var out struct {
			Server map[string]any `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, token, nil, at(ver)...).JSON(t, &out)
		return out.Server
	}

	// 2.37: networks is required; auto and none are accepted.
	msg := testtree.Fault(t, post(demo, "2.37", base(nil)), http.StatusBadRequest)
	if !strings.Contains(msg, "'networks' is a required property") {
		t.Errorf("2.37 without networks: %q", msg)
	}
	testtree.Fault(t, post(demo, "2.37", base(map[string]any{"networks": "some"})), http.StatusBadRequest)
	testtree.Fault(t, post(demo, "2.36", base(map[string]any{"networks": "auto"})), http.StatusBadRequest)
	ids := map[string]string{}
	for _, mode := range []string{"auto", "none"} {
		r := post(demo, "2.37", base(map[string]any{"networks": mode}))
		if r.Status != http.StatusAccepted {
			t.Fatalf("2.37 networks %s: %s", mode, r)
		}
		var out struct{ Server struct{ ID string } }
		r.JSON(t, &out)
		ids[mode] = out.Server.ID
	}
	sc := tr.Compute(demo)
	for mode, id := range ids {
		s := waitStatus(t, sc, id, "ACTIVE")
		n := len(s.Addresses)
		if (mode == "none") != (n == 0) {
			t.Errorf("networks %s: addresses %v", mode, s.Addresses)
		}
	}
	id := ids["auto"]

	// 2.47: the flavor is embedded.
	old := show(id, demo, "2.46")["flavor"].(map[string]any)
	if old["id"] != "1" || old["links"] == nil || old["original_name"] != nil {
		t.Errorf("flavor at 2.46: %v", old)
	}
	emb := show(id, demo, "2.47")["flavor"].(map[string]any)
	if emb["original_name"] != "m1.tiny" || emb["ram"] != 512.0 || emb["vcpus"] != 1.0 || emb["id"] != nil {
		t.Errorf("flavor at 2.47: %v", emb)
	}
	if _, ok := emb["extra_specs"]; ok {
		t.Error("a member sees extra_specs in the embedded flavor")
	}
	if _, ok := show(id, admin, "2.47")["flavor"].(map[string]any)["extra_specs"]; !ok {
		t.Error("an admin does not see extra_specs in the embedded flavor")
	}

	// 2.3 and 2.16: admin-only attributes.
	v21, v23 := show(id, admin, "2.1"), show(id, admin, "2.16")
	if _, ok := v21["OS-EXT-SRV-ATTR:reservation_id"]; ok {
		t.Error("2.1 shows 2.3's attributes")
	}
	if v23["OS-EXT-SRV-ATTR:hostname"] != "mv" || v23["OS-EXT-SRV-ATTR:launch_index"] != 0.0 || v23["host_status"] != "UP" {
		t.Errorf("2.16 admin view: %v", v23)
	}
	if _, ok := show(id, demo, "2.16")["host_status"]; ok {
		t.Error("a member sees host_status")
	}

	// 2.19 description and 2.52 tags on create.
	testtree.Fault(t, post(demo, "2.18", base(map[string]any{"description": "d"})), http.StatusBadRequest)
	testtree.Fault(t, post(demo, "2.51", base(map[string]any{"networks": "auto", "tags": []string{"a"}})), http.StatusBadRequest)
	testtree.Fault(t, post(demo, "2.52", base(map[string]any{"networks": "auto", "tags": []string{"a/b"}})), http.StatusBadRequest)
	r := post(demo, "2.52", base(map[string]any{"networks": "auto", "description": "my box", "tags": []string{"web", "prod"}}))
	if r.Status != http.StatusAccepted {
		t.Fatalf("create with description and tags: %s", r)
	}
	var made struct{ Server struct{ ID string } }
	r.JSON(t, &made)
	got := show(made.Server.ID, demo, "2.52")
	if got["description"] != "my box" {
		t.Errorf("description = %v", got["description"])
	}
	if tags, _ := got["tags"].([]any); len(tags) != 2 {
		t.Errorf("tags = %v", got["tags"])
	}
	if d := show(id, demo, "2.19")["description"]; d != nil {
		t.Errorf("a 2.37 create without description shows %v, want null", d)
	}

	// 2.57: personality is gone.
	pers := []map[string]any{{"path": "/etc/motd", "contents": "aGk="}}
	testtree.Fault(t, post(demo, "2.57", base(map[string]any{"networks": "auto", "personality": pers})), http.StatusBadRequest)
	if r := post(demo, "2.56", base(map[string]any{"networks": "auto", "personality": pers})); r.Status != http.StatusAccepted {
		t.Errorf("2.56 with personality: %s", r)
	}
}
