package cellsched

import "testing"

func TestDifferentCellFilter(t *testing.T) {
	tests := []struct {
		name string
		diff []string
		c    Candidate
		want bool
	}{
		{"no hint", nil, Candidate{Path: "api!cell1"}, true},
		{"equal", []string{"api!cell1"}, Candidate{Path: "api!cell1"}, false},
		{"candidate is ancestor", []string{"api!cell1!a"}, Candidate{Path: "api!cell1"}, false},
		{"one of several", []string{"api!cell2", "api!cell1!a"}, Candidate{Path: "api!cell1"}, false},
		{"sibling", []string{"api!cell2"}, Candidate{Path: "api!cell1"}, true},
		{"prefix is not ancestor", []string{"api!cell10"}, Candidate{Path: "api!cell1"}, true},
		{"candidate is descendant", []string{"api!cell1"}, Candidate{Path: "api!cell1!a"}, true},
		{"self equal", []string{"api!cell1"}, Candidate{Path: "api!cell1", Self: true}, false},
		{"self not excluded by child", []string{"api!cell1!a"}, Candidate{Path: "api!cell1", Self: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{DifferentCell: tt.diff}
			if got := (DifferentCellFilter{}).Passes(req, &tt.c); got != tt.want {
				t.Errorf("Passes(different=%v, %+v) = %v, want %v", tt.diff, tt.c, got, tt.want)
			}
		})
	}
}
