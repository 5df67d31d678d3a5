package compute

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
)

// Security groups in the Compute API (Nova's security_groups.py): the
// servers' groups (GET /servers/{id}/os-security-groups and the
// addSecurityGroup and removeSecurityGroup actions, at every microversion)
// and the proxy APIs os-security-groups and os-security-group-rules, gone
// at 2.36. The groups are the Networking API's (package netdb), in Nova's
// format: a group shows only its ingress rules.

// securityGroupsHandler is the servers' security groups and the proxy APIs.
type securityGroupsHandler struct {
	*base
	servers *serversHandler
}

const sgRule = "os_compute_api:os-security-groups:"

func (h *securityGroupsHandler) register(rt *router) {
	rt.handle("GET /v2.1/servers/{id}/os-security-groups", sgRule+"list", h.listServerGroups)
	rt.action("addSecurityGroup", h.addSecurityGroup)
	rt.action("removeSecurityGroup", h.removeSecurityGroup)
	rt.handle("GET /v2.1/os-security-groups", sgRule+"get", h.proxyGone(h.listGroups))
	rt.handle("POST /v2.1/os-security-groups", sgRule+"create", h.proxyGone(h.createGroup))
	rt.handle("GET /v2.1/os-security-groups/{gid}", sgRule+"show", h.proxyGone(h.showGroup))
	rt.handle("PUT /v2.1/os-security-groups/{gid}", sgRule+"update", h.proxyGone(h.updateGroup))
	rt.handle("DELETE /v2.1/os-security-groups/{gid}", sgRule+"delete", h.proxyGone(h.deleteGroup))
	rt.handle("POST /v2.1/os-security-group-rules", sgRule+"rule:create", h.proxyGone(h.createRule))
	rt.handle("DELETE /v2.1/os-security-group-rules/{rid}", sgRule+"rule:delete", h.proxyGone(h.deleteRule))
}

// novaRule is a Neutron rule in Nova's format; nil for a rule naming a
// remote group that is gone (Nova leaves such a rule out).
func novaRule(r *netdb.SecurityGroupRule, groups map[string]*netdb.SecurityGroup) map[string]any {
	var from, to any
	from, to = intOrNil(r.PortRangeMin), intOrNil(r.PortRangeMax)
	if r.Protocol != "" && r.PortRangeMin == nil && r.PortRangeMax == nil {
		if p := strings.ToUpper(r.Protocol); p == "TCP" || p == "UDP" {
			from, to = 1, 65535
		} else {
			from, to = -1, -1
		}
	}
	v := map[string]any{"id": r.ID, "parent_group_id": r.SecurityGroupID, "ip_protocol": nullable(r.Protocol),
		"from_port": from, "to_port": to, "group": map[string]any{}, "ip_range": map[string]any{}}
	if r.RemoteGroupID != "" {
		g := groups[r.RemoteGroupID]
		if g == nil {
			return nil
		}
		v["group"] = map[string]any{"name": g.Name, "tenant_id": g.ProjectID}
		return v
	}
	cidr := r.RemoteIPPrefix
	if cidr == "" {
		cidr = "0.0.0.0/0"
	}
	v["ip_range"] = map[string]any{"cidr": cidr}
	return v
}

func intOrNil(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// novaGroup is a group in Nova's format: its ingress rules only.
func novaGroup(g *netdb.SecurityGroup, groups map[string]*netdb.SecurityGroup) map[string]any {
	rules := []any{}
	for _, r := range g.Rules {
		if r.Direction != "ingress" {
			continue
		}
		if v := novaRule(r, groups); v != nil {
			rules = append(rules, v)
		}
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.ProjectID, "rules": rules}
}

// remoteGroups reads the groups that the rules of groups name, with
// groups themselves, by id.
func remoteGroups(ctx context.Context, q db.Querier, groups []*netdb.SecurityGroup) (map[string]*netdb.SecurityGroup, error) {
	byID := map[string]*netdb.SecurityGroup{}
	for _, g := range groups {
		byID[g.ID] = g
	}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.RemoteGroupID == "" || byID[r.RemoteGroupID] != nil {
				continue
			}
			rg, err := netdb.SecurityGroupByID(ctx, q, r.RemoteGroupID)
			if errors.Is(err, netdb.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			byID[rg.ID] = rg
		}
	}
	return byID, nil
}

// sortedNovaGroups is groups in Nova's format, by project then name.
func sortedNovaGroups(ctx context.Context, q db.Querier, groups []*netdb.SecurityGroup) ([]any, error) {
	byID, err := remoteGroups(ctx, q, groups)
	if err != nil {
		return nil, err
	}
	slices.SortStableFunc(groups, func(a, b *netdb.SecurityGroup) int {
		if c := strings.Compare(a.ProjectID, b.ProjectID); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	out := make([]any, 0, len(groups))
	for _, g := range groups {
		out = append(out, novaGroup(g, byID))
	}
	return out, nil
}

// listServerGroups is GET /servers/{id}/os-security-groups.
func (h *securityGroupsHandler) listServerGroups(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	in, err := h.servers.loadServer(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	bound, err := netdb.InstancesSecurityGroups(ctx, h.cfg.DB, []string{in.UUID})
	var groups []*netdb.SecurityGroup
	for _, b := range bound[in.UUID] {
		if err != nil {
			break
		}
		var g *netdb.SecurityGroup
		if g, err = netdb.SecurityGroupByID(ctx, h.cfg.DB, b.ID); err == nil {
			groups = append(groups, g)
		} else if errors.Is(err, netdb.ErrNotFound) {
			err = nil
		}
	}
	var out []any
	if err == nil {
		out, err = sortedNovaGroups(ctx, h.cfg.DB, groups)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"security_groups": out})
}

// actionGroupName reads the name of addSecurityGroup or removeSecurityGroup
// as Nova's schema and _parse do.
func actionGroupName(action string, arg json.RawMessage) (string, error) {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(arg, &body); err != nil || body == nil {
		return "", invalid(action, string(arg), "%s is not of type 'object'", string(arg))
	}
	for k := range body {
		if k != "name" {
			return "", invalid(action, string(arg), "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	raw, ok := body["name"]
	if !ok {
		return "", invalid(action, string(arg), "'name' is a required property")
	}
	var name string
	if err := json.Unmarshal(raw, &name); err != nil {
		return "", invalid("name", string(raw), "%s is not of type 'string'", string(raw))
	}
	if name == "" {
		return "", invalid("name", "", "'' is too short")
	}
	if strings.TrimSpace(name) == "" {
		return "", bad("Security group name cannot be empty")
	}
	return name, nil
}

// serverGroup finds the group of the caller's project that an action
// names, as Nova: 404 when there is none, 409 when the name is several
// groups'.
func (h *securityGroupsHandler) serverGroup(ctx context.Context, name string) (string, error) {
	c := httpkit.CallerFrom(ctx)
	var id string
	var err error
	if name == netdb.DefaultSecurityGroupName {
		id, err = netdb.EnsureDefaultSecurityGroup(ctx, h.cfg.DB, c.ProjectID, h.cfg.Now())
	} else {
		id, _, err = netdb.ResolveSecurityGroup(ctx, h.cfg.DB, c.ProjectID, name)
	}
	switch {
	case errors.Is(err, netdb.ErrNotFound):
		return "", notFound("Security group %s is not found for project %s", name, c.ProjectID)
	case errors.Is(err, netdb.ErrConflict):
		var ne *netdb.Error
		errors.As(err, &ne)
		return "", conflict("%s", ne.Message)
	}
	return id, err
}

// addSecurityGroup is the addSecurityGroup action: the server joins a group
// of the caller's project (202; joining a group it is in changes nothing,
// as Neutron keeps a port's groups once each).
func (h *securityGroupsHandler) addSecurityGroup(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	h.changeGroup(w, r, in, arg, "addSecurityGroup", func(ctx context.Context, tx *db.Tx, id string) (bool, error) {
		_, err := netdb.BindSecurityGroup(ctx, tx, in.UUID, id, h.cfg.Now())
		return true, err
	})
}

// removeSecurityGroup is the removeSecurityGroup action (202; 404 when the
// server is not in the group).
func (h *securityGroupsHandler) removeSecurityGroup(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage) {
	h.changeGroup(w, r, in, arg, "removeSecurityGroup", func(ctx context.Context, tx *db.Tx, id string) (bool, error) {
		return netdb.UnbindSecurityGroup(ctx, tx, in.UUID, id, h.cfg.Now())
	})
}

func (h *securityGroupsHandler) changeGroup(w http.ResponseWriter, r *http.Request, in *apidb.Instance, arg json.RawMessage, action string,
	change func(context.Context, *db.Tx, string) (bool, error)) {
	ctx := r.Context()
	name, err := actionGroupName(action, arg)
	var id string
	if err == nil {
		id, err = h.serverGroup(ctx, name)
	}
	if err == nil {
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			cur, err := apidb.GetForUpdate(ctx, tx, in.UUID)
			if err != nil {
				return err
			}
			if cur.Deleted {
				return notFound("Instance %s could not be found.", in.UUID)
			}
			changed, err := change(ctx, tx, id)
			if err == nil && !changed {
				return notFound("Security group %s not associated with the instance %s", name, in.UUID)
			}
			if err != nil {
				return err
			}
			// The ports whose groups are the server's changed: the
			// server's cell enforces their new groups.
			return sgsync.ServerGroupsChanged(ctx, tx, h.cfg.Sender, httpkit.RequestID(ctx), in.UUID)
		})
	}
	if err != nil {
		h.fail(w, r, gone(in.UUID, err))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
