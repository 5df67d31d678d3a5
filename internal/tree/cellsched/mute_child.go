package cellsched

import "time"

// Defaults for MuteChildWeigher.
const (
	// DefaultMuteAfter is how long a child may go without reporting before
	// it is considered mute.
	DefaultMuteAfter = 300 * time.Second
	// DefaultMuteWeight is the weight given to a mute child.
	DefaultMuteWeight = -10000.0
)

// MuteChildWeigher penalises child cells that have stopped reporting. A
// non-Self candidate whose LastSeen is more than MuteAfter before req.Now
// (or that has never reported, LastSeen zero) weighs MuteWeight; every
// other candidate weighs 0. Self is never mute.
//
// The weight is a fixed penalty and is meant to be used unnormalised with a
// multiplier of 1, so that a mute child ranks below every live one.
//
// When req.Now is zero the current time is used.
type MuteChildWeigher struct {
	// MuteAfter defaults to DefaultMuteAfter when zero or negative.
	MuteAfter time.Duration
	// MuteWeight defaults to DefaultMuteWeight when zero.
	MuteWeight float64
}

// Weigh implements Weigher.
func (w MuteChildWeigher) Weigh(req *Request, c *Candidate) float64 {
	if w.isMute(req, c) {
		if w.MuteWeight == 0 {
			return DefaultMuteWeight
		}
		return w.MuteWeight
	}
	return 0
}

func (w MuteChildWeigher) isMute(req *Request, c *Candidate) bool {
	if c.Self {
		return false
	}
	if c.LastSeen.IsZero() {
		return true
	}
	after := w.MuteAfter
	if after <= 0 {
		after = DefaultMuteAfter
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}
	return now.Sub(c.LastSeen) > after
}
