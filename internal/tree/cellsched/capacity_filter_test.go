package cellsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestCapacityFilter(t *testing.T) {
	small := capacity.Flavor{VCPUs: 1, RAMMB: 512, DiskGB: 1}
	big := capacity.Flavor{VCPUs: 8, RAMMB: 16384, DiskGB: 100}
	tests := []struct {
		name   string
		flavor capacity.Flavor
		slots  []capacity.Slot
		want   bool
	}{
		{"no slots", small, nil, false},
		{"fits", small, []capacity.Slot{{VCPUs: 2, RAMMB: 2048, DiskGB: 20, Count: 1}}, true},
		{"exactly one fits", big, []capacity.Slot{{VCPUs: 8, RAMMB: 16384, DiskGB: 100, Count: 1}}, true},
		{"too little RAM", big, []capacity.Slot{{VCPUs: 16, RAMMB: 8192, DiskGB: 200, Count: 10}}, false},
		{"too few vCPUs", big, []capacity.Slot{{VCPUs: 4, RAMMB: 32768, DiskGB: 200, Count: 10}}, false},
		{"too little disk", big, []capacity.Slot{{VCPUs: 16, RAMMB: 32768, DiskGB: 50, Count: 10}}, false},
		{"one slot of several fits", big, []capacity.Slot{
			{VCPUs: 4, RAMMB: 32768, DiskGB: 200, Count: 10},
			{VCPUs: 8, RAMMB: 16384, DiskGB: 100, Count: 1},
		}, true},
		{"slot with zero count", small, []capacity.Slot{{VCPUs: 2, RAMMB: 2048, DiskGB: 20, Count: 0}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Flavor: tt.flavor}
			c := &Candidate{Path: "api!c", Report: capacity.Report{Slots: tt.slots}}
			if got := (CapacityFilter{}).Passes(req, c); got != tt.want {
				t.Errorf("Passes(%+v, %+v) = %v, want %v", tt.flavor, tt.slots, got, tt.want)
			}
		})
	}
}

// TestCapacityFilterByZone: a build that names a zone needs room in it,
// not just in the cell.
func TestCapacityFilterByZone(t *testing.T) {
	f := capacity.Flavor{VCPUs: 4, RAMMB: 4096, DiskGB: 40}
	bigHost := capacity.Slot{VCPUs: 8, RAMMB: 8192, DiskGB: 100, Count: 1}
	smallHost := capacity.Slot{VCPUs: 2, RAMMB: 2048, DiskGB: 20, Count: 3}
	two := capacity.Merge(
		capacity.Report{Slots: []capacity.Slot{bigHost}, AvailabilityZones: []string{"az1"}},
		capacity.Report{Slots: []capacity.Slot{smallHost}, AvailabilityZones: []string{"az2"}},
	)
	one := capacity.Merge(capacity.Report{Slots: []capacity.Slot{bigHost}, AvailabilityZones: []string{"az1"}})
	tests := []struct {
		name string
		zone string
		r    capacity.Report
		want bool
	}{
		{"no zone: the cell's room", "", two, true},
		{"zone with room", "az1", two, true},
		{"zone without room, though the cell has some", "az2", two, false},
		{"one-zone report", "az1", one, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Flavor: f, AvailabilityZone: tt.zone}
			if got := (CapacityFilter{}).Passes(req, &Candidate{Path: "api!c", Report: tt.r}); got != tt.want {
				t.Errorf("Passes(zone %q) = %v, want %v", tt.zone, got, tt.want)
			}
		})
	}
}
