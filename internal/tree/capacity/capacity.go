// Package capacity describes how much room a cell has left, in a form that
// travels in a capacity report and can be summed up the cell tree.
//
// A report does not list hosts. It lists distinct "slots": the free vCPUs,
// RAM and disk left on a host (after allocation ratios), with how many hosts
// have exactly that much free. Fake and real fleets are made of few host
// shapes, so a cell of ten thousand hosts reports a handful of slots, and a
// parent can tell exactly how many instances of any flavor still fit without
// knowing the flavors in advance.
package capacity

import (
	"cmp"
	"maps"
	"math"
	"slices"
)

// MaxSlots bounds the number of slots in a report. Past it, slots are merged
// by rounding their free resources down, which keeps the report conservative:
// it never claims room that is not there.
const MaxSlots = 256

// Flavor is the part of a flavor that capacity cares about.
type Flavor struct {
	VCPUs  int   `json:"vcpus"`
	RAMMB  int64 `json:"ram_mb"`
	DiskGB int64 `json:"disk_gb"`
}

// Slot is the free room on Count hosts.
type Slot struct {
	VCPUs  int   `json:"vcpus"`
	RAMMB  int64 `json:"ram_mb"`
	DiskGB int64 `json:"disk_gb"`
	Count  int   `json:"count"`
}

// Fits reports how many instances of f fit in one host of this slot.
func (s Slot) Fits(f Flavor) int {
	n := -1
	limit := func(free, want int64) {
		if want <= 0 {
			return
		}
		k := int(free / want)
		if n < 0 || k < n {
			n = k
		}
	}
	limit(int64(s.VCPUs), int64(f.VCPUs))
	limit(s.RAMMB, f.RAMMB)
	limit(s.DiskGB, f.DiskGB)
	if n < 0 {
		// A flavor that asks for nothing fits without bound; report a
		// large finite number so sums stay meaningful.
		return 1 << 20
	}
	return n
}

// Report is what a cell tells its parent about itself and its subtree.
type Report struct {
	Hosts       int    `json:"hosts"`
	Instances   int    `json:"instances"`
	TotalVCPUs  int    `json:"total_vcpus"`
	TotalRAMMB  int64  `json:"total_ram_mb"`
	TotalDiskGB int64  `json:"total_disk_gb"`
	FreeVCPUs   int    `json:"free_vcpus"`
	FreeRAMMB   int64  `json:"free_ram_mb"`
	FreeDiskGB  int64  `json:"free_disk_gb"`
	Slots       []Slot `json:"slots,omitempty"`
	// AvailabilityZones are the zones that have at least one enabled host.
	AvailabilityZones []string `json:"availability_zones,omitempty"`
	// ZoneSlots are the slots of each zone, present only when the report
	// covers more than one zone: with one zone (or none) Slots are that
	// zone's, and the report costs nothing more. Slots stays the whole
	// cell's either way. See FitsIn.
	ZoneSlots map[string][]Slot `json:"zone_slots,omitempty"`
	// Aggregates summarises the host aggregates of the enabled live hosts
	// for the cell scheduler's aggregate filters. Nil says nothing of
	// them (a report without live hosts, or from a cell before aggregates
	// were reported): those filters pass it.
	Aggregates *Aggregates `json:"aggregates,omitempty"`
	// Capabilities are named sets of values, e.g. "hypervisor_type": ["fake"].
	Capabilities map[string][]string `json:"capabilities,omitempty"`
	// DownCells are the cells of the subtree that have stopped reporting:
	// their capacity is not in the report.
	DownCells []string `json:"down_cells,omitempty"`
	// VolumeZones is the room for volumes of the cells with a volume role
	// below, by storage availability zone (nil: none).
	VolumeZones map[string]VolumeRoom `json:"volume_zones,omitempty"`
	// NotReceiving, when not empty, says why the cell that sent the
	// report cannot receive now (its connection to its own broker is down,
	// or its inbox cannot be read): its parent counts it down at once.
	// Empty, or absent from a cell that predates it: it can. It is the
	// sender's alone: Merge never carries it.
	NotReceiving string `json:"not_receiving,omitempty"`
}

// VolumeRoom is the room for volumes in one storage zone, in GiB.
type VolumeRoom struct {
	TotalGB int64 `json:"total_gb"`
	// FreeGB is what may still be provisioned, summed over the cells.
	FreeGB int64 `json:"free_gb"`
	// MaxFreeGB is the most one cell below may still provision: a volume
	// larger than it fits nowhere in the zone.
	MaxFreeGB int64 `json:"max_free_gb"`
}

// VolumeFits reports whether a volume of sizeGB fits in zone ("": any).
func (r Report) VolumeFits(zone string, sizeGB int64) bool {
	for z, room := range r.VolumeZones {
		if (zone == "" || z == zone) && room.MaxFreeGB >= sizeGB {
			return true
		}
	}
	return false
}

// TakeVolume is the report less a volume of sizeGB placed in zone (""
// : the zone with the most free room), until the cell reports again. The
// report's own map is not changed.
func (r Report) TakeVolume(zone string, sizeGB int64) Report {
	if zone == "" {
		best := int64(-1)
		for z, room := range r.VolumeZones {
			if room.FreeGB > best || (room.FreeGB == best && z < zone) {
				zone, best = z, room.FreeGB
			}
		}
	}
	room, ok := r.VolumeZones[zone]
	if !ok {
		return r
	}
	zones := make(map[string]VolumeRoom, len(r.VolumeZones))
	maps.Copy(zones, r.VolumeZones)
	room.FreeGB = max(room.FreeGB-sizeGB, 0)
	room.MaxFreeGB = max(room.MaxFreeGB-sizeGB, 0)
	zones[zone] = room
	r.VolumeZones = zones
	return r
}

// VolumeFree is the free GiB for volumes in zone ("": all zones).
func (r Report) VolumeFree(zone string) int64 {
	var n int64
	for z, room := range r.VolumeZones {
		if zone == "" || z == zone {
			n += room.FreeGB
		}
	}
	return n
}

// Fits reports how many instances of f still fit in the cell.
func (r Report) Fits(f Flavor) int {
	total := 0
	for _, s := range r.Slots {
		total += s.Fits(f) * s.Count
	}
	return total
}

// FitsIn reports how many instances of f still fit in zone: the whole
// cell's Fits when zone is empty or the report has no ZoneSlots (it covers
// one zone, which AvailabilityZones names), otherwise the zone's.
func (r Report) FitsIn(zone string, f Flavor) int {
	if zone == "" || r.ZoneSlots == nil {
		return r.Fits(f)
	}
	return Report{Slots: r.ZoneSlots[zone]}.Fits(f)
}

// Merge sums reports: a cell with children reports its own hosts plus its
// children's reports. It also normalises a single report: slots
// compressed, lists sorted, ZoneSlots kept only for more than one zone,
// Aggregates bounded.
//
// Zones: a report without ZoneSlots adds its Slots to its one zone (to
// each of its zones, should a report list several without ZoneSlots:
// over-counting a zone's room lets a build try a cell, never keeps it
// from one). Aggregates are united, then bounded; a report with room but
// no Aggregates makes the merge's nil (it may hold any).
func Merge(reports ...Report) Report {
	var out Report
	zones := map[string]bool{}
	zoneSlots := map[string][]Slot{}
	caps := map[string]map[string]bool{}
	for _, r := range reports {
		out.Hosts += r.Hosts
		out.Instances += r.Instances
		out.TotalVCPUs += r.TotalVCPUs
		out.TotalRAMMB += r.TotalRAMMB
		out.TotalDiskGB += r.TotalDiskGB
		out.FreeVCPUs += r.FreeVCPUs
		out.FreeRAMMB += r.FreeRAMMB
		out.FreeDiskGB += r.FreeDiskGB
		out.Slots = append(out.Slots, r.Slots...)
		for _, z := range r.AvailabilityZones {
			zones[z] = true
			if r.ZoneSlots == nil {
				zoneSlots[z] = append(zoneSlots[z], r.Slots...)
			}
		}
		for z, ss := range r.ZoneSlots {
			zoneSlots[z] = append(zoneSlots[z], ss...)
		}
		out.DownCells = append(out.DownCells, r.DownCells...)
		for z, room := range r.VolumeZones {
			if out.VolumeZones == nil {
				out.VolumeZones = map[string]VolumeRoom{}
			}
			sum := out.VolumeZones[z]
			sum.TotalGB += room.TotalGB
			sum.FreeGB += room.FreeGB
			sum.MaxFreeGB = max(sum.MaxFreeGB, room.MaxFreeGB)
			out.VolumeZones[z] = sum
		}
		for k, vs := range r.Capabilities {
			if caps[k] == nil {
				caps[k] = map[string]bool{}
			}
			for _, v := range vs {
				caps[k][v] = true
			}
		}
	}
	out.Slots = Compress(out.Slots, MaxSlots)
	slices.Sort(out.DownCells)
	out.DownCells = slices.Compact(out.DownCells)
	for z := range zones {
		out.AvailabilityZones = append(out.AvailabilityZones, z)
	}
	slices.Sort(out.AvailabilityZones)
	if len(out.AvailabilityZones) > 1 {
		out.ZoneSlots = compressZones(zoneSlots)
	}
	out.Aggregates = mergeAggregates(reports)
	if len(caps) > 0 {
		out.Capabilities = map[string][]string{}
		for k, set := range caps {
			for v := range set {
				out.Capabilities[k] = append(out.Capabilities[k], v)
			}
			slices.Sort(out.Capabilities[k])
		}
	}
	return out
}

// Compress merges identical slots and, while there are more than max,
// rounds free resources down to coarser steps so that more slots coincide.
// Slots with nothing free are dropped.
func Compress(slots []Slot, max int) []Slot {
	if max < 1 {
		max = 1
	}
	step := int64(1)
	for {
		out := merge(slots, step)
		if len(out) <= max {
			return out
		}
		if step > math.MaxInt64/256 {
			// Coarser steps would overflow (RAM rounds to 128 steps): only
			// absurdly large slots get here. Keep the biggest max of them;
			// dropping slots is conservative too.
			return out[:max]
		}
		step *= 2
	}
}

func merge(slots []Slot, step int64) []Slot {
	type key struct {
		v    int
		r, d int64
	}
	counts := map[key]int{}
	ramStep := step
	if step > 1 {
		ramStep = step * 128
	}
	for _, s := range slots {
		if s.Count <= 0 || s.VCPUs <= 0 || s.RAMMB <= 0 {
			continue
		}
		k := key{
			v: int(roundDown(int64(s.VCPUs), step)),
			r: roundDown(s.RAMMB, ramStep),
			d: roundDown(s.DiskGB, step),
		}
		if k.v <= 0 || k.r <= 0 {
			continue
		}
		counts[k] += s.Count
	}
	out := make([]Slot, 0, len(counts))
	for k, c := range counts {
		out = append(out, Slot{VCPUs: k.v, RAMMB: k.r, DiskGB: k.d, Count: c})
	}
	slices.SortFunc(out, func(a, b Slot) int {
		return cmp.Or(cmp.Compare(b.RAMMB, a.RAMMB), cmp.Compare(b.VCPUs, a.VCPUs), cmp.Compare(b.DiskGB, a.DiskGB))
	})
	return out
}

func roundDown(v, step int64) int64 {
	if step <= 1 {
		return v
	}
	return v / step * step
}

// Take is the report after n more instances of f have been placed in the
// cell, each on the host (slot) with the most room for it, as the host
// scheduler's spreading weigher would choose: a parent uses it for the
// builds it has sent a child since the child's last report. Instances
// that fit nowhere are taken from nothing (the report is already full
// for f). It is TakeIn with no zone.
func (r Report) Take(f Flavor, n int) Report {
	return r.TakeIn("", f, n)
}

// TakeIn is Take for a build that named zone ("" for none). With
// ZoneSlots, each instance is taken from the zone's slots (with no zone:
// from the zone that holds the roomiest slot) as well as from Slots, so
// that FitsIn and Fits both see it; past the zone's room nothing more is
// taken.
func (r Report) TakeIn(zone string, f Flavor, n int) Report {
	if n <= 0 {
		return r
	}
	out := r
	slots := slices.Clone(r.Slots)
	var zs map[string][]Slot
	if r.ZoneSlots != nil {
		zs = make(map[string][]Slot, len(r.ZoneSlots))
		for z, ss := range r.ZoneSlots {
			zs[z] = slices.Clone(ss)
		}
	}
	for range n {
		if zs != nil && zone != "" {
			s, ok := takeOne(zs, zone, f, nil)
			if !ok {
				break
			}
			// The whole cell's slots are compressed apart from the
			// zone's: take the same shape if they have it, else the
			// roomiest, else nothing.
			takeSlot(&slots, f, &s)
		} else {
			s, ok := takeSlot(&slots, f, nil)
			if !ok {
				break
			}
			if z, ok := zoneOf(zs, f, s); ok {
				takeOne(zs, z, f, &s)
			}
		}
		out.FreeVCPUs -= f.VCPUs
		out.FreeRAMMB -= f.RAMMB
		out.FreeDiskGB -= f.DiskGB
		out.Instances++
	}
	out.Slots = slots
	if zs != nil {
		for z, ss := range zs {
			zs[z] = slices.DeleteFunc(ss, func(s Slot) bool { return s.Count <= 0 })
		}
		out.ZoneSlots = zs
	}
	return out
}

// zoneOf is the zone a host of shape s that took f was in: the first
// (by name) with a host of that shape, else the one with the roomiest
// host for f (the whole cell's slots and a zone's are compressed apart,
// so a shape may be in one and not the other).
func zoneOf(zs map[string][]Slot, f Flavor, s Slot) (string, bool) {
	zones := slices.Sorted(maps.Keys(zs))
	for _, z := range zones {
		if slices.ContainsFunc(zs[z], func(x Slot) bool {
			return x.Count > 0 && x.VCPUs == s.VCPUs && x.RAMMB == s.RAMMB && x.DiskGB == s.DiskGB
		}) {
			return z, true
		}
	}
	best, most := "", 0
	for _, z := range zones {
		for _, x := range zs[z] {
			if k := x.Fits(f); x.Count > 0 && k > most {
				best, most = z, k
			}
		}
	}
	return best, most > 0
}

// takeOne is takeSlot on zone z's slots in zs.
func takeOne(zs map[string][]Slot, z string, f Flavor, shape *Slot) (Slot, bool) {
	ss, ok := zs[z]
	if !ok {
		return Slot{}, false
	}
	s, ok := takeSlot(&ss, f, shape)
	zs[z] = ss
	return s, ok
}

// takeSlot places one instance of f on a host of *slots: one of the given
// shape if shape is not nil and a host of it is left (else the roomiest
// for f), which becomes a host of the shape less f. It returns the shape
// taken from, and false when f fits in no host.
func takeSlot(slots *[]Slot, f Flavor, shape *Slot) (Slot, bool) {
	ss := *slots
	best, most := -1, 0
	for i, s := range ss {
		if s.Count <= 0 {
			continue
		}
		if shape != nil && s.VCPUs == shape.VCPUs && s.RAMMB == shape.RAMMB && s.DiskGB == shape.DiskGB && s.Fits(f) > 0 {
			best = i
			break
		}
		if k := s.Fits(f); k > most {
			best, most = i, k
		}
	}
	if best < 0 {
		return Slot{}, false
	}
	s := ss[best]
	ss[best].Count--
	used := Slot{VCPUs: s.VCPUs - f.VCPUs, RAMMB: s.RAMMB - f.RAMMB, DiskGB: s.DiskGB - f.DiskGB, Count: 1}
	if i := slices.IndexFunc(ss, func(x Slot) bool {
		return x.VCPUs == used.VCPUs && x.RAMMB == used.RAMMB && x.DiskGB == used.DiskGB
	}); i >= 0 {
		ss[i].Count++
	} else {
		ss = append(ss, used)
	}
	*slots = ss
	s.Count = 1
	return s, true
}
