package celldb_test

import (
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestNeed: a volume-backed instance (its boot device a volume) claims
// its flavor without the root disk (Nova's is_bfv); a data volume beside
// an image's root, or a boot device that is local, claims it all.
func TestNeed(t *testing.T) {
	flavor := wire.Flavor{VCPUs: 2, RAMMB: 1024, SwapMB: 512, RootGB: 20, EphemeralGB: 5}
	for _, tt := range []struct {
		name   string
		devs   []wire.BlockDevice
		backed bool
		disk   int64
	}{
		{"image", nil, false, 25},
		{"boot volume", []wire.BlockDevice{{SourceType: "image", DestinationType: "volume", BootIndex: 0}}, true, 5},
		{"data volume", []wire.BlockDevice{{SourceType: "blank", DestinationType: "volume", BootIndex: -1}}, false, 25},
		{"local boot device", []wire.BlockDevice{{SourceType: "image", DestinationType: "local", BootIndex: 0}}, false, 25},
	} {
		in := &celldb.Instance{InstanceSpec: wire.InstanceSpec{BlockDevices: tt.devs}, Flavor: flavor}
		want := capacity.Flavor{VCPUs: 2, RAMMB: 1536, DiskGB: tt.disk}
		if got := in.Need(); got != want || in.VolumeBacked() != tt.backed {
			t.Errorf("%s: need %+v, volume-backed %v; want %+v, %v", tt.name, got, in.VolumeBacked(), want, tt.backed)
		}
	}
}
