package network_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/portsbinding"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
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

func TestPortsAreReadOnly(t *testing.T) {
	e := newEnv(t)
	servers(e)
	ctx := context.Background()
	sc := e.client(demo)
	id := netdb.PortID(vmDemo, "private", "10.1.0.2")

	_, err := ports.Create(ctx, sc, ports.CreateOpts{NetworkID: e.private}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "compute service") {
		t.Fatalf("create a port: %v", err)
	}
	r := e.do(http.MethodPost, "/networking/v2.0/ports", admin, map[string]any{"port": map[string]any{"network_id": e.private}})
	if typ, _ := r.fault(t, http.StatusBadRequest); typ != "BadRequest" {
		t.Fatalf("admin create a port: %s", typ)
	}
	name := "eth0"
	_, err = ports.Update(ctx, sc, id, ports.UpdateOpts{Name: &name}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("update a port: %v", err)
	}
	r = e.do(http.MethodDelete, "/networking/v2.0/ports/"+id, demo, nil)
	if typ, msg := r.fault(t, http.StatusConflict); typ != "ServicePortInUse" || !strings.Contains(msg, vmDemo) {
		t.Fatalf("delete a port: %s %q", typ, msg)
	}
	// A port the caller cannot see is a 404 first.
	r = e.do(http.MethodDelete, "/networking/v2.0/ports/"+netdb.PortID(vmOther, "private", "10.1.0.3"), demo, nil)
	if typ, _ := r.fault(t, http.StatusNotFound); typ != "PortNotFound" {
		t.Fatalf("delete other's port: %s", typ)
	}
	if l := listPorts(t, sc, ports.ListOpts{DeviceID: vmDemo}); len(l) != 1 {
		t.Fatalf("port gone after refused writes: %+v", l)
	}
}
