package hostsched

// DiskFilter passes hosts with room for the flavor's disk:
// TotalDiskGB × DiskRatio − UsedDiskGB ≥ flavor disk (a zero ratio means 1.0).
type DiskFilter struct{}

// Passes implements Filter.
func (DiskFilter) Passes(req *Request, h *Host) bool {
	return freeDiskGB(h) >= float64(req.Flavor.DiskGB)
}
