package hostsched

import "testing"

func TestRAMWeigher(t *testing.T) {
	tests := []struct {
		name string
		h    Host
		want float64
	}{
		{"empty", Host{TotalRAMMB: 8192}, 8192},
		{"used", Host{TotalRAMMB: 8192, UsedRAMMB: 2048}, 6144},
		{"ratio", Host{TotalRAMMB: 8192, UsedRAMMB: 2048, RAMRatio: 1.5}, 10240},
		{"overcommitted", Host{TotalRAMMB: 8192, UsedRAMMB: 9216}, -1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (RAMWeigher{}).Weigh(&Request{}, &tt.h); got != tt.want {
				t.Errorf("Weigh(%+v) = %v, want %v", tt.h, got, tt.want)
			}
		})
	}
}
