package cellsched

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// scoreWeigher scores candidates from a table keyed by path.
type scoreWeigher map[string]float64

func (w scoreWeigher) Weigh(_ *Request, c *Candidate) float64 { return w[c.Path] }

// rejectFilter rejects the listed paths.
type rejectFilter []string

func (f rejectFilter) Passes(_ *Request, c *Candidate) bool { return !slices.Contains(f, c.Path) }

func paths(cs []Candidate) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Path
	}
	return out
}

// hosts returns a report with n identical hosts of 8 vCPUs, 16 GiB, 200 GB.
func hosts(n int) capacity.Report {
	return capacity.Report{
		Hosts:             n,
		Slots:             []capacity.Slot{{VCPUs: 8, RAMMB: 16384, DiskGB: 200, Count: n}},
		AvailabilityZones: []string{"nova"},
	}
}

// zone puts a report's hosts in zone z.
func zone(r capacity.Report, z string) capacity.Report {
	r.AvailabilityZones = []string{z}
	return r
}

func withAggs(r capacity.Report, a *capacity.Aggregates) capacity.Report {
	r.Aggregates = a
	return r
}

var ssdOpen = &capacity.Aggregates{OpenToAll: true, Metadata: map[string][]string{"ssd": {"true"}}}

func TestNormalise(t *testing.T) {
	tests := []struct {
		name string
		in   []float64
		want []float64
	}{
		{"empty", nil, nil},
		{"single", []float64{7}, []float64{0}},
		{"all equal", []float64{5, 5, 5}, []float64{0, 0, 0}},
		{"min max", []float64{10, 20, 30}, []float64{0, 0.5, 1}},
		{"negative", []float64{-4, 0, -2}, []float64{0, 1, 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := slices.Clone(tt.in)
			normalise(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("normalise(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRank(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	fresh := now.Add(-time.Minute)
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	tests := []struct {
		name  string
		s     *Scheduler
		req   Request
		cands []Candidate
		want  []string
	}{
		{
			name: "more room first",
			s:    Default(),
			req:  Request{Flavor: small, Now: now},
			cands: []Candidate{
				{Path: "api!a", Report: hosts(1), LastSeen: fresh},
				{Path: "api!b", Report: hosts(3), LastSeen: fresh},
				{Path: "api!c", Report: hosts(2), LastSeen: fresh},
			},
			want: []string{"api!b", "api!c", "api!a"},
		},
		{
			name: "filters drop candidates",
			s:    Default(),
			req:  Request{Flavor: small, Now: now, Tried: []string{"api!b"}, AvailabilityZone: "nova"},
			cands: []Candidate{
				{Path: "api!a", Report: hosts(1), LastSeen: fresh},
				{Path: "api!b", Report: hosts(3), LastSeen: fresh},
				{Path: "api!c", Report: capacity.Report{}, LastSeen: fresh},
				{Path: "api!d", Report: capacity.Report{Slots: hosts(5).Slots}, LastSeen: fresh},
			},
			want: []string{"api!a"},
		},
		{
			// a has more room, but not in az2; c has hosts only for
			// project p1; d has no ssd hosts.
			name: "zone room, aggregates and projects",
			s:    Default(),
			req:  Request{Flavor: small, Now: now, AvailabilityZone: "az2", ProjectID: "p2", ExtraSpecs: map[string]string{"ssd": "true"}},
			cands: []Candidate{
				{Path: "api!a", Report: withAggs(capacity.Merge(zone(hosts(9), "az1"), zone(hosts(1), "az2")), ssdOpen), LastSeen: fresh},
				{Path: "api!b", Report: withAggs(capacity.Merge(zone(hosts(1), "az1"), zone(hosts(3), "az2")), ssdOpen), LastSeen: fresh},
				{Path: "api!c", Report: withAggs(zone(hosts(5), "az2"), &capacity.Aggregates{Projects: []string{"p1"}, Metadata: ssdOpen.Metadata}), LastSeen: fresh},
				{Path: "api!d", Report: withAggs(zone(hosts(5), "az2"), &capacity.Aggregates{OpenToAll: true}), LastSeen: fresh},
			},
			want: []string{"api!b", "api!a"},
		},
		{
			name: "target cell routes to holder",
			s:    Default(),
			req:  Request{Flavor: small, Now: now, TargetCell: "api!b!x"},
			cands: []Candidate{
				{Path: "api", Self: true, Report: hosts(9)},
				{Path: "api!a", Report: hosts(5), LastSeen: fresh},
				{Path: "api!b", Report: hosts(1), LastSeen: fresh},
			},
			want: []string{"api!b"},
		},
		{
			name: "self competes with children",
			s:    Default(),
			req:  Request{Flavor: small, Now: now},
			cands: []Candidate{
				{Path: "api!a", Report: hosts(1), LastSeen: fresh},
				{Path: "api", Self: true, Report: hosts(4)},
			},
			want: []string{"api", "api!a"},
		},
		{
			name: "mute child ranks last despite most room",
			s:    Default(),
			req:  Request{Flavor: small, Now: now},
			cands: []Candidate{
				{Path: "api!a", Report: hosts(100), LastSeen: now.Add(-time.Hour)},
				{Path: "api!b", Report: hosts(1), LastSeen: fresh},
				{Path: "api!c", Report: hosts(2), LastSeen: fresh, WeightOffset: -50},
			},
			want: []string{"api!b", "api!c", "api!a"},
		},
		{
			name: "weight offset beats normalised room",
			s:    Default(),
			req:  Request{Flavor: small, Now: now},
			cands: []Candidate{
				{Path: "api!a", Report: hosts(100), LastSeen: fresh},
				{Path: "api!b", Report: hosts(1), LastSeen: fresh, WeightOffset: 10.5},
			},
			// a: 10×1 = 10; b: 10×0 + 10.5 = 10.5.
			want: []string{"api!b", "api!a"},
		},
		{
			name: "normalised then offset",
			s: &Scheduler{Weighers: []WeighSpec{
				{Weigher: scoreWeigher{"a": 10, "b": 20, "c": 30}, Multiplier: 1, Normalise: true},
				{Weigher: WeightOffsetWeigher{}, Multiplier: 1},
			}},
			cands: []Candidate{
				{Path: "b"},                      // 0.5
				{Path: "c", WeightOffset: -0.45}, // 1 - 0.45 = 0.55
				{Path: "a", WeightOffset: 0.6},   // 0 + 0.6 = 0.6
			},
			want: []string{"a", "c", "b"},
		},
		{
			name: "unnormalised raw scores",
			s: &Scheduler{Weighers: []WeighSpec{
				{Weigher: scoreWeigher{"a": 10, "b": 20, "c": 30}, Multiplier: 1},
				{Weigher: WeightOffsetWeigher{}, Multiplier: 1},
			}},
			cands: []Candidate{
				{Path: "b"},
				{Path: "c", WeightOffset: -0.45},
				{Path: "a", WeightOffset: 0.6},
			},
			want: []string{"c", "b", "a"},
		},
		{
			name: "normalised over passing candidates only",
			s: &Scheduler{
				Filters: []Filter{rejectFilter{"z"}},
				Weighers: []WeighSpec{
					{Weigher: scoreWeigher{"a": 10, "b": 20, "z": 1000}, Multiplier: 1, Normalise: true},
					{Weigher: WeightOffsetWeigher{}, Multiplier: 1},
				},
			},
			// Over a, b only: a→0, b→1. Had z counted, b would be ≈0.01.
			cands: []Candidate{{Path: "z"}, {Path: "a", WeightOffset: 0.9}, {Path: "b"}},
			want:  []string{"b", "a"},
		},
		{
			name: "all-equal normalised scores are zero",
			s: &Scheduler{Weighers: []WeighSpec{
				{Weigher: scoreWeigher{"a": 5, "b": 5}, Multiplier: 1000, Normalise: true},
				{Weigher: WeightOffsetWeigher{}, Multiplier: 1},
			}},
			// If equal scores mapped to 1, a would total (1000+0)×2.
			cands: []Candidate{{Path: "a", WeightScale: 2}, {Path: "b", WeightOffset: 1}},
			want:  []string{"b", "a"},
		},
		{
			name: "multiplier scales and negative inverts",
			s: &Scheduler{Weighers: []WeighSpec{
				{Weigher: scoreWeigher{"a": 1, "b": 2, "c": 3}, Multiplier: -1, Normalise: true},
			}},
			cands: []Candidate{{Path: "a"}, {Path: "b"}, {Path: "c"}},
			want:  []string{"a", "b", "c"},
		},
		{
			name: "zero multiplier ignores weigher",
			s: &Scheduler{Weighers: []WeighSpec{
				{Weigher: scoreWeigher{"a": 1, "b": 2, "c": 3}, Multiplier: 0, Normalise: true},
			}},
			cands: []Candidate{{Path: "c"}, {Path: "b"}, {Path: "a"}},
			want:  []string{"a", "b", "c"},
		},
		{
			name: "weight scale multiplies total",
			s:    Default(),
			req:  Request{Flavor: small, Now: now},
			cands: []Candidate{
				// a: (10×1 + 0) × 0.2 = 2; b: (0 + 3) × 1 = 3.
				{Path: "api!a", Report: hosts(10), LastSeen: fresh, WeightScale: 0.2},
				{Path: "api!b", Report: hosts(1), LastSeen: fresh, WeightOffset: 3},
			},
			want: []string{"api!b", "api!a"},
		},
		{
			name: "zero weight scale means unscaled",
			s:    Default(),
			req:  Request{Flavor: small, Now: now},
			cands: []Candidate{
				// a: 10 (scale 0 = unset); b: 3.
				{Path: "api!a", Report: hosts(10), LastSeen: fresh, WeightScale: 0},
				{Path: "api!b", Report: hosts(1), LastSeen: fresh, WeightOffset: 3},
			},
			want: []string{"api!a", "api!b"},
		},
		{
			name: "weight scale applies to offset too",
			s: &Scheduler{Weighers: []WeighSpec{
				{Weigher: WeightOffsetWeigher{}, Multiplier: 1},
			}},
			// a: 5×3 = 15; b: 10.
			cands: []Candidate{{Path: "b", WeightOffset: 10}, {Path: "a", WeightOffset: 5, WeightScale: 3}},
			want:  []string{"a", "b"},
		},
		{
			name: "ties ordered by path",
			s:    Default(),
			req:  Request{Flavor: small, Now: now},
			cands: []Candidate{
				{Path: "api!c", Report: hosts(2), LastSeen: fresh},
				{Path: "api!a", Report: hosts(2), LastSeen: fresh},
				{Path: "api", Self: true, Report: hosts(2)},
				{Path: "api!b", Report: hosts(2), LastSeen: fresh},
			},
			want: []string{"api", "api!a", "api!b", "api!c"},
		},
		{
			name:  "no weighers orders by path",
			s:     &Scheduler{},
			cands: []Candidate{{Path: "b"}, {Path: "c"}, {Path: "a"}},
			want:  []string{"a", "b", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.cands)
			got, err := tt.s.Rank(&tt.req, in)
			if err != nil {
				t.Fatalf("Rank: %v", err)
			}
			if !slices.Equal(paths(got), tt.want) {
				t.Errorf("Rank order = %v, want %v", paths(got), tt.want)
			}
			if !reflect.DeepEqual(in, tt.cands) {
				t.Errorf("Rank modified its input: %v", paths(in))
			}
		})
	}
}

func TestRankReturnsFullCandidates(t *testing.T) {
	c := Candidate{Path: "api!a", Report: hosts(1), LastSeen: time.Unix(100, 0), WeightOffset: 1, WeightScale: 2}
	got, err := (&Scheduler{}).Rank(&Request{}, []Candidate{c})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !reflect.DeepEqual(got[0], c) {
		t.Errorf("Rank = %+v, want [%+v]", got, c)
	}
}

func TestRankNoValidCell(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		req      Request
		cands    []Candidate
		contains []string
	}{
		{
			name:     "no candidates",
			req:      Request{Flavor: capacity.Flavor{VCPUs: 1}},
			contains: []string{"no candidates"},
		},
		{
			name: "all rejected",
			req:  Request{Flavor: capacity.Flavor{VCPUs: 64}, Now: now, Tried: []string{"api!a"}},
			cands: []Candidate{
				{Path: "api!a", Report: hosts(1)},
				{Path: "api!b", Report: hosts(1)},
				{Path: "api!c", Report: hosts(1)},
			},
			contains: []string{"3 candidates", "TriedFilter rejected 1", "CapacityFilter rejected 2"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Default().Rank(&tt.req, tt.cands)
			if !errors.Is(err, ErrNoValidCell) {
				t.Fatalf("Rank error = %v, want ErrNoValidCell", err)
			}
			if got != nil {
				t.Errorf("Rank returned %v with an error", paths(got))
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
}

func TestRankNilRequest(t *testing.T) {
	if _, err := Default().Rank(nil, []Candidate{{Path: "a"}}); err == nil {
		t.Fatal("Rank(nil) returned no error")
	}
}

func TestDefault(t *testing.T) {
	s := Default()
	wantFilters := []Filter{
		TargetCellFilter{}, TriedFilter{}, SameCellFilter{}, DifferentCellFilter{},
		AvailabilityZoneFilter{}, ImagePropertiesFilter{}, AggregateInstanceExtraSpecsFilter{},
		AggregateMultiTenancyIsolationFilter{}, CapacityFilter{},
	}
	if !reflect.DeepEqual(s.Filters, wantFilters) {
		t.Errorf("Default filters = %#v, want %#v", s.Filters, wantFilters)
	}
	wantWeighers := []WeighSpec{
		{Weigher: RAMByFlavorWeigher{}, Multiplier: 10, Normalise: true},
		{Weigher: MuteChildWeigher{}, Multiplier: 1},
		{Weigher: WeightOffsetWeigher{}, Multiplier: 1},
	}
	if !reflect.DeepEqual(s.Weighers, wantWeighers) {
		t.Errorf("Default weighers = %#v, want %#v", s.Weighers, wantWeighers)
	}
	if Default() == s {
		t.Error("Default returned a shared Scheduler")
	}
}

func BenchmarkRank100Cells(b *testing.B) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cands := make([]Candidate, 100)
	for i := range cands {
		cands[i] = Candidate{
			Path: fmt.Sprintf("api!region%d!cell%03d", i%5, i),
			Report: capacity.Report{
				Slots: []capacity.Slot{
					{VCPUs: 8 + i%7, RAMMB: int64(16384 + 1024*(i%11)), DiskGB: 200, Count: 50 + i},
					{VCPUs: 2, RAMMB: 4096, DiskGB: 40, Count: 100},
				},
				AvailabilityZones: []string{"nova", fmt.Sprintf("az%d", i%3)},
				Capabilities:      map[string][]string{"hypervisor_type": {"fake"}},
			},
			LastSeen:     now.Add(-time.Duration(i*5) * time.Second),
			WeightOffset: float64(i % 4),
		}
	}
	req := &Request{
		Flavor:          capacity.Flavor{VCPUs: 2, RAMMB: 2048, DiskGB: 20},
		NumInstances:    1,
		ImageProperties: map[string]string{"hypervisor_type": "fake"},
		DifferentCell:   []string{"api!region1!cell001"},
		Tried:           []string{"api!region0!cell000"},
		Now:             now,
	}
	s := Default()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Rank(req, cands); err != nil {
			b.Fatal(err)
		}
	}
}
