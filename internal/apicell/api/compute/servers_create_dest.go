package compute

import (
	"net/http"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// A requested destination (microversion 2.74): an admin's create names
// the host and/or node (hypervisor_hostname) its servers must go to.
// Unlike a host forced by availability_zone "zone:host:node"
// (servers_create_az.go), the scheduler's filters still run on that host:
// the build goes to the host's cell, whose host scheduler considers that
// host alone, and a host the filters refuse fails the build with no valid
// host. The host or node must exist (Nova's _validate_host_or_node, a 400
// otherwise).

// ruleRequestedDestination lets a create name its host or node in host
// and hypervisor_hostname (Nova's default: admins only).
const ruleRequestedDestination = "compute:servers:create:requested_destination"

// createDestination is Nova's _process_hosts_for_create: a requested
// destination needs its rule and excludes a host or node forced in the
// availability zone. It runs after createZone, as Nova's checks the
// forced host's rule first.
func (h *serversHandler) createDestination(r *http.Request, req *createRequest, asked string) error {
	if req.requestedHost == "" && req.requestedNode == "" {
		return nil
	}
	if err := h.authorize(r.Context(), ruleRequestedDestination, policy.Target{"availability_zone": asked}); err != nil {
		return err
	}
	if req.forcedHost != "" || req.forcedNode != "" {
		return bad("One mechanism with host and/or hypervisor_hostname and another mechanism with zone:host:node are mutually exclusive.")
	}
	return nil
}

// resolveDestination checks that the requested host and node exist, as
// Nova's _validate_host_or_node does from its host mappings (and, for a
// node alone, Placement's resource providers): a host is a compute host
// the API cell has a mapping of, named as os-services names it (PATH@HOST
// or a bare name one cell has); a node is a compute node, which here has
// its host's name, and with a host given must be that host's. Either not
// found is Nova's ComputeHostNotFound, a 400 naming what was asked for.
// The request then names them in their cell, requestedCell.
func (h *serversHandler) resolveDestination(r *http.Request, req *createRequest) error {
	if req.requestedHost == "" && req.requestedNode == "" {
		return nil
	}
	notFound := func(name string) error { return bad("Compute host %s could not be found.", name) }
	var cell, host, node string
	if req.requestedHost != "" {
		found, ok, err := h.aggregateHost(r, req.requestedHost)
		if err != nil {
			return err
		}
		if !ok {
			return notFound(req.requestedHost)
		}
		cell, host = found.Cell, found.Host
	}
	if req.requestedNode != "" {
		nodeCell, bare, ok, err := h.computeNode(r, req.requestedNode)
		if err != nil {
			return err
		}
		switch {
		case host != "" && (!ok || nodeCell != cell || bare != host):
			// Nova looks the node up on the host's cell and names the
			// host when it is not there.
			return notFound(req.requestedHost)
		case !ok:
			return notFound(req.requestedNode)
		}
		cell, node = nodeCell, bare
	}
	req.requestedCell, req.requestedHost, req.requestedNode = cell, host, node
	return nil
}

// computeNode resolves a compute node named as a host is ("PATH@NODE", or
// a bare name one cell has) to its cell and its name there; ok is false
// when the API cell has no mapping of it.
func (h *serversHandler) computeNode(r *http.Request, name string) (cell, node string, ok bool, err error) {
	want, bare, qualified := h.splitQualified(name)
	if !qualified {
		bare = name
	}
	cells, err := apidb.NodeCells(r.Context(), h.cfg.DB, bare)
	if err != nil {
		return "", "", false, err
	}
	var found []string
	for _, c := range cells {
		if !qualified || c == want {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return "", "", false, nil
	case 1:
		return found[0], bare, true, nil
	}
	return "", "", false, bad("Compute node '%s' is in more than one cell (%s): name it PATH@NODE, its cell's path and its name.", name, strings.Join(found, ", "))
}
