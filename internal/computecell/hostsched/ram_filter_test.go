package hostsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestRAMFilter(t *testing.T) {
	tests := []struct {
		name string
		ram  int64
		h    Host
		want bool
	}{
		{"plenty", 2048, Host{TotalRAMMB: 8192}, true},
		{"exact fit", 2048, Host{TotalRAMMB: 4096, UsedRAMMB: 2048}, true},
		{"one MB short", 2048, Host{TotalRAMMB: 4096, UsedRAMMB: 2049}, false},
		{"fits only with ratio", 2048, Host{TotalRAMMB: 4096, UsedRAMMB: 4096, RAMRatio: 1.5}, true},
		{"short even with ratio", 2048, Host{TotalRAMMB: 4096, UsedRAMMB: 4096, RAMRatio: 1.4}, false},
		{"zero ratio means 1", 2048, Host{TotalRAMMB: 4096, UsedRAMMB: 4096, RAMRatio: 0}, false},
		{"zero RAM flavor on full host", 0, Host{TotalRAMMB: 4096, UsedRAMMB: 4096}, true},
		{"zero RAM flavor on overcommitted host", 0, Host{TotalRAMMB: 4096, UsedRAMMB: 5000}, false},
		{"other resources ignored", 2048, Host{TotalRAMMB: 4096, TotalVCPUs: 0, TotalDiskGB: 0}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Flavor: capacity.Flavor{RAMMB: tt.ram, VCPUs: 64, DiskGB: 1000}}
			if got := (RAMFilter{}).Passes(req, &tt.h); got != tt.want {
				t.Errorf("Passes(ram=%d, %+v) = %v, want %v", tt.ram, tt.h, got, tt.want)
			}
		})
	}
}
