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
	// Capabilities are named sets of values, e.g. "hypervisor_type": ["fake"].
	Capabilities map[string][]string `json:"capabilities,omitempty"`
	// DownCells are the cells of the subtree that have stopped reporting:
	// their capacity is not in the report.
	DownCells []string `json:"down_cells,omitempty"`
}

// Fits reports how many instances of f still fit in the cell.
func (r Report) Fits(f Flavor) int {
	total := 0
	for _, s := range r.Slots {
		total += s.Fits(f) * s.Count
	}
	return total
}

// Merge sums reports: a cell with children reports its own hosts plus its
// children's reports.
func Merge(reports ...Report) Report {
	var out Report
	zones := map[string]bool{}
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
		}
		out.DownCells = append(out.DownCells, r.DownCells...)
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
// for f).
func (r Report) Take(f Flavor, n int) Report {
	if n <= 0 {
		return r
	}
	out := r
	slots := slices.Clone(r.Slots)
	for range n {
		best, most := -1, 0
		for i, s := range slots {
			if s.Count > 0 {
				if k := s.Fits(f); k > most {
					best, most = i, k
				}
			}
		}
		if best < 0 {
			break
		}
		s := slots[best]
		slots[best].Count--
		used := Slot{VCPUs: s.VCPUs - f.VCPUs, RAMMB: s.RAMMB - f.RAMMB, DiskGB: s.DiskGB - f.DiskGB, Count: 1}
		if i := slices.IndexFunc(slots, func(x Slot) bool {
			return x.VCPUs == used.VCPUs && x.RAMMB == used.RAMMB && x.DiskGB == used.DiskGB
		}); i >= 0 {
			slots[i].Count++
		} else {
			slots = append(slots, used)
		}
		out.FreeVCPUs -= f.VCPUs
		out.FreeRAMMB -= f.RAMMB
		out.FreeDiskGB -= f.DiskGB
		out.Instances++
	}
	out.Slots = slices.DeleteFunc(slots, func(s Slot) bool { return s.Count <= 0 })
	return out
}
