package cellsched

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestImagePropertiesFilter(t *testing.T) {
	caps := map[string][]string{
		"hypervisor_type": {"fake", "qemu"},
		"architecture":    {"x86_64"},
		"empty":           {},
	}
	tests := []struct {
		name  string
		props map[string]string
		caps  map[string][]string
		want  bool
	}{
		{"no properties", nil, caps, true},
		{"value listed", map[string]string{"hypervisor_type": "qemu"}, caps, true},
		{"value not listed", map[string]string{"hypervisor_type": "xen"}, caps, false},
		{"key not reported passes", map[string]string{"vm_mode": "hvm"}, caps, true},
		{"no capabilities at all", map[string]string{"hypervisor_type": "xen"}, nil, true},
		{"reported with no values", map[string]string{"empty": "x"}, caps, false},
		{"all match", map[string]string{"hypervisor_type": "fake", "architecture": "x86_64"}, caps, true},
		{"one of several fails", map[string]string{"hypervisor_type": "fake", "architecture": "aarch64"}, caps, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &Request{ImageProperties: tt.props}
			c := &Candidate{Path: "api!c", Report: capacity.Report{Capabilities: tt.caps}}
			if got := (ImagePropertiesFilter{}).Passes(req, c); got != tt.want {
				t.Errorf("Passes(%v) = %v, want %v", tt.props, got, tt.want)
			}
		})
	}
}
