package hostsched

import "slices"

// RetryFilter excludes hosts in req.IgnoreHosts, which already failed this
// build.
type RetryFilter struct{}

// Passes implements Filter.
func (RetryFilter) Passes(req *Request, h *Host) bool {
	return !slices.Contains(req.IgnoreHosts, h.Name)
}
