package cellsched

// AggregateMultiTenancyIsolationFilter is the cell side of Nova's
// AggregateMultiTenancyIsolation: a host in an aggregate with a
// filter_tenant_id* key takes only the projects it names. A cell passes
// when its report says some host is open to every project, or that the
// isolated hosts take req.ProjectID; a report that says nothing of
// aggregates, or a request without a project, passes.
type AggregateMultiTenancyIsolationFilter struct{}

// Passes implements Filter.
func (AggregateMultiTenancyIsolationFilter) Passes(req *Request, c *Candidate) bool {
	a := c.Report.Aggregates
	if a == nil || req.ProjectID == "" {
		return true
	}
	return a.TakesProject(req.ProjectID)
}
