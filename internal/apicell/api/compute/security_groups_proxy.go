package compute

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
)

// The proxy APIs os-security-groups and os-security-group-rules (Nova's
// SecurityGroupController and SecurityGroupRulesController), below 2.36:
// the Networking API's groups and rules in Nova's format (the views are in
// security_groups.go).

// proxyGone answers 404 from 2.36, where Nova removed its proxy APIs
// (MAX_PROXY_API_SUPPORT_VERSION is 2.35).
func (h *securityGroupsHandler) proxyGone(next http.HandlerFunc) http.HandlerFunc {
	return proxyGone(h.base, next)
}

// proxyGone is next below 2.36 and 404 from it: Nova's proxy APIs
// (security groups, volumes, snapshots).
func proxyGone(b *base, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if atLeast(r, 36) {
			b.fail(w, r, notFound("The resource could not be found."))
			return
		}
		next(w, r)
	}
}

// proxyError is a Networking API failure as Nova's proxy answers it.
func proxyError(err error, conflictStatus int) error {
	var ne *netdb.Error
	if !errors.As(err, &ne) {
		return err
	}
	switch {
	case errors.Is(err, netdb.ErrNotFound):
		return notFound("%s", ne.Message)
	case errors.Is(err, netdb.ErrOverQuota):
		// Nova's SecurityGroupLimitExceeded, with Neutron's text.
		return httpkit.Errorf(http.StatusForbidden, "%s", ne.Message)
	case errors.Is(err, netdb.ErrInUse), errors.Is(err, netdb.ErrConflict):
		return httpkit.Errorf(conflictStatus, "%s", ne.Message)
	}
	return bad("%s", ne.Message)
}

// groupID checks a group or rule id in a path as Nova's validate_id.
func groupID(id string) error {
	if !uuidRE.MatchString(id) {
		return bad("Security group id should be uuid")
	}
	return nil
}

// visibleGroup reads a group the caller may see (its project's; any, for
// an admin), Neutron's 404 otherwise.
func (h *securityGroupsHandler) visibleGroup(ctx context.Context, q db.Querier, id string) (*netdb.SecurityGroup, error) {
	c := httpkit.CallerFrom(ctx)
	g, err := netdb.SecurityGroupByID(ctx, q, id)
	if err == nil && !c.Admin && g.ProjectID != c.ProjectID {
		err = netdb.SecurityGroupNotFound(id)
	}
	return g, err
}

// listGroups is GET /os-security-groups: the caller's project's groups (an
// admin's all_tenants: every project's), limit and offset applied, by
// project and name.
func (h *securityGroupsHandler) listGroups(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	q := r.URL.Query()
	limit, err := queryLimit(q)
	offset := 0
	if err == nil {
		offset, err = queryOffset(q)
	}
	if err == nil {
		_, err = netdb.EnsureDefaultSecurityGroup(ctx, h.cfg.DB, c.ProjectID, h.cfg.Now())
	}
	project := c.ProjectID
	if _, all := q["all_tenants"]; all && c.Admin {
		project = ""
	}
	var groups []*netdb.SecurityGroup
	if err == nil {
		groups, err = netdb.ListSecurityGroups(ctx, h.cfg.DB, project)
	}
	// Nova's common.limited: offset, then limit, over Neutron's order.
	groups = groups[min(offset, len(groups)):]
	groups = groups[:min(limit, len(groups))]
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

// showGroup is GET /os-security-groups/{gid}.
func (h *securityGroupsHandler) showGroup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("gid")
	err := groupID(id)
	var g *netdb.SecurityGroup
	if err == nil {
		g, err = h.visibleGroup(ctx, h.cfg.DB, id)
	}
	var out []any
	if err == nil {
		out, err = sortedNovaGroups(ctx, h.cfg.DB, []*netdb.SecurityGroup{g})
	}
	if err != nil {
		h.fail(w, r, proxyError(err, http.StatusBadRequest))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"security_group": out[0]})
}

// groupBody reads the name and description of a group's create or update
// (Nova's schema: both required strings of at most 255 characters).
func groupBody(w http.ResponseWriter, r *http.Request) (name, description string, err error) {
	_, inner, err := decodeBody(w, r, "security_group")
	if err != nil {
		return "", "", err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(inner, &body); err != nil || body == nil {
		return "", "", invalid("security_group", string(inner), "%s is not of type 'object'", string(inner))
	}
	out := map[string]string{}
	for _, k := range []string{"name", "description"} {
		raw, ok := body[k]
		if !ok {
			return "", "", invalid("security_group", string(inner), "'%s' is a required property", k)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", "", invalid(k, string(raw), "%s is not of type 'string'", string(raw))
		}
		if err := checkString(k, s, 0, 255); err != nil {
			return "", "", err
		}
		out[k] = s
	}
	return out["name"], out["description"], nil
}

// createGroup is POST /os-security-groups: a group of the caller's project
// (200, as Nova). Neutron's refusals are Nova's: a bad request 400, a
// conflict (the name "default") 403.
func (h *securityGroupsHandler) createGroup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	name, desc, err := groupBody(w, r)
	if err == nil && strings.EqualFold(name, netdb.DefaultSecurityGroupName) {
		err = forbidden2("Default security group already exists.")
	}
	if err == nil {
		_, err = netdb.EnsureDefaultSecurityGroup(ctx, h.cfg.DB, c.ProjectID, h.cfg.Now())
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var g *netdb.SecurityGroup
	err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		g = &netdb.SecurityGroup{Name: name, Description: desc, ProjectID: c.ProjectID, Stateful: true}
		// The group and the egress rules it comes with, as Neutron counts.
		if err := netdb.CheckQuota(ctx, tx, h.cfg.NetworkQuota, c.ProjectID, quota.NetSecurityGroup, 1); err != nil {
			return err
		}
		if err := netdb.CheckQuota(ctx, tx, h.cfg.NetworkQuota, c.ProjectID, quota.NetSecurityGroupRule, netdb.NewGroupRules); err != nil {
			return err
		}
		return netdb.CreateSecurityGroup(ctx, tx, g, h.cfg.Now())
	})
	if err != nil {
		h.fail(w, r, proxyError(err, http.StatusForbidden))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"security_group": novaGroup(g, map[string]*netdb.SecurityGroup{g.ID: g})})
}

// updateGroup is PUT /os-security-groups/{gid}: its name and description.
func (h *securityGroupsHandler) updateGroup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("gid")
	err := groupID(id)
	if err == nil {
		_, err = h.visibleGroup(ctx, h.cfg.DB, id)
	}
	var name, desc string
	if err == nil {
		name, desc, err = groupBody(w, r)
	}
	if err == nil && strings.EqualFold(name, netdb.DefaultSecurityGroupName) {
		err = bad("Default security group already exists.")
	}
	var g *netdb.SecurityGroup
	if err == nil {
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			cur, err := netdb.SecurityGroupByID(ctx, tx, id)
			if err != nil {
				return err
			}
			p := netdb.SecurityGroupPatch{Description: &desc}
			if name != cur.Name {
				p.Name = &name
			}
			g, err = sgsync.UpdateGroup(ctx, tx, h.cfg.Sender, httpkit.RequestID(ctx), id, p, nil, h.cfg.Now())
			return err
		})
	}
	var out []any
	if err == nil {
		out, err = sortedNovaGroups(ctx, h.cfg.DB, []*netdb.SecurityGroup{g})
	}
	if err != nil {
		h.fail(w, r, proxyError(err, http.StatusBadRequest))
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"security_group": out[0]})
}

// deleteGroup is DELETE /os-security-groups/{gid} (202). Neutron's
// conflicts (the group in use, a default group for a non-admin) are
// Nova's 400.
func (h *securityGroupsHandler) deleteGroup(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	c := httpkit.CallerFrom(ctx)
	id := r.PathValue("gid")
	err := groupID(id)
	var g *netdb.SecurityGroup
	if err == nil {
		g, err = h.visibleGroup(ctx, h.cfg.DB, id)
	}
	if err == nil && g.Name == netdb.DefaultSecurityGroupName && !c.Admin {
		err = bad("Insufficient rights for removing default security group.")
	}
	if err == nil {
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			return sgsync.DeleteGroup(ctx, tx, h.cfg.Sender, httpkit.RequestID(ctx), id, nil, h.cfg.Now())
		})
	}
	if err != nil {
		h.fail(w, r, proxyError(err, http.StatusBadRequest))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// ruleRequest is the body of POST /os-security-group-rules.
type ruleRequest struct {
	ParentGroupID string          `json:"parent_group_id"`
	GroupID       *string         `json:"group_id"`
	IPProtocol    json.RawMessage `json:"ip_protocol"`
	FromPort      json.RawMessage `json:"from_port"`
	ToPort        json.RawMessage `json:"to_port"`
	CIDR          json.RawMessage `json:"cidr"`
}

// portValue is a port as Nova takes it: a number or a string of one; ok
// is false when it was not given (or null).
func portValue(raw json.RawMessage) (n int, given bool, err error) {
	if isNull(raw) {
		return 0, false, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, true, err
	}
	switch t := v.(type) {
	case float64:
		if t != float64(int(t)) {
			return 0, true, errors.New("not an integer")
		}
		return int(t), true, nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(t))
		return n, true, err
	}
	return 0, true, errors.New("not an integer")
}

// stringValue is an optional string ("" when null or absent).
func stringValue(raw json.RawMessage) string {
	if isNull(raw) {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return strings.Trim(string(raw), `"`)
	}
	return s
}

// newRule makes the Neutron rule of a Nova rule request, with Nova's
// checks (security_group_api._new_ingress_rule and the controller's).
func newRule(req *ruleRequest) (*netdb.SecurityGroupRule, error) {
	proto := stringValue(req.IPProtocol)
	from, fromGiven, fromErr := portValue(req.FromPort)
	to, toGiven, toErr := portValue(req.ToPort)
	cidr := ""
	group := req.GroupID != nil
	if group {
		// A rule from a group opens everything when no range is given.
		switch strings.ToUpper(proto) {
		case "ICMP":
			if !fromGiven && !toGiven {
				from, to, fromGiven, toGiven = -1, -1, true, true
			}
		case "TCP", "UDP":
			if !fromGiven && !toGiven {
				from, to, fromGiven, toGiven = 1, 65535, true, true
			}
		}
	} else {
		cidr = stringValue(req.CIDR)
		if cidr == "" {
			cidr = "0.0.0.0/0"
		}
		p, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, bad("%s is not a valid IP network.", cidr)
		}
		if a := p.Addr(); !a.IsUnspecified() && p.Bits() == 0 {
			return nil, bad("Bad prefix for network in cidr %s", cidr)
		}
	}
	rule := &netdb.SecurityGroupRule{Direction: "ingress", EtherType: "IPv4", RemoteIPPrefix: cidr}
	if cidr != "" && strings.Contains(cidr, ":") {
		rule.EtherType = "IPv6"
	}
	if group {
		rule.RemoteGroupID = *req.GroupID
		rule.RemoteIPPrefix = ""
	}
	if proto == "" || !fromGiven || !toGiven {
		if !group {
			return nil, bad("Not enough parameters to build a valid rule.")
		}
		return rule, nil
	}
	upper := strings.ToUpper(proto)
	if fromErr != nil || toErr != nil {
		if upper == "ICMP" {
			return nil, bad("Invalid input received: Type and Code must be integers for ICMP protocol type")
		}
		return nil, bad("Invalid input received: To and From ports must be integers")
	}
	switch upper {
	case "TCP", "UDP":
		if from > to {
			return nil, bad("Invalid port range %d:%d. Former value cannot be greater than the later", from, to)
		}
		if from < 1 || to > 65535 {
			return nil, bad("Invalid port range %d:%d. Valid %s ports should be between 1-65535", from, to, upper)
		}
	case "ICMP":
		if from < -1 || from > 255 || to < -1 || to > 255 {
			return nil, bad("Invalid port range %d:%d. For ICMP, the type:code must be valid", from, to)
		}
	default:
		return nil, bad("Invalid IP protocol %s.", proto)
	}
	rule.Protocol = strings.ToLower(proto)
	if from != -1 {
		rule.PortRangeMin = &from
	}
	if to != -1 {
		rule.PortRangeMax = &to
	}
	return rule, nil
}

// createRule is POST /os-security-group-rules: an ingress rule of a group
// of the caller's (200, as Nova).
func (h *securityGroupsHandler) createRule(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	_, inner, err := decodeBody(w, r, "security_group_rule")
	var req ruleRequest
	if err == nil {
		var body map[string]json.RawMessage
		if json.Unmarshal(inner, &body) != nil || body == nil {
			err = invalid("security_group_rule", string(inner), "%s is not of type 'object'", string(inner))
		} else if _, ok := body["parent_group_id"]; !ok {
			err = invalid("security_group_rule", string(inner), "'parent_group_id' is a required property")
		} else if json.Unmarshal(inner, &req) != nil {
			err = bad("Invalid input for field/attribute security_group_rule. Value: %s.", string(inner))
		}
	}
	if err == nil && !uuidRE.MatchString(req.ParentGroupID) {
		err = invalid("parent_group_id", req.ParentGroupID, "'%s' is not a 'uuid'", req.ParentGroupID)
	}
	if err == nil && req.GroupID != nil && !uuidRE.MatchString(*req.GroupID) {
		err = invalid("group_id", *req.GroupID, "'%s' is not a 'uuid'", *req.GroupID)
	}
	var parent, source *netdb.SecurityGroup
	if err == nil {
		parent, err = h.visibleGroup(ctx, h.cfg.DB, req.ParentGroupID)
	}
	if err == nil && req.GroupID != nil {
		source, err = h.visibleGroup(ctx, h.cfg.DB, *req.GroupID)
	}
	var rule *netdb.SecurityGroupRule
	if err == nil {
		rule, err = newRule(&req)
	}
	if err == nil {
		rule.SecurityGroupID, rule.ProjectID = parent.ID, parent.ProjectID
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			n := *rule
			if err := netdb.CheckQuota(ctx, tx, h.cfg.NetworkQuota, parent.ProjectID, quota.NetSecurityGroupRule, 1); err != nil {
				return err
			}
			if err := sgsync.CreateRules(ctx, tx, h.cfg.Sender, httpkit.RequestID(ctx), []*netdb.SecurityGroupRule{&n}, h.cfg.Now()); err != nil {
				return err
			}
			rule = &n
			return nil
		})
		if errors.Is(err, netdb.ErrInUse) {
			err = bad("This rule already exists in group %s", parent.ID)
		}
	}
	if err != nil {
		h.fail(w, r, proxyError(err, http.StatusForbidden))
		return
	}
	groups := map[string]*netdb.SecurityGroup{parent.ID: parent}
	if source != nil {
		groups[source.ID] = source
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"security_group_rule": novaRule(rule, groups)})
}

// deleteRule is DELETE /os-security-group-rules/{rid} (202).
func (h *securityGroupsHandler) deleteRule(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("rid")
	err := groupID(id)
	var rule *netdb.SecurityGroupRule
	if err == nil {
		rule, err = netdb.SecurityGroupRuleByID(ctx, h.cfg.DB, id)
	}
	if err == nil {
		_, err = h.visibleGroup(ctx, h.cfg.DB, rule.SecurityGroupID)
		if errors.Is(err, netdb.ErrNotFound) {
			err = netdb.SecurityGroupRuleNotFound(id)
		}
	}
	if err == nil {
		err = h.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			return sgsync.DeleteRule(ctx, tx, h.cfg.Sender, httpkit.RequestID(ctx), id, nil, h.cfg.Now())
		})
	}
	if err != nil {
		h.fail(w, r, proxyError(err, http.StatusConflict))
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
