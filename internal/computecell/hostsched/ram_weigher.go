package hostsched

// DefaultRAMWeightMultiplier is the multiplier Default gives RAMWeigher.
// Positive spreads instances onto the hosts with the most free RAM; a
// negative multiplier stacks them onto the fullest hosts that still fit.
const DefaultRAMWeightMultiplier = 1.0

// RAMWeigher scores a host by its free RAM after the allocation ratio,
// TotalRAMMB × RAMRatio − UsedRAMMB. Like Nova's, it is meant to be
// normalised across the hosts.
type RAMWeigher struct{}

// Weigh implements Weigher.
func (RAMWeigher) Weigh(_ *Request, h *Host) float64 {
	return freeRAMMB(h)
}
