package network

import (
	"encoding/json"
	"fmt"
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

// securityGroupRulesHandler is /v2.0/security-group-rules. Rules are
// created (one, or several of one group in bulk) and deleted, never
// updated (as in Neutron).
type securityGroupRulesHandler struct{ *base }

func (h *securityGroupRulesHandler) register(rt *router) {
	rt.handle("GET /v2.0/security-group-rules", h.listRules)
	rt.handle("POST /v2.0/security-group-rules", h.createRule)
	rt.handle("GET /v2.0/security-group-rules/{id}", h.showRule)
	rt.handle("DELETE /v2.0/security-group-rules/{id}", h.deleteRule)
}

var securityGroupRuleList = &collection{
	name: "security_group_rules",
	filters: map[string]kind{
		"id": kString, "security_group_id": kString, "remote_group_id": kString, "direction": kString,
		"protocol": kString, "port_range_min": kInt, "port_range_max": kInt, "ethertype": kString,
		"remote_ip_prefix": kString, "tenant_id": kString, "project_id": kString, "description": kString,
		"remote_address_group_id": kString, "normalized_cidr": kString, "belongs_to_default_sg": kBool,
		"revision_number": kInt,
	},
	sorts: map[string]bool{"id": true, "security_group_id": true, "remote_group_id": true, "direction": true,
		"protocol": true, "port_range_min": true, "port_range_max": true, "ethertype": true, "remote_ip_prefix": true,
		"tenant_id": true, "project_id": true, "normalized_cidr": true},
	notFound: func(id string) error { return netdb.SecurityGroupRuleNotFound(id) },
}

// ruleAttrs are a rule's attributes.
var ruleAttrs = map[string]attrRule{
	"id": {}, "normalized_cidr": {}, "belongs_to_default_sg": {}, "created_at": {}, "updated_at": {}, "revision_number": {},
	"security_group_id": {post: true}, "remote_group_id": {post: true}, "direction": {post: true}, "protocol": {post: true},
	"port_range_min": {post: true}, "port_range_max": {post: true}, "ethertype": {post: true}, "remote_ip_prefix": {post: true},
	"remote_address_group_id": {post: true}, "description": {post: true}, "tenant_id": {post: true}, "project_id": {post: true},
}

// orNil is s, or JSON null when s is empty.
func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func ruleItem(r *netdb.SecurityGroupRule) item {
	port := func(p *int) any {
		if p == nil {
			return nil
		}
		return *p
	}
	return item{
		"id": r.ID, "security_group_id": r.SecurityGroupID, "tenant_id": r.ProjectID, "project_id": r.ProjectID,
		"direction": r.Direction, "ethertype": r.EtherType, "protocol": orNil(r.Protocol),
		"port_range_min": port(r.PortRangeMin), "port_range_max": port(r.PortRangeMax),
		"remote_ip_prefix": orNil(r.RemoteIPPrefix), "normalized_cidr": orNil(r.NormalizedCIDR()),
		"remote_group_id": orNil(r.RemoteGroupID), "remote_address_group_id": nil,
		"belongs_to_default_sg": r.BelongsToDefault, "description": r.Description,
		"created_at": isoTime(r.CreatedAt), "updated_at": isoTime(r.UpdatedAt), "revision_number": r.RevisionNumber,
	}
}

// ruleVisible: admins see every rule, others the rules of their groups and
// the rules they own (Neutron's sg_owner or project owner).
func ruleVisible(c httpkit.Caller, r *netdb.SecurityGroupRule) bool {
	return c.Admin || r.ProjectID == c.ProjectID || r.GroupProjectID == c.ProjectID
}

func (h *securityGroupRulesHandler) listRules(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	q, err := parseQuery(r.URL.Query(), securityGroupRuleList)
	if err == nil {
		err = h.ensureDefault(r, q)
	}
	var rules []*netdb.SecurityGroupRule
	if err == nil {
		rules, err = netdb.ListSecurityGroupRules(r.Context(), h.cfg.DB, ownProject(c))
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items := make([]item, 0, len(rules))
	for _, rl := range rules {
		if ruleVisible(c, rl) {
			items = append(items, ruleItem(rl))
		}
	}
	p, err := q.apply(r, securityGroupRuleList, items)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeList(w, securityGroupRuleList, q, p)
}

func (h *securityGroupRulesHandler) visibleRule(r *http.Request, id string) (*netdb.SecurityGroupRule, error) {
	rl, err := netdb.SecurityGroupRuleByID(r.Context(), h.cfg.DB, id)
	if err != nil {
		return nil, err
	}
	if !ruleVisible(httpkit.CallerFrom(r.Context()), rl) {
		return nil, netdb.SecurityGroupRuleNotFound(id)
	}
	return rl, nil
}

func (h *securityGroupRulesHandler) showRule(w http.ResponseWriter, r *http.Request) {
	rl, err := h.visibleRule(r, r.PathValue("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"security_group_rule": view(ruleItem(rl), securityGroupRuleList, showFields(r))})
}

func (h *securityGroupRulesHandler) deleteRule(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	err := noBody(r)
	var rev *int64
	if err == nil {
		rev, err = ifMatchRevision(r)
	}
	if err == nil {
		_, err = h.visibleRule(r, id)
	}
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
			return sgsync.DeleteRule(r.Context(), tx, h.cfg.Sender, httpkit.RequestID(r.Context()), id, rev, h.cfg.Now())
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// createRule creates one rule, or several of one group at once (Neutron's
// bulk create, {"security_group_rules": [...]}: all or none).
func (h *securityGroupRulesHandler) createRule(w http.ResponseWriter, r *http.Request) {
	c := httpkit.CallerFrom(r.Context())
	bodies, bulk, err := decodeBodies(w, r, "security_group_rule", true)
	var rls []*netdb.SecurityGroupRule
	for _, body := range bodies {
		if err != nil {
			break
		}
		err = checkAttrs(body, ruleAttrs, true)
		var rl *netdb.SecurityGroupRule
		if err == nil {
			rl, err = ruleFields(body)
		}
		if err == nil {
			rl.ProjectID, err = projectAttr(body, c)
		}
		rls = append(rls, rl)
	}
	// A bulk create is of one group and one project (Neutron's
	// _validate_single_project_and_group).
	for _, rl := range rls {
		if err != nil {
			break
		}
		if rl.SecurityGroupID != rls[0].SecurityGroupID {
			err = fault(http.StatusBadRequest, "SecurityGroupNotSingleGroupRules", "Only allowed to update rules for one security profile at a time")
		} else if rl.ProjectID != rls[0].ProjectID {
			err = fault(http.StatusBadRequest, "SecurityGroupRulesNotSingleProject", "Multiple project_ids in bulk security group rule create not allowed")
		}
	}
	for _, rl := range rls {
		if err != nil {
			break
		}
		if err = validateRule(rl); err != nil {
			break
		}
		// The remote group, then the group, must be the rule's project's
		// (any, for an admin), as Neutron's _check_security_group.
		for _, id := range []string{rl.RemoteGroupID, rl.SecurityGroupID} {
			if err != nil || id == "" {
				continue
			}
			var g *netdb.SecurityGroup
			if g, err = netdb.SecurityGroupByID(r.Context(), h.cfg.DB, id); err == nil && !c.Admin && g.ProjectID != rl.ProjectID {
				err = netdb.SecurityGroupNotFound(id)
			}
		}
	}
	var created []*netdb.SecurityGroupRule
	if err == nil {
		err = h.cfg.DB.InTx(r.Context(), func(tx *db.Tx) error {
			created = make([]*netdb.SecurityGroupRule, len(rls))
			for i, rl := range rls {
				n := *rl
				created[i] = &n
			}
			// A bulk create counts all its rules (one project's).
			if err := h.checkQuota(r.Context(), tx, rls[0].ProjectID, quota.NetSecurityGroupRule, len(rls)); err != nil {
				return err
			}
			return sgsync.CreateRules(r.Context(), tx, h.cfg.Sender, httpkit.RequestID(r.Context()), created, h.cfg.Now())
		})
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !bulk {
		httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"security_group_rule": view(ruleItem(created[0]), securityGroupRuleList, nil)})
		return
	}
	views := make([]map[string]any, len(created))
	for i, rl := range created {
		views[i] = view(ruleItem(rl), securityGroupRuleList, nil)
	}
	httpkit.WriteJSON(w, http.StatusCreated, map[string]any{"security_group_rules": views})
}

// ruleFields reads a rule's attributes with Neutron's converters and
// validators, in its attribute map's order.
func ruleFields(body map[string]json.RawMessage) (*netdb.SecurityGroupRule, error) {
	for _, attr := range []string{"security_group_id", "direction"} {
		if err := required(body, attr); err != nil {
			return nil, err
		}
	}
	rl := &netdb.SecurityGroupRule{EtherType: "IPv4"}
	var err error
	if rl.SecurityGroupID, _, err = stringAttr(body, "security_group_id", 36); err != nil {
		return nil, err
	}
	if !isNull(body, "remote_group_id") {
		if rl.RemoteGroupID, _, err = stringAttr(body, "remote_group_id", 36); err != nil {
			return nil, err
		}
	}
	var dir string
	if json.Unmarshal(body["direction"], &dir) != nil || (dir != "ingress" && dir != "egress") {
		return nil, badAttr("HTTPBadRequest", "direction", fmt.Sprintf("'%s' is not in ['ingress', 'egress']", show(body["direction"])))
	}
	rl.Direction = dir
	if raw, ok := body["protocol"]; ok {
		if rl.Protocol, err = convertProtocol(raw); err != nil {
			return nil, err
		}
	}
	if rl.PortRangeMin, err = portAttr(body, "port_range_min"); err != nil {
		return nil, err
	}
	if rl.PortRangeMax, err = portAttr(body, "port_range_max"); err != nil {
		return nil, err
	}
	if raw, ok := body["ethertype"]; ok {
		if rl.EtherType, err = convertEtherType(raw); err != nil {
			return nil, err
		}
	}
	if raw, ok := body["remote_ip_prefix"]; ok {
		if rl.RemoteIPPrefix, err = convertPrefix(raw); err != nil {
			return nil, err
		}
	}
	if s, ok, err := stringAttr(body, "description", 255); err != nil {
		return nil, err
	} else if ok {
		rl.Description = s
	}
	if raw, ok := body["remote_address_group_id"]; ok && !isNull(body, "remote_address_group_id") {
		return nil, badAttr("HTTPBadRequest", "remote_address_group_id",
			fmt.Sprintf("'%s': this cloud has no address groups, so a rule's remote is a remote_ip_prefix or a remote_group_id", show(raw)))
	}
	return rl, nil
}

func supportedProtocols() string {
	names := netdb.ProtocolNames()
	q := make([]string, 0, len(names)+2)
	q = append(q, "None", "'any'")
	for _, n := range names {
		q = append(q, "'"+n+"'")
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// convertProtocol is Neutron's convert_protocol: none or "any" is no
// protocol, a number from 0 to 255 stays as given, a name is lowered.
func convertProtocol(raw json.RawMessage) (string, error) {
	bad := func() error {
		return fault(http.StatusBadRequest, "SecurityGroupRuleInvalidProtocol", fmt.Sprintf(
			"Security group rule protocol %s not supported. Only protocol values %s and integer representations [0 to 255] are supported.",
			show(raw), supportedProtocols()))
	}
	if strings.TrimSpace(string(raw)) == "null" {
		return "", nil
	}
	var n int
	if json.Unmarshal(raw, &n) == nil {
		if n < 0 || n > 255 {
			return "", bad()
		}
		return strconv.Itoa(n), nil
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", bad()
	}
	if s == "any" {
		return "", nil
	}
	if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		if v < 0 || v > 255 {
			return "", bad()
		}
		return s, nil
	}
	lower := strings.ToLower(s)
	for _, name := range netdb.ProtocolNames() {
		if name == lower {
			return lower, nil
		}
	}
	return "", bad()
}

// portAttr is Neutron's convert_validate_port_value: a port from 0 to
// 65535, or none.
func portAttr(body map[string]json.RawMessage, attr string) (*int, error) {
	raw, ok := body[attr]
	if !ok || isNull(body, attr) {
		return nil, nil
	}
	bad := fault(http.StatusBadRequest, "SecurityGroupInvalidPortValue", fmt.Sprintf("Invalid value for port %s", show(raw)))
	var n int
	if json.Unmarshal(raw, &n) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, bad
		}
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return nil, bad
		}
		n = v
	}
	if n < 0 || n > 65535 {
		return nil, bad
	}
	return &n, nil
}

// convertEtherType is Neutron's convert_ethertype_to_case_insensitive.
func convertEtherType(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		for _, e := range []string{"IPv4", "IPv6"} {
			if strings.EqualFold(e, s) {
				return e, nil
			}
		}
	}
	return "", fault(http.StatusBadRequest, "SecurityGroupRuleInvalidEtherType", fmt.Sprintf(
		"Security group rule for ethertype '%s' not supported. Allowed values are ['IPv4', 'IPv6'].", show(raw)))
}

// convertPrefix is Neutron's convert_ip_prefix_to_cidr: an address is a
// prefix of its full length; host bits stay.
func convertPrefix(raw json.RawMessage) (string, error) {
	var s string
	if strings.TrimSpace(string(raw)) == "null" {
		return "", nil
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", fault(http.StatusBadRequest, "InvalidCIDR", fmt.Sprintf("Invalid CIDR %s given as IP prefix.", show(raw)))
	}
	if s == "" {
		return "", nil
	}
	if p, err := netip.ParsePrefix(s); err == nil && p.Addr().Zone() == "" {
		return p.String(), nil
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.PrefixFrom(a, a.BitLen()).String(), nil
	}
	return "", fault(http.StatusBadRequest, "InvalidCIDR", fmt.Sprintf("Invalid CIDR %s given as IP prefix.", s))
}

// IP protocol numbers with ports, and ICMP's.
var portProtocols = map[int]bool{33: true, 132: true, 6: true, 17: true, 136: true}

// ipv6Only are the protocols a rule may use only with IPv6.
var ipv6Only = map[string]bool{"ipv6-encap": true, "ipv6-frag": true, "ipv6-icmp": true, "icmpv6": true, "ipv6-nonxt": true,
	"ipv6-opts": true, "ipv6-route": true, "41": true, "44": true, "58": true, "59": true, "60": true, "43": true}

// validateRule is Neutron's _validate_base_security_group_rule_attributes:
// it puts the rule in canonical form (IPv6 ICMP's name and number, the
// whole port range as none) and checks ports against the protocol, the
// prefix and protocol against the ethertype, and that at most one remote
// is given.
func validateRule(r *netdb.SecurityGroupRule) error {
	if r.EtherType == "IPv6" {
		switch r.Protocol {
		case "icmp", "icmpv6":
			r.Protocol = "ipv6-icmp"
		case "1":
			r.Protocol = "58"
		}
	}
	if r.PortRangeMin != nil && r.PortRangeMax != nil && *r.PortRangeMin == 1 && *r.PortRangeMax == 65535 {
		r.PortRangeMin, r.PortRangeMax = nil, nil
	}
	if err := validatePorts(r); err != nil {
		return err
	}
	if r.RemoteIPPrefix != "" {
		p, _ := netip.ParsePrefix(r.RemoteIPPrefix)
		if v := map[bool]string{true: "IPv4", false: "IPv6"}[p.Addr().Is4()]; v != r.EtherType {
			return fault(http.StatusBadRequest, "SecurityGroupRuleParameterConflict", fmt.Sprintf(
				"Conflicting value ethertype %s for CIDR %s", r.EtherType, r.RemoteIPPrefix))
		}
	}
	if ipv6Only[r.Protocol] && r.EtherType == "IPv4" {
		return fault(http.StatusBadRequest, "SecurityGroupEthertypeConflictWithProtocol", fmt.Sprintf(
			"Invalid ethertype %s for protocol %s.", r.EtherType, r.Protocol))
	}
	if r.RemoteIPPrefix != "" && r.RemoteGroupID != "" {
		return fault(http.StatusBadRequest, "SecurityGroupMultipleRemoteEntites",
			"Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided.")
	}
	return nil
}

// validatePorts is Neutron's _validate_port_range.
func validatePorts(r *netdb.SecurityGroupRule) error {
	if r.PortRangeMin == nil && r.PortRangeMax == nil {
		return nil
	}
	if r.Protocol == "" {
		return fault(http.StatusBadRequest, "SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given.")
	}
	num, _ := netdb.ProtocolNumber(r.Protocol)
	switch {
	case portProtocols[num]:
		if (r.PortRangeMin != nil && *r.PortRangeMin == 0) || (r.PortRangeMax != nil && *r.PortRangeMax == 0) {
			return fault(http.StatusBadRequest, "SecurityGroupInvalidPortValue", "Invalid value for port 0")
		}
		if r.PortRangeMin == nil || r.PortRangeMax == nil || *r.PortRangeMin > *r.PortRangeMax {
			return fault(http.StatusBadRequest, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max")
		}
	case num == 1 || num == 58:
		for _, f := range []struct {
			v           *int
			field, attr string
		}{{r.PortRangeMin, "type", "port_range_min"}, {r.PortRangeMax, "code", "port_range_max"}} {
			if f.v != nil && (*f.v < 0 || *f.v > 255) {
				return fault(http.StatusBadRequest, "SecurityGroupInvalidIcmpValue", fmt.Sprintf(
					"Invalid value for ICMP %s (%s) %d. It must be 0 to 255.", f.field, f.attr, *f.v))
			}
		}
		if r.PortRangeMin == nil && r.PortRangeMax != nil {
			return fault(http.StatusBadRequest, "SecurityGroupMissingIcmpType", fmt.Sprintf(
				"ICMP code (port-range-max) %d is provided but ICMP type (port-range-min) is missing.", *r.PortRangeMax))
		}
	default:
		return fault(http.StatusBadRequest, "SecurityGroupInvalidProtocolForPort", fmt.Sprintf(
			"Ports cannot be specified for protocol %d. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE.", num))
	}
	return nil
}
