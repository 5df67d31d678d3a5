package cellsched

// DefaultRAMByFlavorMultiplier is the multiplier Default gives
// RAMByFlavorWeigher: positive, so cells with more room are preferred.
const DefaultRAMByFlavorMultiplier = 10.0

// RAMByFlavorWeigher scores a candidate by how many instances of req.Flavor
// its capacity report says still fit (in req.AvailabilityZone when the
// request names one). It is meant to be normalised.
type RAMByFlavorWeigher struct{}

// Weigh implements Weigher.
func (RAMByFlavorWeigher) Weigh(req *Request, c *Candidate) float64 {
	return float64(c.Report.FitsIn(req.AvailabilityZone, req.Flavor))
}
