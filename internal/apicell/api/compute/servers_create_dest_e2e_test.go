package compute_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// destOpts is a create with 2.74's host, which gophercloud's CreateOpts
// lacks (it has hypervisor_hostname).
type destOpts struct {
	servers.CreateOpts
	Host string
}

func (o destOpts) ToServerCreateMap() (map[string]any, error) {
	m, err := o.CreateOpts.ToServerCreateMap()
	if err == nil && o.Host != "" {
		m["server"].(map[string]any)["host"] = o.Host
	}
	return m, err
}

// TestCreateRequestedDestination: at 2.74 an admin's host and/or
// hypervisor_hostname put the server on that host (named as os-services
// names it, qualified or bare), through the scheduler's filters: a host
// the filters refuse (disabled, or outside the zone asked for) fails the
// build with no valid host, where a forced host would be built on or
// refused without the filters. A host or node that does not exist is
// Nova's 400, a member's request a 403, the fields with a forced host a
// 400, and the fields before 2.74 a 400.
func TestCreateRequestedDestination(t *testing.T) {
	t.Parallel()
	v := needMicroversion(t, 74)
	tr := operatorTree(t)
	ctx := ctxT(t)
	sc := adminAt(tr, v)
	hosts := computeHosts(t, tr) // cell1 host001, host002, cell2 host001, host002
	plain, other, toDisable, inAZ1 := hosts[0], hosts[2], hosts[1], hosts[3]

	agg, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "agg-az1", AvailabilityZone: "az1"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aggregates.AddHost(ctx, sc, agg.ID, aggregates.AddHostOpts{Host: inAZ1}).Extract(); err != nil {
		t.Fatal(err)
	}
	// The cell scheduler's filters run too: az1 must be in the report of
	// the host's cell before a build asks for it.
	testpoll.Eventually(t, wait, "api!cell2 to report zone az1", func() (bool, string) {
		ns, err := cells.ListNeighbours(ctx, tr.API.DB)
		if err != nil {
			return false, err.Error()
		}
		for _, n := range ns {
			if n.Path == "api!cell2" && n.Report != nil && slices.Contains(n.Report.AvailabilityZones, "az1") {
				return true, ""
			}
		}
		return false, "not reported"
	})

	opts := func(host, node, zone string) destOpts {
		return destOpts{CreateOpts: servers.CreateOpts{Name: "dest", FlavorRef: "1", ImageRef: imageID, Networks: "none",
			AvailabilityZone: zone, HypervisorHostname: node}, Host: host}
	}
	boot := func(host, node, zone string) string {
		t.Helper()
		s, err := servers.Create(ctx, sc, opts(host, node, zone), nil).Extract()
		if err != nil {
			t.Fatalf("admin create on host %q node %q zone %q: %v", host, node, zone, err)
		}
		return s.ID
	}
	placed := func(host, node, wantHost string) {
		t.Helper()
		id := boot(host, node, "")
		waitStatus(t, sc, id, "ACTIVE")
		got := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil, atVersion(v)...).Map(t)["server"].(map[string]any)
		if h, n := got["OS-EXT-SRV-ATTR:host"], got["OS-EXT-SRV-ATTR:hypervisor_hostname"]; h != wantHost || n != wantHost {
			t.Errorf("server requested on host %q node %q is on host %v node %v, want %s", host, node, h, n, wantHost)
		}
	}
	// A host by its qualified and its bare name, a node alone, and both.
	placed(plain, "", bareHost(plain))
	placed(bareHost(other), "", bareHost(other))
	placed("", bareHost(other), bareHost(other))
	placed(plain, bareHost(plain), bareHost(plain))
	// The zone's host, in that zone.
	id := boot(inAZ1, "", "az1")
	waitStatus(t, sc, id, "ACTIVE")

	// The cell records the requested host with the build.
	var build string
	for _, c := range tr.Cells {
		if err := c.DB.QueryRow(ctx, `SELECT build FROM instances WHERE uuid = ?`, id).Scan(&build); err == nil {
			break
		}
	}
	if !strings.Contains(build, `"requested_host":"`+bareHost(inAZ1)+`"`) || strings.Contains(build, "forced_host") {
		t.Errorf("the cell's record of the build: %s, want the requested host and no forced one", build)
	}

	// Filters that refuse the host: it is disabled, or outside the zone
	// asked for (az1 is a zone, but not the host's: its cell's filter
	// refuses; nova is its cell's too, but not the host's: the host
	// scheduler's filter refuses). The build is not tried on another
	// host.
	if err := services.Update(ctx, sc, serviceID(t, tr, toDisable), services.UpdateOpts{Status: services.ServiceDisabled}).Err; err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ host, zone string }{{toDisable, ""}, {plain, "az1"}, {inAZ1, "nova"}} {
		id := boot(c.host, "", c.zone)
		s := waitStatus(t, sc, id, "ERROR")
		if !strings.Contains(s.Fault.Message, "No valid host was found") {
			t.Errorf("server requested on %s in zone %q: fault %+v, want no valid host", c.host, c.zone, s.Fault)
		}
	}

	raw := func(token, ver string, server map[string]any) *testtree.Response {
		body := map[string]any{"name": "dest", "flavorRef": "1", "imageRef": imageID, "networks": "none"}
		for k, x := range server {
			body[k] = x
		}
		return tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{"server": body}, atVersion(ver)...)
	}
	// What does not exist: Nova's ComputeHostNotFound, naming the host
	// (also when its node is not its own) or the node asked for alone.
	for _, c := range []struct {
		server map[string]any
		want   string
	}{
		{map[string]any{"host": "no-such-host"}, "Compute host no-such-host could not be found."},
		{map[string]any{"host": "api!cell9@" + bareHost(plain)}, "Compute host api!cell9@" + bareHost(plain) + " could not be found."},
		{map[string]any{"hypervisor_hostname": "no-such-node"}, "Compute host no-such-node could not be found."},
		{map[string]any{"host": plain, "hypervisor_hostname": bareHost(other)}, "Compute host " + plain + " could not be found."},
	} {
		faultHas(t, raw(admin, v, c.server), http.StatusBadRequest, c.want)
	}
	// The schema: Nova's fqdn.
	faultHas(t, raw(admin, v, map[string]any{"host": "bad host!"}), http.StatusBadRequest, "Invalid input for field/attribute host.")
	faultHas(t, raw(admin, v, map[string]any{"hypervisor_hostname": ""}), http.StatusBadRequest, "Invalid input for field/attribute hypervisor_hostname.")
	faultHas(t, raw(admin, v, map[string]any{"host": 7}), http.StatusBadRequest, "is not of type 'string'")
	// A member may not ask; the two mechanisms exclude each other.
	faultHas(t, raw(demo, v, map[string]any{"host": plain}), http.StatusForbidden, "compute:servers:create:requested_destination")
	faultHas(t, raw(admin, v, map[string]any{"host": plain, "availability_zone": "nova:" + plain}), http.StatusBadRequest,
		"One mechanism with host and/or hypervisor_hostname and another mechanism with zone:host:node are mutually exclusive.")
	faultHas(t, raw(admin, v, map[string]any{"hypervisor_hostname": bareHost(plain), "availability_zone": "nova::" + bareHost(plain)}), http.StatusBadRequest,
		"are mutually exclusive")
	// Before 2.74 neither field is part of the schema.
	faultHas(t, raw(admin, "2.73", map[string]any{"host": plain}), http.StatusBadRequest, "Additional properties are not allowed ('host' was unexpected)")
	old := adminAt(tr, "2.73")
	_, err = servers.Create(ctx, old, opts("", bareHost(plain), ""), nil).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "'hypervisor_hostname' was unexpected") {
		t.Errorf("hypervisor_hostname at 2.73: %v, want a 400", err)
	}
}
