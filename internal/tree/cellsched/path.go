package cellsched

import "strings"

// pathSep separates the components of a cell path, e.g. "api!cell1!a".
const pathSep = "!"

// holds reports whether the cell at path anc is the cell at path p or one of
// its ancestors. Matching is by whole path components: "api!cell" does not
// hold "api!cell1".
func holds(anc, p string) bool {
	return p == anc || strings.HasPrefix(p, anc+pathSep)
}

// candidateHolds reports whether candidate c holds the cell at path p. A Self
// candidate stands for the scheduling cell's own hosts only, not its
// children's, so it holds p only when p is exactly its path; any other
// candidate holds p when p is its path or lies beneath it.
func candidateHolds(c *Candidate, p string) bool {
	if c.Self {
		return c.Path == p
	}
	return holds(c.Path, p)
}
