package cellsched

import "slices"

// TriedFilter excludes the cells in req.Tried, which already failed this
// build. Only an exact path match excludes: a cell whose descendant failed
// may still place the build elsewhere in its subtree.
type TriedFilter struct{}

// Passes implements Filter.
func (TriedFilter) Passes(req *Request, c *Candidate) bool {
	return !slices.Contains(req.Tried, c.Path)
}
