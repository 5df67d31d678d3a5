package network_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func listSubnets(t *testing.T, sc *gophercloud.ServiceClient, opts subnets.ListOpts) []subnets.Subnet {
	t.Helper()
	pages, err := subnets.List(sc, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list subnets: %v", err)
	}
	out, err := subnets.ExtractSubnets(pages)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSeededSubnet(t *testing.T) {
	e := newEnv(t)
	sc := e.client(demo)
	ss := listSubnets(t, sc, subnets.ListOpts{NetworkID: e.private})
	if len(ss) != 1 {
		t.Fatalf("subnets of private = %d", len(ss))
	}
	s := ss[0]
	if s.ID != e.privateSubnet || s.CIDR != "10.0.0.0/8" || s.IPVersion != 4 || s.GatewayIP != "10.0.0.1" || !s.EnableDHCP ||
		len(s.AllocationPools) != 1 || s.AllocationPools[0].Start != "10.0.0.2" || s.AllocationPools[0].End != "10.255.255.254" ||
		s.DNSNameservers == nil || s.HostRoutes == nil || s.ProjectID != "admin" {
		t.Fatalf("seeded subnet = %+v", s)
	}
	got, err := subnets.Get(context.Background(), sc, s.ID).Extract()
	if err != nil || got.CIDR != s.CIDR {
		t.Fatalf("get = %+v, %v", got, err)
	}
	// Filters, including "shared", which a subnet shows only through its
	// network.
	for q, want := range map[string]int{"cidr=10.0.0.0/8": 1, "ip_version=4": 1, "shared=true": 1, "shared=false": 0,
		"enable_dhcp=false": 0, "gateway_ip=10.0.0.1": 1} {
		var out struct {
			Subnets []map[string]any `json:"subnets"`
		}
		e.do(http.MethodGet, "/networking/v2.0/subnets?"+q, demo, nil).json(t, &out)
		if len(out.Subnets) != want {
			t.Errorf("?%s = %d subnets; want %d", q, len(out.Subnets), want)
		}
		for _, s := range out.Subnets {
			if _, ok := s["shared"]; ok {
				t.Errorf("a subnet shows shared: %v", s)
			}
		}
	}
}

func TestAdminManagesSubnets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sc := e.client(admin)
	netID := e.createNetwork(map[string]any{"name": "lab", "tenant_id": "p1"})
	s, err := subnets.Create(ctx, sc, subnets.CreateOpts{NetworkID: netID, CIDR: "192.168.10.0/24", IPVersion: gophercloud.IPv4,
		Name: "lab-subnet", DNSNameservers: []string{"192.168.10.53"}, TenantID: "p1"}).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if s.GatewayIP != "192.168.10.1" || len(s.AllocationPools) != 1 || s.AllocationPools[0].Start != "192.168.10.2" ||
		s.AllocationPools[0].End != "192.168.10.254" || s.NetworkID != netID || s.ProjectID != "p1" || !s.EnableDHCP {
		t.Fatalf("created = %+v", s)
	}
	// The network lists it; p1 sees it, demo does not.
	r := e.do(http.MethodGet, "/networking/v2.0/networks/"+netID+"?fields=subnets", admin, nil)
	if !strings.Contains(string(r.body), s.ID) {
		t.Fatalf("network's subnets = %s", r.body)
	}
	if l := listSubnets(t, e.client("u:p1"), subnets.ListOpts{}); len(l) != 2 {
		t.Fatalf("p1 sees %d subnets; want 2", len(l))
	}
	if l := listSubnets(t, e.client(demo), subnets.ListOpts{}); len(l) != 1 {
		t.Fatalf("demo sees %d subnets; want 1", len(l))
	}
	if _, err := subnets.Get(ctx, e.client(demo), s.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("demo gets p1's subnet: %v", err)
	}

	name := "renamed"
	dns := []string{}
	noGateway := ""
	u, err := subnets.Update(ctx, sc, s.ID, subnets.UpdateOpts{Name: &name, DNSNameservers: &dns, GatewayIP: &noGateway}).Extract()
	if err != nil || u.Name != "renamed" || len(u.DNSNameservers) != 0 || u.RevisionNumber != 2 {
		t.Fatalf("update = %+v, %v", u, err)
	}
	r = e.do(http.MethodGet, "/networking/v2.0/subnets/"+s.ID+"?fields=gateway_ip", admin, nil)
	if string(r.body) != `{"subnet":{"gateway_ip":null}}`+"\n" {
		t.Fatalf("gateway after removing it = %s", r.body)
	}
	if err := subnets.Delete(ctx, sc, s.ID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := subnets.Get(ctx, sc, s.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

// TestMembersChangeSubnetsOfTheirNetworks: a member creates subnets on
// its project's networks and updates and deletes them (Neutron's
// ADMIN_OR_NET_OWNER_MEMBER); on a shared network of another project it is
// a 403, on one it cannot see a 404.
func TestMembersChangeSubnetsOfTheirNetworks(t *testing.T) {
	e := newEnv(t)
	body := map[string]any{"subnet": map[string]any{"network_id": e.private, "ip_version": 4, "cidr": "192.168.0.0/24"}}
	r := e.do(http.MethodPost, "/networking/v2.0/subnets", demo, body)
	if typ, msg := r.fault(t, http.StatusForbidden); typ != "PolicyNotAuthorized" || msg != "rule:create_subnet is disallowed by policy" {
		t.Fatalf("demo create on private: %s %q", typ, msg)
	}
	r = e.do(http.MethodDelete, "/networking/v2.0/subnets/"+e.privateSubnet, demo, nil)
	r.fault(t, http.StatusForbidden)
	r = e.do(http.MethodPut, "/networking/v2.0/subnets/"+e.privateSubnet, demo, map[string]any{"subnet": map[string]any{"name": "x"}})
	r.fault(t, http.StatusForbidden)
	p1net := e.createNetwork(map[string]any{"name": "p1-net", "project_id": "p1"})
	r = e.do(http.MethodPost, "/networking/v2.0/subnets", demo, map[string]any{"subnet": map[string]any{"network_id": p1net, "ip_version": 4, "cidr": "192.168.1.0/24"}})
	if typ, _ := r.fault(t, http.StatusNotFound); typ != "NetworkNotFound" {
		t.Errorf("demo create on p1's network: %s", typ)
	}

	r = e.do(http.MethodPost, "/networking/v2.0/networks", demo, map[string]any{"network": map[string]any{"name": "mine"}})
	var n struct{ Network struct{ ID string } }
	if err := json.Unmarshal(r.body, &n); err != nil || r.status != http.StatusCreated {
		t.Fatalf("create network: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/networking/v2.0/subnets", demo, map[string]any{"subnet": map[string]any{"network_id": n.Network.ID, "ip_version": 4, "cidr": "192.168.2.0/24"}})
	var s struct{ Subnet map[string]any }
	if err := json.Unmarshal(r.body, &s); err != nil || r.status != http.StatusCreated {
		t.Fatalf("create subnet on own network: %d %s", r.status, r.body)
	}
	id, _ := s.Subnet["id"].(string)
	if s.Subnet["project_id"] != "demo" {
		t.Errorf("subnet's project: %v", s.Subnet["project_id"])
	}
	if r := e.do(http.MethodPut, "/networking/v2.0/subnets/"+id, demo, map[string]any{"subnet": map[string]any{"name": "x"}}); r.status != http.StatusOK {
		t.Errorf("update own subnet: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodDelete, "/networking/v2.0/subnets/"+id, "u:p1", nil); r.status != http.StatusNotFound {
		t.Errorf("another project deletes demo's subnet: %d %s", r.status, r.body)
	}
	if r := e.do(http.MethodDelete, "/networking/v2.0/subnets/"+id, demo, nil); r.status != http.StatusNoContent {
		t.Errorf("delete own subnet: %d %s", r.status, r.body)
	}
	if n := e.count("subnets"); n != 1 {
		t.Fatalf("subnets = %d; want 1", n)
	}
}
func TestBadSubnetInputIs400NamingTheField(t *testing.T) {
	e := newEnv(t)
	lab := e.createNetwork(map[string]any{"name": "lab"})
	base := func(extra map[string]any) map[string]any {
		b := map[string]any{"network_id": lab, "ip_version": 4, "cidr": "192.168.0.0/24"}
		for k, v := range extra {
			if v == nil {
				delete(b, k)
				continue
			}
			b[k] = v
		}
		return b
	}
	for _, c := range []struct {
		body   map[string]any
		status int
		typ    string
		field  string
	}{
		{base(map[string]any{"network_id": nil}), 400, "HTTPBadRequest", "network_id"},
		{base(map[string]any{"ip_version": nil}), 400, "HTTPBadRequest", "ip_version"},
		{base(map[string]any{"network_id": "lab"}), 400, "HTTPBadRequest", "network_id"},
		{base(map[string]any{"network_id": "00000000-0000-0000-0000-00000000dead"}), 404, "NetworkNotFound", "00000000-0000-0000-0000-00000000dead"},
		{base(map[string]any{"ip_version": 6}), 400, "HTTPBadRequest", "ip_version"},
		{base(map[string]any{"ip_version": "four"}), 400, "InvalidInput", "ip_version"},
		{base(map[string]any{"cidr": nil}), 400, "BadRequest", "cidr"},
		{base(map[string]any{"cidr": "192.168.0.0/33"}), 400, "HTTPBadRequest", "cidr"},
		{base(map[string]any{"cidr": "192.168.0.7/24"}), 400, "HTTPBadRequest", "cidr"},
		{base(map[string]any{"cidr": 7}), 400, "HTTPBadRequest", "cidr"},
		{base(map[string]any{"gateway_ip": "192.168.1.1"}), 400, "InvalidInput", "Gateway"},
		{base(map[string]any{"gateway_ip": 12}), 400, "HTTPBadRequest", "gateway_ip"},
		{base(map[string]any{"allocation_pools": []any{map[string]any{"start": "192.168.0.10"}}}), 400, "HTTPBadRequest", "allocation_pools"},
		{base(map[string]any{"allocation_pools": []any{map[string]any{"start": "192.168.0.10", "end": "192.168.1.10"}}}), 400, "OutOfBoundsAllocationPool", "192.168.0.0/24"},
		{base(map[string]any{"allocation_pools": []any{map[string]any{"start": "192.168.0.1", "end": "192.168.0.10"}}}), 409, "GatewayConflictWithAllocationPools", "192.168.0.1"},
		{base(map[string]any{"dns_nameservers": []any{"nameserver"}}), 400, "HTTPBadRequest", "dns_nameservers"},
		{base(map[string]any{"host_routes": []any{map[string]any{"destination": "x", "nexthop": "192.168.0.1"}}}), 400, "HTTPBadRequest", "host_routes"},
		{base(map[string]any{"enable_dhcp": "perhaps"}), 400, "InvalidInput", "enable_dhcp"},
		{base(map[string]any{"shared": true}), 400, "HTTPBadRequest", "shared"},
		{base(map[string]any{"segment_id": "x"}), 400, "HTTPBadRequest", "segment_id"},
		{base(map[string]any{"subnetpool_id": "pool"}), 404, "SubnetPoolNotFound", "pool"},
		{base(map[string]any{"ipv6_ra_mode": "slaac"}), 400, "InvalidInput", "ipv6_ra_mode"},
	} {
		r := e.do(http.MethodPost, "/networking/v2.0/subnets", admin, map[string]any{"subnet": c.body})
		typ, msg := r.fault(t, c.status)
		if typ != c.typ || !strings.Contains(msg, c.field) {
			t.Errorf("%v: %s %q; want %s naming %q", c.body, typ, msg, c.typ, c.field)
		}
	}
	// Overlapping another subnet of the same network.
	if r := e.do(http.MethodPost, "/networking/v2.0/subnets", admin, map[string]any{"subnet": base(nil)}); r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r := e.do(http.MethodPost, "/networking/v2.0/subnets", admin, map[string]any{"subnet": base(map[string]any{"cidr": "192.168.0.128/25"})})
	if typ, msg := r.fault(t, http.StatusBadRequest); typ != "InvalidInput" || !strings.Contains(msg, "overlaps") {
		t.Fatalf("overlap: %s %q", typ, msg)
	}
	if n := e.count("subnets"); n != 2 {
		t.Fatalf("subnets = %d; want 2 (the seeded one and one good one)", n)
	}
}

func TestDeleteSubnetInUse(t *testing.T) {
	e := newEnv(t)
	e.boot("55555555-0000-0000-0000-000000000001", "demo", "active", "h1", wire.Address{Network: "private", Addr: "10.1.0.9", Version: 4})
	r := e.do(http.MethodDelete, "/networking/v2.0/subnets/"+e.privateSubnet, admin, nil)
	if typ, _ := r.fault(t, http.StatusConflict); typ != "SubnetInUse" {
		t.Fatalf("delete a subnet in use: %s", typ)
	}
}
