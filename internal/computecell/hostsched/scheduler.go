package hostsched

import (
	"cmp"
	"errors"
	"fmt"
	"strings"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// MaxAlternates is how many alternate hosts Select returns per instance.
const MaxAlternates = 3

// WeighSpec is one weigher as the Scheduler applies it.
type WeighSpec struct {
	Weigher Weigher
	// Multiplier scales the weigher's (possibly normalised) score. Zero
	// makes the weigher count for nothing; negative inverts its preference.
	Multiplier float64
	// Normalise maps the weigher's raw scores onto [0,1] by min/max across
	// the hosts that passed the filters before the multiplier is applied.
	// When all scores are equal they all become 0.
	Normalise bool
}

// Selection is where one instance goes.
type Selection struct {
	// Host is the chosen host's name.
	Host string
	// Alternates are up to MaxAlternates next-best hosts for the same
	// instance, best first, for a reschedule if the claim on Host fails.
	Alternates []string
}

// Scheduler filters and weighs hosts.
//
// Filters and weighers must be pure functions of the request and the one host
// they are given: Select evaluates every host once and then, after each
// placement, re-evaluates only the host it just consumed; when the request
// has a server group, each placement changes the request itself, so every
// host still passing is re-evaluated.
type Scheduler struct {
	// Filters are applied in order; a host must pass all of them.
	Filters []Filter
	// Weighers are summed into each host's total weight.
	Weighers []WeighSpec
}

// Default returns a Scheduler with every filter of this package, and
// RAMWeigher (multiplier DefaultRAMWeightMultiplier: spread) and the soft
// server group weighers, all normalised.
//
// The filters follow Nova's old default list (retry, zone and resources,
// then the flavor's and the image's checks, then the server groups). Nova enables none of the aggregate filters by default; its
// documentation appends them to the defaults, and here they stand where
// their non-aggregate counterparts stand in Nova's list: the extra specs
// filter in ComputeCapabilitiesFilter's place, the image properties one in
// ImagePropertiesFilter's, then the tenant isolation, ahead of the server
// groups. They cost a length check or two when the host is in no aggregate
// and the request has no extra specs.
func Default() *Scheduler {
	return &Scheduler{
		Filters: []Filter{
			RetryFilter{},
			ComputeFilter{},
			AvailabilityZoneFilter{},
			RAMFilter{},
			DiskFilter{},
			CoreFilter{},
			AggregateInstanceExtraSpecsFilter{},
			AggregateImagePropertiesIsolation{},
			AggregateMultiTenancyIsolation{},
			ServerGroupAffinityFilter{},
			ServerGroupAntiAffinityFilter{},
		},
		Weighers: []WeighSpec{
			{Weigher: RAMWeigher{}, Multiplier: DefaultRAMWeightMultiplier, Normalise: true},
			{Weigher: ServerGroupSoftAffinityWeigher{}, Multiplier: DefaultSoftAffinityWeightMultiplier, Normalise: true},
			{Weigher: ServerGroupSoftAntiAffinityWeigher{}, Multiplier: DefaultSoftAntiAffinityWeightMultiplier, Normalise: true},
		},
	}
}

// WithRAMMultiplier returns s with the RAM weigher's multiplier set:
// positive spreads instances over hosts, negative stacks them.
func (s *Scheduler) WithRAMMultiplier(m float64) *Scheduler {
	out := &Scheduler{Filters: s.Filters, Weighers: append([]WeighSpec(nil), s.Weighers...)}
	for i, w := range out.Weighers {
		if _, ok := w.Weigher.(RAMWeigher); ok {
			out.Weighers[i].Multiplier = m
		}
	}
	return out
}

// Select places req.NumInstances instances (at least one) one at a time.
// For each instance it filters and weighs the hosts, picks the one with the
// highest total weight (ties go to the lower Name, then to the earlier host
// in hosts), and consumes the flavor on that host in a private working copy
// (UsedVCPUs, UsedRAMMB and UsedDiskGB grow by the flavor; Instances by one),
// so the next instance sees it. The weight of a host is the sum over the
// weighers of Multiplier × score, the score normalised across the hosts that
// pass the filters for that instance when the WeighSpec says so.
//
// When the request has a server group, each placement also counts one more
// member on the chosen host in a private copy of req.Group, so the group's
// filters and weighers see the instances placed before. For a hard policy
// (affinity, anti-affinity) the alternates are then cut to those an
// instance can fall back to without breaking it (see keepPolicy).
//
// A request forced to a host or node skips the filters and weighers (see
// selectForced); one with a requested destination considers only that
// host (node), through the filters and weighers (see requestedHosts).
//
// hosts and req are not modified. When an instance cannot be placed, Select
// returns the selections made so far together with an error wrapping
// ErrNoValidHost; the caller decides whether a partial placement is of use.
// req must not be nil.
//
// Each instance costs O(len(hosts) × len(Weighers)) arithmetic, plus one
// filter and weigher evaluation of the consumed host.
func (s *Scheduler) Select(req *Request, hosts []Host) ([]Selection, error) {
	if req == nil {
		return nil, errors.New("hostsched: nil request")
	}
	if req.ForcedHost != "" || req.ForcedNode != "" {
		return selectForced(req, hosts)
	}
	hosts = requestedHosts(req, hosts)
	num := max(req.NumInstances, 1)
	if req.Group != nil {
		own := *req
		own.Group = req.Group.clone()
		req = &own
	}
	filters := s.Filters
	n := len(hosts)
	work := make([]Host, n)
	copy(work, hosts)

	// raw[w*n+i] is weigher w's raw score for work[i], valid while i is live.
	raw := make([]float64, len(s.Weighers)*n)
	// live holds the indexes of the hosts that pass every filter.
	live := make([]int, 0, n)
	for i := range work {
		if s.evaluate(filters, req, work, raw, i) {
			live = append(live, i)
		}
	}

	total := make([]float64, n)
	sels := make([]Selection, 0, num)
	var top [MaxAlternates + 1]int
	for placed := range num {
		if len(live) == 0 {
			keepPolicy(sels, req.Group)
			return sels, s.noValidHost(req, work, placed, num)
		}
		s.weigh(live, raw, total, n)
		k := s.best(live, total, work, top[:])
		sel := Selection{Host: work[live[top[0]]].Name}
		if k > 1 {
			sel.Alternates = make([]string, k-1)
			for j := 1; j < k; j++ {
				sel.Alternates[j-1] = work[live[top[j]]].Name
			}
		}
		sels = append(sels, sel)

		pos := top[0]
		i := live[pos]
		consume(&work[i], req.Flavor)
		if req.Group != nil {
			// The request changed for every host: re-evaluate them all.
			req.Group.add(work[i].Name)
			kept := live[:0]
			for _, j := range live {
				if s.evaluate(filters, req, work, raw, j) {
					kept = append(kept, j)
				}
			}
			live = kept
		} else if !s.evaluate(filters, req, work, raw, i) {
			live = append(live[:pos], live[pos+1:]...)
		}
	}
	keepPolicy(sels, req.Group)
	return sels, nil
}

// evaluate runs filters on work[i] and, when it passes, records its raw
// weigher scores. It reports whether the host passed.
func (s *Scheduler) evaluate(filters []Filter, req *Request, work []Host, raw []float64, i int) bool {
	h := &work[i]
	for _, f := range filters {
		if !f.Passes(req, h) {
			return false
		}
	}
	n := len(work)
	for w, ws := range s.Weighers {
		raw[w*n+i] = ws.Weigher.Weigh(req, h)
	}
	return true
}

// weigh sets total[i] for every live host i.
func (s *Scheduler) weigh(live []int, raw, total []float64, n int) {
	for _, i := range live {
		total[i] = 0
	}
	for w, ws := range s.Weighers {
		r := raw[w*n : (w+1)*n]
		m := ws.Multiplier
		if !ws.Normalise {
			for _, i := range live {
				total[i] += m * r[i]
			}
			continue
		}
		lo, hi := r[live[0]], r[live[0]]
		for _, i := range live[1:] {
			lo = min(lo, r[i])
			hi = max(hi, r[i])
		}
		if lo == hi {
			continue // all scores normalise to 0
		}
		span := hi - lo
		for _, i := range live {
			total[i] += m * ((r[i] - lo) / span)
		}
	}
}

// best fills top with the positions in live of the best len(top) hosts, best
// first, and returns how many it found. It is a single pass with an
// insertion into the short top list.
func (s *Scheduler) best(live []int, total []float64, work []Host, top []int) int {
	better := func(a, b int) bool { // a, b are host indexes
		return cmp.Or(
			cmp.Compare(total[b], total[a]),
			strings.Compare(work[a].Name, work[b].Name),
			cmp.Compare(a, b),
		) < 0
	}
	k := 0
	for pos, i := range live {
		if k == len(top) && !better(i, live[top[k-1]]) {
			continue
		}
		j := min(k, len(top)-1)
		for j > 0 && better(i, live[top[j-1]]) {
			top[j] = top[j-1]
			j--
		}
		top[j] = pos
		if k < len(top) {
			k++
		}
	}
	return k
}

// consume takes one instance of f out of h.
func consume(h *Host, f capacity.Flavor) {
	h.UsedVCPUs += f.VCPUs
	h.UsedRAMMB += f.RAMMB
	h.UsedDiskGB += f.DiskGB
	h.Instances++
}

// noValidHost builds the error for an instance that could not be placed,
// saying how many hosts each filter rejected in the current working state.
func (s *Scheduler) noValidHost(req *Request, work []Host, placed, num int) error {
	rejected := make([]int, len(s.Filters))
	for i := range work {
		for f, flt := range s.Filters {
			if !flt.Passes(req, &work[i]) {
				rejected[f]++
				break
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "placed %d of %d instances; %d hosts", placed, num, len(work))
	if req.requested() {
		fmt.Fprintf(&b, " (requested host %q node %q)", req.RequestedHost, req.RequestedNode)
	}
	for f, r := range rejected {
		if r > 0 {
			fmt.Fprintf(&b, ", %T rejected %d", s.Filters[f], r)
		}
	}
	return fmt.Errorf("%w: %s", ErrNoValidHost, b.String())
}
