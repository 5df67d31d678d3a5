package cells

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// ownRoom is a volume role with a fixed room.
type ownRoom struct {
	zone string
	room capacity.VolumeRoom
}

func (o ownRoom) Create(context.Context, *db.Tx, *wire.Envelope) error { return nil }
func (o ownRoom) Capacity(context.Context) (string, capacity.VolumeRoom, error) {
	return o.zone, o.room, nil
}

// TestVolumeCandidate: a volume goes to the live child (or this cell's
// own volume role) with the most free room in its zone that has a cell
// with room for its size; a down child, a tried one, one of another zone
// and one without room for the size are passed over; none is "".
func TestVolumeCandidate(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	room := func(zone string, free, maxFree int64) *capacity.Report {
		return &capacity.Report{VolumeZones: map[string]capacity.VolumeRoom{zone: {TotalGB: 1000, FreeGB: free, MaxFreeGB: maxFree}}}
	}
	child := func(path string, r *capacity.Report, seen time.Time) *link {
		return &link{n: Neighbour{Path: path, Relation: Child, Report: r, LastSeen: seen}}
	}
	s := &Service{
		cfg: Config{Now: func() time.Time { return now }, DownAfter: time.Minute},
		neighbours: map[string]*link{
			"api!a":    child("api!a", room("nova", 500, 500), now),
			"api!b":    child("api!b", room("nova", 900, 300), now),
			"api!c":    child("api!c", room("az2", 2000, 2000), now),
			"api!down": child("api!down", room("nova", 5000, 5000), now.Add(-time.Hour)),
			"api!none": child("api!none", nil, now),
			"api!p":    {n: Neighbour{Path: "api!p", Relation: Parent}},
		},
	}
	for _, tt := range []struct {
		name  string
		zone  string
		size  int
		tried []string
		own   *ownRoom
		want  string
	}{
		{"most free in the zone", "nova", 10, nil, nil, "api!b"},
		{"any zone", "", 10, nil, nil, "api!c"},
		{"too big for b's largest cell", "nova", 400, nil, nil, "api!a"},
		{"tried cells are passed over", "nova", 10, []string{"api!b"}, nil, "api!a"},
		{"another zone", "az2", 10, nil, nil, "api!c"},
		{"unknown zone", "az9", 1, nil, nil, ""},
		{"too big everywhere", "nova", 600, nil, nil, ""},
		{"own role with more room", "nova", 10, nil, &ownRoom{"nova", capacity.VolumeRoom{FreeGB: 950, MaxFreeGB: 950}}, "api"},
		{"own role of another zone", "nova", 10, nil, &ownRoom{"az3", capacity.VolumeRoom{FreeGB: 950, MaxFreeGB: 950}}, "api!b"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.path, s.volumes = "api", nil
			if tt.own != nil {
				s.volumes = *tt.own
			}
			got, err := s.volumeCandidate(context.Background(), &wire.VolumeSpec{ID: "v", SizeGB: tt.size, AvailabilityZone: tt.zone}, tt.tried)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("candidate = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSignificantVolumeZones: a storage zone that appears or goes is
// reported at once; free room moving is not.
func TestSignificantVolumeZones(t *testing.T) {
	a := capacity.Report{VolumeZones: map[string]capacity.VolumeRoom{"nova": {TotalGB: 10, FreeGB: 10, MaxFreeGB: 10}}}
	b := capacity.Report{VolumeZones: map[string]capacity.VolumeRoom{"nova": {TotalGB: 10, FreeGB: 1, MaxFreeGB: 1}}}
	c := capacity.Report{VolumeZones: map[string]capacity.VolumeRoom{"az2": {TotalGB: 10, FreeGB: 10, MaxFreeGB: 10}}}
	if Significant(a, b) {
		t.Error("free room moving is significant")
	}
	if !Significant(a, c) || !Significant(a, capacity.Report{}) || !Significant(capacity.Report{}, a) {
		t.Error("a zone appearing or going is not significant")
	}
}

// TestVolumeBurstSpreads: what was sent to a child counts against its
// last report until it reports again, so a burst of volumes alternates
// between two cells of equal room instead of piling on the first.
func TestVolumeBurstSpreads(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	rep := func() *capacity.Report {
		return &capacity.Report{VolumeZones: map[string]capacity.VolumeRoom{"nova": {TotalGB: 100, FreeGB: 100, MaxFreeGB: 100}}}
	}
	a, b := rep(), rep()
	s := &Service{
		path: "api",
		cfg:  Config{Now: func() time.Time { return now }, DownAfter: time.Minute},
		neighbours: map[string]*link{
			"api!a": {n: Neighbour{Path: "api!a", Relation: Child, Report: a, LastSeen: now}},
			"api!b": {n: Neighbour{Path: "api!b", Relation: Child, Report: b, LastSeen: now}},
		},
		inflight: map[string]capacity.Report{},
	}
	var got []string
	for range 4 {
		c, err := s.volumeCandidate(context.Background(), &wire.VolumeSpec{ID: "v", SizeGB: 10}, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
		s.takeVolume(c, "", 10)
	}
	if want := []string{"api!a", "api!b", "api!a", "api!b"}; !slices.Equal(got, want) {
		t.Errorf("a burst went to %v, want %v", got, want)
	}
	if a.VolumeZones["nova"].FreeGB != 100 {
		t.Error("taking a volume changed the child's stored report")
	}
	s.reported("api!a")
	if r := s.afterInflight("api!a", *a); r.VolumeFree("nova") != 100 {
		t.Errorf("after a's report its room is %d, want 100", r.VolumeFree("nova"))
	}
}
