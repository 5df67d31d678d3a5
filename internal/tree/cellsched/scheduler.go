package cellsched

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// WeighSpec is one weigher as the Scheduler applies it.
type WeighSpec struct {
	Weigher Weigher
	// Multiplier scales the weigher's (possibly normalised) score. Zero
	// makes the weigher count for nothing; negative inverts its preference.
	Multiplier float64
	// Normalise maps the weigher's raw scores onto [0,1] by min/max across
	// the candidates that passed the filters before the multiplier is
	// applied. When all scores are equal they all become 0.
	Normalise bool
}

// Scheduler filters and weighs candidate cells.
type Scheduler struct {
	// Filters are applied in order; a candidate must pass all of them.
	Filters []Filter
	// Weighers are summed into each candidate's total weight.
	Weighers []WeighSpec
}

// Default returns a Scheduler with every filter and weigher of this package,
// with Nova cells v1 defaults: RAMByFlavorWeigher normalised with multiplier
// DefaultRAMByFlavorMultiplier, MuteChildWeigher and WeightOffsetWeigher
// unnormalised with multiplier 1.
func Default() *Scheduler {
	return &Scheduler{
		Filters: []Filter{
			TargetCellFilter{},
			TriedFilter{},
			SameCellFilter{},
			DifferentCellFilter{},
			AvailabilityZoneFilter{},
			ImagePropertiesFilter{},
			AggregateInstanceExtraSpecsFilter{},
			AggregateMultiTenancyIsolationFilter{},
			CapacityFilter{},
		},
		Weighers: []WeighSpec{
			{Weigher: RAMByFlavorWeigher{}, Multiplier: DefaultRAMByFlavorMultiplier, Normalise: true},
			{Weigher: MuteChildWeigher{}, Multiplier: 1},
			{Weigher: WeightOffsetWeigher{}, Multiplier: 1},
		},
	}
}

// Rank returns the candidates that pass every filter, best first.
//
// A candidate's total weight is the sum over the weighers of
// Multiplier × score, where score is the weigher's raw score, normalised
// across the passing candidates when the WeighSpec says so. When the
// candidate's WeightScale is non-zero the total is then multiplied by it
// (zero means "unset", i.e. 1). The scale applies to the whole total,
// including WeightOffset and any mute penalty, so a scale between 0 and 1
// softens a mute penalty and a negative scale inverts the candidate's
// standing.
//
// Candidates are sorted by total weight, highest first; equal weights are
// ordered by Path, then by their order in cands. cands is not modified; the
// result is a new slice. When no candidate passes, Rank returns an error
// wrapping ErrNoValidCell that says how many candidates each filter
// rejected. req must not be nil.
func (s *Scheduler) Rank(req *Request, cands []Candidate) ([]Candidate, error) {
	if req == nil {
		return nil, errors.New("cellsched: nil request")
	}
	rejected := make([]int, len(s.Filters))
	passed := make([]int, 0, len(cands))
	for i := range cands {
		if f := firstRejecting(s.Filters, req, &cands[i]); f >= 0 {
			rejected[f]++
			continue
		}
		passed = append(passed, i)
	}
	if len(passed) == 0 {
		return nil, noValidCell(len(cands), s.Filters, rejected)
	}

	total := make([]float64, len(passed))
	raw := make([]float64, len(passed))
	for _, ws := range s.Weighers {
		for k, i := range passed {
			raw[k] = ws.Weigher.Weigh(req, &cands[i])
		}
		if ws.Normalise {
			normalise(raw)
		}
		for k := range raw {
			total[k] += ws.Multiplier * raw[k]
		}
	}
	for k, i := range passed {
		if sc := cands[i].WeightScale; sc != 0 {
			total[k] *= sc
		}
	}

	order := make([]int, len(passed))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(
			cmp.Compare(total[b], total[a]),
			strings.Compare(cands[passed[a]].Path, cands[passed[b]].Path),
			cmp.Compare(a, b),
		)
	})
	out := make([]Candidate, len(order))
	for k, o := range order {
		out[k] = cands[passed[o]]
	}
	return out, nil
}

// firstRejecting returns the index of the first filter c fails, or -1.
func firstRejecting(filters []Filter, req *Request, c *Candidate) int {
	for f, flt := range filters {
		if !flt.Passes(req, c) {
			return f
		}
	}
	return -1
}

// normalise maps xs onto [0,1] in place by min/max; all-equal becomes all 0.
func normalise(xs []float64) {
	if len(xs) == 0 {
		return
	}
	lo, hi := slices.Min(xs), slices.Max(xs)
	if lo == hi {
		clear(xs)
		return
	}
	span := hi - lo
	for i, x := range xs {
		xs[i] = (x - lo) / span
	}
}

func noValidCell(n int, filters []Filter, rejected []int) error {
	var b strings.Builder
	for f, r := range rejected {
		if r == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%T rejected %d", filters[f], r)
	}
	if b.Len() == 0 {
		return fmt.Errorf("%w: no candidates", ErrNoValidCell)
	}
	return fmt.Errorf("%w: %d candidates (%s)", ErrNoValidCell, n, b.String())
}
