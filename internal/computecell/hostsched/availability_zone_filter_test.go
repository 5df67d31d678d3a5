package hostsched

import "testing"

func TestAvailabilityZoneFilter(t *testing.T) {
	tests := []struct {
		name      string
		req, host string
		want      bool
	}{
		{"no zone requested", "", "az1", true},
		{"no zone requested, host has none", "", "", true},
		{"same zone", "az1", "az1", true},
		{"other zone", "az1", "az2", false},
		{"host has no zone", "az1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{AvailabilityZone: tt.req}
			if got := (AvailabilityZoneFilter{}).Passes(req, &Host{Name: "h", AvailabilityZone: tt.host}); got != tt.want {
				t.Errorf("Passes(%q, host %q) = %v, want %v", tt.req, tt.host, got, tt.want)
			}
		})
	}
}
