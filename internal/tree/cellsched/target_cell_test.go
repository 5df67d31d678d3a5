package cellsched

import "testing"

func TestTargetCellFilter(t *testing.T) {
	tests := []struct {
		name   string
		target string
		c      Candidate
		want   bool
	}{
		{"no hint passes", "", Candidate{Path: "api!cell1"}, true},
		{"no hint passes self", "", Candidate{Path: "api", Self: true}, true},
		{"exact match", "api!cell1", Candidate{Path: "api!cell1"}, true},
		{"target is descendant", "api!cell1!a!b", Candidate{Path: "api!cell1"}, true},
		{"target is sibling", "api!cell2", Candidate{Path: "api!cell1"}, false},
		{"path prefix is not ancestor", "api!cell10", Candidate{Path: "api!cell1"}, false},
		{"target is ancestor", "api", Candidate{Path: "api!cell1"}, false},
		{"self exact match", "api", Candidate{Path: "api", Self: true}, true},
		{"self with descendant target", "api!cell1", Candidate{Path: "api", Self: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{TargetCell: tt.target}
			if got := (TargetCellFilter{}).Passes(req, &tt.c); got != tt.want {
				t.Errorf("Passes(target=%q, %+v) = %v, want %v", tt.target, tt.c, got, tt.want)
			}
		})
	}
}
