package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
)

// portsHandler is /v2.0/ports: Neutron's ports with port-security,
// allowed-address-pairs, binding (admins) and the standard attributes and
// their tags. Addresses come from the blocks the API cell holds (netdb);
// an address asked for whose block a cell holds is reserved in that cell
// first (netdb.AddressReserver).
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
		"binding:vnic_type": kString, "revision_number": kInt, "port_security_enabled": kBool,
	},
	sorts: map[string]bool{"id": true, "name": true, "network_id": true, "admin_state_up": true, "mac_address": true,
		"device_id": true, "device_owner": true, "tenant_id": true, "project_id": true, "status": true},
	notFound: portNotFound,
	tagged:   true,
}

// portRules are a port's attributes; the binding ones other than the vNIC
// type, and mac_address, are for admins (checked in portFields).
var portRules = map[string]attrRule{
	"id": {}, "status": {}, "created_at": {}, "updated_at": {}, "revision_number": {}, "binding:vif_type": {}, "binding:vif_details": {},
	"network_id": {post: true}, "tenant_id": {post: true}, "project_id": {post: true}, "tags": {post: true},
	"name": {post: true, put: true}, "description": {post: true, put: true}, "admin_state_up": {post: true, put: true},
	"mac_address": {post: true, put: true}, "fixed_ips": {post: true, put: true}, "device_id": {post: true, put: true},
	"device_owner": {post: true, put: true}, "security_groups": {post: true, put: true}, "port_security_enabled": {post: true, put: true},
	"allowed_address_pairs": {post: true, put: true}, "binding:host_id": {post: true, put: true}, "binding:profile": {post: true, put: true},
	"binding:vnic_type": {post: true, put: true},
}

// vnicTypes are Neutron's binding:vnic_type values.
var vnicTypes = []string{"normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder", "smart-nic", "vdpa",
	"accelerator-direct", "accelerator-direct-physical", "remote-managed"}

// maxAddressPairs is Neutron's max_allowed_address_pair default.
const maxAddressPairs = 10

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
	pairs := make([]map[string]any, 0, len(p.AllowedAddressPairs))
	for _, a := range p.AllowedAddressPairs {
		mac := a.MACAddress
		if mac == "" {
			mac = p.MACAddress
		}
		pairs = append(pairs, map[string]any{"ip_address": a.IPAddress, "mac_address": mac})
	}
	it := item{
		"id": p.ID, "name": p.Name, "network_id": p.NetworkID, "tenant_id": p.ProjectID, "project_id": p.ProjectID,
		"mac_address": p.MACAddress, "admin_state_up": p.AdminStateUp, "status": p.Status, "device_id": p.DeviceID,
		"device_owner": p.DeviceOwner, "fixed_ips": ips, "security_groups": p.SecurityGroups, "description": p.Description,
		"port_security_enabled": p.PortSecurity, "allowed_address_pairs": pairs,
		"binding:vnic_type": p.VNICType, "created_at": isoTime(p.CreatedAt), "updated_at": isoTime(p.UpdatedAt),
		"revision_number": p.RevisionNumber, "tags": p.Tags,
	}
	if admin {
		vif := "unbound"
		if p.HostID != "" {
			vif = "ovs"
		}
		var profile map[string]any
		_ = json.Unmarshal([]byte(p.Profile), &profile)
		if profile == nil {
			profile = map[string]any{}
		}
		it["binding:host_id"] = p.HostID
		it["binding:vif_type"] = vif
		it["binding:vif_details"] = map[string]any{}
		it["binding:profile"] = profile
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
	// Narrow the read where the filters allow it: by port, server and
	// network, and by project (always, for non-admins).
	var f netdb.PortFilter
	for _, v := range q.filters["id"] {
		f.IDs = append(f.IDs, v.(string))
	}
	for _, d := range q.filters["device_id"] {
		f.DeviceIDs = append(f.DeviceIDs, d.(string))
	}
	if v := q.filters["network_id"]; len(v) == 1 {
		f.NetworkID = v[0].(string)
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

// visiblePort reads a port, as PortNotFound when the caller may not see
// it (another project's, for a caller who is not an admin).
func (h *portsHandler) visiblePort(r *http.Request, q db.Querier, id string) (*netdb.Port, error) {
	c := httpkit.CallerFrom(r.Context())
	p, err := netdb.GetPort(r.Context(), q, id)
	if err != nil {
		return nil, err
	}
	if !c.Admin && p.ProjectID != c.ProjectID {
		return nil, portNotFound(id)
	}
	return p, nil
}

func (h *portsHandler) showPort(w http.ResponseWriter, r *http.Request) {
	p, err := h.visiblePort(r, h.cfg.DB, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"port": view(portItem(p, httpkit.CallerFrom(r.Context()).Admin), ports, showFields(r))})
}

// portFields are the attributes a create or update sets.
type portFields struct {
	patch    netdb.PortPatch
	fixedIPs []netdb.FixedIPRequest
	hasIPs   bool
}

// portFields reads the attributes of a create or update body, with
// Neutron's validators and its admin-only attributes refused to others.
func readPortFields(body map[string]json.RawMessage, c httpkit.Caller, create bool) (portFields, error) {
	var f portFields
	action := "update_port"
	if create {
		action = "create_port"
	}
	for _, a := range []string{"mac_address", "binding:host_id", "binding:profile"} {
		if _, ok := body[a]; ok && !c.Admin {
			return f, forbidden(action + ":" + a)
		}
	}
	str := func(attr string, maxLen int, dst **string) error {
		s, ok, err := stringAttr(body, attr, maxLen)
		if err == nil && ok {
			*dst = &s
		}
		return err
	}
	p := &f.patch
	for _, x := range []struct {
		attr string
		max  int
		dst  **string
	}{{"name", 255, &p.Name}, {"description", 255, &p.Description}, {"device_id", 255, &p.DeviceID}, {"device_owner", 255, &p.DeviceOwner},
		{"binding:host_id", 255, &p.HostID}, {"binding:vnic_type", 64, &p.VNICType}, {"mac_address", 0, &p.MACAddress}} {
		if err := str(x.attr, x.max, x.dst); err != nil {
			return f, err
		}
	}
	if p.VNICType != nil && !slices.Contains(vnicTypes, *p.VNICType) {
		return f, badAttr("InvalidInput", "binding:vnic_type", fmt.Sprintf("'%s' is not in %s", *p.VNICType, reprList(vnicTypes)))
	}
	if p.MACAddress != nil {
		hw, err := net.ParseMAC(*p.MACAddress)
		if err != nil || len(hw) != 6 {
			return f, badAttr("InvalidInput", "mac_address", fmt.Sprintf("'%s' is not a valid MAC address", *p.MACAddress))
		}
		s := hw.String()
		p.MACAddress = &s
	}
	for _, x := range []struct {
		attr string
		dst  **bool
	}{{"admin_state_up", &p.AdminStateUp}, {"port_security_enabled", &p.PortSecurity}} {
		b, ok, err := boolAttr(body, x.attr)
		if err != nil {
			return f, err
		}
		if ok {
			*x.dst = &b
		}
	}
	if raw, ok := body["binding:profile"]; ok {
		var m map[string]any
		if string(raw) != "null" {
			if json.Unmarshal(raw, &m) != nil || m == nil {
				return f, badAttr("InvalidInput", "binding:profile", fmt.Sprintf("'%s' is not a dictionary", show(raw)))
			}
		}
		b, _ := json.Marshal(m)
		if m == nil {
			b = []byte("{}")
		}
		s := string(b)
		p.Profile = &s
	}
	if raw, ok := body["security_groups"]; ok {
		groups, err := uuidList(raw, "security_groups")
		if err != nil {
			return f, err
		}
		p.SecurityGroups = &groups
	}
	if raw, ok := body["allowed_address_pairs"]; ok {
		pairs, err := addressPairs(raw)
		if err != nil {
			return f, err
		}
		p.AllowedAddressPairs = &pairs
	}
	if raw, ok := body["fixed_ips"]; ok {
		ips, err := fixedIPs(raw)
		if err != nil {
			return f, err
		}
		f.fixedIPs, f.hasIPs = ips, true
	}
	if raw, ok := body["tags"]; ok {
		var tags []string
		if json.Unmarshal(raw, &tags) != nil {
			return f, badAttr("InvalidInput", "tags", fmt.Sprintf("'%s' is not a list", show(raw)))
		}
		for _, t := range tags {
			if err := validTag(t); err != nil {
				return f, err
			}
		}
		if err := (tagTarget{name: "ports"}).limit(tags); err != nil {
			return f, err
		}
		tags = slices.Compact(slices.Sorted(slices.Values(tags)))
		p.Tags = &tags
	}
	return f, nil
}

// uuidList reads a list of UUIDs (null is the empty list).
func uuidList(raw json.RawMessage, attr string) ([]string, error) {
	out := []string{}
	if string(raw) == "null" {
		return out, nil
	}
	var list []string
	if json.Unmarshal(raw, &list) != nil {
		return nil, badAttr("InvalidInput", attr, fmt.Sprintf("'%s' is not a list", show(raw)))
	}
	for _, s := range list {
		if !uuidLike(s) {
			return nil, badAttr("InvalidInput", attr, fmt.Sprintf("'%s' is not a valid UUID", s))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func uuidLike(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !strings.ContainsRune("0123456789abcdefABCDEF", r):
			return false
		}
	}
	return true
}

// fixedIPs is Neutron's validate_fixed_ips.
func fixedIPs(raw json.RawMessage) ([]netdb.FixedIPRequest, error) {
	var list []json.RawMessage
	if json.Unmarshal(raw, &list) != nil || list == nil {
		return nil, badAttr("InvalidInput", "fixed_ips", fmt.Sprintf("Invalid data format for fixed IP: '%s'", show(raw)))
	}
	out := make([]netdb.FixedIPRequest, 0, len(list))
	var seen []string
	for _, e := range list {
		var m map[string]json.RawMessage
		if json.Unmarshal(e, &m) != nil || m == nil {
			return nil, badAttr("InvalidInput", "fixed_ips", fmt.Sprintf("Invalid data format for fixed IP: '%s'", show(e)))
		}
		var r netdb.FixedIPRequest
		for k, v := range m {
			var s string
			if json.Unmarshal(v, &s) != nil {
				return nil, badAttr("InvalidInput", "fixed_ips", fmt.Sprintf("'%s' is not a valid string", show(v)))
			}
			switch k {
			case "ip_address":
				a, err := netip.ParseAddr(s)
				if err != nil || a.Zone() != "" {
					return nil, badAttr("InvalidInput", "fixed_ips", fmt.Sprintf("'%s' is not a valid IP address", s))
				}
				if slices.Contains(seen, a.String()) {
					return nil, badAttr("InvalidInput", "fixed_ips", fmt.Sprintf("Duplicate IP address '%s'", s))
				}
				seen = append(seen, a.String())
				r.IPAddress = a.String()
			case "subnet_id":
				if !uuidLike(s) {
					return nil, badAttr("InvalidInput", "fixed_ips", fmt.Sprintf("'%s' is not a valid UUID", s))
				}
				r.SubnetID = s
			default:
				return nil, badAttr("InvalidInput", "fixed_ips", fmt.Sprintf("Unrecognized attribute(s) '%s'", k))
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// addressPairs is Neutron's validate_allowed_address_pairs.
func addressPairs(raw json.RawMessage) ([]netdb.AddressPair, error) {
	out := []netdb.AddressPair{}
	if string(raw) == "null" {
		return out, nil
	}
	var list []map[string]json.RawMessage
	if json.Unmarshal(raw, &list) != nil {
		return nil, badAttr("InvalidInput", "allowed_address_pairs", fmt.Sprintf("Allowed address pairs must be a list. Got '%s'", show(raw)))
	}
	if len(list) > maxAddressPairs {
		return nil, fault(http.StatusBadRequest, "AllowedAddressPairExhausted", fmt.Sprintf("The number of allowed address pair exceeds the maximum %d.", maxAddressPairs))
	}
	for _, m := range list {
		var pair netdb.AddressPair
		ipRaw, ok := m["ip_address"]
		if !ok {
			return nil, fault(http.StatusBadRequest, "AllowedAddressPairsMissingIP", "Invalid input for operation: AllowedAddressPair must contain ip_address.")
		}
		for k := range m {
			if k != "ip_address" && k != "mac_address" {
				return nil, badAttr("InvalidInput", "allowed_address_pairs", fmt.Sprintf("Unrecognized attribute(s) '%s'", k))
			}
		}
		var s string
		_ = json.Unmarshal(ipRaw, &s)
		if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
			pair.IPAddress = a.String()
		} else if p, err := netip.ParsePrefix(s); err == nil {
			pair.IPAddress = p.String()
		} else {
			return nil, badAttr("InvalidInput", "allowed_address_pairs", fmt.Sprintf("'%s' is not a valid IP address", show(ipRaw)))
		}
		if macRaw, ok := m["mac_address"]; ok {
			var ms string
			hw, err := net.ParseMAC(func() string { _ = json.Unmarshal(macRaw, &ms); return ms }())
			if err != nil || len(hw) != 6 {
				return nil, badAttr("InvalidInput", "allowed_address_pairs", fmt.Sprintf("'%s' is not a valid MAC address", show(macRaw)))
			}
			pair.MACAddress = hw.String()
		}
		for _, o := range out {
			if o == pair {
				return nil, fault(http.StatusBadRequest, "DuplicateAddressPairInRequest", fmt.Sprintf(
					"Invalid input for operation: Request contains duplicate address pair: mac_address %s ip_address %s.", pair.MACAddress, pair.IPAddress))
			}
		}
		out = append(out, pair)
	}
	return out, nil
}

func (h *portsHandler) createPort(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	body, err := decodeBody(w, r, "port")
	if err == nil {
		err = checkAttrs(body, portRules, true)
	}
	if err == nil {
		err = required(body, "network_id")
	}
	var f portFields
	if err == nil {
		f, err = readPortFields(body, c, true)
	}
	var project, networkID string
	if err == nil {
		project, err = projectAttr(body, c)
	}
	if err == nil {
		networkID, _, err = stringAttr(body, "network_id", 255)
	}
	var nw *netdb.Network
	if err == nil {
		nw, err = netdb.NetworkByID(ctx, h.cfg.DB, networkID)
		if err == nil && !nw.VisibleTo(c.ProjectID, c.Admin) {
			err = fault(http.StatusNotFound, "NetworkNotFound", fmt.Sprintf("Network %s could not be found.", networkID))
		}
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	np := &netdb.NewPort{Port: netdb.Port{NetworkID: nw.ID, ProjectID: project, AdminStateUp: true, PortSecurity: true, MadeBy: netdb.MadeByUser}}
	if f.hasIPs {
		np.FixedIPs = f.fixedIPs
	}
	if err := applyNew(&np.Port, f.patch); err != nil {
		h.fail(w, r, err)
		return
	}
	if f.patch.SecurityGroups == nil && np.PortSecurity {
		// The project's default group, as Neutron gives a new port.
		id, err := netdb.EnsureDefaultSecurityGroup(ctx, h.cfg.DB, project, h.cfg.Now())
		if err != nil {
			h.fail(w, r, err)
			return
		}
		np.SecurityGroups = []string{id}
	}
	p, err := h.create(ctx, np)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("port created", "request_id", httpkit.RequestID(ctx), "port", p.ID, "network", p.NetworkID, "fixed_ips", len(p.FixedIPs))
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"port": view(portItem(p, c.Admin), ports, nil)})
}

// applyNew sets a new port's fields from the body.
func applyNew(p *netdb.Port, pp netdb.PortPatch) error {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.Name, pp.Name)
	set(&p.Description, pp.Description)
	set(&p.DeviceID, pp.DeviceID)
	set(&p.DeviceOwner, pp.DeviceOwner)
	set(&p.MACAddress, pp.MACAddress)
	set(&p.HostID, pp.HostID)
	set(&p.VNICType, pp.VNICType)
	set(&p.Profile, pp.Profile)
	if pp.AdminStateUp != nil {
		p.AdminStateUp = *pp.AdminStateUp
	}
	if pp.PortSecurity != nil {
		p.PortSecurity = *pp.PortSecurity
	}
	if pp.SecurityGroups != nil {
		p.SecurityGroups = *pp.SecurityGroups
	}
	if pp.AllowedAddressPairs != nil {
		p.AllowedAddressPairs = *pp.AllowedAddressPairs
		if !p.PortSecurity && len(p.AllowedAddressPairs) > 0 {
			return fault(http.StatusConflict, "AddressPairAndPortSecurityRequired", "Port Security must be enabled in order to have allowed address pairs on a port.")
		}
	}
	if pp.Tags != nil {
		p.Tags = *pp.Tags
	}
	return nil
}

// create records a port: the addresses asked for are placed (and those of
// blocks a cell holds reserved in it) before the transaction that records
// it; a reservation whose port is then not made is released.
func (h *portsHandler) create(ctx context.Context, np *netdb.NewPort) (*netdb.Port, error) {
	rid := httpkit.RequestID(ctx)
	np.ID = uuid.NewString()
	var err error
	if len(np.FixedIPs) > 0 {
		np.Reserved, err = netdb.ReserveAddresses(ctx, h.cfg.DB, h.cfg.Reserver, h.cfg.Sender, rid, np.NetworkID, np.ID, np.FixedIPs, h.cfg.Now())
		if err != nil {
			return nil, err
		}
	}
	var p *netdb.Port
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) (err error) {
		if err := h.checkQuota(ctx, tx, np.ProjectID, quota.NetPort, 1); err != nil {
			return err
		}
		p, err = netdb.CreatePort(ctx, tx, np, h.cfg.Now())
		return err
	})
	if err != nil {
		if rerr := netdb.ReleaseReserved(ctx, h.cfg.DB, h.cfg.Sender, rid, np.ID, np.Reserved); rerr != nil {
			h.log.Warn("releasing the addresses reserved for a port not made", "request_id", rid, "port", np.ID, "err", rerr)
		}
		return nil, err
	}
	return p, nil
}

func (h *portsHandler) updatePort(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	id := r.PathValue("id")
	body, err := decodeBody(w, r, "port")
	if err == nil {
		err = checkAttrs(body, portRules, false)
	}
	var f portFields
	if err == nil {
		f, err = readPortFields(body, c, false)
	}
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	var cur *netdb.Port
	if err == nil {
		cur, err = h.visiblePort(r, h.cfg.DB, id)
	}
	// New addresses: those of blocks cells hold are reserved there first.
	var reserved map[string]string
	if err == nil && f.hasIPs {
		reserved, err = h.reserveNew(ctx, cur, f.fixedIPs)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var p *netdb.Port
	enforced := f.patch.SecurityGroups != nil || f.patch.PortSecurity != nil || f.patch.AllowedAddressPairs != nil
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) (err error) {
		if enforced {
			// The server's row before the port's, as instance updates
			// take them (port_update marks the server).
			if err := sgsync.LockServer(ctx, tx, cur); err != nil {
				return err
			}
		}
		if f.hasIPs {
			// Locked first, so that the port is not bound meanwhile.
			if p, err = netdb.LockPort(ctx, tx, id, rev); err != nil {
				return err
			}
			if bound, err := netdb.BoundToLiveServer(ctx, tx, p); err != nil {
				return err
			} else if bound {
				return netdb.PortInUse(p)
			}
			if has, err := netdb.HasReservations(ctx, tx, id); err != nil || has {
				if err == nil {
					err = netdb.ReservedAddressesFixed(id)
				}
				return err
			}
			rel, err := netdb.SetFixedIPs(ctx, tx, id, f.fixedIPs, reserved, h.cfg.Now())
			if err != nil {
				return err
			}
			if err := h.sendReleases(ctx, tx, rel); err != nil {
				return err
			}
			rev = nil
		}
		p, err = netdb.UpdatePort(ctx, tx, id, f.patch, rev, h.cfg.Now())
		if err != nil {
			return err
		}
		// What the port's enforcement depends on changed: the cell of
		// the server it is bound to, if any, enforces it now.
		if enforced {
			return sgsync.SendPortUpdate(ctx, tx, h.cfg.Sender, httpkit.RequestID(ctx), p)
		}
		return nil
	})
	if err != nil {
		if rerr := netdb.ReleaseReserved(ctx, h.cfg.DB, h.cfg.Sender, httpkit.RequestID(ctx), id, reserved); rerr != nil {
			h.log.Warn("releasing the addresses reserved for a port update not made", "request_id", httpkit.RequestID(ctx), "port", id, "err", rerr)
		}
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"port": view(portItem(p, c.Admin), ports, nil)})
}

// reserveNew reserves, in the cells that hold their blocks, the addresses
// an update of fixed_ips asks for that the port does not have.
func (h *portsHandler) reserveNew(ctx context.Context, p *netdb.Port, reqs []netdb.FixedIPRequest) (map[string]string, error) {
	if has, err := netdb.HasReservations(ctx, h.cfg.DB, p.ID); err != nil || has {
		if err == nil {
			err = netdb.ReservedAddressesFixed(p.ID)
		}
		return nil, err
	}
	var fresh []netdb.FixedIPRequest
	for _, r := range reqs {
		if r.IPAddress != "" && !slices.ContainsFunc(p.FixedIPs, func(ip netdb.FixedIP) bool { return ip.IPAddress == r.IPAddress }) {
			fresh = append(fresh, r)
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	return netdb.ReserveAddresses(ctx, h.cfg.DB, h.cfg.Reserver, h.cfg.Sender, httpkit.RequestID(ctx), p.NetworkID, p.ID, fresh, h.cfg.Now())
}

// deletePort deletes a port that no live server has (PortInUse otherwise:
// the server lets it go first); the addresses cells reserved for it are
// released there.
func (h *portsHandler) deletePort(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	err := noBody(r)
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	if err == nil {
		_, err = h.visiblePort(r, h.cfg.DB, id)
	}
	if err == nil {
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			rel, err := netdb.DeletePort(ctx, tx, id, rev)
			if err != nil {
				return err
			}
			return h.sendReleases(ctx, tx, rel)
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *base) sendReleases(ctx context.Context, tx *db.Tx, rel netdb.Released) error {
	if len(rel) == 0 {
		return nil
	}
	if b.cfg.Sender == nil {
		return errors.New("addresses reserved in cells and no sender to release them")
	}
	return netdb.SendReleases(ctx, tx, b.cfg.Sender, httpkit.RequestID(ctx), rel)
}
