package cellsched

// CapacityFilter passes candidates whose capacity report says at least one
// instance of req.Flavor still fits.
type CapacityFilter struct{}

// Passes implements Filter.
func (CapacityFilter) Passes(req *Request, c *Candidate) bool {
	return c.Report.Fits(req.Flavor) >= 1
}
