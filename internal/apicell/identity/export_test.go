package identity

// HoldHashSlot takes a slot of s's hash gate until release is called, so
// that a test can fill the gate without racing real hashes.
func HoldHashSlot(s *Store) (release func()) {
	s.gate.slots <- struct{}{}
	return func() { <-s.gate.slots }
}
