package cells

import (
	"reflect"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellsched"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestSchedRequest: the cell scheduler is asked with the build's zone,
// flavor extra specs and project; a build forced to a host (its target
// cell leads to it) is asked with none of them, as Nova skips the filters
// for a forced host.
func TestSchedRequest(t *testing.T) {
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	specs := map[string]string{"aggregate_instance_extra_specs:ssd": "true"}
	for _, tt := range []struct {
		name, az, zone, host, node string
	}{
		{"no zone", "", "", "", ""},
		{"zone", "az1", "az1", "", ""},
		{"forced host: no filters", "az1", "", "host1", ""},
		{"forced node: no filters", "az1", "", "", "node1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &wire.BuildInstances{
				Flavor:    wire.Flavor{VCPUs: 2, RAMMB: 1024, SwapMB: 512, RootGB: 10, EphemeralGB: 5, ExtraSpecs: specs},
				Instances: []wire.InstanceSpec{{ProjectID: "p1", AvailabilityZone: tt.az}, {ProjectID: "p1", AvailabilityZone: tt.az}},
				Tried:     []string{"api!a"}, ForcedHost: tt.host, ForcedNode: tt.node,
			}
			got := schedRequest(b, now)
			want := &cellsched.Request{
				Flavor: capacity.Flavor{VCPUs: 2, RAMMB: 1536, DiskGB: 15}, NumInstances: 2, AvailabilityZone: tt.zone,
				ExtraSpecs: specs, ProjectID: "p1", Tried: []string{"api!a"}, Now: now,
			}
			if b.Forced() {
				want.ExtraSpecs, want.ProjectID = nil, ""
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("schedRequest = %+v, want %+v", got, want)
			}
		})
	}
}

// TestSchedRequestVolumeBacked: a volume-backed build (its boot device a
// volume) asks for no root disk, only its ephemeral one (Nova's is_bfv);
// a data volume beside an image's root asks for the root disk.
func TestSchedRequestVolumeBacked(t *testing.T) {
	flavor := wire.Flavor{VCPUs: 1, RAMMB: 512, RootGB: 10, EphemeralGB: 5}
	for _, tt := range []struct {
		name string
		devs []wire.BlockDevice
		disk int64
	}{
		{"volume-backed", []wire.BlockDevice{{SourceType: "image", DestinationType: "volume", BootIndex: 0}}, 5},
		{"data volume", []wire.BlockDevice{{SourceType: "blank", DestinationType: "volume", BootIndex: -1}}, 15},
		{"no volume", nil, 15},
	} {
		b := &wire.BuildInstances{Flavor: flavor, Instances: []wire.InstanceSpec{{ProjectID: "p1", BlockDevices: tt.devs}}}
		if got := schedRequest(b, time.Time{}).Flavor.DiskGB; got != tt.disk {
			t.Errorf("%s: disk %d GB asked, want %d", tt.name, got, tt.disk)
		}
	}
}

// TestTakeCountsTheZone: what was sent to a child for a zone counts
// against that zone's room until the child reports again.
func TestTakeCountsTheZone(t *testing.T) {
	host := capacity.Slot{VCPUs: 4, RAMMB: 4096, DiskGB: 40, Count: 1}
	rep := capacity.Merge(
		capacity.Report{Slots: []capacity.Slot{host}, AvailabilityZones: []string{"az1"}},
		capacity.Report{Slots: []capacity.Slot{host}, AvailabilityZones: []string{"az2"}},
	)
	s := &Service{neighbours: map[string]*link{"api!c": {n: Neighbour{Path: "api!c", Relation: Child, Report: &rep}}},
		inflight: map[string]capacity.Report{}}
	f := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	s.take("api!c", "az2", f, 3)
	got := s.afterInflight("api!c", rep)
	if a1, a2, all := got.FitsIn("az1", f), got.FitsIn("az2", f), got.Fits(f); a1 != 4 || a2 != 1 || all != 5 {
		t.Errorf("after 3 sent to az2: az1 %d, az2 %d, all %d; want 4, 1, 5", a1, a2, all)
	}
	s.reported("api!c")
	if got := s.afterInflight("api!c", rep); got.FitsIn("az2", f) != 4 {
		t.Errorf("after the child's report: az2 fits %d, want 4", got.FitsIn("az2", f))
	}
}
