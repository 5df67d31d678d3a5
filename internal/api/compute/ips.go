package compute

import (
	"fmt"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apidb"
)

// ipsView is the addresses of a server by network, as /ips shows them.
func ipsView(in *apidb.Instance) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, ad := range in.Addresses {
		out[ad.Network] = append(out[ad.Network], map[string]any{"version": ad.Version, "addr": ad.Addr})
	}
	return out
}

// listIPs is GET /servers/{id}/ips.
func (a *API) listIPs(w http.ResponseWriter, r *http.Request) {
	in, err := a.loadServer(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"addresses": ipsView(in)})
}

// showIPs is GET /servers/{id}/ips/{network}.
func (a *API) showIPs(w http.ResponseWriter, r *http.Request) {
	in, err := a.loadServer(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	net := r.PathValue("network")
	addrs, ok := ipsView(in)[net]
	if !ok {
		a.fail(w, r, &httpError{http.StatusNotFound, fmt.Sprintf("There are no IP addresses for server %s on network %s.", in.UUID, net)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{net: addrs})
}
