package compute

import (
	"context"
	"errors"
	"net/http"
	"net/netip"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// The states a server may have an interface attached or detached in
// (Nova's check_instance_state on attach_interface and detach_interface).
var (
	attachState = vmstate.Action{Name: "attach_interface", VMStates: []string{vmstate.Active, vmstate.Paused, vmstate.Stopped}}
	detachState = vmstate.Action{Name: "detach_interface", VMStates: []string{vmstate.Active, vmstate.Paused, vmstate.Stopped}}
)

// attachRequest is the body of POST /servers/{id}/os-interface, checked.
type attachRequest struct {
	netID, portID, fixedIP string
	// tag is the interface's device tag (2.49; "": none).
	tag string
}

// parseAttach checks the body against Nova's schema (create, and from
// 2.49 create_v249 with a tag) and its two rules: not both a network and a
// port, and an address only with a network. The body and
// interfaceAttachment may be left out: the server's project's one network
// is then taken.
func parseAttach(w http.ResponseWriter, r *http.Request) (attachRequest, error) {
	var req attachRequest
	b, err := readBody(w, r)
	if err != nil || len(b) == 0 {
		return req, err
	}
	body, err := readObjectBytes(b)
	if err != nil {
		return req, err
	}
	if err := noOtherKeys(body, "", "interfaceAttachment"); err != nil {
		return req, err
	}
	raw, ok := body["interfaceAttachment"]
	if !ok {
		return req, nil
	}
	att, isObj := raw.(map[string]any)
	if !isObj {
		return req, invalid("interfaceAttachment", raw, "%s is not of type 'object'", pyRepr(raw))
	}
	allowed := []string{"net_id", "port_id", "fixed_ips"}
	if apiVersion(r.Context()).AtLeast(Version{2, 49}) {
		allowed = append(allowed, "tag")
	}
	if err := noOtherKeys(att, "interfaceAttachment", allowed...); err != nil {
		return req, err
	}
	for _, k := range []string{"net_id", "port_id"} {
		v, ok := att[k]
		if !ok {
			continue
		}
		s, isStr := v.(string)
		if !isStr {
			return req, invalid(k, v, "%s is not of type 'string'", pyRepr(v))
		}
		if !uuidRE.MatchString(s) {
			return req, invalid(k, v, "%s is not a 'uuid'", pyRepr(v))
		}
		if k == "net_id" {
			req.netID = s
		} else {
			req.portID = s
		}
	}
	if v, ok := att["fixed_ips"]; ok {
		ips, isArr := v.([]any)
		switch {
		case !isArr:
			return req, invalid("fixed_ips", v, "%s is not of type 'array'", pyRepr(v))
		case len(ips) == 0:
			return req, invalid("fixed_ips", v, "[] is too short")
		case len(ips) > 1:
			return req, invalid("fixed_ips", v, "%s is too long", pyRepr(v))
		}
		ip, isObj := ips[0].(map[string]any)
		if !isObj {
			return req, invalid("fixed_ips", ips[0], "%s is not of type 'object'", pyRepr(ips[0]))
		}
		if err := noOtherKeys(ip, "fixed_ips", "ip_address"); err != nil {
			return req, err
		}
		a, ok := ip["ip_address"]
		if !ok {
			return req, invalid("fixed_ips", ip, "'ip_address' is a required property")
		}
		s, isStr := a.(string)
		if !isStr || !isIPAddress(s) {
			return req, invalid("ip_address", a, "%s is not valid under any of the given schemas", pyRepr(a))
		}
		req.fixedIP = s
	}
	if v, ok := att["tag"]; ok {
		if msg := tagError(v); msg != "" {
			return req, invalid("tag", v, "%s", msg)
		}
		req.tag, _ = v.(string)
	}
	if req.netID != "" && req.portID != "" {
		return req, bad("Must not input both network_id and port_id")
	}
	if req.fixedIP != "" && req.netID == "" {
		return req, bad("Must input network_id when request IP address")
	}
	return req, nil
}

// attachInterface is POST /servers/{id}/os-interface. The port is bound
// (port_id) or made (net_id, with the address asked or one of the API
// cell's own blocks) at the API cell, so its address is known now; the
// server's cell records it when attach_interface arrives, sent in the same
// transaction. It answers 200 with the attachment, as Nova does once its
// compute host has plugged the interface.
func (h *interfacesHandler) attachInterface(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	req, err := parseAttach(w, r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkAttachable(ctx, in); err != nil {
		h.fail(w, r, err)
		return
	}
	a, err := h.planAttach(ctx, in, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if a.fixedIP != "" {
		a.portID = uuid.NewString()
		a.reserved, err = netdb.ReserveAddresses(ctx, h.cfg.DB, h.cfg.Reserver, h.cfg.Sender, httpkit.RequestID(ctx), a.netID, a.portID,
			[]netdb.FixedIPRequest{{IPAddress: a.fixedIP}}, h.cfg.Now())
		if err != nil {
			h.fail(w, r, attachPortError(err, a))
			return
		}
	}
	var p *netdb.Port
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if err := checkAttachable(ctx, cur); err != nil {
			return err
		}
		now := h.cfg.Now()
		if a.bind {
			if err := netdb.BindPort(ctx, tx, a.portID, cur.UUID, cur.AvailabilityZone, now); err != nil {
				return attachPortError(err, a)
			}
			p, err = netdb.GetPort(ctx, tx, a.portID)
		} else {
			// The port counts against the project's port quota (Nova's
			// PortLimitExceeded, 403).
			if err := netdb.CheckQuota(ctx, tx, h.cfg.NetworkQuota, cur.ProjectID, quota.NetPort, 1); err != nil {
				if errors.Is(err, netdb.ErrOverQuota) {
					return fault(http.StatusForbidden, "Maximum number of ports exceeded")
				}
				return err
			}
			np := &netdb.NewPort{Port: netdb.Port{ID: a.portID, NetworkID: a.netID, ProjectID: cur.ProjectID, AdminStateUp: true, PortSecurity: true,
				DeviceID: cur.UUID, DeviceOwner: netdb.DeviceOwner(cur.AvailabilityZone), MadeBy: netdb.MadeByBoot, ServerGroups: true},
				Reserved: a.reserved}
			if a.fixedIP != "" {
				np.FixedIPs = []netdb.FixedIPRequest{{IPAddress: a.fixedIP}}
			}
			p, err = netdb.CreatePort(ctx, tx, np, now)
		}
		if err == nil && req.tag != "" {
			err = netdb.SetDeviceTag(ctx, tx, p.ID, req.tag)
		}
		if err == nil && p.ServerGroups {
			// Read back with the server's groups, which are its own.
			p, err = netdb.GetPort(ctx, tx, p.ID)
		}
		if err != nil {
			return attachPortError(err, a)
		}
		nic := wire.NIC{NetworkID: p.NetworkID, NetworkName: p.NetworkName, PortID: p.ID, MAC: p.MACAddress}
		// Its groups (the server's, for a port made here), port security,
		// address pairs and revision: what the cell enforces on it.
		sgsync.NICFields(&nic, p)
		for _, ip := range p.FixedIPs {
			nic.FixedIPs = append(nic.FixedIPs, wire.FixedIP{SubnetID: ip.SubnetID, Addr: ip.IPAddress})
		}
		c := httpkit.CallerFrom(ctx)
		if err := h.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodAttachInterface, httpkit.RequestID(ctx),
			&wire.AttachInterface{UUID: cur.UUID, NIC: nic, UserID: c.UserID, ProjectID: c.ProjectID}); err != nil {
			return err
		}
		// Read back as a reader sees it (its status follows the server's).
		p, err = netdb.GetPort(ctx, tx, p.ID)
		return err
	})
	if err != nil {
		if a.fixedIP != "" {
			if rerr := netdb.ReleaseReserved(ctx, h.cfg.DB, h.cfg.Sender, httpkit.RequestID(ctx), a.portID, a.reserved); rerr != nil {
				h.log.Warn("releasing the address reserved for an attach not recorded", "request_id", httpkit.RequestID(ctx), "port", a.portID, "err", rerr)
			}
		}
		h.fail(w, r, err)
		return
	}
	h.log.Info("interface attached", "request_id", httpkit.RequestID(ctx), "instance", in.UUID, "port", p.ID, "cell", in.Cell)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachment": interfaceView(r, p, req.tag)})
}

// checkAttachable is Nova's check_instance_lock and check_instance_state
// of attach_interface, on the API cell's copy, and a cell to send it to.
func checkAttachable(ctx context.Context, in *apidb.Instance) error {
	return checkInterfaceState(ctx, in, attachState)
}

func checkInterfaceState(ctx context.Context, in *apidb.Instance, st vmstate.Action) error {
	if err := checkLocked(ctx, in); err != nil {
		return err
	}
	if err := st.Check(in.UUID, in.VMState, in.TaskState); err != nil {
		return fault(http.StatusConflict, err.Error())
	}
	if in.Cell == "" {
		return conflict("Instance %s is not ready yet", in.UUID)
	}
	return nil
}

// plannedAttach is the interface an attach makes.
type plannedAttach struct {
	// bind: portID is the caller's port, bound to the server.
	bind bool
	// Otherwise a port is made on netID, with fixedIP (reserved first in
	// the cell that holds its block, if one does) or one address of the
	// API cell's blocks.
	portID, netID, fixedIP string
	reserved               map[string]string
	// server is the server's id, which Nova's FixedIpAlreadyInUse names.
	server string
}

// planAttach checks the port or network asked for as Nova's
// allocate_for_instance does: a port must be the caller's (or the caller
// an admin), unbound and have an address; a network must be visible and
// have a subnet, an address asked not be taken on it; with neither, the
// server's project must have exactly one network (its own and the shared
// ones).
func (h *interfacesHandler) planAttach(ctx context.Context, in *apidb.Instance, req attachRequest) (*plannedAttach, error) {
	c := httpkit.CallerFrom(ctx)
	if req.portID != "" {
		p, err := netdb.GetPort(ctx, h.cfg.DB, req.portID)
		if errors.Is(err, netdb.ErrNotFound) || (err == nil && !c.Admin && p.ProjectID != c.ProjectID) {
			return nil, notFound("Port id %s could not be found.", req.portID)
		}
		if err != nil {
			return nil, err
		}
		if p.DeviceID != "" {
			return nil, conflict("Port %s is still in use.", req.portID)
		}
		if len(p.FixedIPs) == 0 {
			return nil, bad("Port %s requires a FixedIP in order to be used.", req.portID)
		}
		return &plannedAttach{bind: true, portID: p.ID, netID: p.NetworkID, server: in.UUID}, nil
	}
	var n *netdb.Network
	if req.netID != "" {
		var err error
		n, err = netdb.GetNetwork(ctx, h.cfg.DB, req.netID)
		if errors.Is(err, netdb.ErrNotFound) || (err == nil && (n.ID != req.netID || !n.VisibleTo(c.ProjectID, c.Admin))) {
			return nil, notFound("Network %s could not be found.", req.netID)
		}
		if err != nil {
			return nil, err
		}
	} else {
		nets, err := netdb.ListNetworks(ctx, h.cfg.DB)
		if err != nil {
			return nil, err
		}
		var avail []*netdb.Network
		for _, x := range nets {
			if x.Shared || x.ProjectID == in.ProjectID {
				avail = append(avail, x)
			}
		}
		switch len(avail) {
		case 0:
			return nil, bad("No specific network was requested and none are available for project '%s'.", in.ProjectID)
		case 1:
			n = avail[0]
		default:
			return nil, bad("More than one possible network found. Specify network ID(s) to select which one(s) to connect to.")
		}
	}
	if len(n.Subnets) == 0 {
		return nil, bad("Network %s requires a subnet in order to boot instances on.", n.ID)
	}
	a := &plannedAttach{netID: n.ID, server: in.UUID}
	if req.fixedIP != "" {
		ip, _ := netip.ParseAddr(req.fixedIP)
		a.fixedIP = ip.String()
		// Nova learns it from the port create Neutron refuses, and names
		// the server it attaches to.
		port, _, err := netdb.AddressUser(ctx, h.cfg.DB, n.ID, a.fixedIP)
		if err != nil {
			return nil, err
		}
		if port != "" {
			return nil, conflict("Fixed IP address %s is already in use on instance %s.", a.fixedIP, in.UUID)
		}
	}
	return a, nil
}

// attachPortError is a port refused on an attach as Nova answers it.
func attachPortError(err error, a *plannedAttach) error {
	var ne *netdb.Error
	if !errors.As(err, &ne) {
		return err
	}
	switch ne.Code {
	case "IpAddressAlreadyAllocated", "IpAddressInUse":
		return conflict("Fixed IP address %s is already in use on instance %s.", a.fixedIP, a.server)
	case "InvalidIpForNetwork", "InvalidIpForSubnet":
		return bad("Invalid input received: Fixed IP %s is not a valid ip address for network %s.", a.fixedIP, a.netID)
	case "IpAddressGenerationFailure":
		return bad("No fixed IP addresses available for network: %s", a.netID)
	case "PortInUse":
		return conflict("Port %s is still in use.", a.portID)
	case "PortNotFound":
		return notFound("Port id %s could not be found.", a.portID)
	}
	if errors.Is(err, netdb.ErrUnavailable) {
		return httpkit.Errorf(http.StatusServiceUnavailable, "%s", ne.Message)
	}
	return err
}

// detachInterface is DELETE /servers/{id}/os-interface/{port}: in one
// transaction, the port a boot, an attach or a cell made for the server
// is deleted (its addresses released in the cells that set them aside),
// a port passed in is unbound and kept, as Nova does, and
// detach_interface goes to the server's cell, which frees the addresses
// and reports the server's new ones. 202.
func (h *interfacesHandler) detachInterface(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := r.PathValue("port")
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		cur, err := apidb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if err := checkInterfaceState(ctx, cur, detachState); err != nil {
			return err
		}
		p, err := netdb.LockPort(ctx, tx, id, nil)
		if isPortNotFound(err) || (err == nil && (p.DeviceID != cur.UUID || p.ProjectID != cur.ProjectID)) {
			return notFound("Port %s is not attached", id)
		}
		if err != nil {
			return err
		}
		if err := netdb.DetachServerPort(ctx, tx, h.cfg.Sender, httpkit.RequestID(ctx), p, h.cfg.Now()); err != nil {
			return err
		}
		c := httpkit.CallerFrom(ctx)
		return h.cfg.Sender.Send(ctx, tx, cur.Cell, wire.MethodDetachInterface, httpkit.RequestID(ctx),
			&wire.DetachInterface{UUID: cur.UUID, PortID: id, UserID: c.UserID, ProjectID: c.ProjectID})
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.log.Info("interface detached", "request_id", httpkit.RequestID(ctx), "instance", in.UUID, "port", id, "cell", in.Cell)
	w.WriteHeader(http.StatusAccepted)
}
