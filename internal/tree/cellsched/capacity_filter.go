package cellsched

// CapacityFilter passes candidates whose capacity report says at least one
// instance of req.Flavor still fits, in req.AvailabilityZone when the
// request names one.
type CapacityFilter struct{}

// Passes implements Filter.
func (CapacityFilter) Passes(req *Request, c *Candidate) bool {
	return c.Report.FitsIn(req.AvailabilityZone, req.Flavor) >= 1
}
