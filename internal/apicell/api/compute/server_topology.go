package compute

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
)

// topologyHandler is GET /servers/{id}/topology (2.78), Nova's
// server_topology.py: a server's NUMA topology. The fake hypervisor gives
// no instance a NUMA topology (cellcloud has no hw:numa_* or dedicated CPU
// placement), so every server answers as Nova answers for one without:
// no nodes and no page size. compute:server:topology:index is checked on
// the server's project as Nova checks it; compute:server:topology:host:index
// (admins) is registered with Nova's default, but would only add each
// node's host NUMA node and CPU pinning, which a server without nodes
// never shows.
type topologyHandler struct {
	*base
	servers *serversHandler
}

// The rules of the topology (Nova's nova/policies/server_topology.py).
const (
	ruleTopology     = "compute:server:topology:index"
	ruleTopologyHost = "compute:server:topology:host:index"
)

// v278 brings GET /servers/{id}/topology.
const v278 = 78

func (h *topologyHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/topology", "", h.topology)
}

// topology is GET /servers/{id}/topology: 404 below 2.78, then the server
// (404), then its rule on the server's project (403). Query parameters
// are accepted and ignored, as Nova's schema does until 2.102.
func (h *topologyHandler) topology(w http.ResponseWriter, r *http.Request) {
	if !atLeast(r, v278) {
		h.fail(w, r, notFound("The resource could not be found."))
		return
	}
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	target := policy.Target{"project_id": in.ProjectID}
	if err := h.authorize(r.Context(), ruleTopology, target); err != nil {
		h.fail(w, r, err)
		return
	}
	// ruleTopologyHost (asked by Nova with fatal=False) adds host_node
	// and cpu_pinning to each node: with no nodes it changes nothing, so
	// it is not asked.
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"nodes": []any{}, "pagesize_kb": nil})
}
