package cellsched

import "testing"

func TestHolds(t *testing.T) {
	tests := []struct {
		name   string
		anc, p string
		want   bool
	}{
		{"equal", "api!cell1", "api!cell1", true},
		{"child", "api!cell1", "api!cell1!a", true},
		{"grandchild", "api!cell1", "api!cell1!a!b", true},
		{"root holds all", "api", "api!cell1!a", true},
		{"prefix is not ancestor", "api!cell", "api!cell1", false},
		{"descendant does not hold ancestor", "api!cell1!a", "api!cell1", false},
		{"sibling", "api!cell1", "api!cell2", false},
		{"sibling with shared prefix", "api!cell1", "api!cell10!a", false},
		{"empty path", "api!cell1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := holds(tt.anc, tt.p); got != tt.want {
				t.Errorf("holds(%q, %q) = %v, want %v", tt.anc, tt.p, got, tt.want)
			}
		})
	}
}

func TestCandidateHolds(t *testing.T) {
	tests := []struct {
		name string
		c    Candidate
		p    string
		want bool
	}{
		{"child equal", Candidate{Path: "api!cell1"}, "api!cell1", true},
		{"child ancestor", Candidate{Path: "api!cell1"}, "api!cell1!a", true},
		{"child prefix only", Candidate{Path: "api!cell"}, "api!cell1", false},
		{"self equal", Candidate{Path: "api!cell1", Self: true}, "api!cell1", true},
		{"self does not hold its children", Candidate{Path: "api!cell1", Self: true}, "api!cell1!a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := candidateHolds(&tt.c, tt.p); got != tt.want {
				t.Errorf("candidateHolds(%+v, %q) = %v, want %v", tt.c, tt.p, got, tt.want)
			}
		})
	}
}
