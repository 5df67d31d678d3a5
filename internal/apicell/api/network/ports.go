package network

import (
	"fmt"
	"net/http"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
)

// portsHandler is /v2.0/ports: read-only, see the package doc.
type portsHandler struct{ *base }

func (h *portsHandler) register(rt *router) {
	rt.handle("GET /v2.0/ports", h.listPorts)
	rt.handle("POST /v2.0/ports", h.createPort)
	rt.handle("GET /v2.0/ports/{id}", h.showPort)
	rt.handle("PUT /v2.0/ports/{id}", h.updatePort)
	rt.handle("DELETE /v2.0/ports/{id}", h.deletePort)
}

var ports = &collection{
	name: "ports",
	filters: map[string]kind{
		"id": kString, "name": kString, "network_id": kString, "admin_state_up": kBool, "mac_address": kMAC,
		"fixed_ips": kFixed, "device_id": kString, "device_owner": kString, "tenant_id": kString, "project_id": kString,
		"status": kString, "security_groups": kList, "description": kString, "binding:host_id": kString,
		"binding:vnic_type": kString, "revision_number": kInt,
	},
	sorts: map[string]bool{"id": true, "name": true, "network_id": true, "admin_state_up": true, "mac_address": true,
		"device_id": true, "device_owner": true, "tenant_id": true, "project_id": true, "status": true},
	notFound: portNotFound,
}

func portNotFound(id string) error {
	return fault(http.StatusNotFound, "PortNotFound", fmt.Sprintf("Port %s could not be found.", id))
}

// portItem is a port as the caller sees it: binding details other than the
// vNIC type are for admins only, as Neutron's policy has it.
func portItem(p *netdb.Port, admin bool) item {
	ips := make([]map[string]any, 0, len(p.FixedIPs))
	for _, ip := range p.FixedIPs {
		ips = append(ips, map[string]any{"subnet_id": ip.SubnetID, "ip_address": ip.IPAddress})
	}
	it := item{
		"id": p.ID, "name": "", "network_id": p.NetworkID, "tenant_id": p.ProjectID, "project_id": p.ProjectID,
		"mac_address": p.MACAddress, "admin_state_up": true, "status": p.Status, "device_id": p.DeviceID,
		"device_owner": p.DeviceOwner, "fixed_ips": ips, "security_groups": p.SecurityGroups, "description": "",
		"binding:vnic_type": "normal", "created_at": isoTime(p.CreatedAt), "updated_at": isoTime(p.UpdatedAt),
		"revision_number": p.RevisionNumber, "tags": []string{},
	}
	if admin {
		vif := "unbound"
		if p.HostID != "" {
			vif = "ovs"
		}
		it["binding:host_id"] = p.HostID
		it["binding:vif_type"] = vif
		it["binding:vif_details"] = map[string]any{}
		it["binding:profile"] = map[string]any{}
	}
	return it
}

func (h *portsHandler) listPorts(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), ports)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(r.Context())
	// Narrow the scan of the instances where the filters allow it: by
	// server, and by project (always, for non-admins).
	var f netdb.PortFilter
	for _, d := range q.filters["device_id"] {
		f.DeviceIDs = append(f.DeviceIDs, d.(string))
	}
	switch {
	case !c.Admin:
		f.ProjectID = c.ProjectID
	case len(q.filters["project_id"]) == 1:
		f.ProjectID = q.filters["project_id"][0].(string)
	case len(q.filters["tenant_id"]) == 1:
		f.ProjectID = q.filters["tenant_id"][0].(string)
	}
	list, err := netdb.ListPorts(r.Context(), h.cfg.DB, f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items := make([]item, 0, len(list))
	for _, p := range list {
		if c.Admin || p.ProjectID == c.ProjectID {
			items = append(items, portItem(p, c.Admin))
		}
	}
	pg, err := q.apply(r, ports, items)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeList(w, ports, q, pg)
}

// visiblePort derives a port, as PortNotFound when the caller may not see
// it (a port is its server's project's).
func (h *portsHandler) visiblePort(r *http.Request, id string) (*netdb.Port, error) {
	c := httpkit.CallerFrom(r.Context())
	p, err := netdb.GetPort(r.Context(), h.cfg.DB, id)
	if err != nil {
		return nil, err
	}
	if !c.Admin && p.ProjectID != c.ProjectID {
		return nil, portNotFound(id)
	}
	return p, nil
}

func (h *portsHandler) showPort(w http.ResponseWriter, r *http.Request) {
	p, err := h.visiblePort(r, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"port": view(portItem(p, httpkit.CallerFrom(r.Context()).Admin), ports, showFields(r))})
}

// createPort refuses: in this cloud a port is a server's address, made by
// the compute service when it boots the server. 400 is final for every
// client (none retries it) and the message says what to do instead.
func (h *portsHandler) createPort(w http.ResponseWriter, r *http.Request) {
	h.fail(w, r, fault(http.StatusBadRequest, "BadRequest",
		`Bad port request: Ports are created by the compute service in this cloud: boot a server with "networks": [{"uuid": "<network id>"}] and its port appears here.`))
}

// updatePort refuses with Neutron's answer for a port whose owner manages
// it (409 UnsupportedPortDeviceOwner), after the usual 404 for a port the
// caller cannot see.
func (h *portsHandler) updatePort(w http.ResponseWriter, r *http.Request) {
	p, err := h.visiblePort(r, r.PathValue("id"))
	if err == nil {
		err = fault(http.StatusConflict, "UnsupportedPortDeviceOwner", fmt.Sprintf(
			"Operation update is not supported for device_owner %s on port %s. Ports are read-only in this cloud: the compute service manages them with server %s.",
			p.DeviceOwner, p.ID, p.DeviceID))
	}
	h.fail(w, r, err)
}

// deletePort refuses with Neutron's answer for a port that belongs to a
// service (409 ServicePortInUse): the port goes when its server does.
func (h *portsHandler) deletePort(w http.ResponseWriter, r *http.Request) {
	p, err := h.visiblePort(r, r.PathValue("id"))
	if err == nil {
		err = fault(http.StatusConflict, "ServicePortInUse", fmt.Sprintf(
			"Port %s cannot be deleted directly via the port API: it is an address of server %s; delete the server through the Compute API instead.",
			p.ID, p.DeviceID))
	}
	h.fail(w, r, err)
}
