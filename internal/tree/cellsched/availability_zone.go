package cellsched

import "slices"

// AvailabilityZoneFilter passes every candidate when req.AvailabilityZone is
// empty, and otherwise only candidates whose report lists that zone.
type AvailabilityZoneFilter struct{}

// Passes implements Filter.
func (AvailabilityZoneFilter) Passes(req *Request, c *Candidate) bool {
	if req.AvailabilityZone == "" {
		return true
	}
	return slices.Contains(c.Report.AvailabilityZones, req.AvailabilityZone)
}
