package cellsched

// SameCellFilter honours the same_cell hint. With no req.SameCell every
// candidate passes; otherwise a candidate passes when it holds at least one of
// the listed cells, i.e. the cell is the candidate or lies beneath it. A Self
// candidate holds only its own path.
type SameCellFilter struct{}

// Passes implements Filter.
func (SameCellFilter) Passes(req *Request, c *Candidate) bool {
	if len(req.SameCell) == 0 {
		return true
	}
	for _, p := range req.SameCell {
		if candidateHolds(c, p) {
			return true
		}
	}
	return false
}
