package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
)

// TestAvailabilityZones: os-availability-zone lists nova for everyone,
// without hosts; the detail, for admins only, lists the hosts per zone
// (the internal zone's too) with their services.
func TestAvailabilityZones(t *testing.T) {
	tr := operatorTree(t)
	ctx := ctxT(t)
	// host is a compute host's qualified name, as os-hosts gives it.
	var hosts struct {
		Hosts []struct {
			HostName string `json:"host_name"`
			Service  string `json:"service"`
		} `json:"hosts"`
	}
	tr.Do(t, "GET", "/v2.1/os-hosts", admin, nil).JSON(t, &hosts)
	var host string
	for _, h := range hosts.Hosts {
		if h.Service == "compute" && strings.HasPrefix(h.HostName, "api!cell") {
			host = h.HostName
			break
		}
	}
	if host == "" {
		t.Fatalf("os-hosts lists no compute host: %+v", hosts.Hosts)
	}

	pages, err := availabilityzones.List(tr.Compute(demo)).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	zones, _ := availabilityzones.ExtractAvailabilityZones(pages)
	if len(zones) != 1 || zones[0].ZoneName != "nova" || !zones[0].ZoneState.Available || zones[0].Hosts != nil {
		t.Errorf("zones for a member: %+v", zones)
	}
	pages, err = availabilityzones.ListDetail(tr.Compute(admin)).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	zones, _ = availabilityzones.ExtractAvailabilityZones(pages)
	byName := map[string]availabilityzones.AvailabilityZone{}
	for _, z := range zones {
		byName[z.ZoneName] = z
	}
	if len(byName["nova"].Hosts) != 4 || len(byName["internal"].Hosts) == 0 || !byName["nova"].Hosts[host]["nova-compute"].Available {
		t.Errorf("zones in detail: %+v", zones)
	}
	if r := tr.Do(t, "GET", "/v2.1/os-availability-zone/detail", demo, nil); r.Status != http.StatusForbidden {
		t.Errorf("a member's zone detail: %d", r.Status)
	}

	// Nova's shapes, raw: the list says "hosts": null; the detail gives
	// each host's services with available, active and updated_at.
	r := tr.Do(t, "GET", "/v2.1/os-availability-zone", demo, nil)
	if r.Status != http.StatusOK || string(r.Body) != `{"availabilityZoneInfo":[{"hosts":null,"zoneName":"nova","zoneState":{"available":true}}]}`+"\n" {
		t.Errorf("the zone list, raw: %s", r)
	}
	var detail struct {
		Zones []struct {
			ZoneName string                               `json:"zoneName"`
			Hosts    map[string]map[string]map[string]any `json:"hosts"`
		} `json:"availabilityZoneInfo"`
	}
	tr.Do(t, "GET", "/v2.1/os-availability-zone/detail", admin, nil).JSON(t, &detail)
	for _, z := range detail.Zones {
		for h, svcs := range z.Hosts {
			for bin, svc := range svcs {
				if svc["available"] != true || svc["active"] != true || svc["updated_at"] == nil || len(svc) != 3 {
					t.Errorf("zone %s, host %s, service %s: %v", z.ZoneName, h, bin, svc)
				}
			}
		}
	}
}
