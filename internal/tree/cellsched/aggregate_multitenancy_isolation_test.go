package cellsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestAggregateMultiTenancyIsolationFilter(t *testing.T) {
	isolated := &capacity.Aggregates{Projects: []string{"p1", "p2"}}
	tests := []struct {
		name    string
		project string
		aggs    *capacity.Aggregates
		want    bool
	}{
		{"report says nothing of aggregates", "p9", nil, true},
		{"a host open to every project", "p9", &capacity.Aggregates{OpenToAll: true}, true},
		{"isolated hosts take the project", "p2", isolated, true},
		{"isolated hosts only, not for the project", "p9", isolated, false},
		{"too many projects to list", "p9", &capacity.Aggregates{ProjectsTruncated: true}, true},
		{"no project in the request", "", isolated, true},
		{"no host takes anyone", "p1", &capacity.Aggregates{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{ProjectID: tt.project}
			c := &Candidate{Path: "api!c", Report: capacity.Report{Aggregates: tt.aggs}}
			if got := (AggregateMultiTenancyIsolationFilter{}).Passes(req, c); got != tt.want {
				t.Errorf("Passes(project %q, %+v) = %v, want %v", tt.project, tt.aggs, got, tt.want)
			}
		})
	}
}
