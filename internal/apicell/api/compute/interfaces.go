package compute

import (
	"errors"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
)

// interfacesHandler is /servers/{id}/os-interface: a server's ports, read
// from the Networking API's table, as Nova reads them from Neutron, and
// attached (POST) and detached (DELETE): the API cell binds, makes, unbinds
// or deletes the port and sends the change to the server's cell
// (attach_interface, detach_interface), which records the addresses and
// reports them back with the instance's state.
type interfacesHandler struct {
	*base
	servers *serversHandler
}

func (h *interfacesHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/os-interface", "os_compute_api:os-attach-interfaces:list", h.listInterfaces)
	rt.handle("GET /v2.1/servers/{id}/os-interface/{port}", "os_compute_api:os-attach-interfaces:show", h.showInterface)
	rt.handle("POST /v2.1/servers/{id}/os-interface", "os_compute_api:os-attach-interfaces:create", h.attachInterface)
	rt.handle("DELETE /v2.1/servers/{id}/os-interface/{port}", "os_compute_api:os-attach-interfaces:delete", h.detachInterface)
}

// interfaceView is a port as an interface attachment (Nova's
// _translate_interface_attachment_view); from 2.70 with its device tag
// (null when it has none).
func interfaceView(r *http.Request, p *netdb.Port, tag string) map[string]any {
	ips := make([]map[string]any, 0, len(p.FixedIPs))
	for _, ip := range p.FixedIPs {
		ips = append(ips, map[string]any{"subnet_id": ip.SubnetID, "ip_address": ip.IPAddress})
	}
	v := map[string]any{"net_id": p.NetworkID, "port_id": p.ID, "mac_addr": p.MACAddress, "port_state": p.Status, "fixed_ips": ips}
	if atLeast(r, 70) {
		v["tag"] = nullable(tag)
	}
	return v
}

// deviceTags are the device tags of the server's ports, when the request's
// microversion shows them (2.70).
func (h *interfacesHandler) deviceTags(r *http.Request, server string) (map[string]string, error) {
	if !atLeast(r, 70) {
		return nil, nil
	}
	return netdb.DeviceTags(r.Context(), h.cfg.DB, server)
}

// listInterfaces is GET /servers/{id}/os-interface: the ports of the
// server's project bound to it (as Nova lists them with the project's
// token: another project's port naming the server is not its interface).
func (h *interfacesHandler) listInterfaces(w http.ResponseWriter, r *http.Request) {
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ports, err := netdb.ListPorts(r.Context(), h.cfg.DB, netdb.PortFilter{DeviceIDs: []string{in.UUID}, ProjectID: in.ProjectID})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tags, err := h.deviceTags(r, in.UUID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(ports))
	for _, p := range ports {
		out = append(out, interfaceView(r, p, tags[p.ID]))
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachments": out})
}

// showInterface is GET /servers/{id}/os-interface/{port}.
func (h *interfacesHandler) showInterface(w http.ResponseWriter, r *http.Request) {
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("port")
	p, err := netdb.GetPort(r.Context(), h.cfg.DB, id)
	if isPortNotFound(err) {
		err = notFound("Port id %s could not be found.", id)
	} else if err == nil && (p.DeviceID != in.UUID || p.ProjectID != in.ProjectID) {
		err = notFound("Instance %s does not have a port with id %s", in.UUID, id)
	}
	var tags map[string]string
	if err == nil {
		tags, err = h.deviceTags(r, in.UUID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachment": interfaceView(r, p, tags[p.ID])})
}

func isPortNotFound(err error) bool {
	var ne *netdb.Error
	return errors.As(err, &ne) && ne.Code == "PortNotFound"
}
