package hostsched

// RAMFilter passes hosts with room for the flavor's RAM:
// TotalRAMMB × RAMRatio − UsedRAMMB ≥ flavor RAM (a zero ratio means 1.0).
type RAMFilter struct{}

// Passes implements Filter.
func (RAMFilter) Passes(req *Request, h *Host) bool {
	return freeRAMMB(h) >= float64(req.Flavor.RAMMB)
}
