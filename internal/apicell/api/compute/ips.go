package compute

import (
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
)

// ipsHandler is GET /servers/{id}/ips: a server's addresses.
type ipsHandler struct {
	*base
	servers *serversHandler
}

func (h *ipsHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/ips", "os_compute_api:ips:index", h.listIPs)
	rt.handle("GET /v2.1/servers/{id}/ips/{network}", "os_compute_api:ips:show", h.showIPs)
}

// ipsView is the addresses of a server by network, as /ips shows them.
func ipsView(in *apidb.Instance) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, ad := range in.Addresses {
		out[ad.Network] = append(out[ad.Network], map[string]any{"version": ad.Version, "addr": ad.Addr})
	}
	return out
}

// listIPs is GET /servers/{id}/ips.
func (h *ipsHandler) listIPs(w http.ResponseWriter, r *http.Request) {
	in, err := h.servers.loadServer(r)
	if err == nil {
		err = loadPortAddresses(r.Context(), h.cfg.DB, []*apidb.Instance{in})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"addresses": ipsView(in)})
}

// showIPs is GET /servers/{id}/ips/{network}.
func (h *ipsHandler) showIPs(w http.ResponseWriter, r *http.Request) {
	in, err := h.servers.loadServer(r)
	if err == nil {
		err = loadPortAddresses(r.Context(), h.cfg.DB, []*apidb.Instance{in})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	net := r.PathValue("network")
	addrs, ok := ipsView(in)[net]
	if !ok {
		h.fail(w, r, notFound("There are no IP addresses for server %s on network %s.", in.UUID, net))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{net: addrs})
}
