package network_test

import (
	"context"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const (
	vmDemo  = "66666666-0000-0000-0000-000000000001"
	vmDemo2 = "66666666-0000-0000-0000-000000000002"
	vmOther = "66666666-0000-0000-0000-000000000003"
)

type boundPort struct {
	ports.Port
	portsbinding.PortsBindingExt
}

func listPorts(t *testing.T, sc *gophercloud.ServiceClient, opts ports.ListOpts) []boundPort {
	t.Helper()
	pages, err := ports.List(sc, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list ports %+v: %v", opts, err)
	}
	var out []boundPort
	if err := ports.ExtractPortsInto(pages, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// servers boots three servers: two of demo's (one active, one building)
// and one of other's.
func servers(e *env) {
	e.boot(vmDemo, "demo", "active", "host-1", wire.Address{Network: "private", Addr: "10.1.0.2", Version: 4, MAC: "fa:16:3e:aa:00:01"})
	e.boot(vmDemo2, "demo", "building", "", wire.Address{Network: "private", Addr: "10.2.0.2", Version: 4, MAC: "fa:16:3e:aa:00:02"})
	e.boot(vmOther, "other", "active", "host-2", wire.Address{Network: "private", Addr: "10.1.0.3", Version: 4, MAC: "fa:16:3e:aa:00:03"})
}

func TestPortsOfServers(t *testing.T) {
	e := newEnv(t)
	servers(e)
	ctx := context.Background()
	sc := e.client(demo)

	// What `openstack port list --server X` asks.
	ps := listPorts(t, sc, ports.ListOpts{DeviceID: vmDemo})
	if len(ps) != 1 {
		t.Fatalf("ports of %s = %d", vmDemo, len(ps))
	}
	p := ps[0]
	if p.ID != netdb.PortID(vmDemo, "private", "10.1.0.2") || p.NetworkID != e.private || p.DeviceID != vmDemo ||
		p.DeviceOwner != "compute:nova" || p.MACAddress != "fa:16:3e:aa:00:01" || p.Status != "ACTIVE" || !p.AdminStateUp ||
		p.ProjectID != "demo" || p.TenantID != "demo" || len(p.FixedIPs) != 1 ||
		p.FixedIPs[0].SubnetID != e.privateSubnet || p.FixedIPs[0].IPAddress != "10.1.0.2" {
		t.Fatalf("port = %+v", p)
	}
	if p.HostID != "" || p.VNICType != "normal" {
		t.Fatalf("demo sees binding %+v; want only the vnic type", p.PortsBindingExt)
	}
	got, err := ports.Get(ctx, sc, p.ID).Extract()
	if err != nil || got.DeviceID != vmDemo {
		t.Fatalf("get = %+v, %v", got, err)
	}

	// Projects see their own ports; admins see every port and its host.
	if l := listPorts(t, sc, ports.ListOpts{}); len(l) != 2 {
		t.Fatalf("demo sees %d ports; want 2", len(l))
	}
	if l := listPorts(t, sc, ports.ListOpts{DeviceID: vmOther}); len(l) != 0 {
		t.Fatalf("demo sees other's ports: %+v", l)
	}
	otherPort := netdb.PortID(vmOther, "private", "10.1.0.3")
	if _, err := ports.Get(ctx, sc, otherPort).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("demo gets other's port: %v", err)
	}
	all := listPorts(t, e.client(admin), ports.ListOpts{})
	if len(all) != 3 {
		t.Fatalf("admin sees %d ports; want 3", len(all))
	}
	for _, p := range all {
		if p.DeviceID == vmOther && (p.HostID != "host-2" || p.VIFType != "ovs") {
			t.Fatalf("admin's view of other's port = %+v", p)
		}
		if p.DeviceID == vmDemo2 && (p.Status != "DOWN" || p.VIFType != "unbound") {
			t.Fatalf("port of a building server = %+v", p)
		}
	}

	for _, c := range []struct {
		opts ports.ListOpts
		want int
	}{
		{ports.ListOpts{NetworkID: e.private}, 3},
		{ports.ListOpts{MACAddress: "FA:16:3E:AA:00:03"}, 1},
		{ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.2.0.2"}}}, 1},
		{ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.2.0.2", SubnetID: e.privateSubnet}}}, 1},
		{ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddressSubstr: "10.1."}}}, 2},
		{ports.ListOpts{ProjectID: "other"}, 1},
		{ports.ListOpts{TenantID: "demo", Status: "ACTIVE"}, 1},
		{ports.ListOpts{DeviceOwner: "compute:nova"}, 3},
		{ports.ListOpts{ID: otherPort}, 1},
	} {
		if l := listPorts(t, e.client(admin), c.opts); len(l) != c.want {
			t.Errorf("admin list %+v = %d ports; want %d", c.opts, len(l), c.want)
		}
	}
	r := e.do(http.MethodGet, "/networking/v2.0/ports?binding:host_id=host-2", admin, nil)
	if !strings.Contains(string(r.body), vmOther) || strings.Contains(string(r.body), vmDemo) {
		t.Fatalf("admin filter by host = %s", r.body)
	}
	r = e.do(http.MethodGet, "/networking/v2.0/ports?binding:host_id=host-1", demo, nil)
	if r.status != 200 || string(r.body) != `{"ports":[]}`+"\n" {
		t.Fatalf("demo filter by host = %s", r.body)
	}
	r = e.do(http.MethodGet, "/networking/v2.0/ports?fixed_ips=10.1.0.2", admin, nil)
	if _, msg := r.fault(t, http.StatusBadRequest); !strings.Contains(msg, "fixed_ips") {
		t.Fatalf("bad fixed_ips filter: %q", msg)
	}

	// Paging: one port a page, three pages, each port once.
	pager := ports.List(e.client(admin), ports.ListOpts{Limit: 1})
	pages, err := pager.AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	paged, _ := ports.ExtractPorts(pages)
	if len(paged) != 3 || paged[0].ID >= paged[1].ID || paged[1].ID >= paged[2].ID {
		t.Fatalf("paged ports = %+v", paged)
	}
}

// smallNetwork makes a network of project demo (shared when asked) with
// one subnet of cidr, and returns their ids.
func smallNetwork(t *testing.T, e *env, name, cidr string, shared bool) (netID, subnetID string) {
	t.Helper()
	ctx := context.Background()
	sc := e.client(admin)
	n, err := networks.Create(ctx, sc, networks.CreateOpts{Name: name, Shared: &shared, ProjectID: "demo"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s, err := subnets.Create(ctx, sc, subnets.CreateOpts{NetworkID: n.ID, CIDR: cidr, IPVersion: gophercloud.IPv4, ProjectID: "demo"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return n.ID, s.ID
}

func addrs(p *ports.Port) []string {
	var out []string
	for _, ip := range p.FixedIPs {
		out = append(out, ip.IPAddress)
	}
	return out
}

func TestCreatePortAddresses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		netID, subnetID := smallNetwork(t, e, "lab", "192.168.9.0/24", false)

		// No fixed_ips: the lowest free address of the API cell's blocks.
		p1, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: netID, Name: "p1"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if got := addrs(p1); len(got) != 1 || got[0] != "192.168.9.2" || p1.FixedIPs[0].SubnetID != subnetID {
			t.Fatalf("first port's addresses = %+v", p1.FixedIPs)
		}
		if p1.Status != "DOWN" || p1.DeviceID != "" || !strings.HasPrefix(p1.MACAddress, "fa:16:3e:") || len(p1.SecurityGroups) != 1 ||
			p1.ProjectID != "demo" || p1.Name != "p1" || !p1.AdminStateUp {
			t.Fatalf("new port = %+v", p1)
		}
		// By subnet: the next one.
		p2, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: netID, FixedIPs: []ports.IP{{SubnetID: subnetID}}}).Extract()
		if err != nil || addrs(p2)[0] != "192.168.9.3" {
			t.Fatalf("port by subnet = %+v, %v", p2, err)
		}
		// By address.
		p3, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: netID, FixedIPs: []ports.IP{{IPAddress: "192.168.9.200"}}}).Extract()
		if err != nil || addrs(p3)[0] != "192.168.9.200" || p3.FixedIPs[0].SubnetID != subnetID {
			t.Fatalf("port by address = %+v, %v", p3, err)
		}
		// Shown as created.
		got, err := ports.Get(ctx, sc, p3.ID).Extract()
		if err != nil || addrs(got)[0] != "192.168.9.200" {
			t.Fatalf("show = %+v, %v", got, err)
		}

		before := e.count("ports")
		for _, c := range []struct {
			ips    []ports.IP
			status int
			typ    string
		}{
			{[]ports.IP{{IPAddress: "192.168.9.200"}}, http.StatusConflict, "IpAddressAlreadyAllocated"},
			{[]ports.IP{{IPAddress: "192.168.9.2", SubnetID: subnetID}}, http.StatusConflict, "IpAddressAlreadyAllocated"},
			{[]ports.IP{{IPAddress: "192.168.10.5"}}, http.StatusBadRequest, "InvalidIpForNetwork"},
			{[]ports.IP{{IPAddress: "192.168.10.5", SubnetID: subnetID}}, http.StatusBadRequest, "InvalidIpForSubnet"},
			{[]ports.IP{{IPAddress: "192.168.9.255"}}, http.StatusBadRequest, "InvalidIpForNetwork"},
			{[]ports.IP{{SubnetID: e.privateSubnet}}, http.StatusBadRequest, "InvalidInput"},
			{[]ports.IP{{SubnetID: "00000000-0000-0000-0000-00000000dead"}}, http.StatusNotFound, "SubnetNotFound"},
		} {
			r := e.do(http.MethodPost, "/networking/v2.0/ports", demo, map[string]any{"port": map[string]any{"network_id": netID, "fixed_ips": c.ips}})
			if typ, msg := r.fault(t, c.status); typ != c.typ {
				t.Errorf("fixed_ips %+v: %s %q; want %s", c.ips, typ, msg, c.typ)
			}
		}
		if n := e.count("ports"); n != before {
			t.Fatalf("refused creates wrote ports: %d, had %d", n, before)
		}

		// Deleting a port frees its address.
		if err := ports.Delete(ctx, sc, p1.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		p4, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: netID}).Extract()
		if err != nil || addrs(p4)[0] != "192.168.9.2" {
			t.Fatalf("port after a delete = %+v, %v", p4, err)
		}
		if _, err := ports.Get(ctx, sc, p1.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("deleted port: %v", err)
		}
	})
}

// TestAddressOfACellsBlockIsReservedThere: an address asked for whose
// block a cell holds is reserved in that cell (the reserve_address call)
// before the port is recorded: taken there is Neutron's 409, a cell that
// does not answer a 503, and neither writes anything; a create refused
// after the reservation releases it (release_addresses), as does the
// port's deletion, once however often it is asked. (The API cell dying
// between the call and its transaction leaves the reservation in the
// cell: one address not handed out.)
func TestAddressOfACellsBlockIsReservedThere(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sc := e.client(admin)
	// A cell holds the block 10.7.0.0/24 of private.
	err := e.d.InTx(ctx, func(tx *db.Tx) error {
		_, err := netdb.LeaseBlockOf(ctx, tx, e.privateSubnet, "api!cell1", netip.MustParseAddr("10.7.0.1"), t0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: e.private, FixedIPs: []ports.IP{{IPAddress: "10.7.0.5"}}}).Extract()
	if err != nil || addrs(p)[0] != "10.7.0.5" {
		t.Fatalf("port in a cell's block = %+v, %v", p, err)
	}
	if want := "api!cell1 10.7.0.5 " + p.ID; len(e.cells.reserved) != 1 || e.cells.reserved[0] != want {
		t.Fatalf("reservations = %q; want %q", e.cells.reserved, want)
	}
	// The cell has given 10.7.0.6 to an instance: Neutron's conflict, and
	// nothing written.
	e.cells.taken["api!cell1 10.7.0.6"] = true
	before := e.count("ports")
	r := e.do(http.MethodPost, "/networking/v2.0/ports", admin, map[string]any{"port": map[string]any{"network_id": e.private,
		"fixed_ips": []map[string]string{{"ip_address": "10.7.0.6"}}}})
	if typ, msg := r.fault(t, http.StatusConflict); typ != "IpAddressAlreadyAllocated" || !strings.Contains(msg, "10.7.0.6") {
		t.Fatalf("taken in the cell: %s %q", typ, msg)
	}
	// The cell does not answer: 503, nothing written.
	e.cells.down = true
	r = e.do(http.MethodPost, "/networking/v2.0/ports", admin, map[string]any{"port": map[string]any{"network_id": e.private,
		"fixed_ips": []map[string]string{{"ip_address": "10.7.0.7"}}}})
	r.fault(t, http.StatusServiceUnavailable)
	e.cells.down = false
	if n := e.count("ports"); n != before {
		t.Fatalf("refused creates wrote ports: %d, had %d", n, before)
	}
	// A create refused after the cell reserved its address (here its MAC
	// is taken) releases the reservation.
	r = e.do(http.MethodPost, "/networking/v2.0/ports", admin, map[string]any{"port": map[string]any{"network_id": e.private,
		"mac_address": p.MACAddress, "fixed_ips": []map[string]string{{"ip_address": "10.7.0.8"}}}})
	if typ, _ := r.fault(t, http.StatusConflict); typ != "MacAddressInUse" {
		t.Fatalf("a refused create in a cell's block: %s", typ)
	}
	if len(e.cells.reserved) != 2 || !strings.HasPrefix(e.cells.reserved[1], "api!cell1 10.7.0.8 ") ||
		len(e.cells.released) != 1 || "api!cell1 "+strings.Fields(e.cells.reserved[1])[2] != e.cells.released[0] {
		t.Fatalf("reserved %q, released %q; want 10.7.0.8's reservation released", e.cells.reserved, e.cells.released)
	}
	if n := e.count("ports"); n != before {
		t.Fatalf("refused creates wrote ports: %d, had %d", n, before)
	}
	e.cells.reserved, e.cells.released = e.cells.reserved[:1], nil

	// A port with an address a cell reserved keeps its addresses.
	r = e.do(http.MethodPut, "/networking/v2.0/ports/"+p.ID, admin, map[string]any{"port": map[string]any{"fixed_ips": []map[string]string{{"ip_address": "10.7.0.9"}}}})
	r.fault(t, http.StatusConflict)
	if len(e.cells.reserved) != 1 {
		t.Fatalf("reservations = %q", e.cells.reserved)
	}
	// Another port may take an address of the cell's block by an update.
	q, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: e.private}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	q, err = ports.Update(ctx, sc, q.ID, ports.UpdateOpts{FixedIPs: []ports.IP{{IPAddress: "10.7.0.9"}}}).Extract()
	if err != nil || addrs(q)[0] != "10.7.0.9" || len(e.cells.reserved) != 2 || e.cells.reserved[1] != "api!cell1 10.7.0.9 "+q.ID {
		t.Fatalf("update into the cell's block = %+v, %v; reservations %q", q, err, e.cells.reserved)
	}
	if err := ports.Delete(ctx, sc, q.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.cells.released = nil

	// Deleting the port releases its address in the cell, once.
	if err := ports.Delete(ctx, sc, p.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if want := "api!cell1 " + p.ID; len(e.cells.released) != 1 || e.cells.released[0] != want {
		t.Fatalf("releases = %q; want %q", e.cells.released, want)
	}
	if err := ports.Delete(ctx, sc, p.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if len(e.cells.released) != 1 {
		t.Fatalf("released twice: %q", e.cells.released)
	}
}

func TestPortsOfOtherProjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	theirs, err := ports.Create(ctx, e.client(other), ports.CreateOpts{NetworkID: e.private}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sc := e.client(demo)
	name := "mine"
	if _, err := ports.Get(ctx, sc, theirs.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get another project's port: %v", err)
	}
	if _, err := ports.Update(ctx, sc, theirs.ID, ports.UpdateOpts{Name: &name}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("update another project's port: %v", err)
	}
	if err := ports.Delete(ctx, sc, theirs.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("delete another project's port: %v", err)
	}
	if l := listPorts(t, sc, ports.ListOpts{}); len(l) != 0 {
		t.Fatalf("demo lists %+v", l)
	}
	// Another project's security group, or a network the caller cannot
	// see: Neutron's 404, and nothing written.
	g, err := groups.Create(ctx, e.client(other), groups.CreateOpts{Name: "web"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	lab, _ := smallNetwork(t, e, "lab", "192.168.9.0/24", false)
	before := e.count("ports")
	r := e.do(http.MethodPost, "/networking/v2.0/ports", demo, map[string]any{"port": map[string]any{"network_id": e.private, "security_groups": []string{g.ID}}})
	if typ, _ := r.fault(t, http.StatusNotFound); typ != "SecurityGroupNotFound" {
		t.Fatalf("another project's group: %s", typ)
	}
	r = e.do(http.MethodPost, "/networking/v2.0/ports", other, map[string]any{"port": map[string]any{"network_id": lab}})
	if typ, _ := r.fault(t, http.StatusNotFound); typ != "NetworkNotFound" {
		t.Fatalf("a network the caller cannot see: %s", typ)
	}
	mine, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: e.private}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ports.Update(ctx, sc, mine.ID, ports.UpdateOpts{SecurityGroups: &[]string{g.ID}}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("update to another project's group: %v", err)
	}
	if n := e.count("ports"); n != before+1 {
		t.Fatalf("ports = %d; want %d", n, before+1)
	}
	// mac_address and binding:host_id are for admins.
	r = e.do(http.MethodPost, "/networking/v2.0/ports", demo, map[string]any{"port": map[string]any{"network_id": e.private, "mac_address": "fa:16:3e:01:02:03"}})
	r.fault(t, http.StatusForbidden)
	p, err := ports.Create(ctx, e.client(admin), ports.CreateOpts{NetworkID: e.private, MACAddress: "fa:16:3e:01:02:03", ProjectID: "demo"}).Extract()
	if err != nil || p.MACAddress != "fa:16:3e:01:02:03" || p.ProjectID != "demo" {
		t.Fatalf("admin's port with a MAC = %+v, %v", p, err)
	}
	r = e.do(http.MethodPost, "/networking/v2.0/ports", admin, map[string]any{"port": map[string]any{"network_id": e.private, "mac_address": "fa:16:3e:01:02:03"}})
	if typ, _ := r.fault(t, http.StatusConflict); typ != "MacAddressInUse" {
		t.Fatalf("a MAC in use: %s", typ)
	}
}

func TestUpdatePort(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		p, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: e.private}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		g, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "web"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		name := "eth1"
		pairs := []ports.AddressPair{{IPAddress: "10.9.0.0/24"}, {IPAddress: "10.9.1.1", MACAddress: "fa:16:3e:00:00:09"}}
		u, err := ports.Update(ctx, sc, p.ID, ports.UpdateOpts{Name: &name, SecurityGroups: &[]string{g.ID}, AllowedAddressPairs: &pairs}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if u.Name != name || len(u.SecurityGroups) != 1 || u.SecurityGroups[0] != g.ID || len(u.AllowedAddressPairs) != 2 ||
			u.AllowedAddressPairs[0].MACAddress != p.MACAddress || u.AllowedAddressPairs[1].MACAddress != "fa:16:3e:00:00:09" ||
			u.RevisionNumber != p.RevisionNumber+1 {
			t.Fatalf("updated = %+v", u)
		}
		// The group is in use now.
		r := e.do(http.MethodDelete, "/networking/v2.0/security-groups/"+g.ID, demo, nil)
		if typ, _ := r.fault(t, http.StatusConflict); typ != "SecurityGroupInUse" {
			t.Fatalf("delete a port's group: %s", typ)
		}
		// If-Match, and port security against groups and pairs.
		stale := int(p.RevisionNumber)
		if _, err := ports.Update(ctx, sc, p.ID, ports.UpdateOpts{Name: &name, RevisionNumber: &stale}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusPreconditionFailed) {
			t.Fatalf("stale If-Match: %v", err)
		}
		r = e.do(http.MethodPut, "/networking/v2.0/ports/"+p.ID, demo, map[string]any{"port": map[string]any{"port_security_enabled": false}})
		if typ, _ := r.fault(t, http.StatusConflict); typ != "PortSecurityPortHasSecurityGroup" {
			t.Fatalf("disable port security with groups: %s", typ)
		}
		r = e.do(http.MethodPut, "/networking/v2.0/ports/"+p.ID, demo, map[string]any{"port": map[string]any{"port_security_enabled": false, "security_groups": []string{}}})
		if typ, _ := r.fault(t, http.StatusConflict); typ != "AddressPairAndPortSecurityRequired" {
			t.Fatalf("disable port security with pairs: %s", typ)
		}
		r = e.do(http.MethodPut, "/networking/v2.0/ports/"+p.ID, demo, map[string]any{"port": map[string]any{"allowed_address_pairs": []map[string]string{{"ip_address": "10.1.1.1"}, {"ip_address": "10.1.1.1"}}}})
		if typ, _ := r.fault(t, http.StatusBadRequest); typ != "DuplicateAddressPairInRequest" {
			t.Fatalf("duplicate pairs: %s", typ)
		}
		if got, _ := ports.Get(ctx, sc, p.ID).Extract(); got.RevisionNumber != u.RevisionNumber || len(got.AllowedAddressPairs) != 2 {
			t.Fatalf("refused updates were written: %+v", got)
		}
		// fixed_ips: an address asked, then the subnet alone keeps it; the
		// address left is free for others.
		old := p.FixedIPs[0].IPAddress
		u, err = ports.Update(ctx, sc, p.ID, ports.UpdateOpts{FixedIPs: []ports.IP{{IPAddress: "10.0.0.77"}}}).Extract()
		if err != nil || len(u.FixedIPs) != 1 || u.FixedIPs[0].IPAddress != "10.0.0.77" || u.FixedIPs[0].SubnetID != e.privateSubnet {
			t.Fatalf("update fixed_ips = %+v, %v", u, err)
		}
		u, err = ports.Update(ctx, sc, p.ID, ports.UpdateOpts{FixedIPs: []ports.IP{{SubnetID: e.privateSubnet}}}).Extract()
		if err != nil || len(u.FixedIPs) != 1 || u.FixedIPs[0].IPAddress != "10.0.0.77" {
			t.Fatalf("update fixed_ips by subnet = %+v, %v", u, err)
		}
		again, err := ports.Create(ctx, e.client(other), ports.CreateOpts{NetworkID: e.private, FixedIPs: []ports.IP{{IPAddress: old}}}).Extract()
		if err != nil || again.FixedIPs[0].IPAddress != old {
			t.Fatalf("the address left = %+v, %v", again, err)
		}
		r = e.do(http.MethodPut, "/networking/v2.0/ports/"+p.ID, demo, map[string]any{"port": map[string]any{"fixed_ips": []map[string]string{{"ip_address": old}}}})
		if typ, _ := r.fault(t, http.StatusConflict); typ != "IpAddressAlreadyAllocated" {
			t.Fatalf("update to a taken address: %s", typ)
		}
		if got, _ := ports.Get(ctx, sc, p.ID).Extract(); len(got.FixedIPs) != 1 || got.FixedIPs[0].IPAddress != "10.0.0.77" {
			t.Fatalf("refused update changed the addresses: %+v", got.FixedIPs)
		}

		// Tags.
		if err := attributestags.Add(ctx, sc, "ports", p.ID, "red").ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if l := listPorts(t, sc, ports.ListOpts{Tags: "red"}); len(l) != 1 || l[0].ID != p.ID {
			t.Fatalf("ports tagged red = %+v", l)
		}
		if _, err := attributestags.List(ctx, e.client(other), "ports", p.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("tags of another project's port: %v", err)
		}
	})
}

func TestDeleteABoundPort(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sc := e.client(demo)
	p, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: e.private}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	e.boot(vmDemo, "demo", "active", "host-1")
	if err := e.d.InTx(ctx, func(tx *db.Tx) error { return netdb.BindPort(ctx, tx, p.ID, vmDemo, "", t0) }); err != nil {
		t.Fatal(err)
	}
	got, err := ports.Get(ctx, sc, p.ID).Extract()
	if err != nil || got.DeviceID != vmDemo || got.DeviceOwner != "compute:nova" || got.Status != "ACTIVE" {
		t.Fatalf("bound port = %+v, %v", got, err)
	}
	r := e.do(http.MethodDelete, "/networking/v2.0/ports/"+p.ID, demo, nil)
	if typ, msg := r.fault(t, http.StatusConflict); typ != "PortInUse" || !strings.Contains(msg, vmDemo) {
		t.Fatalf("delete a bound port: %s %q", typ, msg)
	}
	r = e.do(http.MethodPut, "/networking/v2.0/ports/"+p.ID, demo, map[string]any{"port": map[string]any{"fixed_ips": []map[string]string{{"subnet_id": e.privateSubnet}, {"subnet_id": e.privateSubnet}}}})
	if typ, _ := r.fault(t, http.StatusConflict); typ != "PortInUse" {
		t.Fatalf("change a bound port's addresses: %s", typ)
	}
	// The server lets it go (it is deleted): the port is unbound and kept,
	// and may be deleted.
	err = e.d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: vmDemo, Cell: "api!cell1", Version: 9, VMState: "deleted", Deleted: true}, t0); err != nil {
			return err
		}
		_, err := netdb.FreeServerPorts(ctx, tx, vmDemo, t0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = ports.Get(ctx, sc, p.ID).Extract()
	if err != nil || got.DeviceID != "" || got.DeviceOwner != "" || got.Status != "DOWN" {
		t.Fatalf("port after its server = %+v, %v", got, err)
	}
	if err := ports.Delete(ctx, sc, p.ID).ExtractErr(); err != nil {
		t.Fatalf("delete the unbound port: %v", err)
	}
}

func TestConcurrentCreatesGetDistinctAddresses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		netID, _ := smallNetwork(t, e, "tiny", "192.168.50.0/28", false)
		// 13 usable addresses (.2 to .14), 20 creates at once.
		const n = 20
		var wg sync.WaitGroup
		got := make([]*ports.Port, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				got[i], errs[i] = ports.Create(ctx, e.client(demo), ports.CreateOpts{NetworkID: netID}).Extract()
			})
		}
		wg.Wait()
		seen := map[string]bool{}
		for i := range n {
			if errs[i] != nil {
				if !gophercloud.ResponseCodeIs(errs[i], http.StatusConflict) || !strings.Contains(errs[i].Error(), "No more IP addresses") {
					t.Fatalf("create %d: %v", i, errs[i])
				}
				continue
			}
			a := addrs(got[i])
			if len(a) != 1 || seen[a[0]] {
				t.Fatalf("create %d got %v (seen: %v)", i, a, seen)
			}
			seen[a[0]] = true
		}
		if len(seen) != 13 {
			t.Fatalf("%d addresses given; want the 13 of the subnet", len(seen))
		}
	})
}
