package cellsched

import "testing"

func TestSameCellFilter(t *testing.T) {
	tests := []struct {
		name string
		same []string
		c    Candidate
		want bool
	}{
		{"no hint", nil, Candidate{Path: "api!cell1"}, true},
		{"equal", []string{"api!cell1"}, Candidate{Path: "api!cell1"}, true},
		{"candidate is ancestor", []string{"api!cell1!a"}, Candidate{Path: "api!cell1"}, true},
		{"one of several", []string{"api!cell2", "api!cell1!a"}, Candidate{Path: "api!cell1"}, true},
		{"sibling", []string{"api!cell2"}, Candidate{Path: "api!cell1"}, false},
		{"prefix is not ancestor", []string{"api!cell10"}, Candidate{Path: "api!cell1"}, false},
		{"candidate is descendant", []string{"api!cell1"}, Candidate{Path: "api!cell1!a"}, false},
		{"self equal", []string{"api!cell1"}, Candidate{Path: "api!cell1", Self: true}, true},
		{"self does not hold child", []string{"api!cell1!a"}, Candidate{Path: "api!cell1", Self: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{SameCell: tt.same}
			if got := (SameCellFilter{}).Passes(req, &tt.c); got != tt.want {
				t.Errorf("Passes(same=%v, %+v) = %v, want %v", tt.same, tt.c, got, tt.want)
			}
		})
	}
}
