package cellsched

// TargetCellFilter honours the admin's target_cell hint. With no
// req.TargetCell every candidate passes. Otherwise a candidate passes when the
// target is its path or lies beneath it (the build is routed on down the
// tree); a Self candidate passes only when the target is exactly its path.
type TargetCellFilter struct{}

// Passes implements Filter.
func (TargetCellFilter) Passes(req *Request, c *Candidate) bool {
	if req.TargetCell == "" {
		return true
	}
	return candidateHolds(c, req.TargetCell)
}
