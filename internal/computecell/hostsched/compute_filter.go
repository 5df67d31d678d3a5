package hostsched

// ComputeFilter passes hosts whose compute service is up and enabled.
type ComputeFilter struct{}

// Passes implements Filter.
func (ComputeFilter) Passes(_ *Request, h *Host) bool {
	return h.Up && h.Enabled
}
