package cellsched

import "testing"

func TestTriedFilter(t *testing.T) {
	tests := []struct {
		name  string
		tried []string
		c     Candidate
		want  bool
	}{
		{"nothing tried", nil, Candidate{Path: "api!cell1"}, true},
		{"tried exactly", []string{"api!cell1"}, Candidate{Path: "api!cell1"}, false},
		{"one of several", []string{"api!cell2", "api!cell1"}, Candidate{Path: "api!cell1"}, false},
		{"descendant tried does not exclude ancestor", []string{"api!cell1!a"}, Candidate{Path: "api!cell1"}, true},
		{"ancestor tried does not exclude descendant", []string{"api!cell1"}, Candidate{Path: "api!cell1!a"}, true},
		{"other cell tried", []string{"api!cell2"}, Candidate{Path: "api!cell1"}, true},
		{"self tried", []string{"api"}, Candidate{Path: "api", Self: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Tried: tt.tried}
			if got := (TriedFilter{}).Passes(req, &tt.c); got != tt.want {
				t.Errorf("Passes(tried=%v, %+v) = %v, want %v", tt.tried, tt.c, got, tt.want)
			}
		})
	}
}
