package hostsched

import (
	"fmt"
	"slices"
	"strings"
)

// forcedFits reports whether a host forced on a build can take one more
// instance: in Nova the filters are skipped (force_hosts, force_nodes),
// but Placement still refuses a disabled compute service (its
// COMPUTE_STATUS_DISABLED trait) and a node without room for the flavor.
// A host that is down is not refused (Placement does not know).
func forcedFits(req *Request, h *Host) bool {
	return h.Enabled && RAMFilter{}.Passes(req, h) && DiskFilter{}.Passes(req, h) && CoreFilter{}.Passes(req, h)
}

// forcedMatch reports whether h is the host (any case, as Nova compares
// host names) and node a request is forced to. A host has one node, named
// as the host (its hypervisor_hostname).
func forcedMatch(req *Request, h *Host) bool {
	return (req.ForcedHost == "" || strings.EqualFold(h.Name, req.ForcedHost)) &&
		(req.ForcedNode == "" || h.Name == req.ForcedNode)
}

// selectForced places a request forced to a host or node: on the hosts
// that match and are not to be ignored, without the scheduler's filters
// and weighers, each instance on the first (by name) with room. There are
// no alternates: a forced build is not retried on another host.
func selectForced(req *Request, hosts []Host) ([]Selection, error) {
	var work []Host
	for _, h := range hosts {
		if forcedMatch(req, &h) && !slices.ContainsFunc(req.IgnoreHosts, func(x string) bool { return strings.EqualFold(x, h.Name) }) {
			work = append(work, h)
		}
	}
	slices.SortStableFunc(work, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
	num := max(req.NumInstances, 1)
	sels := make([]Selection, 0, num)
	for placed := range num {
		i := slices.IndexFunc(work, func(h Host) bool { return forcedFits(req, &h) })
		if i < 0 {
			return sels, fmt.Errorf("%w: placed %d of %d instances; forced to host %q node %q: %d hosts match, none enabled with room",
				ErrNoValidHost, placed, num, req.ForcedHost, req.ForcedNode, len(work))
		}
		sels = append(sels, Selection{Host: work[i].Name})
		consume(&work[i], req.Flavor)
	}
	return sels, nil
}
