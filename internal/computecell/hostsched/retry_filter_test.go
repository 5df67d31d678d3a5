package hostsched

import "testing"

func TestRetryFilter(t *testing.T) {
	tests := []struct {
		name   string
		ignore []string
		host   string
		want   bool
	}{
		{"nothing ignored", nil, "c1", true},
		{"ignored", []string{"c1"}, "c1", false},
		{"one of several", []string{"c0", "c1", "c2"}, "c1", false},
		{"other host ignored", []string{"c10"}, "c1", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{IgnoreHosts: tt.ignore}
			if got := (RetryFilter{}).Passes(req, &Host{Name: tt.host}); got != tt.want {
				t.Errorf("Passes(ignore=%v, %q) = %v, want %v", tt.ignore, tt.host, got, tt.want)
			}
		})
	}
}
