package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// bareHost is a host as os-services names it ("api!cell1@cell1-host001")
// without its cell.
func bareHost(qualified string) string { return qualified[strings.LastIndex(qualified, "@")+1:] }

// TestCreateForcedHost: an admin's availability_zone "zone:host" (the
// host named as os-services names it, qualified or bare), "zone:host:node"
// and "zone::node" put the server on that host even where the scheduler's
// zone filters would not (the host's zone is an aggregate's the cells do
// not report); the zone asked for is kept when it is the host's and is
// the host's zone otherwise. A member's forced host is a 403, a zone with
// too many ':' a 400, as in Nova; a disabled or unknown forced host fails
// the build (ERROR, no valid host).
func TestCreateForcedHost(t *testing.T) {
	t.Parallel()
	tr := operatorTree(t)
	ctx := ctxT(t)
	sc := adminAt(tr, "2.53")
	hosts := computeHosts(t, tr) // cell1 host001, host002, cell2 host001, host002
	inAZ1, plain, toDisable := hosts[3], hosts[0], hosts[1]

	agg, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "agg-az1", AvailabilityZone: "az1"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aggregates.AddHost(ctx, sc, agg.ID, aggregates.AddHostOpts{Host: inAZ1}).Extract(); err != nil {
		t.Fatal(err)
	}

	boot := func(token, zone string) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{"server": map[string]any{
			"name": "forced", "flavorRef": "1", "imageRef": imageID, "availability_zone": zone}})
	}
	placed := func(zone, wantHost, wantZone string) {
		t.Helper()
		r := boot(admin, zone)
		if r.Status != http.StatusAccepted {
			t.Fatalf("admin create in %q: %s", zone, r)
		}
		var out struct{ Server struct{ ID string } }
		r.JSON(t, &out)
		waitStatus(t, sc, out.Server.ID, "ACTIVE")
		got := tr.Do(t, http.MethodGet, "/v2.1/servers/"+out.Server.ID, admin, nil).Map(t)["server"].(map[string]any)
		if h := got["OS-EXT-SRV-ATTR:host"]; h != wantHost {
			t.Errorf("server forced with %q is on host %v, want %s", zone, h, wantHost)
		}
		if z := got["OS-EXT-AZ:availability_zone"]; wantZone != "" && z != wantZone {
			t.Errorf("server forced with %q is in zone %v, want %s", zone, z, wantZone)
		}
	}
	// The host's own zone (an aggregate's, which no cell reports: the
	// zone filters would refuse every host), by its bare name.
	placed("az1:"+bareHost(inAZ1), bareHost(inAZ1), "az1")
	// The default zone asked for a host in az1: the host's zone is kept.
	placed("nova:"+inAZ1, bareHost(inAZ1), "az1")
	// A host in no aggregate, qualified, with its node.
	placed("nova:"+plain+":"+bareHost(plain), bareHost(plain), "nova")
	// A node alone.
	placed("nova::"+bareHost(inAZ1), bareHost(inAZ1), "")

	// The build carries the image's properties to the cell (which no
	// cell reports, so they constrain nothing).
	img := activeImage(t, tr, "with-props", "hw_disk_bus", "virtio", "os_distro", "debian")
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", admin, map[string]any{"server": map[string]any{
		"name": "props", "flavorRef": "1", "imageRef": img, "availability_zone": "nova:" + plain}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create from an image with properties: %s", r)
	}
	var withProps struct{ Server struct{ ID string } }
	r.JSON(t, &withProps)
	waitStatus(t, sc, withProps.Server.ID, "ACTIVE")
	var build string
	for _, c := range tr.Cells {
		if err := c.DB.QueryRow(ctx, `SELECT build FROM instances WHERE uuid = ?`, withProps.Server.ID).Scan(&build); err == nil {
			break
		}
	}
	if !strings.Contains(build, `"image_properties":{"hw_disk_bus":"virtio","os_distro":"debian"}`) || !strings.Contains(build, `"forced_host":"`+bareHost(plain)+`"`) {
		t.Errorf("the cell's record of the build: %s, want the image's properties and the forced host", build)
	}

	// A member may not force a host or node; a bad zone is a 400 first.
	faultHas(t, boot(demo, "nova:"+bareHost(plain)), http.StatusForbidden, "os_compute_api:servers:create:forced_host")
	faultHas(t, boot(demo, "nova::"+bareHost(plain)), http.StatusForbidden, "os_compute_api:servers:create:forced_host")
	faultHas(t, boot(demo, "a:b:c:d"), http.StatusBadRequest, "Invalid input received: Unable to parse availability_zone")
	faultHas(t, boot(admin, "nova:x::"), http.StatusBadRequest, "Invalid input received: Unable to parse availability_zone")

	// A disabled host is not forced (Nova's Placement refuses it): the
	// build fails with no valid host, and is not tried elsewhere.
	if err := services.Update(ctx, adminAt(tr, "2.53"), serviceID(t, tr, toDisable), services.UpdateOpts{Status: services.ServiceDisabled}).Err; err != nil {
		t.Fatal(err)
	}
	for _, zone := range []string{"nova:" + toDisable, "nova:no-such-host"} {
		r := boot(admin, zone)
		if r.Status != http.StatusAccepted {
			t.Fatalf("admin create in %q: %s", zone, r)
		}
		var out struct{ Server struct{ ID string } }
		r.JSON(t, &out)
		s := waitStatus(t, sc, out.Server.ID, "ERROR")
		if !strings.Contains(s.Fault.Message, "No valid host was found") {
			t.Errorf("server forced with %q: fault %+v, want no valid host", zone, s.Fault)
		}
	}
}

// serviceID is the id (2.53: a uuid) of the nova-compute service of a host
// as os-services names it.
func serviceID(t *testing.T, tr *testtree.Tree, host string) string {
	t.Helper()
	pages, err := services.List(adminAt(tr, "2.53"), services.ListOpts{Binary: "nova-compute", Host: host}).AllPages(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := services.ExtractServices(pages)
	if err != nil || len(ss) != 1 {
		t.Fatalf("service of %s: %+v %v", host, ss, err)
	}
	return ss[0].ID
}

// TestCreateZoneAvailable: a create's zone must be one a cell reports, one
// an aggregate with a host has, or the default zone; any other is Nova's
// 400.
func TestCreateZoneAvailable(t *testing.T) {
	t.Parallel()
	tr := operatorTree(t)
	ctx := ctxT(t)
	sc := adminAt(tr, "2.53")
	hosts := computeHosts(t, tr)
	boot := func(zone string) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
			"name": "z", "flavorRef": "1", "imageRef": imageID, "availability_zone": zone}})
	}
	faultHas(t, boot("mars"), http.StatusBadRequest, "The requested availability zone is not available")
	// An aggregate's zone without hosts is not available yet.
	agg, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "agg-az2", AvailabilityZone: "az2"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	faultHas(t, boot("az2"), http.StatusBadRequest, "The requested availability zone is not available")
	if _, err := aggregates.AddHost(ctx, sc, agg.ID, aggregates.AddHostOpts{Host: hosts[0]}).Extract(); err != nil {
		t.Fatal(err)
	}
	// Accepted; where the build goes is the cells' (their aggregates).
	if r := boot("az2"); r.Status != http.StatusAccepted {
		t.Errorf("create in az2, an aggregate's zone: %s", r)
	}
	// "zone:" forces nothing: a member may ask for it.
	if r := boot("nova:"); r.Status != http.StatusAccepted {
		t.Errorf("create in %q: %s", "nova:", r)
	}
}
