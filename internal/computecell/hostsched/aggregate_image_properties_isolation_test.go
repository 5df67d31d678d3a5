package hostsched

import "testing"

func TestAggregateImagePropertiesIsolation(t *testing.T) {
	tests := []struct {
		name   string
		filter AggregateImagePropertiesIsolation
		props  map[string]string
		aggs   []map[string]string
		want   bool
	}{
		{"property matches", AggregateImagePropertiesIsolation{}, map[string]string{"hw_vm_mode": "hvm"},
			[]map[string]string{{"hw_vm_mode": "hvm"}}, true},
		{"property among items", AggregateImagePropertiesIsolation{}, map[string]string{"hw_vm_mode": "hvm"},
			[]map[string]string{{"hw_vm_mode": "hvm,xen"}}, true},
		{"property with a comma is one value", AggregateImagePropertiesIsolation{}, map[string]string{"os_distro": "windows,"},
			[]map[string]string{{"os_distro": "windows,linux"}}, false},
		{"several properties match", AggregateImagePropertiesIsolation{}, map[string]string{"hw_vm_mode": "hvm", "hw_cpu_cores": "2"},
			[]map[string]string{{"hw_vm_mode": "hvm", "hw_cpu_cores": "2"}}, true},
		{"image without the property", AggregateImagePropertiesIsolation{}, map[string]string{"os_distro": "linux"},
			[]map[string]string{{"hw_vm_mode": "hvm"}}, true},
		{"image without properties", AggregateImagePropertiesIsolation{}, nil,
			[]map[string]string{{"hw_vm_mode": "hvm"}}, true},
		{"empty property does not constrain", AggregateImagePropertiesIsolation{}, map[string]string{"hw_vm_mode": ""},
			[]map[string]string{{"hw_vm_mode": "hvm"}}, true},
		{"host in no aggregate", AggregateImagePropertiesIsolation{}, map[string]string{"hw_vm_mode": "hvm"},
			nil, true},
		{"property does not match", AggregateImagePropertiesIsolation{}, map[string]string{"hw_vm_mode": "xen"},
			[]map[string]string{{"hw_vm_mode": "hvm"}}, false},
		{"one of several properties does not match", AggregateImagePropertiesIsolation{}, map[string]string{"hw_vm_mode": "hvm", "hw_cpu_cores": "2"},
			[]map[string]string{{"hw_vm_mode": "hvm", "hw_cpu_cores": "1"}}, false},
		{"metadata key unlike the property's", AggregateImagePropertiesIsolation{}, map[string]string{"os_type": "linux"},
			[]map[string]string{{"os": "linux"}}, true},
		{"os_type matches", AggregateImagePropertiesIsolation{}, map[string]string{"os_type": "linux"},
			[]map[string]string{{"os_type": "linux"}}, true},
		{"os_type differs", AggregateImagePropertiesIsolation{}, map[string]string{"os_type": "linux"},
			[]map[string]string{{"os_type": "windows"}}, false},
		{"items across aggregates", AggregateImagePropertiesIsolation{}, map[string]string{"os_type": "linux"},
			[]map[string]string{{"os_type": "windows"}, {"os_type": " linux "}}, true},
		{"strings are compared as they are", AggregateImagePropertiesIsolation{}, map[string]string{"hw_vif_multiqueue_enabled": "true"},
			[]map[string]string{{"hw_vif_multiqueue_enabled": "True"}}, false},
		{"namespace limits the keys", AggregateImagePropertiesIsolation{Namespace: "hw", Separator: "_"},
			map[string]string{"hw_vm_mode": "hvm", "img_owner_id": "wrong"},
			[]map[string]string{{"hw_vm_mode": "hvm", "img_owner_id": "foo"}}, true},
		{"namespaced key is checked", AggregateImagePropertiesIsolation{Namespace: "hw", Separator: "_"},
			map[string]string{"hw_vm_mode": "xen"},
			[]map[string]string{{"hw_vm_mode": "hvm"}}, false},
		{"default separator is a dot", AggregateImagePropertiesIsolation{Namespace: "site"},
			map[string]string{"site.rack": "r2", "site_rack": "r2"},
			[]map[string]string{{"site.rack": "r1", "site_rack": "r1"}}, false},
		{"default separator: other keys skipped", AggregateImagePropertiesIsolation{Namespace: "site"},
			map[string]string{"site_rack": "r2", "siterack": "r2"},
			[]map[string]string{{"site_rack": "r1", "siterack": "r1"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{ImageProperties: tt.props}
			if got := tt.filter.Passes(req, &Host{Name: "h", Aggregates: tt.aggs}); got != tt.want {
				t.Errorf("%+v.Passes(%v, %v) = %v, want %v", tt.filter, tt.props, tt.aggs, got, tt.want)
			}
		})
	}
}
