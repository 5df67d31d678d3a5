package hostsched

import "testing"

func TestComputeFilter(t *testing.T) {
	tests := []struct {
		name        string
		up, enabled bool
		want        bool
	}{
		{"up and enabled", true, true, true},
		{"down", false, true, false},
		{"disabled", true, false, false},
		{"down and disabled", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &Host{Name: "h", Up: tt.up, Enabled: tt.enabled}
			if got := (ComputeFilter{}).Passes(&Request{}, h); got != tt.want {
				t.Errorf("Passes(up=%v, enabled=%v) = %v, want %v", tt.up, tt.enabled, got, tt.want)
			}
		})
	}
}
