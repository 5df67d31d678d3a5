package network_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// fullNetwork is a network with the extensions this API serves.
type fullNetwork struct {
	networks.Network
	external.NetworkExternalExt
	mtu.NetworkMTUExt
}

func listNetworks(t *testing.T, sc *gophercloud.ServiceClient, opts networks.ListOptsBuilder) []fullNetwork {
	t.Helper()
	pages, err := networks.List(sc, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list networks: %v", err)
	}
	var out []fullNetwork
	if err := networks.ExtractNetworksInto(pages, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) createNetwork(body map[string]any) string {
	e.t.Helper()
	r := e.do(http.MethodPost, "/networking/v2.0/networks", admin, map[string]any{"network": body})
	if r.status != http.StatusCreated {
		e.t.Fatalf("create network %v: %d %s", body, r.status, r.body)
	}
	var out struct {
		Network struct {
			ID string `json:"id"`
		} `json:"network"`
	}
	r.json(e.t, &out)
	return out.Network.ID
}

func TestListAndShowNetworks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sc := e.client(demo)

	// What `openstack network list` and terraform's data source do.
	nets := listNetworks(t, sc, networks.ListOpts{Name: "private"})
	if len(nets) != 1 {
		t.Fatalf("networks named private = %d", len(nets))
	}
	n := nets[0]
	if n.ID != e.private || !n.Shared || !n.AdminStateUp || n.Status != "ACTIVE" || n.External || n.MTU != 1500 ||
		n.TenantID != "admin" || n.ProjectID != "admin" || len(n.Subnets) != 1 || n.Subnets[0] != e.privateSubnet ||
		n.CreatedAt.IsZero() || n.RevisionNumber != 1 {
		t.Fatalf("private = %+v", n)
	}
	got, err := networks.Get(ctx, sc, e.private).Extract()
	if err != nil || got.Name != "private" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	// By name is a 404, as in Neutron: the CLI then lists with name=.
	if _, err := networks.Get(ctx, sc, "private").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get by name: %v", err)
	}

	// A network an admin made for project p1 (not shared): p1 and admins
	// see it, demo does not.
	p1net := e.createNetwork(map[string]any{"name": "p1-net", "tenant_id": "p1"})
	if len(listNetworks(t, sc, nil)) != 1 {
		t.Fatal("demo sees another project's network")
	}
	if _, err := networks.Get(ctx, sc, p1net).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("demo gets p1's network: %v", err)
	}
	if l := listNetworks(t, e.client("u:p1"), nil); len(l) != 2 {
		t.Fatalf("p1 sees %d networks; want 2", len(l))
	}
	if l := listNetworks(t, e.client(admin), nil); len(l) != 2 {
		t.Fatalf("admin sees %d networks; want 2", len(l))
	}

	shared, notShared := true, false
	for _, c := range []struct {
		opts networks.ListOptsBuilder
		want int
	}{
		{networks.ListOpts{Shared: &shared}, 1},
		{networks.ListOpts{Shared: &notShared}, 1},
		{networks.ListOpts{ProjectID: "p1"}, 1},
		{networks.ListOpts{TenantID: "admin"}, 1},
		{networks.ListOpts{ID: p1net}, 1},
		{networks.ListOpts{Status: "DOWN"}, 0},
		{networks.ListOpts{Tags: "red"}, 0},
		{networks.ListOpts{NotTags: "red"}, 2},
		{external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &notShared}, 2},
		{external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: &shared}, 0},
	} {
		if got := listNetworks(t, e.client(admin), c.opts); len(got) != c.want {
			t.Errorf("list %+v = %d networks; want %d", c.opts, len(got), c.want)
		}
	}

	// Several values of one filter are alternatives.
	r := e.do(http.MethodGet, "/networking/v2.0/networks?name=private&name=p1-net&fields=id&fields=name", admin, nil)
	var out struct {
		Networks []map[string]any `json:"networks"`
	}
	r.json(t, &out)
	if len(out.Networks) != 2 || len(out.Networks[0]) != 2 || out.Networks[0]["name"] == nil {
		t.Fatalf("two names, two fields = %s", r.body)
	}
	r = e.do(http.MethodGet, "/networking/v2.0/networks/"+e.private+"?fields=mtu", demo, nil)
	if r.status != 200 || string(r.body) != `{"network":{"mtu":1500}}`+"\n" {
		t.Fatalf("show with fields = %s", r.body)
	}

	// Bad filters are 400s that name the attribute.
	for q, want := range map[string]string{
		"shared=maybe":                    "shared",
		"provider:network_type=vlan":      "provider:network_type",
		"mtu=big":                         "mtu",
		"limit=-1":                        "limit",
		"sort_key=name":                   "sort_keys and sort_dirs",
		"sort_key=shared&sort_dir=asc":    "shared",
		"sort_key=name&sort_dir=sideways": "sideways",
	} {
		r := e.do(http.MethodGet, "/networking/v2.0/networks?"+q, demo, nil)
		if _, msg := r.fault(t, http.StatusBadRequest); !strings.Contains(msg, want) {
			t.Errorf("?%s: message %q does not name %q", q, msg, want)
		}
	}
}

func TestNetworkPagination(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 5 {
		e.createNetwork(map[string]any{"name": fmt.Sprintf("net-%d", i)})
	}
	sc := e.client(admin)
	// gophercloud follows networks_links until a short page.
	pages := 0
	var seen []string
	err := networks.List(sc, networks.ListOpts{Limit: 2}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ns, err := networks.ExtractNetworks(p)
		if err != nil {
			return false, err
		}
		pages++
		for _, n := range ns {
			seen = append(seen, n.ID)
		}
		return true, nil
	})
	if err != nil || pages != 3 || len(seen) != 6 {
		t.Fatalf("pages = %d, networks = %d, %v; want 3 pages of 6", pages, len(seen), err)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i-1] >= seen[i] {
			t.Fatalf("not in id order across pages: %v", seen)
		}
	}

	// The links, and paging backwards from a marker.
	r := e.do(http.MethodGet, "/networking/v2.0/networks?limit=2&fields=id", admin, nil)
	var out struct {
		Networks []map[string]string `json:"networks"`
		Links    []map[string]string `json:"networks_links"`
	}
	r.json(t, &out)
	if len(out.Networks) != 2 || len(out.Links) != 2 || out.Links[0]["rel"] != "next" ||
		!strings.HasPrefix(out.Links[0]["href"], e.srv.URL+"/networking/v2.0/networks?") ||
		!strings.Contains(out.Links[0]["href"], "marker="+out.Networks[1]["id"]) {
		t.Fatalf("first page = %s", r.body)
	}
	r = e.do(http.MethodGet, "/networking/v2.0/networks?limit=2&fields=id&page_reverse=true&marker="+seen[4], admin, nil)
	out.Networks = nil
	r.json(t, &out)
	if len(out.Networks) != 2 || out.Networks[0]["id"] != seen[2] || out.Networks[1]["id"] != seen[3] {
		t.Fatalf("reverse page before %s = %s", seen[4], r.body)
	}

	// Sorting by name, descending.
	r = e.do(http.MethodGet, "/networking/v2.0/networks?sort_key=name&sort_dir=desc&fields=name", admin, nil)
	out.Networks = nil
	r.json(t, &out)
	if len(out.Networks) != 6 || out.Networks[0]["name"] != "private" || out.Networks[5]["name"] != "net-0" {
		t.Fatalf("sorted by name desc = %s", r.body)
	}
	r = e.do(http.MethodGet, "/networking/v2.0/networks?limit=2&marker=00000000-0000-0000-0000-000000000000", admin, nil)
	if typ, _ := r.fault(t, http.StatusNotFound); typ != "NetworkNotFound" {
		t.Fatalf("unknown marker: %s", typ)
	}
}

func TestAdminManagesNetworks(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sc := e.client(admin)
	up, shared := true, false
	n, err := networks.Create(ctx, sc, networks.CreateOpts{Name: "lab", AdminStateUp: &up, Shared: &shared, Description: "a lab"}).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if n.Name != "lab" || n.ProjectID != "admin" || n.Shared || n.Status != "ACTIVE" || n.Description != "a lab" || len(n.Subnets) != 0 {
		t.Fatalf("created = %+v", n)
	}
	// A taken name is a conflict: compute cells know networks by name.
	_, err = networks.Create(ctx, sc, networks.CreateOpts{Name: "lab"}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("duplicate name: %v", err)
	}
	name, desc := "lab2", ""
	shared = true
	u, err := networks.Update(ctx, sc, n.ID, networks.UpdateOpts{Name: &name, Description: &desc, Shared: &shared}).Extract()
	if err != nil || u.Name != "lab2" || !u.Shared || u.Description != "" || u.RevisionNumber != 2 {
		t.Fatalf("update = %+v, %v", u, err)
	}
	r := e.do(http.MethodPut, "/networking/v2.0/networks/"+n.ID, admin, map[string]any{"network": map[string]any{"mtu": 9000}})
	var out struct{ Network map[string]any }
	r.json(t, &out)
	if r.status != 200 || out.Network["mtu"] != 9000.0 {
		t.Fatalf("update mtu = %d %s", r.status, r.body)
	}
	if err := networks.Delete(ctx, sc, n.ID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := networks.Get(ctx, sc, n.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := networks.Delete(ctx, sc, n.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("delete again: %v", err)
	}
}

// TestMembersChangeTheirProjectsNetworks: a member creates, updates and
// deletes networks of its project (Neutron's create_network and the like);
// shared and router:external set true are an admin's (403); another
// project's network it can see (shared) is a 403, one it cannot a 404.
func TestMembersChangeTheirProjectsNetworks(t *testing.T) {
	e := newEnv(t)
	p1net := e.createNetwork(map[string]any{"name": "p1-net", "project_id": "p1"})

	r := e.do(http.MethodPost, "/networking/v2.0/networks", demo, map[string]any{"network": map[string]any{"name": "mine"}})
	if r.status != http.StatusCreated {
		t.Fatalf("demo create: %d %s", r.status, r.body)
	}
	var out struct{ Network map[string]any }
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	mine, _ := out.Network["id"].(string)
	if out.Network["project_id"] != "demo" || out.Network["shared"] != false {
		t.Fatalf("demo's network: %s", r.body)
	}
	for _, c := range []struct {
		method, path string
		body         map[string]any
		want         string
	}{
		{http.MethodPost, "/networking/v2.0/networks", map[string]any{"name": "s", "shared": true}, "(rule:create_network and rule:create_network:shared) is disallowed by policy"},
		{http.MethodPost, "/networking/v2.0/networks", map[string]any{"name": "x", "router:external": true}, "(rule:create_network and rule:create_network:router:external) is disallowed by policy"},
		{http.MethodPut, "/networking/v2.0/networks/" + mine, map[string]any{"shared": true}, "(rule:update_network and rule:update_network:shared) is disallowed by policy"},
	} {
		r := e.do(c.method, c.path, demo, map[string]any{"network": c.body})
		if typ, msg := r.fault(t, http.StatusForbidden); typ != "PolicyNotAuthorized" || msg != c.want {
			t.Errorf("%s %s %v: %s %q", c.method, c.path, c.body, typ, msg)
		}
	}
	// shared false (its default) is anyone's.
	if r := e.do(http.MethodPost, "/networking/v2.0/networks", demo, map[string]any{"network": map[string]any{"name": "unshared", "shared": false}}); r.status != http.StatusCreated {
		t.Errorf("create shared=false: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodPut, "/networking/v2.0/networks/"+mine, demo, map[string]any{"network": map[string]any{"name": "mine2"}}); r.status != http.StatusOK {
		t.Errorf("update own network: %d %s", r.status, r.body)
	}
	// A network demo can see but does not own (shared): 403. One it
	// cannot see: 404.
	body := map[string]any{"network": map[string]any{"name": "theirs"}}
	r = e.do(http.MethodPut, "/networking/v2.0/networks/"+e.private, demo, body)
	if _, msg := r.fault(t, http.StatusForbidden); msg != "rule:update_network is disallowed by policy" {
		t.Errorf("update shared network: %q", msg)
	}
	r = e.do(http.MethodDelete, "/networking/v2.0/networks/"+e.private, demo, nil)
	r.fault(t, http.StatusForbidden)
	r = e.do(http.MethodDelete, "/networking/v2.0/networks/"+p1net, demo, nil)
	if typ, _ := r.fault(t, http.StatusNotFound); typ != "NetworkNotFound" {
		t.Fatalf("demo delete of p1's network: %s", typ)
	}
	// Its owner project's member deletes it.
	if r := e.do(http.MethodDelete, "/networking/v2.0/networks/"+p1net, "u:p1", nil); r.status != http.StatusNoContent {
		t.Errorf("p1 deletes its network: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodDelete, "/networking/v2.0/networks/"+mine, demo, nil); r.status != http.StatusNoContent {
		t.Errorf("demo deletes its network: %d %s", r.status, r.body)
	}
	if n := e.count("networks"); n != 2 {
		t.Fatalf("networks = %d; want 2 (private and unshared)", n)
	}
}

func TestBadNetworkInputIs400NamingTheField(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"name": 5}, "name"},
		{map[string]any{"name": strings.Repeat("n", 256)}, "name"},
		{map[string]any{"description": []int{1}}, "description"},
		{map[string]any{"admin_state_up": "maybe"}, "admin_state_up"},
		{map[string]any{"shared": map[string]any{}}, "shared"},
		{map[string]any{"mtu": "big"}, "mtu"},
		{map[string]any{"mtu": 20}, "mtu"},
		{map[string]any{"mtu": 65000}, "MTU"},
		{map[string]any{"router:external": true}, "router:external"},
		{map[string]any{"provider:network_type": "vlan"}, "provider:network_type"},
		{map[string]any{"status": "DOWN"}, "status"},
		{map[string]any{"id": "x"}, "id"},
		{map[string]any{"tenant_id": "a", "project_id": "b"}, "project_id"},
	} {
		r := e.do(http.MethodPost, "/networking/v2.0/networks", admin, map[string]any{"network": c.body})
		if _, msg := r.fault(t, http.StatusBadRequest); !strings.Contains(msg, c.field) {
			t.Errorf("%v: message %q does not name %q", c.body, msg, c.field)
		}
	}
	if n := e.count("networks"); n != 1 {
		t.Fatalf("networks = %d after refused creates; want 1", n)
	}
	r := e.do(http.MethodPut, "/networking/v2.0/networks/"+e.private, admin, map[string]any{"network": map[string]any{"tenant_id": "x"}})
	if _, msg := r.fault(t, http.StatusBadRequest); msg != "Cannot update read-only attribute tenant_id" {
		t.Fatalf("update tenant_id: %q", msg)
	}
}

func TestDeleteNetworkInUse(t *testing.T) {
	e := newEnv(t)
	const vm = "44444444-0000-0000-0000-000000000001"
	e.boot(vm, "demo", "active", "h1", wire.Address{Network: "private", Addr: "10.1.0.7", Version: 4, MAC: "fa:16:3e:00:00:07"})
	r := e.do(http.MethodDelete, "/networking/v2.0/networks/"+e.private, admin, nil)
	if typ, msg := r.fault(t, http.StatusConflict); typ != "NetworkInUse" || !strings.Contains(msg, e.private) {
		t.Fatalf("delete a network in use: %s %q", typ, msg)
	}
	r = e.do(http.MethodPut, "/networking/v2.0/networks/"+e.private, admin, map[string]any{"network": map[string]any{"shared": false}})
	if typ, _ := r.fault(t, http.StatusConflict); typ != "InvalidSharedSetting" {
		t.Fatalf("unshare a network demo uses: %s", typ)
	}
	if n := e.count("networks"); n != 1 {
		t.Fatalf("networks = %d; want 1", n)
	}
}

// TestIfMatchOnNetworksAndSubnets: an update or delete constrained to a
// revision the network or subnet has left is a 412 and changes nothing; at
// the current revision it goes through (Neutron's revision-if-match).
func TestIfMatchOnNetworksAndSubnets(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(admin)
		id := e.createNetwork(map[string]any{"name": "n1"})
		one, two := 1, 2
		name := "n2"
		n, err := networks.Update(ctx, sc, id, networks.UpdateOpts{Name: &name, RevisionNumber: &one}).Extract()
		if err != nil || n.Name != "n2" || n.RevisionNumber != 2 {
			t.Fatalf("update at revision 1 = %+v, %v", n, err)
		}
		name = "n3"
		_, err = networks.Update(ctx, sc, id, networks.UpdateOpts{Name: &name, RevisionNumber: &one}).Extract()
		neutronError(t, err, http.StatusPreconditionFailed, "HTTPPreconditionFailed", "Constrained to 1, but current revision is 2")
		r := e.doHeader(http.MethodDelete, "/networking/v2.0/networks/"+id, admin, nil, "If-Match", "revision_number=1")
		r.fault(t, http.StatusPreconditionFailed)
		if got, _ := networks.Get(ctx, sc, id).Extract(); got == nil || got.Name != "n2" {
			t.Fatalf("a refused update or delete wrote: %+v", got)
		}

		r = e.do(http.MethodPost, "/networking/v2.0/subnets", admin, map[string]any{"subnet": map[string]any{
			"network_id": id, "ip_version": 4, "cidr": "192.168.9.0/24"}})
		var out struct {
			Subnet struct {
				ID string `json:"id"`
			} `json:"subnet"`
		}
		r.json(t, &out)
		sub := out.Subnet.ID
		r = e.doHeader(http.MethodPut, "/networking/v2.0/subnets/"+sub, admin, map[string]any{"subnet": map[string]any{"name": "s"}},
			"If-Match", fmt.Sprintf("revision_number=%d", two))
		if typ, msg := r.fault(t, http.StatusPreconditionFailed); typ != "HTTPPreconditionFailed" || msg != "Constrained to 2, but current revision is 1" {
			t.Fatalf("stale subnet update: %s %q", typ, msg)
		}
		if r := e.doHeader(http.MethodDelete, "/networking/v2.0/subnets/"+sub, admin, nil, "If-Match", "revision_number=1"); r.status != http.StatusNoContent {
			t.Fatalf("delete at the current revision: %d %s", r.status, r.body)
		}
		if r := e.doHeader(http.MethodDelete, "/networking/v2.0/networks/"+id, admin, nil, "If-Match", `"revision_number=2"`); r.status != http.StatusNoContent {
			t.Fatalf("delete network at the current revision: %d %s", r.status, r.body)
		}
	})
}
