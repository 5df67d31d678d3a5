package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// networking is a gophercloud Networking API client for token.
func networking(tr *testtree.Tree, token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: *tr.HTTP}
	pc.SetToken(token)
	endpoint := strings.TrimSuffix(tr.APIURL(), "/v2.1") + "/networking/"
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: endpoint, ResourceBase: endpoint + "v2.0/", Type: "network"}
}

func privateNetwork(t *testing.T, nc *gophercloud.ServiceClient) string {
	t.Helper()
	pages, err := networks.List(nc, networks.ListOpts{Name: "private"}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	nets, _ := networks.ExtractNetworks(pages)
	if len(nets) != 1 {
		t.Fatalf("network private: %+v", nets)
	}
	return nets[0].ID
}

func portsOf(t *testing.T, nc *gophercloud.ServiceClient, opts ports.ListOpts) []ports.Port {
	t.Helper()
	pages, err := ports.List(nc, opts).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, _ := ports.ExtractPorts(pages)
	return out
}

// TestBootOnAPort: a port of the caller's is bound to the server booted on
// it, cannot be deleted or booted on again while the server has it, and is
// unbound and kept when the server is deleted, as Nova does.
func TestBootOnAPort(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	nc, sc := networking(tr, demo), tr.Compute(demo)
	private := privateNetwork(t, nc)
	p, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: private, Name: "mine"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	id := create(t, tr, demo, map[string]any{"name": "on-port", "flavorRef": "1", "imageRef": imageID,
		"networks": []map[string]any{{"port": p.ID}}})
	waitStatus(t, sc, id, "ACTIVE")
	got, err := ports.Get(ctx, nc, p.ID).Extract()
	if err != nil || got.DeviceID != id || !strings.HasPrefix(got.DeviceOwner, "compute:") || got.Status != "ACTIVE" {
		t.Fatalf("port of the server = %+v, %v", got, err)
	}

	// The server's addresses include its port's (read from the ports
	// until its cell reports it).
	hasAddr := func(addrs map[string]any) bool {
		list, _ := addrs["private"].([]any)
		for _, a := range list {
			if a.(map[string]any)["addr"] == p.FixedIPs[0].IPAddress {
				return true
			}
		}
		return false
	}
	if s, err := servers.Get(ctx, sc, id).Extract(); err != nil || !hasAddr(s.Addresses) {
		t.Fatalf("server's addresses %v (%v); want %s among them", s.Addresses, err, p.FixedIPs[0].IPAddress)
	}
	pages, err := servers.List(sc, servers.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := servers.ExtractServers(pages); len(all) != 1 || !hasAddr(all[0].Addresses) {
		t.Fatalf("listed server's addresses %+v; want %s among them", all, p.FixedIPs[0].IPAddress)
	}

	// The server's interfaces are its ports (before the cells honour the
	// port, the cell's own address is a second one).
	pages, err = attachinterfaces.List(sc, id).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ifs, _ := attachinterfaces.ExtractInterfaces(pages)
	found := false
	for _, i := range ifs {
		if i.PortID == p.ID {
			found = i.NetID == private && i.MACAddr == p.MACAddress && i.PortState == "ACTIVE" &&
				len(i.FixedIPs) == 1 && i.FixedIPs[0].IPAddress == p.FixedIPs[0].IPAddress
		}
	}
	if !found {
		t.Fatalf("interfaces %+v; want port %+v", ifs, p)
	}
	if i, err := attachinterfaces.Get(ctx, sc, id, p.ID).Extract(); err != nil || i.PortID != p.ID {
		t.Fatalf("show interface = %+v, %v", i, err)
	}

	// While the server has it: no delete, no second boot.
	if err := ports.Delete(ctx, nc, p.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("delete a bound port: %v", err)
	}
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{"name": "again", "flavorRef": "1",
		"imageRef": imageID, "networks": []map[string]any{{"port": p.ID}}}})
	if msg := testtree.Fault(t, r, http.StatusConflict); msg != fmt.Sprintf("Port %s is still in use.", p.ID) {
		t.Fatalf("boot on a bound port: %q", msg)
	}
	// Another project's port is not found.
	theirs, err := ports.Create(ctx, networking(tr, other), ports.CreateOpts{NetworkID: private}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	r = tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{"name": "theirs", "flavorRef": "1",
		"imageRef": imageID, "networks": []map[string]any{{"port": theirs.ID}}}})
	if msg := testtree.Fault(t, r, http.StatusBadRequest); msg != fmt.Sprintf("Port id %s could not be found.", theirs.ID) {
		t.Fatalf("boot on another project's port: %q", msg)
	}
	r = tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-interface/"+theirs.ID, demo, nil)
	if msg := testtree.Fault(t, r, http.StatusNotFound); msg != fmt.Sprintf("Instance %s does not have a port with id %s", id, theirs.ID) {
		t.Fatalf("show another port as an interface: %q", msg)
	}

	// The server's deletion unbinds the port and keeps it.
	if err := servers.Delete(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sc, id)
	testpoll.Eventually(t, wait, "the port to be unbound", func() (bool, string) {
		got, err := ports.Get(context.Background(), nc, p.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		return got.DeviceID == "" && got.DeviceOwner == "", fmt.Sprintf("device %q owner %q", got.DeviceID, got.DeviceOwner)
	})
	if err := ports.Delete(ctx, nc, p.ID).ExtractErr(); err != nil {
		t.Fatalf("delete the port once unbound: %v", err)
	}
}

// TestBootWithAFixedIP: the API cell makes a port with the address asked
// for, bound to the server; the address cannot be asked again while the
// server has it; the port goes with the server.
func TestBootWithAFixedIP(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	nc, sc := networking(tr, demo), tr.Compute(demo)
	private := privateNetwork(t, nc)
	const addr = "10.0.3.7"
	id := create(t, tr, demo, map[string]any{"name": "fixed", "flavorRef": "1", "imageRef": imageID,
		"networks": []map[string]any{{"uuid": private, "fixed_ip": addr}}})
	byAddr := ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: addr}}}
	ps := portsOf(t, nc, byAddr)
	if len(ps) != 1 || ps[0].DeviceID != id || ps[0].NetworkID != private || ps[0].FixedIPs[0].IPAddress != addr {
		t.Fatalf("port of the fixed IP = %+v", ps)
	}
	waitStatus(t, sc, id, "ACTIVE")

	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{"name": "same", "flavorRef": "1",
		"imageRef": imageID, "networks": []map[string]any{{"uuid": private, "fixed_ip": addr}}}})
	if msg := testtree.Fault(t, r, http.StatusBadRequest); msg != fmt.Sprintf("Fixed IP address %s is already in use on instance %s.", addr, id) {
		t.Fatalf("boot on a taken fixed IP: %q", msg)
	}

	if err := servers.Delete(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sc, id)
	testpoll.Eventually(t, wait, "the fixed IP's port to go with the server", func() (bool, string) {
		ps := portsOf(t, nc, byAddr)
		return len(ps) == 0, fmt.Sprintf("%d ports", len(ps))
	})
}

// TestBootMadePortsAreRealPorts: the port a cell makes on a boot is in the
// ports table once the server's address is reported: shown, updatable,
// and deleted with the server.
func TestBootMadePortsAreRealPorts(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	nc, sc := networking(tr, demo), tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "plain", "flavorRef": "1", "imageRef": imageID})
	s := waitStatus(t, sc, id, "ACTIVE")
	var ps []ports.Port
	testpoll.Eventually(t, wait, "the server's port", func() (bool, string) {
		ps = portsOf(t, nc, ports.ListOpts{DeviceID: id})
		return len(ps) == 1, fmt.Sprintf("%d ports", len(ps))
	})
	addrs, _ := s.Addresses["private"].([]any)
	if len(addrs) != 1 || addrs[0].(map[string]any)["addr"] != ps[0].FixedIPs[0].IPAddress {
		t.Fatalf("server's addresses %v, port's %+v", s.Addresses, ps[0].FixedIPs)
	}
	name := "eth0"
	u, err := ports.Update(ctx, nc, ps[0].ID, ports.UpdateOpts{Name: &name}).Extract()
	if err != nil || u.Name != name || u.DeviceID != id {
		t.Fatalf("update the server's port = %+v, %v", u, err)
	}
	if err := ports.Delete(ctx, nc, ps[0].ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("delete the server's port: %v", err)
	}
	if err := servers.Delete(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, sc, id)
	testpoll.Eventually(t, wait, "the server's port to go with it", func() (bool, string) {
		_, err := ports.Get(context.Background(), nc, ps[0].ID).Extract()
		return gophercloud.ResponseCodeIs(err, http.StatusNotFound), fmt.Sprint(err)
	})
}
