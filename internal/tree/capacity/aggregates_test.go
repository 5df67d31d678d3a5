package capacity_test

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

type md = map[string]string

func TestSummariseAggregates(t *testing.T) {
	manyValues := md{"rack": ""}
	for i := range capacity.MaxAggregateValues {
		manyValues["rack"] += fmt.Sprintf("r%d,", i)
	}
	manyKeys := md{}
	for i := range capacity.MaxAggregateKeys + 1 {
		manyKeys[fmt.Sprintf("k%d", i)] = "v"
	}
	manyProjects := md{"filter_tenant_id": ""}
	for i := range capacity.MaxProjects + 1 {
		manyProjects["filter_tenant_id"] += fmt.Sprintf("p%d,", i)
	}
	tests := []struct {
		name  string
		hosts [][]map[string]string
		want  *capacity.Aggregates
	}{
		{"no host: nothing to say", nil, nil},
		{"a host in no aggregate", [][]map[string]string{nil}, &capacity.Aggregates{OpenToAll: true}},
		{"metadata of every host, comma lists split and trimmed as Python strips", [][]map[string]string{
			{md{"ssd": "true", "availability_zone": "az1"}, md{"gpu": "a100,\x1dh100\u00a0"}},
			{md{"ssd": "false"}},
		}, &capacity.Aggregates{OpenToAll: true, Metadata: map[string][]string{
			"ssd": {"false", "true"}, "availability_zone": {"az1"}, "gpu": {"a100", "h100"}}}},
		{"isolated hosts only: their projects", [][]map[string]string{
			{md{"filter_tenant_id": "p1,p2"}, md{"filter_tenant_id_2": "p3"}},
			{md{"filter_tenant_id": "p4", "ssd": "true"}},
		}, &capacity.Aggregates{Projects: []string{"p1", "p2", "p3", "p4"}, Metadata: map[string][]string{"ssd": {"true"}}}},
		// Projects are left out when every project can land.
		{"an open host and an isolated one", [][]map[string]string{
			{md{"filter_tenant_id": "p1"}},
			{md{"ssd": "true"}},
		}, &capacity.Aggregates{OpenToAll: true, Metadata: map[string][]string{"ssd": {"true"}}}},
		{"too many values: the key takes any", [][]map[string]string{{manyValues, md{"ssd": "true"}}},
			&capacity.Aggregates{OpenToAll: true, Metadata: map[string][]string{"ssd": {"true"}}, AnyValue: []string{"rack"}}},
		{"too many keys: any key", [][]map[string]string{{manyKeys}}, &capacity.Aggregates{OpenToAll: true, MetadataTruncated: true}},
		{"too many projects: any project", [][]map[string]string{{manyProjects}}, &capacity.Aggregates{ProjectsTruncated: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := capacity.SummariseAggregates(tt.hosts); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SummariseAggregates = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestMergeAggregates(t *testing.T) {
	room := []capacity.Slot{{VCPUs: 1, RAMMB: 1024, DiskGB: 10, Count: 1}}
	with := func(a *capacity.Aggregates) capacity.Report {
		return capacity.Report{Slots: room, AvailabilityZones: []string{"nova"}, Aggregates: a}
	}
	ssd := &capacity.Aggregates{OpenToAll: true, Metadata: map[string][]string{"ssd": {"true"}}}
	iso := &capacity.Aggregates{Projects: []string{"p2", "p1"}, Metadata: map[string][]string{"ssd": {"false"}, "gpu": {"x"}}}
	tests := []struct {
		name string
		in   []capacity.Report
		want *capacity.Aggregates
	}{
		{"none says anything", []capacity.Report{{}, with(nil)}, nil},
		{"one", []capacity.Report{with(ssd)}, ssd},
		{"union", []capacity.Report{with(ssd), with(iso)}, &capacity.Aggregates{OpenToAll: true,
			Metadata: map[string][]string{"ssd": {"false", "true"}, "gpu": {"x"}}}},
		{"isolated only: projects unite", []capacity.Report{with(iso), with(&capacity.Aggregates{Projects: []string{"p3"}})},
			&capacity.Aggregates{Projects: []string{"p1", "p2", "p3"}, Metadata: map[string][]string{"ssd": {"false"}, "gpu": {"x"}}}},
		// A report with room that says nothing may hold anything.
		{"room without aggregates: unknown", []capacity.Report{with(ssd), with(nil)}, nil},
		// Reports without room (down cells, operator capabilities, a
		// cell without live hosts) add nothing.
		{"parts without room add nothing", []capacity.Report{with(ssd), {DownCells: []string{"api!x"}},
			{Capabilities: map[string][]string{"a": {"b"}}}, {Hosts: 3}}, ssd},
		{"any value subsumes listed values", []capacity.Report{with(ssd), with(&capacity.Aggregates{AnyValue: []string{"ssd"}})},
			&capacity.Aggregates{OpenToAll: true, AnyValue: []string{"ssd"}}},
		{"truncated metadata stays truncated", []capacity.Report{with(ssd), with(&capacity.Aggregates{MetadataTruncated: true, Projects: []string{"p"}})},
			&capacity.Aggregates{OpenToAll: true, MetadataTruncated: true}},
		{"truncated projects stay truncated", []capacity.Report{with(iso), with(&capacity.Aggregates{ProjectsTruncated: true})},
			&capacity.Aggregates{ProjectsTruncated: true, Metadata: map[string][]string{"ssd": {"false"}, "gpu": {"x"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := capacity.Merge(tt.in...).Aggregates; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("merged aggregates = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestMergeAggregatesBounded: merging many children's values stays within
// the bounds, the keys with the most values giving way first.
func TestMergeAggregatesBounded(t *testing.T) {
	var parts []capacity.Report
	for i := range capacity.MaxAggregateValues {
		parts = append(parts, capacity.Report{AvailabilityZones: []string{"nova"}, Aggregates: &capacity.Aggregates{
			OpenToAll: true,
			Metadata:  map[string][]string{"rack": {fmt.Sprint("r", i)}, "row": {fmt.Sprint("w", i%10)}, "ssd": {"true"}},
		}})
	}
	got := capacity.Merge(parts...).Aggregates
	want := &capacity.Aggregates{OpenToAll: true, AnyValue: []string{"rack"}, Metadata: map[string][]string{
		"row": {"w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9"}, "ssd": {"true"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %+v, want %+v", got, want)
	}
}

func TestAggregatesQueries(t *testing.T) {
	a := &capacity.Aggregates{Metadata: map[string][]string{"ssd": {"true"}}, AnyValue: []string{"rack"}, Projects: []string{"p1", "p3"}}
	for _, tt := range []struct {
		key            string
		vals           []string
		anyValue, have bool
	}{
		{"ssd", []string{"true"}, false, true},
		{"rack", nil, true, true},
		{"gpu", nil, false, false},
	} {
		vals, anyValue, have := a.HasKey(tt.key)
		if !reflect.DeepEqual(vals, tt.vals) || anyValue != tt.anyValue || have != tt.have {
			t.Errorf("HasKey(%q) = %v, %v, %v; want %v, %v, %v", tt.key, vals, anyValue, have, tt.vals, tt.anyValue, tt.have)
		}
	}
	if _, anyValue, have := (&capacity.Aggregates{MetadataTruncated: true}).HasKey("gpu"); !anyValue || !have {
		t.Error("a truncated summary does not have every key with any value")
	}
	for _, tt := range []struct {
		a    *capacity.Aggregates
		p    string
		want bool
	}{
		{a, "p1", true},
		{a, "p2", false},
		{a, "p3", true},
		{&capacity.Aggregates{OpenToAll: true}, "p2", true},
		{&capacity.Aggregates{ProjectsTruncated: true}, "p2", true},
		{&capacity.Aggregates{}, "p2", false},
	} {
		if got := tt.a.TakesProject(tt.p); got != tt.want {
			t.Errorf("%+v.TakesProject(%q) = %v, want %v", tt.a, tt.p, got, tt.want)
		}
	}
}
