package cellsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestRAMByFlavorWeigher(t *testing.T) {
	flavor := capacity.Flavor{VCPUs: 2, RAMMB: 1024, DiskGB: 10}
	tests := []struct {
		name  string
		slots []capacity.Slot
		want  float64
	}{
		{"no slots", nil, 0},
		{"one host", []capacity.Slot{{VCPUs: 8, RAMMB: 4096, DiskGB: 100, Count: 1}}, 4},
		{"limited by vCPUs", []capacity.Slot{{VCPUs: 3, RAMMB: 4096, DiskGB: 100, Count: 1}}, 1},
		{"counts hosts", []capacity.Slot{{VCPUs: 8, RAMMB: 4096, DiskGB: 100, Count: 10}}, 40},
		{"sums slots", []capacity.Slot{
			{VCPUs: 8, RAMMB: 4096, DiskGB: 100, Count: 2},
			{VCPUs: 2, RAMMB: 1024, DiskGB: 10, Count: 3},
		}, 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Flavor: flavor}
			c := &Candidate{Path: "api!c", Report: capacity.Report{Slots: tt.slots}}
			if got := (RAMByFlavorWeigher{}).Weigh(req, c); got != tt.want {
				t.Errorf("Weigh = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRAMByFlavorWeigherByZone(t *testing.T) {
	flavor := capacity.Flavor{VCPUs: 2, RAMMB: 1024, DiskGB: 10}
	r := capacity.Merge(
		capacity.Report{Slots: []capacity.Slot{{VCPUs: 8, RAMMB: 4096, DiskGB: 100, Count: 10}}, AvailabilityZones: []string{"az1"}},
		capacity.Report{Slots: []capacity.Slot{{VCPUs: 8, RAMMB: 4096, DiskGB: 100, Count: 1}}, AvailabilityZones: []string{"az2"}},
	)
	for zone, want := range map[string]float64{"": 44, "az1": 40, "az2": 4, "az3": 0} {
		req := &Request{Flavor: flavor, AvailabilityZone: zone}
		if got := (RAMByFlavorWeigher{}).Weigh(req, &Candidate{Path: "api!c", Report: r}); got != want {
			t.Errorf("Weigh(zone %q) = %v, want %v", zone, got, want)
		}
	}
}
