package hostsched

import "testing"

func TestAggregateInstanceExtraSpecsFilter(t *testing.T) {
	const scope = "aggregate_instance_extra_specs:"
	tests := []struct {
		name  string
		specs map[string]string
		aggs  []map[string]string
		want  bool
	}{
		{"no extra specs", nil, []map[string]string{{"opt1": "1"}}, true},
		{"empty extra specs", map[string]string{}, nil, true},
		{
			"unscoped and scoped specs match",
			map[string]string{"opt1": "1", scope + "opt2": "2"},
			[]map[string]string{{"opt1": "1", "opt2": "2"}},
			true,
		},
		{
			"one key, two comma-separated items",
			map[string]string{"opt1": "1", scope + "opt1": "3"},
			[]map[string]string{{"opt1": "1,3", "opt2": "2"}},
			true,
		},
		{
			"items across aggregates",
			map[string]string{scope + "opt1": "3"},
			[]map[string]string{{"opt1": "1"}, {"opt1": "2, 3"}},
			true,
		},
		{
			"a key that is the scope's name, unscoped",
			map[string]string{"aggregate_instance_extra_specs": "1"},
			[]map[string]string{{"aggregate_instance_extra_specs": "1"}},
			true,
		},
		{
			"value does not match",
			map[string]string{"opt1": "1", "opt2": "222"},
			[]map[string]string{{"opt1": "1", "opt2": "2"}},
			false,
		},
		{
			"key missing from the aggregates",
			map[string]string{scope + "ssd": "true"},
			[]map[string]string{{"opt1": "1"}},
			false,
		},
		{
			"host in no aggregate fails a spec it must meet",
			map[string]string{scope + "ssd": "true"},
			nil,
			false,
		},
		{
			"host in no aggregate passes specs of other scopes",
			map[string]string{"hw:cpu_policy": "dedicated", "quota:cpu_shares": "1024"},
			nil,
			true,
		},
		{
			"other scopes are skipped even when the aggregate has the key",
			map[string]string{"capabilities:opt1": "2", "hw:opt1": "2"},
			[]map[string]string{{"opt1": "1", "capabilities:opt1": "1"}},
			true,
		},
		{
			"only the first colon cuts the scope",
			map[string]string{scope + "a:b": "1"},
			[]map[string]string{{"a:b": "1"}},
			true,
		},
		{
			"empty scope is another scope",
			map[string]string{":opt1": "2"},
			[]map[string]string{{"opt1": "1"}},
			true,
		},
		{
			"operators apply to each item",
			map[string]string{scope + "cpus": ">= 16", scope + "disk": "<or> ssd <or> nvme"},
			[]map[string]string{{"cpus": "8, 32", "disk": "hdd"}, {"disk": "nvme"}},
			true,
		},
		{
			"operator fails every item",
			map[string]string{scope + "cpus": ">= 64"},
			[]map[string]string{{"cpus": "8, 32"}},
			false,
		},
		{
			"unparsable item does not match, another may",
			map[string]string{scope + "gen": ">= 3"},
			[]map[string]string{{"gen": "abc, 4"}},
			true,
		},
		{
			"only unparsable items",
			map[string]string{scope + "gen": ">= 3"},
			[]map[string]string{{"gen": "abc"}},
			false,
		},
		{
			"items are stripped before matching",
			map[string]string{scope + "ssd": "true"},
			[]map[string]string{{"ssd": "  true "}},
			true,
		},
		{
			"every spec must match",
			map[string]string{scope + "a": "1", scope + "b": "1"},
			[]map[string]string{{"a": "1"}, {"b": "2"}},
			false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{ExtraSpecs: tt.specs}
			h := &Host{Name: "h", Aggregates: tt.aggs}
			if got := (AggregateInstanceExtraSpecsFilter{}).Passes(req, h); got != tt.want {
				t.Errorf("Passes(%v, %v) = %v, want %v", tt.specs, tt.aggs, got, tt.want)
			}
		})
	}
}
