package cellsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestAvailabilityZoneFilter(t *testing.T) {
	tests := []struct {
		name  string
		zone  string
		zones []string
		want  bool
	}{
		{"no zone requested", "", nil, true},
		{"no zone requested, cell has zones", "", []string{"az1"}, true},
		{"zone listed", "az2", []string{"az1", "az2"}, true},
		{"zone not listed", "az3", []string{"az1", "az2"}, false},
		{"cell has no zones", "az1", nil, false},
		{"case matters", "AZ1", []string{"az1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{AvailabilityZone: tt.zone}
			c := &Candidate{Path: "api!c", Report: capacity.Report{AvailabilityZones: tt.zones}}
			if got := (AvailabilityZoneFilter{}).Passes(req, c); got != tt.want {
				t.Errorf("Passes(zone=%q, zones=%v) = %v, want %v", tt.zone, tt.zones, got, tt.want)
			}
		})
	}
}
