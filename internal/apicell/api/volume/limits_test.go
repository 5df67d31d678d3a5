package volume_test

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
)

// TestLimits: the absolute limits are the project's quota limits and the
// used ones what its volumes use; a member sees its own even when it
// names another project; an admin may name one from 3.39.
func TestLimits(t *testing.T) {
	e := newEnv(t)
	e.usage.set(e.demoProject, map[string]int64{"volumes": 3, "gigabytes": 40, "snapshots": 1})
	c := e.client("demo", "pw-demo", "demo")
	l, err := limits.Get(context.Background(), c).Extract()
	if err != nil {
		t.Fatal(err)
	}
	want := limits.Absolute{MaxTotalVolumes: 10, MaxTotalSnapshots: 10, MaxTotalVolumeGigabytes: 1000, MaxTotalBackups: 10, MaxTotalBackupGigabytes: 1000,
		TotalVolumesUsed: 3, TotalGigabytesUsed: 40, TotalSnapshotsUsed: 1}
	if l.Absolute != want || len(l.Rate) != 0 {
		t.Errorf("limits %+v", l)
	}
	abs := e.do("GET", "/volume/v3/"+e.demoProject+"/limits?project_id="+e.adminProject, e.demo, "OpenStack-API-Version", "volume 3.39").json(t, 200)["limits"].(map[string]any)["absolute"].(map[string]any)
	for k, v := range map[string]float64{"totalVolumesUsed": 3, "totalGigabytesUsed": 40, "totalSnapshotsUsed": 1, "totalBackupsUsed": 0, "totalBackupGigabytesUsed": 0} {
		if abs[k] != v {
			t.Errorf("%s = %v, want %v", k, abs[k], v)
		}
	}
	if r := e.send("PUT", "/volume/v3/"+e.adminProject+"/os-quota-sets/"+e.demoProject, e.admin, `{"quota_set": {"volumes": 7}}`); r.status != 200 {
		t.Fatalf("set: %d %s", r.status, r.body)
	}
	byAdmin := func(version string) map[string]any {
		return e.do("GET", "/volume/v3/"+e.adminProject+"/limits?project_id="+e.demoProject, e.admin, "OpenStack-API-Version", "volume "+version).json(t, 200)["limits"].(map[string]any)["absolute"].(map[string]any)
	}
	if a := byAdmin("3.39"); a["maxTotalVolumes"] != float64(7) || a["totalVolumesUsed"] != float64(3) {
		t.Errorf("admin's view of demo at 3.39: %v", a)
	}
	if a := byAdmin("3.38"); a["maxTotalVolumes"] != float64(10) || a["totalVolumesUsed"] != float64(0) {
		t.Errorf("admin's own at 3.38: %v", a)
	}
}

func TestAvailabilityZones(t *testing.T) {
	e := newEnv(t)
	c := e.client("demo", "pw-demo", "demo")
	pages, err := availabilityzones.List(c).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	zones, err := availabilityzones.ExtractAvailabilityZones(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(zones) != 1 || zones[0].ZoneName != "nova" || !zones[0].ZoneState.Available {
		t.Errorf("zones %+v", zones)
	}
}
