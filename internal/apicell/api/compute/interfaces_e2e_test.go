package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// cellReports polls until the server's cell has reported (in the API
// cell's copy of the instance) an address of port, or none when want is
// false.
func cellReports(t *testing.T, tr *testtree.Tree, id, port string, want bool) {
	t.Helper()
	testpoll.Eventually(t, wait, fmt.Sprintf("the cell to report port %s: %v", port, want), func() (bool, string) {
		in, err := apidb.Get(context.Background(), tr.API.DB, id)
		if err != nil {
			return false, err.Error()
		}
		has := false
		for _, a := range in.Addresses {
			has = has || a.PortID == port
		}
		return has == want, fmt.Sprintf("addresses %+v", in.Addresses)
	})
}

// actionNames are the names of the server's instance actions, newest
// first.
func actionNames(t *testing.T, tr *testtree.Tree, id string) []string {
	t.Helper()
	var out struct {
		InstanceActions []struct {
			Action string `json:"action"`
		} `json:"instanceActions"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions", demo, nil).JSON(t, &out)
	var names []string
	for _, a := range out.InstanceActions {
		names = append(names, a.Action)
	}
	return names
}

// TestAttachAndDetachInterfaces: a port of the caller's, a port made on a
// network and one made with the address asked for are attached to a
// running server (200 with the attachment, shown by os-interface at once
// and in the server's addresses once its cell reports them), and detached
// (202): the caller's port is unbound and kept, the made ones deleted, as
// Nova does.
func TestAttachAndDetachInterfaces(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	nc, sc := networking(tr, demo), tr.Compute(demo)
	private := privateNetwork(t, nc)
	id := create(t, tr, demo, map[string]any{"name": "iface", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")

	// A port of the caller's.
	mine, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: private, Name: "mine"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	att, err := attachinterfaces.Create(ctx, sc, id, attachinterfaces.CreateOpts{PortID: mine.ID}).Extract()
	if err != nil {
		t.Fatalf("attach a port: %v", err)
	}
	if att.PortID != mine.ID || att.NetID != private || att.MACAddr != mine.MACAddress || att.PortState != "ACTIVE" ||
		len(att.FixedIPs) != 1 || att.FixedIPs[0].IPAddress != mine.FixedIPs[0].IPAddress {
		t.Fatalf("attachment %+v; want port %+v", att, mine)
	}
	if p, err := ports.Get(ctx, nc, mine.ID).Extract(); err != nil || p.DeviceID != id || !strings.HasPrefix(p.DeviceOwner, "compute:") {
		t.Fatalf("attached port = %+v, %v", p, err)
	}
	if got, err := attachinterfaces.Get(ctx, sc, id, mine.ID).Extract(); err != nil || got.PortID != mine.ID {
		t.Fatalf("show the attached interface = %+v, %v", got, err)
	}
	cellReports(t, tr, id, mine.ID, true)

	// A port made on a network, with an address of the API cell's blocks.
	onNet, err := attachinterfaces.Create(ctx, sc, id, attachinterfaces.CreateOpts{NetworkID: private}).Extract()
	if err != nil {
		t.Fatalf("attach by network: %v", err)
	}
	if onNet.NetID != private || len(onNet.FixedIPs) != 1 || onNet.FixedIPs[0].IPAddress == "" || onNet.PortID == "" {
		t.Fatalf("attachment by network %+v", onNet)
	}
	cellReports(t, tr, id, onNet.PortID, true)

	// A port made with the address asked for.
	const addr = "10.0.3.9"
	fixed, err := attachinterfaces.Create(ctx, sc, id, attachinterfaces.CreateOpts{NetworkID: private,
		FixedIPs: []attachinterfaces.FixedIP{{IPAddress: addr}}}).Extract()
	if err != nil {
		t.Fatalf("attach by network and address: %v", err)
	}
	if len(fixed.FixedIPs) != 1 || fixed.FixedIPs[0].IPAddress != addr {
		t.Fatalf("attachment with an address %+v", fixed)
	}
	cellReports(t, tr, id, fixed.PortID, true)

	pages, err := attachinterfaces.List(sc, id).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ifs, _ := attachinterfaces.ExtractInterfaces(pages)
	var ids []string
	for _, i := range ifs {
		ids = append(ids, i.PortID)
	}
	for _, want := range []string{mine.ID, onNet.PortID, fixed.PortID} {
		if !slices.Contains(ids, want) {
			t.Errorf("interfaces %v lack %s", ids, want)
		}
	}
	// The cell recorded each attach as an instance action.
	if names := actionNames(t, tr, id); len(names) < 4 || names[0] != "attach_interface" || names[2] != "attach_interface" {
		t.Errorf("instance actions %v; want three attach_interface on top", names)
	}
	// The server's addresses show them all.
	s := waitStatus(t, sc, id, "ACTIVE")
	got := addresses(t, s, "private")
	for _, want := range []string{mine.FixedIPs[0].IPAddress, onNet.FixedIPs[0].IPAddress, addr} {
		if !slices.Contains(got, want) {
			t.Errorf("server's addresses %v lack %s", got, want)
		}
	}

	// Detach: the caller's port is unbound and kept.
	if err := attachinterfaces.Delete(ctx, sc, id, mine.ID).ExtractErr(); err != nil {
		t.Fatalf("detach a port: %v", err)
	}
	if p, err := ports.Get(ctx, nc, mine.ID).Extract(); err != nil || p.DeviceID != "" || p.DeviceOwner != "" {
		t.Fatalf("detached port = %+v, %v; want it kept, unbound", p, err)
	}
	cellReports(t, tr, id, mine.ID, false)
	// The made ones are deleted.
	for _, made := range []string{onNet.PortID, fixed.PortID} {
		if err := attachinterfaces.Delete(ctx, sc, id, made).ExtractErr(); err != nil {
			t.Fatalf("detach made port %s: %v", made, err)
		}
		if _, err := ports.Get(ctx, nc, made).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("made port %s after detach: %v; want 404", made, err)
		}
		cellReports(t, tr, id, made, false)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-interface/"+mine.ID, demo, nil); r.Status != http.StatusNotFound {
		t.Errorf("show a detached interface: %d", r.Status)
	}
	// The address asked for is free again, and the caller's port can be
	// attached again.
	if _, err := attachinterfaces.Create(ctx, sc, id, attachinterfaces.CreateOpts{NetworkID: private,
		FixedIPs: []attachinterfaces.FixedIP{{IPAddress: addr}}}).Extract(); err != nil {
		t.Fatalf("attach the freed address again: %v", err)
	}
	if _, err := attachinterfaces.Create(ctx, sc, id, attachinterfaces.CreateOpts{PortID: mine.ID}).Extract(); err != nil {
		t.Fatalf("attach the detached port again: %v", err)
	}
	cellReports(t, tr, id, mine.ID, true)

	// The port the cell made on the boot goes too when detached.
	var booted string
	for _, p := range portsOf(t, nc, ports.ListOpts{DeviceID: id}) {
		if p.ID != mine.ID && (len(p.FixedIPs) == 0 || p.FixedIPs[0].IPAddress != addr) {
			booted = p.ID
		}
	}
	if booted == "" {
		t.Fatal("no port of the boot")
	}
	if err := attachinterfaces.Delete(ctx, sc, id, booted).ExtractErr(); err != nil {
		t.Fatalf("detach the boot's port: %v", err)
	}
	cellReports(t, tr, id, booted, false)
	if _, err := ports.Get(ctx, nc, booted).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("the boot's port after detach: %v; want 404", err)
	}
}

// TestAttachInterfaceRefusals: Nova's answers to bad attaches and
// detaches, with nothing written.
func TestAttachInterfaceRefusals(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	nc, sc := networking(tr, demo), tr.Compute(demo)
	private := privateNetwork(t, nc)
	id := create(t, tr, demo, map[string]any{"name": "refusals", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	other1 := create(t, tr, demo, map[string]any{"name": "holder", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, other1, "ACTIVE")
	mine, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: private}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := attachinterfaces.Create(ctx, sc, other1, attachinterfaces.CreateOpts{PortID: mine.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	theirs, err := ports.Create(ctx, networking(tr, other), ports.CreateOpts{NetworkID: private}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	free, err := ports.Create(ctx, nc, ports.CreateOpts{NetworkID: private}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	bare, err := networks.Create(ctx, nc, networks.CreateOpts{Name: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	const missing = "6b7a5c54-9cf6-4a0e-9d4b-2f2c1c2e0c11"
	path := "/v2.1/servers/" + id + "/os-interface"
	for _, c := range []struct {
		name   string
		body   any
		ver    string
		status int
		msg    string
	}{
		{"both", map[string]any{"interfaceAttachment": map[string]any{"net_id": private, "port_id": free.ID}}, "", 400, "Must not input both network_id and port_id"},
		{"address without network", map[string]any{"interfaceAttachment": map[string]any{"fixed_ips": []any{map[string]any{"ip_address": "10.0.3.20"}}}}, "", 400,
			"Must input network_id when request IP address"},
		{"unknown key", map[string]any{"interfaceAttachment": map[string]any{"nope": 1}}, "", 400, "Additional properties are not allowed ('nope' was unexpected)"},
		{"tag before 2.49", map[string]any{"interfaceAttachment": map[string]any{"net_id": private, "tag": "a"}}, "2.48", 400, "Additional properties are not allowed ('tag' was unexpected)"},
		{"bad port id", map[string]any{"interfaceAttachment": map[string]any{"port_id": "x"}}, "", 400, "'x' is not a 'uuid'"},
		{"two addresses", map[string]any{"interfaceAttachment": map[string]any{"net_id": private,
			"fixed_ips": []any{map[string]any{"ip_address": "10.0.3.20"}, map[string]any{"ip_address": "10.0.3.21"}}}}, "", 400, "is too long"},
		{"missing port", map[string]any{"interfaceAttachment": map[string]any{"port_id": missing}}, "", 404, fmt.Sprintf("Port id %s could not be found.", missing)},
		{"another project's port", map[string]any{"interfaceAttachment": map[string]any{"port_id": theirs.ID}}, "", 404, fmt.Sprintf("Port id %s could not be found.", theirs.ID)},
		{"port in use", map[string]any{"interfaceAttachment": map[string]any{"port_id": mine.ID}}, "", 409, fmt.Sprintf("Port %s is still in use.", mine.ID)},
		{"missing network", map[string]any{"interfaceAttachment": map[string]any{"net_id": missing}}, "", 404, fmt.Sprintf("Network %s could not be found.", missing)},
		{"network without subnet", map[string]any{"interfaceAttachment": map[string]any{"net_id": bare.ID}}, "", 400,
			fmt.Sprintf("Network %s requires a subnet in order to boot instances on.", bare.ID)},
		{"address taken", map[string]any{"interfaceAttachment": map[string]any{"net_id": private,
			"fixed_ips": []any{map[string]any{"ip_address": mine.FixedIPs[0].IPAddress}}}}, "", 409,
			fmt.Sprintf("Fixed IP address %s is already in use on instance %s.", mine.FixedIPs[0].IPAddress, id)},
		{"no network named, two to choose", map[string]any{}, "", 400, "More than one possible network found."},
	} {
		var hdr []string
		if c.ver != "" {
			hdr = atVersion(c.ver)
		}
		r := tr.Do(t, http.MethodPost, path, demo, c.body, hdr...)
		faultHas(t, r, c.status, c.msg)
		if t.Failed() {
			t.Fatalf("%s: %s", c.name, r)
		}
	}
	if ps := portsOf(t, nc, ports.ListOpts{DeviceID: id}); len(ps) != 1 {
		t.Fatalf("refused attaches left ports: %+v", ps)
	}

	// A port made for an attach counts against the port quota.
	limit := len(portsOf(t, nc, ports.ListOpts{TenantID: "demo"}))
	if _, err := quotas.Update(ctx, networking(tr, admin), "demo", quotas.UpdateOpts{Port: &limit}).Extract(); err != nil {
		t.Fatal(err)
	}
	r := tr.Do(t, http.MethodPost, path, demo, map[string]any{"interfaceAttachment": map[string]any{"net_id": private}})
	faultHas(t, r, 403, "Maximum number of ports exceeded")
	if ps := portsOf(t, nc, ports.ListOpts{DeviceID: id}); len(ps) != 1 {
		t.Fatalf("an attach over quota left ports: %+v", ps)
	}

	// Detach: a port that is not the server's is not found.
	r = tr.Do(t, http.MethodDelete, path+"/"+mine.ID, demo, nil)
	faultHas(t, r, 404, fmt.Sprintf("Port %s is not attached", mine.ID))
	r = tr.Do(t, http.MethodDelete, path+"/"+missing, demo, nil)
	faultHas(t, r, 404, fmt.Sprintf("Port %s is not attached", missing))
	// Another project's server is not found.
	r = tr.Do(t, http.MethodPost, path, other, map[string]any{"interfaceAttachment": map[string]any{"net_id": private}})
	faultHas(t, r, 404, "could not be found")

	// A locked server refuses both; so does a server in a state Nova's
	// check_instance_state does not allow.
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", admin, map[string]any{"lock": nil}); r.Status != http.StatusAccepted {
		t.Fatalf("lock: %s", r)
	}
	r = tr.Do(t, http.MethodPost, path, demo, map[string]any{"interfaceAttachment": map[string]any{"port_id": free.ID}})
	faultHas(t, r, 409, fmt.Sprintf("Instance %s is locked", id))
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", admin, map[string]any{"unlock": nil}); r.Status != http.StatusAccepted {
		t.Fatalf("unlock: %s", r)
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", admin, map[string]any{"os-resetState": map[string]any{"state": "error"}}); r.Status != http.StatusAccepted {
		t.Fatalf("reset state: %s", r)
	}
	r = tr.Do(t, http.MethodPost, path, demo, map[string]any{"interfaceAttachment": map[string]any{"port_id": free.ID}})
	faultHas(t, r, 409, fmt.Sprintf("Cannot 'attach_interface' instance %s while it is in vm_state error", id))
	cur := portsOf(t, nc, ports.ListOpts{DeviceID: id})
	r = tr.Do(t, http.MethodDelete, path+"/"+cur[0].ID, demo, nil)
	faultHas(t, r, 409, fmt.Sprintf("Cannot 'detach_interface' instance %s while it is in vm_state error", id))
	if p, err := ports.Get(ctx, nc, free.ID).Extract(); err != nil || p.DeviceID != "" {
		t.Fatalf("port after refused attaches = %+v, %v", p, err)
	}
}
