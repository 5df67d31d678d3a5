package hostsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestDiskFilter(t *testing.T) {
	tests := []struct {
		name string
		disk int64
		h    Host
		want bool
	}{
		{"plenty", 20, Host{TotalDiskGB: 200}, true},
		{"exact fit", 20, Host{TotalDiskGB: 100, UsedDiskGB: 80}, true},
		{"one GB short", 20, Host{TotalDiskGB: 100, UsedDiskGB: 81}, false},
		{"fits only with ratio", 20, Host{TotalDiskGB: 100, UsedDiskGB: 100, DiskRatio: 1.2}, true},
		{"short even with ratio", 20, Host{TotalDiskGB: 100, UsedDiskGB: 100, DiskRatio: 1.1}, false},
		{"zero ratio means 1", 20, Host{TotalDiskGB: 100, UsedDiskGB: 100}, false},
		{"zero disk flavor on full host", 0, Host{TotalDiskGB: 100, UsedDiskGB: 100}, true},
		{"other resources ignored", 20, Host{TotalDiskGB: 100}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{Flavor: capacity.Flavor{DiskGB: tt.disk, VCPUs: 64, RAMMB: 1 << 20}}
			if got := (DiskFilter{}).Passes(req, &tt.h); got != tt.want {
				t.Errorf("Passes(disk=%d, %+v) = %v, want %v", tt.disk, tt.h, got, tt.want)
			}
		})
	}
}
