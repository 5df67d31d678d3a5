package hostsched

import "testing"

func TestAggregateMultiTenancyIsolation(t *testing.T) {
	grouped := []map[string]string{{
		"filter_tenant_id":     "my_tenantid",
		"filter_tenant_id_gr1": "my_tenantid1,my_tenantid2",
		"filter_tenant_id_gr2": "my_tenantid5, my_tenantid4",
	}}
	tests := []struct {
		name    string
		project string
		aggs    []map[string]string
		want    bool
	}{
		{"in no aggregate", "p", nil, true},
		{"aggregates without the key", "p", []map[string]string{{"ssd": "true"}, {}}, true},
		{"tenant listed", "my_tenantid", []map[string]string{{"filter_tenant_id": "my_tenantid"}}, true},
		{"tenant among several", "my_tenantid", []map[string]string{{"filter_tenant_id": "my_tenantid,mytenantid2"}}, true},
		{"other tenant", "my_tenantid", []map[string]string{{"filter_tenant_id": "other_tenantid"}}, false},
		{"other tenants", "my_tenantid", []map[string]string{{"filter_tenant_id": "other_tenantid,other_tenantid2"}}, false},
		{"prefixed key, plain key's tenant", "my_tenantid", grouped, true},
		{"prefixed key's tenant", "my_tenantid2", grouped, true},
		{"prefixed key's tenant after a space", "my_tenantid4", grouped, true},
		{"in none of the prefixed keys", "my_tenantid6", grouped, false},
		{"only a prefixed key", "p", []map[string]string{{"filter_tenant_idX": "q"}}, false},
		{"key must begin with the prefix", "p", []map[string]string{{"x_filter_tenant_id": "q"}}, true},
		{"tenant of another aggregate of the host", "p", []map[string]string{{"filter_tenant_id": "q"}, {"filter_tenant_id": "p"}}, true},
		{"isolated by one aggregate, free in another", "p", []map[string]string{{"filter_tenant_id": "q"}, {"ssd": "true"}}, false},
		{"items are compared whole", "my", []map[string]string{{"filter_tenant_id": "my_tenantid"}}, false},
		{"ids are case sensitive", "P", []map[string]string{{"filter_tenant_id": "p"}}, false},
		{"empty project against an empty item", "", []map[string]string{{"filter_tenant_id": "q,"}}, true},
		{"empty project", "", []map[string]string{{"filter_tenant_id": "q"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{ProjectID: tt.project}
			if got := (AggregateMultiTenancyIsolation{}).Passes(req, &Host{Name: "h", Aggregates: tt.aggs}); got != tt.want {
				t.Errorf("Passes(project %q, %v) = %v, want %v", tt.project, tt.aggs, got, tt.want)
			}
		})
	}
}
