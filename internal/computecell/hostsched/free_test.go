package hostsched

import "testing"

func TestFree(t *testing.T) {
	tests := []struct {
		name                       string
		h                          Host
		wantCPU, wantRAM, wantDisk float64
	}{
		{"empty host, zero ratios mean 1", Host{TotalVCPUs: 8, TotalRAMMB: 16384, TotalDiskGB: 100}, 8, 16384, 100},
		{"used", Host{TotalVCPUs: 8, UsedVCPUs: 3, TotalRAMMB: 16384, UsedRAMMB: 4096, TotalDiskGB: 100, UsedDiskGB: 40}, 5, 12288, 60},
		{"ratios", Host{TotalVCPUs: 8, UsedVCPUs: 3, CPURatio: 16, TotalRAMMB: 16384, UsedRAMMB: 4096, RAMRatio: 1.5, TotalDiskGB: 100, UsedDiskGB: 40, DiskRatio: 1}, 125, 20480, 60},
		{"ratio below 1", Host{TotalVCPUs: 8, CPURatio: 0.5, TotalRAMMB: 1000, RAMRatio: 0.5, TotalDiskGB: 100, DiskRatio: 0.5}, 4, 500, 50},
		{"negative ratio means 1", Host{TotalVCPUs: 8, CPURatio: -2, TotalRAMMB: 1000, RAMRatio: -1, TotalDiskGB: 100, DiskRatio: -3}, 8, 1000, 100},
		{"over limit", Host{TotalVCPUs: 4, UsedVCPUs: 6, TotalRAMMB: 1000, UsedRAMMB: 1500, TotalDiskGB: 10, UsedDiskGB: 12}, -2, -500, -2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := freeVCPUs(&tt.h); got != tt.wantCPU {
				t.Errorf("freeVCPUs = %v, want %v", got, tt.wantCPU)
			}
			if got := freeRAMMB(&tt.h); got != tt.wantRAM {
				t.Errorf("freeRAMMB = %v, want %v", got, tt.wantRAM)
			}
			if got := freeDiskGB(&tt.h); got != tt.wantDisk {
				t.Errorf("freeDiskGB = %v, want %v", got, tt.wantDisk)
			}
		})
	}
}
