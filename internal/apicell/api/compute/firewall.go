package compute

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// firewallHandler is cellcloud's own admin view (not a Nova API) of what
// a server's host enforces on each of its ports: the effective rules of
// its security groups, remote groups expanded to the member addresses the
// host holds, as the host's driver has them. It is answered by the
// instance's cell (instance_filter), so it shows what the cell enforces,
// not what the API cell has been told.
type firewallHandler struct {
	*base
	servers *serversHandler
}

// policyFirewall is the rule of GET /servers/{id}/firewall: an admin's.
const policyFirewall = "cellcloud:servers:firewall"

func (h *firewallHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/firewall", policyFirewall, h.showFirewall)
}

// showFirewall is GET /servers/{id}/firewall: {"firewall": {"uuid", "host",
// "ports": [...]}} (wire.InstanceFilterAnswer); a server not on a host yet
// is a 409, as Nova answers a diagnostics request for one.
func (h *firewallHandler) showFirewall(w http.ResponseWriter, r *http.Request) {
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if in.Cell == "" || in.Host == "" {
		h.fail(w, r, conflict("Instance %s is not ready", in.UUID))
		return
	}
	var out wire.InstanceFilterAnswer
	if err := h.callInstanceCell(r, in, wire.MethodInstanceFilter, &wire.InstanceFilter{UUID: in.UUID}, &out); err != nil {
		h.fail(w, r, err)
		return
	}
	if out.Ports == nil {
		out.Ports = []wire.PortFilter{}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"firewall": out})
}
