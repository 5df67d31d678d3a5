package hostsched

// AvailabilityZoneFilter passes every host when req.AvailabilityZone is empty,
// and otherwise only hosts in that zone.
type AvailabilityZoneFilter struct{}

// Passes implements Filter.
func (AvailabilityZoneFilter) Passes(req *Request, h *Host) bool {
	return req.AvailabilityZone == "" || req.AvailabilityZone == h.AvailabilityZone
}
