package cellsched

// WeightOffsetWeigher scores a candidate by its WeightOffset from the cells
// table, so an operator can prefer (positive) or avoid (negative) a cell. It
// is meant to be used unnormalised with a multiplier of 1.
type WeightOffsetWeigher struct{}

// Weigh implements Weigher.
func (WeightOffsetWeigher) Weigh(_ *Request, c *Candidate) float64 {
	return c.WeightOffset
}
