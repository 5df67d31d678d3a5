package hostsched

// requested reports whether a request names a destination (see
// Request.RequestedHost).
func (req *Request) requested() bool { return req.RequestedHost != "" || req.RequestedNode != "" }

// requestedMatch reports whether h is the host and node a request asks
// for. Nova's host manager compares both exactly (unlike a forced host's
// name); a host has one node, named as the host.
func requestedMatch(req *Request, h *Host) bool {
	return (req.RequestedHost == "" || h.Name == req.RequestedHost) &&
		(req.RequestedNode == "" || h.Name == req.RequestedNode)
}

// requestedHosts are the hosts a request with a requested destination may
// go to, before the filters (Nova's _get_hosts_matching_request): those
// that match it. A request without one may go to every host.
func requestedHosts(req *Request, hosts []Host) []Host {
	if !req.requested() {
		return hosts
	}
	var out []Host
	for _, h := range hosts {
		if requestedMatch(req, &h) {
			out = append(out, h)
		}
	}
	return out
}
