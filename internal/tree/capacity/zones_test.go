package capacity_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

var (
	big   = capacity.Slot{VCPUs: 8, RAMMB: 8192, DiskGB: 100, Count: 1}
	small = capacity.Slot{VCPUs: 2, RAMMB: 2048, DiskGB: 20, Count: 1}
)

func slot(s capacity.Slot, n int) capacity.Slot {
	s.Count = n
	return s
}

// zoned is a report of one zone, as a cell of one zone sends it.
func zoned(zone string, slots ...capacity.Slot) capacity.Report {
	return capacity.Merge(capacity.Report{Slots: slots, AvailabilityZones: []string{zone}})
}

func TestMergeZoneSlots(t *testing.T) {
	two := capacity.Merge(zoned("az1", big), zoned("az2", small))
	tests := []struct {
		name      string
		in        []capacity.Report
		wantZones []string
		want      map[string][]capacity.Slot
	}{
		{"one zone: no zone slots", []capacity.Report{zoned("az1", big, small)}, []string{"az1"}, nil},
		{"two reports of one zone: none", []capacity.Report{zoned("az1", big), zoned("az1", small)}, []string{"az1"}, nil},
		{"two zones: each its own", []capacity.Report{zoned("az1", big), zoned("az2", small, small)}, []string{"az1", "az2"},
			map[string][]capacity.Slot{"az1": {big}, "az2": {slot(small, 2)}}},
		{"mix: zone slots and a one-zone report of a zone in them", []capacity.Report{two, zoned("az2", big)}, []string{"az1", "az2"},
			map[string][]capacity.Slot{"az1": {big}, "az2": {big, small}}},
		{"mix: zone slots and a one-zone report of another zone", []capacity.Report{two, zoned("az3", small)}, []string{"az1", "az2", "az3"},
			map[string][]capacity.Slot{"az1": {big}, "az2": {small}, "az3": {small}}},
		{"a zone with no room has no slots", []capacity.Report{zoned("az1", big), {AvailabilityZones: []string{"full"}}}, []string{"az1", "full"},
			map[string][]capacity.Slot{"az1": {big}}},
		// A cell's own part before normalising: zone slots of one zone
		// are dropped.
		{"unnormalised, one zone", []capacity.Report{{Slots: []capacity.Slot{big}, AvailabilityZones: []string{"az1"},
			ZoneSlots: map[string][]capacity.Slot{"az1": {big}}}}, []string{"az1"}, nil},
		// A report listing zones without zone slots (from a cell before
		// them) counts its room in each zone: too much, never too little.
		{"zones without zone slots", []capacity.Report{{Slots: []capacity.Slot{big}, AvailabilityZones: []string{"az1", "az2"}}, zoned("az3", small)},
			[]string{"az1", "az2", "az3"}, map[string][]capacity.Slot{"az1": {big}, "az2": {big}, "az3": {small}}},
		{"operator capabilities keep zone slots", []capacity.Report{two, {Capabilities: map[string][]string{"x": {"y"}}}}, []string{"az1", "az2"},
			map[string][]capacity.Slot{"az1": {big}, "az2": {small}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := capacity.Merge(tt.in...)
			if !reflect.DeepEqual(m.AvailabilityZones, tt.wantZones) {
				t.Errorf("zones = %v, want %v", m.AvailabilityZones, tt.wantZones)
			}
			if len(tt.want) == 0 && len(m.ZoneSlots) != 0 || len(tt.want) > 0 && !reflect.DeepEqual(m.ZoneSlots, tt.want) {
				t.Errorf("zone slots = %+v, want %+v", m.ZoneSlots, tt.want)
			}
			// The whole cell's slots are every zone's.
			whole := 0
			for _, s := range m.Slots {
				whole += s.Count
			}
			for _, r := range tt.in {
				for _, s := range r.Slots {
					whole -= s.Count
				}
			}
			if whole != 0 {
				t.Errorf("slots %+v do not hold every report's hosts", m.Slots)
			}
		})
	}
}

// TestMergeZoneSlotsBounded: many zones share MaxSlots, each keeping at
// least MinZoneSlots, and compressing never adds room.
func TestMergeZoneSlotsBounded(t *testing.T) {
	var parts []capacity.Report
	for z := range 40 {
		var ss []capacity.Slot
		for i := range 100 {
			ss = append(ss, capacity.Slot{VCPUs: 1 + i, RAMMB: int64(1024 * (1 + i)), DiskGB: int64(10 * (i + 1)), Count: 1})
		}
		parts = append(parts, zoned(strings.Repeat("z", z+1), ss...))
	}
	m := capacity.Merge(parts...)
	f := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	for z, ss := range m.ZoneSlots {
		if len(ss) > capacity.MinZoneSlots {
			t.Errorf("zone %s keeps %d slots, want at most %d (40 zones)", z, len(ss), capacity.MinZoneSlots)
		}
		if got, max := m.FitsIn(z, f), parts[0].Fits(f); got > max || got == 0 {
			t.Errorf("zone %s fits %d, want between 1 and %d", z, got, max)
		}
	}
	if len(m.ZoneSlots) != 40 {
		t.Errorf("%d zones with slots, want 40", len(m.ZoneSlots))
	}
}

func TestFitsIn(t *testing.T) {
	f := capacity.Flavor{VCPUs: 2, RAMMB: 2048, DiskGB: 20}
	two := capacity.Merge(zoned("az1", big), zoned("az2", small))
	one := zoned("az1", big, small)
	tests := []struct {
		name string
		r    capacity.Report
		zone string
		want int
	}{
		{"no zone: the whole cell", two, "", 5},
		{"zone az1", two, "az1", 4},
		{"zone az2", two, "az2", 1},
		{"zone the cell has not", two, "az9", 0},
		{"one zone: the whole cell", one, "az1", 5},
		{"empty report", capacity.Report{}, "az1", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.FitsIn(tt.zone, f); got != tt.want {
				t.Errorf("FitsIn(%q) = %d, want %d", tt.zone, got, tt.want)
			}
		})
	}
}

func TestTakeIn(t *testing.T) {
	f := capacity.Flavor{VCPUs: 2, RAMMB: 2048, DiskGB: 20}
	two := capacity.Merge(zoned("az1", big), zoned("az2", small))
	tests := []struct {
		name            string
		r               capacity.Report
		zone            string
		n               int
		whole, az1, az2 int
	}{
		// az1's host has the most room: an unzoned build spreads there.
		{"no zone", two, "", 1, 4, 3, 1},
		{"no zone, until az1 is as empty as az2", two, "", 3, 2, 1, 1},
		{"no zone, more than fits", two, "", 9, 0, 0, 0},
		{"zone az2", two, "az2", 1, 4, 4, 0},
		// az2 has room for one: the second is taken from nothing.
		{"zone az2, past its room", two, "az2", 2, 4, 4, 0},
		{"zone az1", two, "az1", 2, 3, 2, 1},
		{"zone the cell has not", two, "az9", 1, 5, 4, 1},
		{"one zone", zoned("az1", big, small), "az1", 1, 4, 4, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := json.Marshal(tt.r)
			got := tt.r.TakeIn(tt.zone, f, tt.n)
			if w, a1, a2 := got.Fits(f), got.FitsIn("az1", f), got.FitsIn("az2", f); w != tt.whole || a1 != tt.az1 || a2 != tt.az2 {
				t.Errorf("after TakeIn(%q, %d): fits %d, az1 %d, az2 %d; want %d, %d, %d", tt.zone, tt.n, w, a1, a2, tt.whole, tt.az1, tt.az2)
			}
			if after, _ := json.Marshal(tt.r); string(after) != string(before) {
				t.Errorf("TakeIn changed the report it was called on")
			}
		})
	}
}

// TestOneZoneReportCostsNothing: a report of one zone carries nothing new
// on the wire.
func TestOneZoneReportCostsNothing(t *testing.T) {
	b, err := json.Marshal(zoned("nova", big, small))
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"zone_slots", "aggregates"} {
		if strings.Contains(string(b), field) {
			t.Errorf("one-zone report %s has %q", b, field)
		}
	}
}
