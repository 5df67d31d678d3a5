package cellsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestAggregateInstanceExtraSpecsFilter(t *testing.T) {
	aggs := &capacity.Aggregates{
		Metadata: map[string][]string{"ssd": {"true"}, "gpu": {"a100", "h100"}, "speed": {"10"}},
		AnyValue: []string{"rack"},
	}
	type specs = map[string]string
	tests := []struct {
		name  string
		specs specs
		aggs  *capacity.Aggregates
		want  bool
	}{
		{"no extra specs", nil, aggs, true},
		{"report says nothing of aggregates", specs{"ssd": "true"}, nil, true},
		{"unscoped, value on some host", specs{"ssd": "true"}, aggs, true},
		{"scoped, value on some host", specs{"aggregate_instance_extra_specs:gpu": "h100"}, aggs, true},
		{"scoped, value on no host", specs{"aggregate_instance_extra_specs:gpu": "v100"}, aggs, false},
		{"unscoped, value on no host", specs{"ssd": "false"}, aggs, false},
		{"key on no host", specs{"fpga": "yes"}, aggs, false},
		{"key on no host, with an operator", specs{"fpga": ">= 1"}, aggs, false},
		{"other scopes are not this filter's", specs{"hw:cpu_policy": "dedicated", "quota:cpu_shares": "512"}, aggs, true},
		{"one of several fails", specs{"ssd": "true", "gpu": "v100"}, aggs, false},
		{"all met (by different hosts, maybe)", specs{"ssd": "true", "gpu": "a100"}, aggs, true},
		{"key with too many values to list", specs{"rack": "r42"}, aggs, true},
		{"truncated metadata", specs{"fpga": "yes"}, &capacity.Aggregates{MetadataTruncated: true}, true},
		{"no metadata at all", specs{"ssd": "true"}, &capacity.Aggregates{OpenToAll: true}, false},
		{"tenant keys are reported as projects", specs{"filter_tenant_id": "p1"}, aggs, true},
		{"s== matches a value", specs{"gpu": "s== a100"}, aggs, true},
		{"s== after Python's whitespace", specs{"gpu": "s==\x1ca100"}, aggs, true},
		{"s== matches none", specs{"gpu": "s== v100"}, aggs, false},
		{"<or> matches one", specs{"gpu": "<or> v100 <or> h100"}, aggs, true},
		{"<or> matches none", specs{"gpu": "<or> v100 <or> k80"}, aggs, false},
		{"numeric operators pass", specs{"speed": ">= 100"}, aggs, true},
		{"<in> passes", specs{"gpu": "<in> v1"}, aggs, true},
		{"equality is of the whole spec", specs{"gpu": "a100 h100"}, aggs, false},
		{"case matters", specs{"ssd": "True"}, aggs, false},
		{"a scoped key with a colon", specs{"aggregate_instance_extra_specs:a:b": "c"},
			&capacity.Aggregates{Metadata: map[string][]string{"a:b": {"c"}}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{ExtraSpecs: tt.specs}
			c := &Candidate{Path: "api!c", Report: capacity.Report{Aggregates: tt.aggs}}
			if got := (AggregateInstanceExtraSpecsFilter{}).Passes(req, c); got != tt.want {
				t.Errorf("Passes(%v) = %v, want %v", tt.specs, got, tt.want)
			}
		})
	}
}
