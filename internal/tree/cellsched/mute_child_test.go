package cellsched

import (
	"testing"
	"time"
)

func TestMuteChildWeigher(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		w    MuteChildWeigher
		now  time.Time
		c    Candidate
		want float64
	}{
		{"fresh child", MuteChildWeigher{}, now, Candidate{Path: "api!a", LastSeen: now.Add(-10 * time.Second)}, 0},
		{"exactly at default limit", MuteChildWeigher{}, now, Candidate{Path: "api!a", LastSeen: now.Add(-300 * time.Second)}, 0},
		{"just past default limit", MuteChildWeigher{}, now, Candidate{Path: "api!a", LastSeen: now.Add(-301 * time.Second)}, -10000},
		{"never reported", MuteChildWeigher{}, now, Candidate{Path: "api!a"}, -10000},
		{"self is never mute", MuteChildWeigher{}, now, Candidate{Path: "api", Self: true}, 0},
		{"self with old LastSeen", MuteChildWeigher{}, now, Candidate{Path: "api", Self: true, LastSeen: now.Add(-time.Hour)}, 0},
		{"report from the future", MuteChildWeigher{}, now, Candidate{Path: "api!a", LastSeen: now.Add(time.Hour)}, 0},
		{"custom interval, fresh", MuteChildWeigher{MuteAfter: time.Minute}, now, Candidate{Path: "api!a", LastSeen: now.Add(-59 * time.Second)}, 0},
		{"custom interval, mute", MuteChildWeigher{MuteAfter: time.Minute}, now, Candidate{Path: "api!a", LastSeen: now.Add(-61 * time.Second)}, -10000},
		{"custom weight", MuteChildWeigher{MuteWeight: -5}, now, Candidate{Path: "api!a", LastSeen: now.Add(-time.Hour)}, -5},
		{"zero Now uses clock, old report", MuteChildWeigher{}, time.Time{}, Candidate{Path: "api!a", LastSeen: time.Now().Add(-time.Hour)}, -10000},
		{"zero Now uses clock, fresh report", MuteChildWeigher{}, time.Time{}, Candidate{Path: "api!a", LastSeen: time.Now()}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Now: tt.now}
			if got := tt.w.Weigh(req, &tt.c); got != tt.want {
				t.Errorf("Weigh = %v, want %v", got, tt.want)
			}
		})
	}
}
