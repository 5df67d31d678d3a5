package hostsched

// CoreFilter passes hosts with room for the flavor's vCPUs:
// TotalVCPUs × CPURatio − UsedVCPUs ≥ flavor vCPUs (a zero ratio means 1.0).
type CoreFilter struct{}

// Passes implements Filter.
func (CoreFilter) Passes(req *Request, h *Host) bool {
	return freeVCPUs(h) >= float64(req.Flavor.VCPUs)
}
