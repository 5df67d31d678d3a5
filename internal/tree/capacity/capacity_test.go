package capacity_test

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

func TestSlotFits(t *testing.T) {
	slot := capacity.Slot{VCPUs: 8, RAMMB: 16384, DiskGB: 100, Count: 1}
	for _, tc := range []struct {
		name   string
		slot   capacity.Slot
		flavor capacity.Flavor
		want   int
	}{
		{"vcpus and ram bind equally", slot, capacity.Flavor{VCPUs: 2, RAMMB: 4096, DiskGB: 20}, 4},
		{"ram binds", slot, capacity.Flavor{VCPUs: 1, RAMMB: 5000, DiskGB: 1}, 3},
		{"disk binds", slot, capacity.Flavor{VCPUs: 1, RAMMB: 512, DiskGB: 40}, 2},
		{"vcpus bind", slot, capacity.Flavor{VCPUs: 3, RAMMB: 512, DiskGB: 1}, 2},
		{"too big", slot, capacity.Flavor{VCPUs: 9, RAMMB: 512, DiskGB: 1}, 0},
		{"exact fit", slot, capacity.Flavor{VCPUs: 8, RAMMB: 16384, DiskGB: 100}, 1},
		// A dimension the flavor does not ask for does not limit it, even
		// where the slot has none of it left.
		{"zero disk request, no disk free", capacity.Slot{VCPUs: 8, RAMMB: 16384, Count: 1}, capacity.Flavor{VCPUs: 2, RAMMB: 1024}, 4},
		{"zero vcpu request", capacity.Slot{RAMMB: 4096, DiskGB: 100, Count: 1}, capacity.Flavor{RAMMB: 1024, DiskGB: 10}, 4},
		{"zero ram request", capacity.Slot{VCPUs: 5, DiskGB: 100, Count: 1}, capacity.Flavor{VCPUs: 1, DiskGB: 10}, 5},
		{"only disk asked", slot, capacity.Flavor{DiskGB: 30}, 3},
		// The count of a slot does not change what fits in one host of it.
		{"count ignored", capacity.Slot{VCPUs: 4, RAMMB: 4096, DiskGB: 40, Count: 7}, capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}, 4},
	} {
		if got := tc.slot.Fits(tc.flavor); got != tc.want {
			t.Errorf("%s: %+v.Fits(%+v) = %d, want %d", tc.name, tc.slot, tc.flavor, got, tc.want)
		}
	}
	// A flavor that asks for nothing fits without bound: a large, finite,
	// positive number, whatever the slot.
	for _, s := range []capacity.Slot{slot, {}} {
		got := s.Fits(capacity.Flavor{})
		if got < 1<<20 {
			t.Errorf("%+v.Fits(empty flavor) = %d, want a large number (at least %d)", s, got, 1<<20)
		}
	}
}

func TestReportFits(t *testing.T) {
	f := capacity.Flavor{VCPUs: 2, RAMMB: 2048, DiskGB: 20}
	r := capacity.Report{Slots: []capacity.Slot{
		{VCPUs: 8, RAMMB: 8192, DiskGB: 200, Count: 3}, // 4 each
		{VCPUs: 3, RAMMB: 8192, DiskGB: 200, Count: 2}, // 1 each
		{VCPUs: 1, RAMMB: 8192, DiskGB: 200, Count: 9}, // none
	}}
	if got, want := r.Fits(f), 3*4+2*1; got != want {
		t.Errorf("Fits = %d, want %d", got, want)
	}
	if got := (capacity.Report{}).Fits(f); got != 0 {
		t.Errorf("empty report Fits = %d, want 0", got)
	}
	// A bigger flavor fits fewer; a flavor too big for every slot fits none.
	if got := r.Fits(capacity.Flavor{VCPUs: 4, RAMMB: 2048, DiskGB: 20}); got != 3*2 {
		t.Errorf("Fits(4 vcpus) = %d, want 6", got)
	}
	if got := r.Fits(capacity.Flavor{VCPUs: 1, RAMMB: 16384}); got != 0 {
		t.Errorf("Fits(16 GB) = %d, want 0", got)
	}
}

func TestMergeSumsAndUnions(t *testing.T) {
	a := capacity.Report{
		Hosts: 2, Instances: 5, TotalVCPUs: 32, TotalRAMMB: 65536, TotalDiskGB: 2000,
		FreeVCPUs: 10, FreeRAMMB: 20000, FreeDiskGB: 900,
		Slots:             []capacity.Slot{{VCPUs: 4, RAMMB: 8192, DiskGB: 100, Count: 1}, {VCPUs: 6, RAMMB: 11808, DiskGB: 800, Count: 1}},
		AvailabilityZones: []string{"nova", "az2"},
		Capabilities:      map[string][]string{"hypervisor_type": {"fake"}},
	}
	b := capacity.Report{
		Hosts: 1, Instances: 1, TotalVCPUs: 16, TotalRAMMB: 32768, TotalDiskGB: 1000,
		FreeVCPUs: 4, FreeRAMMB: 8192, FreeDiskGB: 100,
		Slots:             []capacity.Slot{{VCPUs: 4, RAMMB: 8192, DiskGB: 100, Count: 1}},
		AvailabilityZones: []string{"az3", "nova"},
		Capabilities:      map[string][]string{"hypervisor_type": {"qemu", "fake"}, "arch": {"x86_64"}},
	}
	m := capacity.Merge(a, b)
	if m.Hosts != 3 || m.Instances != 6 || m.TotalVCPUs != 48 || m.TotalRAMMB != 98304 || m.TotalDiskGB != 3000 ||
		m.FreeVCPUs != 14 || m.FreeRAMMB != 28192 || m.FreeDiskGB != 1000 {
		t.Errorf("Merge totals = %+v, want the sums of the two reports", m)
	}
	if want := []string{"az2", "az3", "nova"}; !slices.Equal(m.AvailabilityZones, want) {
		t.Errorf("zones = %v, want the sorted union %v", m.AvailabilityZones, want)
	}
	wantCaps := map[string][]string{"hypervisor_type": {"fake", "qemu"}, "arch": {"x86_64"}}
	if !reflect.DeepEqual(m.Capabilities, wantCaps) {
		t.Errorf("capabilities = %v, want the sorted union %v", m.Capabilities, wantCaps)
	}
	// The identical slot of both reports is merged into one with count 2.
	wantSlots := []capacity.Slot{{VCPUs: 6, RAMMB: 11808, DiskGB: 800, Count: 1}, {VCPUs: 4, RAMMB: 8192, DiskGB: 100, Count: 2}}
	if !reflect.DeepEqual(m.Slots, wantSlots) {
		t.Errorf("slots = %+v, want %+v", m.Slots, wantSlots)
	}
	f := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	if got, want := m.Fits(f), a.Fits(f)+b.Fits(f); got != want {
		t.Errorf("merged Fits = %d, want the sum %d", got, want)
	}
	// Merging nothing, or one report, gives a report of its own.
	if z := capacity.Merge(); z.Hosts != 0 || len(z.Slots) != 0 || len(z.AvailabilityZones) != 0 || len(z.Capabilities) != 0 {
		t.Errorf("Merge() = %+v, want an empty report", z)
	}
	if one := capacity.Merge(b); one.Hosts != 1 || !slices.Equal(one.AvailabilityZones, []string{"az3", "nova"}) {
		t.Errorf("Merge(b) = %+v, want b with sorted zones", one)
	}
}

func TestCompressMergesIdenticalSlots(t *testing.T) {
	in := []capacity.Slot{
		{VCPUs: 4, RAMMB: 8192, DiskGB: 100, Count: 1},
		{VCPUs: 2, RAMMB: 4096, DiskGB: 50, Count: 3},
		{VCPUs: 4, RAMMB: 8192, DiskGB: 100, Count: 2},
		{VCPUs: 2, RAMMB: 4096, DiskGB: 50, Count: 1},
		{VCPUs: 0, RAMMB: 4096, DiskGB: 50, Count: 5}, // no vCPU left
		{VCPUs: 4, RAMMB: 0, DiskGB: 50, Count: 5},    // no RAM left
		{VCPUs: 4, RAMMB: 4096, DiskGB: 50, Count: 0}, // no hosts
	}
	got := capacity.Compress(in, capacity.MaxSlots)
	want := []capacity.Slot{{VCPUs: 4, RAMMB: 8192, DiskGB: 100, Count: 3}, {VCPUs: 2, RAMMB: 4096, DiskGB: 50, Count: 4}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Compress = %+v, want %+v", got, want)
	}
	if got := capacity.Compress(nil, capacity.MaxSlots); len(got) != 0 {
		t.Errorf("Compress(nil) = %+v, want none", got)
	}
}

// TestCompressPastMaxRoundsDown is a property test: however slots are
// compressed, the result has at most max slots and never fits more
// instances of any flavor than the slots it came from; below max it fits
// exactly as many.
func TestCompressPastMaxRoundsDown(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	randSlot := func() capacity.Slot {
		return capacity.Slot{
			VCPUs:  rng.IntN(130),
			RAMMB:  rng.Int64N(512 * 1024),
			DiskGB: rng.Int64N(20000),
			Count:  1 + rng.IntN(50),
		}
	}
	// Flavors are drawn with some zero dimensions, as real flavors have
	// (no ephemeral disk, say).
	randFlavor := func() capacity.Flavor {
		f := capacity.Flavor{VCPUs: 1 + rng.IntN(32), RAMMB: 64 + rng.Int64N(64*1024), DiskGB: rng.Int64N(500)}
		switch rng.IntN(6) {
		case 0:
			f.DiskGB = 0
		case 1:
			f.VCPUs = 0
		case 2:
			f.RAMMB = 0
		}
		return f
	}
	for trial := range 300 {
		n := 1 + rng.IntN(1500)
		slots := make([]capacity.Slot, n)
		for i := range slots {
			slots[i] = randSlot()
		}
		// Some fleets have few shapes: repeat a handful.
		if trial%3 == 0 {
			shapes := slots[:min(len(slots), 5)]
			for i := range slots {
				slots[i] = shapes[rng.IntN(len(shapes))]
			}
		}
		maxSlots := []int{1, 2, 8, 32, capacity.MaxSlots}[rng.IntN(5)]
		orig := slices.Clone(slots)
		comp := capacity.Compress(slots, maxSlots)
		if !reflect.DeepEqual(slots, orig) {
			t.Fatalf("trial %d: Compress changed its input", trial)
		}
		if len(comp) > maxSlots {
			t.Fatalf("trial %d: Compress(%d slots, %d) gave %d slots", trial, n, maxSlots, len(comp))
		}
		before := capacity.Report{Slots: slots}
		after := capacity.Report{Slots: comp}
		hostsBefore, hostsAfter := 0, 0
		for _, s := range slots {
			hostsBefore += s.Count
		}
		for _, s := range comp {
			hostsAfter += s.Count
			if s.VCPUs <= 0 || s.RAMMB <= 0 || s.DiskGB < 0 || s.Count <= 0 {
				t.Fatalf("trial %d: compressed slot %+v is empty or negative", trial, s)
			}
		}
		if hostsAfter > hostsBefore {
			t.Fatalf("trial %d: compressed report has %d hosts, more than the %d it came from", trial, hostsAfter, hostsBefore)
		}
		exact := len(distinct(slots)) <= maxSlots
		for range 40 {
			f := randFlavor()
			b, a := before.Fits(f), after.Fits(f)
			if a > b {
				t.Fatalf("trial %d (%d slots, max %d): compressed report fits %d of %+v, the original only %d", trial, n, maxSlots, a, f, b)
			}
			if exact && f.VCPUs > 0 && f.RAMMB > 0 && a != b {
				t.Fatalf("trial %d: %d distinct slots under max %d, but Fits(%+v) went from %d to %d", trial, len(distinct(slots)), maxSlots, f, b, a)
			}
		}
	}
}

func distinct(slots []capacity.Slot) map[[3]int64]bool {
	m := map[[3]int64]bool{}
	for _, s := range slots {
		if s.Count > 0 && s.VCPUs > 0 && s.RAMMB > 0 {
			m[[3]int64{int64(s.VCPUs), s.RAMMB, s.DiskGB}] = true
		}
	}
	return m
}

func TestCompressMaxBelowOne(t *testing.T) {
	slots := []capacity.Slot{{VCPUs: 3, RAMMB: 3000, DiskGB: 30, Count: 1}, {VCPUs: 5, RAMMB: 5000, DiskGB: 50, Count: 1}}
	if got := capacity.Compress(slots, 0); len(got) > 1 {
		t.Errorf("Compress(max 0) = %+v, want at most one slot", got)
	}
}

// TestCompressTerminatesOnHugeSlots: a report comes from another cell, so
// Compress must end whatever the numbers, even past the point where its
// rounding steps would overflow.
func TestCompressTerminatesOnHugeSlots(t *testing.T) {
	for _, tc := range []struct {
		max   int
		slots []capacity.Slot
	}{
		{1, []capacity.Slot{{VCPUs: 1 << 62, RAMMB: 1 << 62, Count: 1}, {VCPUs: 1<<62 + 1<<55, RAMMB: 1<<62 + 1, Count: 1}}},
		{capacity.MaxSlots, hugeSlots(600)},
	} {
		done := make(chan []capacity.Slot, 1)
		go func() { done <- capacity.Compress(tc.slots, tc.max) }()
		select {
		case out := <-done:
			if len(out) > tc.max {
				t.Errorf("Compress(%d huge slots, %d) gave %d slots", len(tc.slots), tc.max, len(out))
			}
			f := capacity.Flavor{VCPUs: 1, RAMMB: 1 << 40, DiskGB: 1}
			if a, b := (capacity.Report{Slots: out}).Fits(f), (capacity.Report{Slots: tc.slots}).Fits(f); a > b {
				t.Errorf("compressed huge slots fit %d, the originals %d", a, b)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Compress(%d huge slots, %d) did not return", len(tc.slots), tc.max)
		}
	}
}

func hugeSlots(n int) []capacity.Slot {
	out := make([]capacity.Slot, n)
	for i := range out {
		out[i] = capacity.Slot{VCPUs: 1<<62 + (i%256)<<55, RAMMB: 1<<62 + int64(i), DiskGB: int64(i%3) << 60, Count: 1}
	}
	return out
}

func TestTake(t *testing.T) {
	// Two hosts: one with room for 4, one for 2 (by RAM).
	r := capacity.Report{FreeRAMMB: 6144, Slots: []capacity.Slot{{VCPUs: 8, RAMMB: 4096, DiskGB: 100, Count: 1}, {VCPUs: 8, RAMMB: 2048, DiskGB: 100, Count: 1}}}
	f := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	if got := r.Fits(f); got != 6 {
		t.Fatalf("fits %d", got)
	}
	after := r.Take(f, 3)
	if got := after.Fits(f); got != 3 || after.FreeRAMMB != 3072 || after.Instances != 3 {
		t.Errorf("after taking 3: fits %d, free RAM %d, instances %d", got, after.FreeRAMMB, after.Instances)
	}
	// Spread: the first two go to the roomier host, the third to either.
	if full := r.Take(f, 10); full.Fits(f) != 0 {
		t.Errorf("taking more than fits leaves %d", full.Fits(f))
	}
	if r.Fits(f) != 6 {
		t.Errorf("Take changed the report it was called on")
	}
}

// TestMergeVolumeZones: the room for volumes is summed per storage zone,
// the largest one cell may provision is the largest of the parts, and a
// volume fits in a zone only if one cell has room for it.
func TestMergeVolumeZones(t *testing.T) {
	m := capacity.Merge(
		capacity.Report{VolumeZones: map[string]capacity.VolumeRoom{"nova": {TotalGB: 100, FreeGB: 40, MaxFreeGB: 40}}},
		capacity.Report{VolumeZones: map[string]capacity.VolumeRoom{"nova": {TotalGB: 200, FreeGB: 70, MaxFreeGB: 70}, "az2": {TotalGB: 5, FreeGB: 5, MaxFreeGB: 5}}},
		capacity.Report{Hosts: 1},
	)
	want := map[string]capacity.VolumeRoom{"nova": {TotalGB: 300, FreeGB: 110, MaxFreeGB: 70}, "az2": {TotalGB: 5, FreeGB: 5, MaxFreeGB: 5}}
	if !reflect.DeepEqual(m.VolumeZones, want) {
		t.Fatalf("merged volume zones %+v, want %+v", m.VolumeZones, want)
	}
	if !m.VolumeFits("nova", 70) || m.VolumeFits("nova", 71) || !m.VolumeFits("", 70) || m.VolumeFits("az3", 1) {
		t.Error("VolumeFits does not follow the largest cell's room")
	}
	if m.VolumeFree("nova") != 110 || m.VolumeFree("") != 115 {
		t.Errorf("VolumeFree nova %d, all %d; want 110, 115", m.VolumeFree("nova"), m.VolumeFree(""))
	}
	if capacity.Merge(capacity.Report{Hosts: 1}).VolumeZones != nil {
		t.Error("a merge without volume roles has volume zones")
	}
}
