package hostsched

// ratio returns an allocation ratio, with zero (or a nonsensical negative
// value) meaning 1.0.
func ratio(r float64) float64 {
	if r <= 0 {
		return 1
	}
	return r
}

// freeVCPUs is the host's vCPU limit after its allocation ratio, less what is
// used. It is negative on a host that is over its limit.
func freeVCPUs(h *Host) float64 {
	return float64(h.TotalVCPUs)*ratio(h.CPURatio) - float64(h.UsedVCPUs)
}

// freeRAMMB is freeVCPUs for RAM.
func freeRAMMB(h *Host) float64 {
	return float64(h.TotalRAMMB)*ratio(h.RAMRatio) - float64(h.UsedRAMMB)
}

// freeDiskGB is freeVCPUs for disk.
func freeDiskGB(h *Host) float64 {
	return float64(h.TotalDiskGB)*ratio(h.DiskRatio) - float64(h.UsedDiskGB)
}
