package volume_test

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
)

func TestLimits(t *testing.T) {
	e := newEnv(t)
	c := e.client("demo", "pw-demo", "demo")
	l, err := limits.Get(context.Background(), c).Extract()
	if err != nil {
		t.Fatal(err)
	}
	want := limits.Absolute{MaxTotalVolumes: 10, MaxTotalSnapshots: 10, MaxTotalVolumeGigabytes: 1000, MaxTotalBackups: 10, MaxTotalBackupGigabytes: 1000}
	if l.Absolute != want || len(l.Rate) != 0 {
		t.Errorf("limits %+v", l)
	}
	abs := e.do("GET", "/volume/v3/"+e.demoProject+"/limits", e.demo).json(t, 200)["limits"].(map[string]any)["absolute"].(map[string]any)
	for _, k := range []string{"totalVolumesUsed", "totalGigabytesUsed", "totalSnapshotsUsed", "totalBackupsUsed", "totalBackupGigabytesUsed"} {
		if v, ok := abs[k]; !ok || v != float64(0) {
			t.Errorf("%s = %v", k, v)
		}
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
