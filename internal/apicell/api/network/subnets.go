package network

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/leases"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
)

// subnetsHandler is /v2.0/subnets.
type subnetsHandler struct{ *base }

func (h *subnetsHandler) register(rt *router) {
	rt.handle("GET /v2.0/subnets", h.listSubnets)
	rt.handle("POST /v2.0/subnets", h.createSubnet)
	rt.handle("GET /v2.0/subnets/{id}", h.showSubnet)
	rt.handle("PUT /v2.0/subnets/{id}", h.updateSubnet)
	rt.handle("DELETE /v2.0/subnets/{id}", h.deleteSubnet)
}

var subnets = &collection{
	name: "subnets",
	filters: map[string]kind{
		"id": kString, "name": kString, "ip_version": kInt, "network_id": kString, "cidr": kString, "gateway_ip": kString,
		"tenant_id": kString, "project_id": kString, "enable_dhcp": kBool, "ipv6_ra_mode": kString,
		"ipv6_address_mode": kString, "subnetpool_id": kString, "shared": kBool, "description": kString,
		"revision_number": kInt,
	},
	sorts: map[string]bool{"id": true, "name": true, "ip_version": true, "network_id": true, "cidr": true,
		"gateway_ip": true, "tenant_id": true, "project_id": true, "enable_dhcp": true, "ipv6_ra_mode": true,
		"ipv6_address_mode": true, "subnetpool_id": true},
	hidden:   map[string]bool{"shared": true},
	notFound: subnetNotFound,
	tagged:   true,
}

// subnetRules are a subnet's attributes (Neutron's subnet and the standard
// attribute extensions).
var subnetRules = map[string]attrRule{
	"id": {}, "shared": {}, "created_at": {}, "updated_at": {}, "revision_number": {}, "tags": {},
	"network_id": {post: true}, "ip_version": {post: true}, "cidr": {post: true}, "tenant_id": {post: true},
	"project_id": {post: true}, "subnetpool_id": {post: true}, "prefixlen": {post: true},
	"use_default_subnetpool": {post: true}, "ipv6_ra_mode": {post: true}, "ipv6_address_mode": {post: true},
	"name": {post: true, put: true}, "description": {post: true, put: true}, "gateway_ip": {post: true, put: true},
	"allocation_pools": {post: true, put: true}, "dns_nameservers": {post: true, put: true},
	"host_routes": {post: true, put: true}, "enable_dhcp": {post: true, put: true},
}

func subnetNotFound(id string) error {
	return fault(http.StatusNotFound, "SubnetNotFound", fmt.Sprintf("Subnet %s could not be found.", id))
}

// subnetVisible: admins see every subnet; others their own, those of their
// networks and those of shared networks.
func subnetVisible(s *netdb.Subnet, n *netdb.Network, c httpkit.Caller) bool {
	return c.Admin || s.ProjectID == c.ProjectID || (n != nil && (n.Shared || n.ProjectID == c.ProjectID))
}

// subnetItem is a subnet of network n with its tags (nil: none).
func subnetItem(s *netdb.Subnet, n *netdb.Network, tags []string) item {
	if tags == nil {
		tags = []string{}
	}
	var gw any
	if s.GatewayIP != "" {
		gw = s.GatewayIP
	}
	pools, dns, routes := s.AllocationPools, s.DNSNameservers, s.HostRoutes
	if pools == nil {
		pools = []netdb.Pool{}
	}
	if dns == nil {
		dns = []string{}
	}
	if routes == nil {
		routes = []netdb.HostRoute{}
	}
	return item{
		"id": s.ID, "name": s.Name, "network_id": s.NetworkID, "tenant_id": s.ProjectID, "project_id": s.ProjectID,
		"ip_version": s.IPVersion, "cidr": s.CIDR, "gateway_ip": gw, "allocation_pools": pools, "dns_nameservers": dns,
		"host_routes": routes, "enable_dhcp": s.EnableDHCP, "ipv6_ra_mode": nil, "ipv6_address_mode": nil,
		"subnetpool_id": nil, "description": s.Description, "created_at": isoTime(s.CreatedAt),
		"updated_at": isoTime(s.UpdatedAt), "revision_number": s.RevisionNumber, "tags": tags,
		"shared": n != nil && n.Shared,
	}
}

func (h *subnetsHandler) listSubnets(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), subnets)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	c := httpkit.CallerFrom(r.Context())
	nets, err := netdb.ListNetworks(r.Context(), h.cfg.DB)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	subs, err := netdb.ListSubnets(r.Context(), h.cfg.DB)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	tags, err := netdb.AllTags(r.Context(), h.cfg.DB, netdb.TagSubnets)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	byID := make(map[string]*netdb.Network, len(nets))
	for _, n := range nets {
		byID[n.ID] = n
	}
	var items []item
	for _, s := range subs {
		if n := byID[s.NetworkID]; subnetVisible(s, n, c) {
			items = append(items, subnetItem(s, n, tags[s.ID]))
		}
	}
	p, err := q.apply(r, subnets, items)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeList(w, subnets, q, p)
}

// visibleSubnet reads a subnet and its network, as SubnetNotFound when the
// caller may not see it.
func (h *subnetsHandler) visibleSubnet(r *http.Request, id string) (*netdb.Subnet, *netdb.Network, error) {
	s, err := netdb.GetSubnet(r.Context(), h.cfg.DB, id)
	if err != nil {
		return nil, nil, err
	}
	n, err := netdb.NetworkByID(r.Context(), h.cfg.DB, s.NetworkID)
	if err != nil {
		n = nil
	}
	if !subnetVisible(s, n, httpkit.CallerFrom(r.Context())) {
		return nil, nil, subnetNotFound(id)
	}
	return s, n, nil
}

func (h *subnetsHandler) showSubnet(w http.ResponseWriter, r *http.Request) {
	s, n, err := h.visibleSubnet(r, r.PathValue("id"))
	var tags []string
	if err == nil {
		tags, err = netdb.Tags(r.Context(), h.cfg.DB, netdb.TagSubnets, s.ID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"subnet": view(subnetItem(s, n, tags), subnets, showFields(r))})
}

// subnetFields reads the attributes both a create and an update may set.
func subnetFields(body map[string]json.RawMessage) (netdb.SubnetPatch, error) {
	var p netdb.SubnetPatch
	if s, ok, err := stringAttr(body, "name", 255); err != nil {
		return p, err
	} else if ok {
		p.Name = &s
	}
	if s, ok, err := stringAttr(body, "description", 255); err != nil {
		return p, err
	} else if ok {
		p.Description = &s
	}
	if raw, ok := body["gateway_ip"]; ok {
		gw := ""
		if !isNull(body, "gateway_ip") {
			if err := json.Unmarshal(raw, &gw); err != nil || gw == "" {
				return p, badAttr("HTTPBadRequest", "gateway_ip", fmt.Sprintf("'%s' is not a valid IP address", show(raw)))
			}
		}
		p.GatewayIP = &gw
	}
	if raw, ok := body["allocation_pools"]; ok && !isNull(body, "allocation_pools") {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return p, badAttr("HTTPBadRequest", "allocation_pools", fmt.Sprintf("Invalid data format for IP pool: '%s'", show(raw)))
		}
		pools := []netdb.Pool{}
		for _, it := range items {
			var m map[string]json.RawMessage
			var pl netdb.Pool
			err := json.Unmarshal(it, &m)
			if err == nil && len(m) == 2 {
				err = json.Unmarshal(it, &pl)
			}
			if err != nil || len(m) != 2 || pl.Start == "" || pl.End == "" {
				return p, badAttr("HTTPBadRequest", "allocation_pools", fmt.Sprintf("Invalid data format for IP pool: '%s'", show(it)))
			}
			pools = append(pools, pl)
		}
		p.AllocationPools = &pools
	}
	if raw, ok := body["dns_nameservers"]; ok {
		dns := []string{}
		if !isNull(body, "dns_nameservers") {
			if err := json.Unmarshal(raw, &dns); err != nil {
				return p, badAttr("HTTPBadRequest", "dns_nameservers", fmt.Sprintf("Invalid data format for nameserver: '%s'", show(raw)))
			}
		}
		p.DNSNameservers = &dns
	}
	if raw, ok := body["host_routes"]; ok {
		routes := []netdb.HostRoute{}
		if !isNull(body, "host_routes") {
			var items []json.RawMessage
			if err := json.Unmarshal(raw, &items); err != nil {
				return p, badAttr("HTTPBadRequest", "host_routes", fmt.Sprintf("Invalid data format for hostroute: '%s'", show(raw)))
			}
			for _, it := range items {
				var m map[string]json.RawMessage
				var hr netdb.HostRoute
				err := json.Unmarshal(it, &m)
				if err == nil && len(m) == 2 {
					err = json.Unmarshal(it, &hr)
				}
				if err != nil || len(m) != 2 || hr.Destination == "" || hr.NextHop == "" {
					return p, badAttr("HTTPBadRequest", "host_routes", fmt.Sprintf("Invalid data format for hostroute: '%s'", show(it)))
				}
				routes = append(routes, hr)
			}
		}
		p.HostRoutes = &routes
	}
	if b, ok, err := boolAttr(body, "enable_dhcp"); err != nil {
		return p, err
	} else if ok {
		p.EnableDHCP = &b
	}
	return p, nil
}

// subnetCreate reads what only a create sets.
func subnetCreate(body map[string]json.RawMessage, c httpkit.Caller) (netdb.SubnetSpec, error) {
	var spec netdb.SubnetSpec
	for _, attr := range []string{"network_id", "ip_version"} {
		if err := required(body, attr); err != nil {
			return spec, err
		}
	}
	id, _, err := stringAttr(body, "network_id", 0)
	if err != nil {
		return spec, err
	}
	if _, perr := uuid.Parse(id); perr != nil || len(id) != 36 {
		return spec, badAttr("HTTPBadRequest", "network_id", fmt.Sprintf("'%s' is not a valid UUID", id))
	}
	spec.NetworkID = id
	if spec.IPVersion, _, err = intAttr(body, "ip_version"); err != nil {
		return spec, err
	}
	if spec.IPVersion != 4 {
		return spec, badAttr("HTTPBadRequest", "ip_version", fmt.Sprintf("%d is not in [4]", spec.IPVersion))
	}
	for _, attr := range []string{"ipv6_ra_mode", "ipv6_address_mode"} {
		if raw, ok := body[attr]; ok && !isNull(body, attr) {
			return spec, fault(http.StatusBadRequest, "InvalidInput", fmt.Sprintf(
				"Invalid input for operation: %s set to '%s' with ip_version set to '4' is not valid. Modes can only be set on IPv6 subnets.", attr, show(raw)))
		}
	}
	if b, _, err := boolAttr(body, "use_default_subnetpool"); err != nil {
		return spec, err
	} else if b {
		return spec, fault(http.StatusBadRequest, "BadRequest", "Bad subnets request: No default subnetpool found for IPv4.")
	}
	if raw, ok := body["subnetpool_id"]; ok && !isNull(body, "subnetpool_id") {
		return spec, fault(http.StatusNotFound, "SubnetPoolNotFound", fmt.Sprintf("Subnet pool %s could not be found.", show(raw)))
	}
	if _, _, err := intAttr(body, "prefixlen"); err != nil && !isNull(body, "prefixlen") {
		return spec, err
	}
	cidr, ok, err := stringAttr(body, "cidr", 0)
	if isNull(body, "cidr") || !ok {
		return spec, fault(http.StatusBadRequest, "BadRequest", "Bad subnets request: a subnetpool must be specified in the absence of a cidr.")
	}
	if err != nil {
		return spec, badAttr("HTTPBadRequest", "cidr", fmt.Sprintf("'%s' is not a valid IP subnet", show(body["cidr"])))
	}
	spec.CIDR = cidr
	if spec.ProjectID, err = projectAttr(body, c); err != nil {
		return spec, err
	}
	p, err := subnetFields(body)
	if err != nil {
		return spec, err
	}
	spec.EnableDHCP = true
	if p.Name != nil {
		spec.Name = *p.Name
	}
	if p.Description != nil {
		spec.Description = *p.Description
	}
	spec.GatewayIP = p.GatewayIP
	if p.AllocationPools != nil {
		spec.AllocationPools = *p.AllocationPools
	}
	if p.DNSNameservers != nil {
		spec.DNSNameservers = *p.DNSNameservers
	}
	if p.HostRoutes != nil {
		spec.HostRoutes = *p.HostRoutes
	}
	if p.EnableDHCP != nil {
		spec.EnableDHCP = *p.EnableDHCP
	}
	return spec, nil
}

func (h *subnetsHandler) createSubnet(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	body, err := decodeBody(w, r, "subnet")
	if err == nil {
		err = checkAttrs(body, subnetRules, true)
	}
	var spec netdb.SubnetSpec
	if err == nil {
		spec, err = subnetCreate(body, c)
	}
	// A member creates subnets on its project's networks (Neutron's
	// ADMIN_OR_NET_OWNER_MEMBER); another's shared network is a 403, one
	// it cannot see a 404.
	if err == nil && !c.Admin {
		var n *netdb.Network
		if n, err = netdb.NetworkByID(r.Context(), h.cfg.DB, spec.NetworkID); err == nil && !n.VisibleTo(c.ProjectID, false) {
			err = networkNotFound(spec.NetworkID)
		} else if err == nil && n.ProjectID != c.ProjectID {
			err = forbidden("create_subnet")
		}
	}
	var s *netdb.Subnet
	var n *netdb.Network
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) (err error) {
			if err := h.checkQuota(r.Context(), tx, spec.ProjectID, quota.NetSubnet, 1); err != nil {
				return err
			}
			if s, err = netdb.CreateSubnet(r.Context(), tx, spec, h.cfg.Now()); err != nil {
				return err
			}
			n, err = netdb.NetworkByID(r.Context(), tx, s.NetworkID)
			return err
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"subnet": view(subnetItem(s, n, nil), subnets, nil)})
}

func (h *subnetsHandler) updateSubnet(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	body, err := decodeBody(w, r, "subnet")
	if err == nil {
		err = checkAttrs(body, subnetRules, false)
	}
	var p netdb.SubnetPatch
	if err == nil {
		p, err = subnetFields(body)
	}
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	var n *netdb.Network
	var cur *netdb.Subnet
	if err == nil {
		cur, n, err = h.visibleSubnet(r, id)
	}
	if err == nil && !c.Admin && !subnetOwner(cur, n, c) {
		err = forbidden("update_subnet")
	}
	var s *netdb.Subnet
	var tags []string
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) (err error) {
			if err := netdb.RequireRevision(r.Context(), tx, "subnets", id, rev); err != nil {
				return err
			}
			if s, err = netdb.UpdateSubnet(r.Context(), tx, id, p, h.cfg.Now()); err != nil {
				return err
			}
			tags, err = netdb.Tags(r.Context(), tx, netdb.TagSubnets, id)
			return err
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"subnet": view(subnetItem(s, n, tags), subnets, nil)})
}

func (h *subnetsHandler) deleteSubnet(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	err := noBody(r)
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	var cur *netdb.Subnet
	var n *netdb.Network
	if err == nil {
		cur, n, err = h.visibleSubnet(r, id)
	}
	if err == nil && !c.Admin && !subnetOwner(cur, n, c) {
		err = forbidden("delete_subnet")
	}
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
			if err := netdb.RequireRevision(r.Context(), tx, "subnets", id, rev); err != nil {
				return err
			}
			if err := leases.Revoke(r.Context(), tx, h.cfg.Sender, id, httpkit.RequestID(r.Context())); err != nil {
				return err
			}
			return netdb.DeleteSubnet(r.Context(), tx, id)
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// subnetOwner reports whether a member may update or delete a subnet:
// its project's, or one on its project's network (Neutron's PROJECT_MEMBER
// or ADMIN_OR_NET_OWNER_MEMBER).
func subnetOwner(s *netdb.Subnet, n *netdb.Network, c httpkit.Caller) bool {
	return s.ProjectID == c.ProjectID || (n != nil && n.ProjectID == c.ProjectID)
}
