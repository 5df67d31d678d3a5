package hostsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestCoreFilter(t *testing.T) {
	tests := []struct {
		name  string
		vcpus int
		h     Host
		want  bool
	}{
		{"plenty", 2, Host{TotalVCPUs: 16}, true},
		{"exact fit", 2, Host{TotalVCPUs: 8, UsedVCPUs: 6}, true},
		{"one short", 2, Host{TotalVCPUs: 8, UsedVCPUs: 7}, false},
		{"fits only with ratio", 4, Host{TotalVCPUs: 8, UsedVCPUs: 60, CPURatio: 8}, true},
		{"short even with ratio", 4, Host{TotalVCPUs: 8, UsedVCPUs: 61, CPURatio: 8}, false},
		{"zero ratio means 1", 1, Host{TotalVCPUs: 8, UsedVCPUs: 8}, false},
		{"no vCPUs on host", 1, Host{}, false},
		{"other resources ignored", 2, Host{TotalVCPUs: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Flavor: capacity.Flavor{VCPUs: tt.vcpus, RAMMB: 1 << 20, DiskGB: 1000}}
			if got := (CoreFilter{}).Passes(req, &tt.h); got != tt.want {
				t.Errorf("Passes(vcpus=%d, %+v) = %v, want %v", tt.vcpus, tt.h, got, tt.want)
			}
		})
	}
}
