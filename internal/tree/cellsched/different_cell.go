package cellsched

// DifferentCellFilter honours the different_cell hint: a candidate passes only
// when it holds none of req.DifferentCell, i.e. no listed cell is the
// candidate or lies beneath it. A Self candidate holds only its own path, so
// an instance in one of its children does not exclude it.
type DifferentCellFilter struct{}

// Passes implements Filter.
func (DifferentCellFilter) Passes(req *Request, c *Candidate) bool {
	for _, p := range req.DifferentCell {
		if candidateHolds(c, p) {
			return false
		}
	}
	return true
}
