package network

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/leases"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
)

// MTU bounds: the IPv4 minimum, and the largest jumbo frame we accept.
const (
	minMTU = 68
	maxMTU = 9000
)

// networksHandler is /v2.0/networks.
type networksHandler struct{ *base }

func (h *networksHandler) register(rt *router) {
	rt.handle("GET /v2.0/networks", h.listNetworks)
	rt.handle("POST /v2.0/networks", h.createNetwork)
	rt.handle("GET /v2.0/networks/{id}", h.showNetwork)
	rt.handle("PUT /v2.0/networks/{id}", h.updateNetwork)
	rt.handle("DELETE /v2.0/networks/{id}", h.deleteNetwork)
}

var networks = &collection{
	name: "networks",
	filters: map[string]kind{
		"id": kString, "name": kString, "admin_state_up": kBool, "status": kString, "tenant_id": kString,
		"project_id": kString, "shared": kBool, "router:external": kBool, "mtu": kInt, "description": kString,
		"revision_number": kInt,
	},
	sorts: map[string]bool{"id": true, "name": true, "admin_state_up": true, "status": true, "tenant_id": true,
		"project_id": true, "mtu": true},
	notFound: networkNotFound,
	tagged:   true,
}

// networkRules are a network's attributes (Neutron's network plus the
// external-net, net-mtu, standard attribute extensions).
var networkRules = map[string]attrRule{
	"id": {}, "status": {}, "subnets": {}, "created_at": {}, "updated_at": {}, "revision_number": {}, "tags": {},
	"name": {post: true, put: true}, "description": {post: true, put: true}, "admin_state_up": {post: true, put: true},
	"shared": {post: true, put: true}, "mtu": {post: true, put: true}, "router:external": {post: true, put: true},
	"tenant_id": {post: true}, "project_id": {post: true},
}

func networkNotFound(id string) error {
	return fault(http.StatusNotFound, "NetworkNotFound", fmt.Sprintf("Network %s could not be found.", id))
}

// isoTime is Neutron's timestamp format.
func isoTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// networkItem is a network with its tags (nil: none).
func networkItem(n *netdb.Network, tags []string) item {
	subnets := n.Subnets
	if subnets == nil {
		subnets = []string{}
	}
	if tags == nil {
		tags = []string{}
	}
	return item{
		"id": n.ID, "name": n.Name, "tenant_id": n.ProjectID, "project_id": n.ProjectID, "admin_state_up": n.AdminStateUp,
		"mtu": n.MTU, "status": "ACTIVE", "subnets": subnets, "shared": n.Shared, "router:external": false,
		"description": n.Description, "created_at": isoTime(n.CreatedAt), "updated_at": isoTime(n.UpdatedAt),
		"revision_number": n.RevisionNumber, "tags": tags,
	}
}

func (h *networksHandler) listNetworks(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.Query(), networks)
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
	tags, err := netdb.AllTags(r.Context(), h.cfg.DB, netdb.TagNetworks)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var items []item
	for _, n := range nets {
		if n.VisibleTo(c.ProjectID, c.Admin) {
			items = append(items, networkItem(n, tags[n.ID]))
		}
	}
	p, err := q.apply(r, networks, items)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeList(w, networks, q, p)
}

// visibleNetwork reads a network by id, as NetworkNotFound when the caller
// may not see it.
func (h *networksHandler) visibleNetwork(r *http.Request, id string) (*netdb.Network, error) {
	c := httpkit.CallerFrom(r.Context())
	n, err := netdb.NetworkByID(r.Context(), h.cfg.DB, id)
	if err != nil {
		return nil, err
	}
	if !n.VisibleTo(c.ProjectID, c.Admin) {
		return nil, networkNotFound(id)
	}
	return n, nil
}

func (h *networksHandler) showNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := h.visibleNetwork(r, r.PathValue("id"))
	var tags []string
	if err == nil {
		tags, err = netdb.Tags(r.Context(), h.cfg.DB, netdb.TagNetworks, n.ID)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"network": view(networkItem(n, tags), networks, showFields(r))})
}

// networkFields reads the attributes a create or update may set.
func networkFields(body map[string]json.RawMessage) (netdb.NetworkPatch, error) {
	var p netdb.NetworkPatch
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
	if b, ok, err := boolAttr(body, "admin_state_up"); err != nil {
		return p, err
	} else if ok {
		p.AdminStateUp = &b
	}
	if b, ok, err := boolAttr(body, "shared"); err != nil {
		return p, err
	} else if ok {
		p.Shared = &b
	}
	if b, ok, err := boolAttr(body, "router:external"); err != nil {
		return p, err
	} else if ok && b {
		return p, badAttr("InvalidInput", "router:external", "this cloud has no external networks (no routers, no floating IPs)")
	}
	if m, ok, err := intAttr(body, "mtu"); err != nil {
		return p, err
	} else if ok {
		if m < minMTU {
			return p, badAttr("HTTPBadRequest", "mtu", fmt.Sprintf("%d is less than the IPv4 minimum of %d", m, minMTU))
		}
		if m > maxMTU {
			return p, fault(http.StatusBadRequest, "InvalidInput", fmt.Sprintf("Invalid input for operation: Requested MTU is too big, maximum is %d.", maxMTU))
		}
		p.MTU = &m
	}
	return p, nil
}

func (h *networksHandler) createNetwork(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	body, err := decodeBody(w, r, "network")
	if err == nil {
		err = checkAttrs(body, networkRules, true)
	}
	// Members create networks in their project (Neutron's create_network);
	// shared and router:external set true are an admin's.
	if err == nil && !c.Admin {
		err = adminAttrs(body, "create_network")
	}
	var p netdb.NetworkPatch
	if err == nil {
		p, err = networkFields(body)
	}
	var project string
	if err == nil {
		project, err = projectAttr(body, c)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	n := &netdb.Network{ProjectID: project, AdminStateUp: true, MTU: netdb.DefaultMTU}
	if p.Name != nil {
		n.Name = *p.Name
	}
	if p.Description != nil {
		n.Description = *p.Description
	}
	if p.AdminStateUp != nil {
		n.AdminStateUp = *p.AdminStateUp
	}
	if p.Shared != nil {
		n.Shared = *p.Shared
	}
	if p.MTU != nil {
		n.MTU = *p.MTU
	}
	err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
		nn := *n
		if err := h.checkQuota(r.Context(), tx, nn.ProjectID, quota.NetNetwork, 1); err != nil {
			return err
		}
		if err := netdb.CreateNetwork(r.Context(), tx, &nn, h.cfg.Now()); err != nil {
			return err
		}
		n = &nn
		return nil
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"network": view(networkItem(n, nil), networks, nil)})
}

func (h *networksHandler) updateNetwork(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	body, err := decodeBody(w, r, "network")
	if err == nil {
		err = checkAttrs(body, networkRules, false)
	}
	var p netdb.NetworkPatch
	if err == nil {
		p, err = networkFields(body)
	}
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	var cur *netdb.Network
	if err == nil {
		cur, err = h.visibleNetwork(r, id)
	}
	// A member updates its project's networks (Neutron's update_network),
	// not shared and router:external.
	if err == nil && !c.Admin && cur.ProjectID != c.ProjectID {
		err = forbidden("update_network")
	}
	if err == nil && !c.Admin {
		err = adminAttrs(body, "update_network")
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var n *netdb.Network
	var tags []string
	err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) (err error) {
		if err := netdb.RequireRevision(r.Context(), tx, "networks", id, rev); err != nil {
			return err
		}
		if n, err = netdb.UpdateNetwork(r.Context(), tx, id, p, h.cfg.Now()); err != nil {
			return err
		}
		tags, err = netdb.Tags(r.Context(), tx, netdb.TagNetworks, id)
		return err
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"network": view(networkItem(n, tags), networks, nil)})
}

func (h *networksHandler) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	id := r.PathValue("id")
	err := noBody(r)
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	var cur *netdb.Network
	if err == nil {
		cur, err = h.visibleNetwork(r, id)
	}
	if err == nil && !c.Admin && cur.ProjectID != c.ProjectID {
		err = forbidden("delete_network")
	}
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
			if err := netdb.RequireRevision(r.Context(), tx, "networks", id, rev); err != nil {
				return err
			}
			if err := leases.RevokeNetwork(r.Context(), tx, h.cfg.Sender, id, httpkit.RequestID(r.Context())); err != nil {
				return err
			}
			return netdb.DeleteNetwork(r.Context(), tx, id)
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// adminAttrs refuses a member's request that sets shared or
// router:external to true: Neutron's create_network:shared and the like
// are an admin's ("false", their default, is let through, as Neutron
// checks an attribute's rule only when it is set to other than its
// default).
func adminAttrs(body map[string]json.RawMessage, action string) error {
	for _, attr := range []string{"shared", "router:external"} {
		if b, ok, err := boolAttr(body, attr); err != nil {
			return err
		} else if ok && b {
			return fault(http.StatusForbidden, "PolicyNotAuthorized",
				fmt.Sprintf("(rule:%s and rule:%s:%s) is disallowed by policy", action, action, attr))
		}
	}
	return nil
}
