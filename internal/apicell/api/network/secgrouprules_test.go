package network_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
)

// ruleView is a rule as the API shows it, with the fields gophercloud
// leaves out.
type ruleView struct {
	ID             string  `json:"id"`
	Protocol       *string `json:"protocol"`
	PortRangeMin   *int    `json:"port_range_min"`
	PortRangeMax   *int    `json:"port_range_max"`
	RemoteIPPrefix *string `json:"remote_ip_prefix"`
	NormalizedCIDR *string `json:"normalized_cidr"`
	EtherType      string  `json:"ethertype"`
	Belongs        bool    `json:"belongs_to_default_sg"`
}

// createRule posts a rule as demo and returns the response.
func (e *env) createRule(body map[string]any) *response {
	e.t.Helper()
	return e.do(http.MethodPost, "/networking/v2.0/security-group-rules", demo, map[string]any{"security_group_rule": body})
}

func (e *env) ruleOK(body map[string]any) ruleView {
	e.t.Helper()
	r := e.createRule(body)
	if r.status != http.StatusCreated {
		e.t.Fatalf("create rule %v: %d %s", body, r.status, r.body)
	}
	var out struct {
		Rule ruleView `json:"security_group_rule"`
	}
	r.json(e.t, &out)
	return out.Rule
}

func str(p *string) string {
	if p == nil {
		return "null"
	}
	return *p
}

func num(p *int) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

func TestSecurityGroupRulesCreateCanonicalAndDuplicates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		g, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "web"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		// Through gophercloud, as terraform's openstack_networking_secgroup_rule_v2.
		r, err := rules.Create(ctx, sc, rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: g.ID,
			Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "10.1.2.3/8", Description: "ssh"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if r.Protocol != "tcp" || r.PortRangeMin != 22 || r.PortRangeMax != 22 || r.RemoteIPPrefix != "10.1.2.3/8" || r.Description != "ssh" ||
			r.ProjectID != "demo" || r.SecGroupID != g.ID || r.Direction != "ingress" || r.RevisionNumber != 1 {
			t.Fatalf("rule = %+v", r)
		}
		var shown struct {
			Rule ruleView `json:"security_group_rule"`
		}
		e.do(http.MethodGet, "/networking/v2.0/security-group-rules/"+r.ID, demo, nil).json(t, &shown)
		if str(shown.Rule.NormalizedCIDR) != "10.0.0.0/8" || shown.Rule.Belongs {
			t.Fatalf("shown = %+v", shown.Rule)
		}
		// Adding a rule revises the group.
		if got, _ := groups.Get(ctx, sc, g.ID).Extract(); got.RevisionNumber != 2 || len(got.Rules) != 3 {
			t.Fatalf("group after a rule = rev %d, %d rules", got.RevisionNumber, len(got.Rules))
		}

		// The same rule, by protocol number: 409, nothing written.
		before := e.count("security_group_rules")
		for _, body := range []map[string]any{
			{"security_group_id": g.ID, "direction": "ingress", "protocol": "6", "port_range_min": 22, "port_range_max": "22", "remote_ip_prefix": "10.1.2.3/8"},
			{"security_group_id": g.ID, "direction": "ingress", "protocol": "TCP", "port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "10.1.2.3/8", "ethertype": "ipv4", "description": "other"},
		} {
			typ, msg := e.createRule(body).fault(t, http.StatusConflict)
			if typ != "SecurityGroupRuleExists" || msg != "Security group rule already exists. Rule id is "+r.ID+"." {
				t.Errorf("duplicate %v: %s %q", body, typ, msg)
			}
		}
		// A new group's egress rules: "any address" is no prefix.
		typ, _ := e.createRule(map[string]any{"security_group_id": g.ID, "direction": "egress", "remote_ip_prefix": "0.0.0.0/0"}).fault(t, http.StatusConflict)
		if typ != "SecurityGroupRuleExists" || e.count("security_group_rules") != before {
			t.Fatalf("egress any: %s; rules %d, want %d", typ, e.count("security_group_rules"), before)
		}

		// Canonical forms.
		for _, c := range []struct {
			body                  map[string]any
			proto, min, max, cidr string
		}{
			{map[string]any{"protocol": "udp", "port_range_min": 1, "port_range_max": 65535}, "udp", "null", "null", "null"},
			{map[string]any{"protocol": "icmp", "ethertype": "IPv6", "port_range_min": 128, "port_range_max": 0}, "ipv6-icmp", "128", "0", "null"},
			{map[string]any{"protocol": 1, "ethertype": "ipv6"}, "58", "null", "null", "null"},
			{map[string]any{"protocol": "any", "remote_ip_prefix": "2001:DB8::1"}, "null", "null", "null", "2001:db8::1/128"},
			{map[string]any{"protocol": nil, "remote_ip_prefix": "192.0.2.7"}, "null", "null", "null", "192.0.2.7/32"},
			{map[string]any{"protocol": "icmp", "port_range_min": 8}, "icmp", "8", "null", "null"},
			{map[string]any{"protocol": 47}, "47", "null", "null", "null"},
		} {
			c.body["security_group_id"], c.body["direction"] = g.ID, "ingress"
			if c.cidr != "null" {
				if _, ok := c.body["ethertype"]; !ok && c.cidr[0] == '2' {
					c.body["ethertype"] = "IPv6"
				}
			}
			v := e.ruleOK(c.body)
			if got := []string{str(v.Protocol), num(v.PortRangeMin), num(v.PortRangeMax), str(v.RemoteIPPrefix)}; !slices.Equal(got, []string{c.proto, c.min, c.max, c.cidr}) {
				t.Errorf("%v = %v; want %v", c.body, got, []string{c.proto, c.min, c.max, c.cidr})
			}
		}

		// Delete: 204, the group revised; again: 404.
		rev := func() int {
			got, _ := groups.Get(ctx, sc, g.ID).Extract()
			return got.RevisionNumber
		}
		was := rev()
		if err := rules.Delete(ctx, sc, r.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if rev() != was+1 {
			t.Fatalf("revision %d after a rule's delete; want %d", rev(), was+1)
		}
		neutronError(t, rules.Delete(ctx, sc, r.ID).ExtractErr(), http.StatusNotFound, "SecurityGroupRuleNotFound",
			fmt.Sprintf("Security group rule %s does not exist", r.ID))
		// Rules are not updated (Neutron has no update).
		if s := e.do(http.MethodPut, "/networking/v2.0/security-group-rules/"+shown.Rule.ID, demo, map[string]any{"security_group_rule": map[string]any{}}).status; s != http.StatusMethodNotAllowed {
			t.Fatalf("PUT a rule: %d", s)
		}
	})
}

func TestSecurityGroupRuleBadInput(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		g, err := groups.Create(ctx, e.client(demo), groups.CreateOpts{Name: "g"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := groups.Create(ctx, e.client(other), groups.CreateOpts{Name: "theirs"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		protocols := "(None, 'any', 'ah', 'dccp', 'egp', 'esp', 'gre', 'hopopt', 'icmp', 'igmp', 'ip', 'ipip', 'ipv6-encap', 'ipv6-frag', " +
			"'ipv6-icmp', 'icmpv6', 'ipv6-nonxt', 'ipv6-opts', 'ipv6-route', 'ospf', 'pgm', 'rsvp', 'sctp', 'tcp', 'udp', 'udplite', 'vrrp')"
		for _, c := range []struct {
			name     string
			body     map[string]any
			status   int
			typ, msg string
		}{
			{"no direction", map[string]any{}, 400, "HTTPBadRequest", "Failed to parse request. Required attribute 'direction' not specified"},
			{"bad direction", map[string]any{"direction": "sideways"}, 400, "HTTPBadRequest", "Invalid input for direction. Reason: 'sideways' is not in ['ingress', 'egress']."},
			{"bad protocol", map[string]any{"protocol": "tcpx"}, 400, "SecurityGroupRuleInvalidProtocol",
				"Security group rule protocol tcpx not supported. Only protocol values " + protocols + " and integer representations [0 to 255] are supported."},
			{"protocol 256", map[string]any{"protocol": 256}, 400, "SecurityGroupRuleInvalidProtocol",
				"Security group rule protocol 256 not supported. Only protocol values " + protocols + " and integer representations [0 to 255] are supported."},
			{"port out of range", map[string]any{"protocol": "tcp", "port_range_min": 70000, "port_range_max": 70000}, 400, "SecurityGroupInvalidPortValue", "Invalid value for port 70000"},
			{"port not a number", map[string]any{"protocol": "tcp", "port_range_min": "http"}, 400, "SecurityGroupInvalidPortValue", "Invalid value for port http"},
			{"port 0", map[string]any{"protocol": "tcp", "port_range_min": 0, "port_range_max": 10}, 400, "SecurityGroupInvalidPortValue", "Invalid value for port 0"},
			{"min above max", map[string]any{"protocol": "tcp", "port_range_min": 90, "port_range_max": 80}, 400, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max"},
			{"min only", map[string]any{"protocol": "udp", "port_range_min": 90}, 400, "SecurityGroupInvalidPortRange", "For TCP/UDP protocols, port_range_min must be <= port_range_max"},
			{"ports without protocol", map[string]any{"port_range_min": 80, "port_range_max": 80}, 400, "SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol if port range is given."},
			{"ports on gre", map[string]any{"protocol": "gre", "port_range_min": 80, "port_range_max": 80}, 400, "SecurityGroupInvalidProtocolForPort",
				"Ports cannot be specified for protocol 47. Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE."},
			{"icmp type 300", map[string]any{"protocol": "icmp", "port_range_min": 300}, 400, "SecurityGroupInvalidIcmpValue", "Invalid value for ICMP type (port_range_min) 300. It must be 0 to 255."},
			{"icmp code without type", map[string]any{"protocol": "icmp", "port_range_max": 3}, 400, "SecurityGroupMissingIcmpType", "ICMP code (port-range-max) 3 is provided but ICMP type (port-range-min) is missing."},
			{"bad ethertype", map[string]any{"ethertype": "IPX"}, 400, "SecurityGroupRuleInvalidEtherType", "Security group rule for ethertype 'IPX' not supported. Allowed values are ['IPv4', 'IPv6']."},
			{"bad prefix", map[string]any{"remote_ip_prefix": "10.0.0.0/33"}, 400, "InvalidCIDR", "Invalid CIDR 10.0.0.0/33 given as IP prefix."},
			{"prefix and ethertype", map[string]any{"remote_ip_prefix": "::/0"}, 400, "SecurityGroupRuleParameterConflict", "Conflicting value ethertype IPv4 for CIDR ::/0"},
			{"ipv6 protocol on IPv4", map[string]any{"protocol": "ipv6-icmp"}, 400, "SecurityGroupEthertypeConflictWithProtocol", "Invalid ethertype IPv4 for protocol ipv6-icmp."},
			{"two remotes", map[string]any{"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "GROUP"}, 400, "SecurityGroupMultipleRemoteEntites",
				"Only one of remote_ip_prefix or remote_group_id or remote_address_group_id may be provided."},
			{"address group", map[string]any{"remote_address_group_id": "ag"}, 400, "HTTPBadRequest",
				"Invalid input for remote_address_group_id. Reason: 'ag': this cloud has no address groups, so a rule's remote is a remote_ip_prefix or a remote_group_id."},
			{"unknown attribute", map[string]any{"port": 1}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'port'"},
			{"read-only attribute", map[string]any{"normalized_cidr": "10.0.0.0/8"}, 400, "HTTPBadRequest", "Attribute 'normalized_cidr' not allowed in POST"},
			{"another project's group", map[string]any{"security_group_id": theirs.ID}, 404, "SecurityGroupNotFound", fmt.Sprintf("Security group %s does not exist", theirs.ID)},
			{"another project's remote", map[string]any{"remote_group_id": theirs.ID}, 404, "SecurityGroupNotFound", fmt.Sprintf("Security group %s does not exist", theirs.ID)},
			{"no such group", map[string]any{"security_group_id": "nope"}, 404, "SecurityGroupNotFound", "Security group nope does not exist"},
			{"another project", map[string]any{"project_id": "other"}, 400, "HTTPBadRequest", "Specifying 'project_id' other than the authenticated project in request is not allowed for the current user."},
		} {
			t.Run(c.name, func(t *testing.T) {
				body := map[string]any{"security_group_id": g.ID, "direction": "ingress"}
				if c.name == "no direction" {
					delete(body, "direction")
				}
				for k, v := range c.body {
					body[k] = v
				}
				if body["remote_group_id"] == "GROUP" {
					body["remote_group_id"] = g.ID
				}
				rulesBefore, groupsBefore := e.count("security_group_rules"), e.count("security_groups")
				revBefore, _ := groups.Get(ctx, e.client(demo), g.ID).Extract()
				typ, msg := e.createRule(body).fault(t, c.status)
				if typ != c.typ || msg != c.msg {
					t.Errorf("%s %q\nwant %s %q", typ, msg, c.typ, c.msg)
				}
				revAfter, _ := groups.Get(ctx, e.client(demo), g.ID).Extract()
				if e.count("security_group_rules") != rulesBefore || e.count("security_groups") != groupsBefore || revAfter.RevisionNumber != revBefore.RevisionNumber {
					t.Error("a refused rule wrote something")
				}
			})
		}
	})
}

func TestSecurityGroupRuleListFiltersSortAndPages(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		g, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "g"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []int{443, 22, 80} {
			e.ruleOK(map[string]any{"security_group_id": g.ID, "direction": "ingress", "protocol": "tcp", "port_range_min": p, "port_range_max": p})
		}
		list := func(opts rules.ListOpts) []rules.SecGroupRule {
			t.Helper()
			pages, err := rules.List(sc, opts).AllPages(ctx)
			if err != nil {
				t.Fatalf("list %+v: %v", opts, err)
			}
			rs, err := rules.ExtractRules(pages)
			if err != nil {
				t.Fatal(err)
			}
			return rs
		}
		ports := func(rs []rules.SecGroupRule) []int {
			var out []int
			for _, r := range rs {
				out = append(out, r.PortRangeMin)
			}
			return out
		}
		if got := ports(list(rules.ListOpts{Protocol: "tcp", SortKey: "port_range_min", SortDir: "asc"})); !slices.Equal(got, []int{22, 80, 443}) {
			t.Fatalf("sorted = %v", got)
		}
		// Paging one at a time, as gophercloud follows the next links.
		if got := ports(list(rules.ListOpts{Protocol: "tcp", SortKey: "port_range_min", SortDir: "desc", Limit: 1})); !slices.Equal(got, []int{443, 80, 22}) {
			t.Fatalf("paged = %v", got)
		}
		for _, c := range []struct {
			opts rules.ListOpts
			want int
		}{
			{rules.ListOpts{SecGroupID: g.ID}, 5},
			{rules.ListOpts{Direction: "egress"}, 4}, // the default group's two and g's two
			{rules.ListOpts{EtherType: "IPv6"}, 3},   // the default group's two and g's egress
			{rules.ListOpts{PortRangeMin: 22}, 1},
			{rules.ListOpts{Protocol: "udp"}, 0},
			{rules.ListOpts{ProjectID: "demo"}, 9},
		} {
			if got := list(c.opts); len(got) != c.want {
				t.Errorf("list %+v = %d rules; want %d", c.opts, len(got), c.want)
			}
		}
		var out struct {
			Rules []map[string]any `json:"security_group_rules"`
		}
		e.do(http.MethodGet, "/networking/v2.0/security-group-rules?belongs_to_default_sg=true&fields=id", demo, nil).json(t, &out)
		if len(out.Rules) != 4 || len(out.Rules[0]) != 1 {
			t.Fatalf("default rules, id only = %v", out.Rules)
		}
		if typ, _ := e.do(http.MethodGet, "/networking/v2.0/security-group-rules?sort_key=description&sort_dir=asc", demo, nil).fault(t, http.StatusBadRequest); typ != "HTTPBadRequest" {
			t.Fatalf("bad sort key: %s", typ)
		}
		if typ, _ := e.do(http.MethodGet, "/networking/v2.0/security-group-rules?port_range_min=x", demo, nil).fault(t, http.StatusBadRequest); typ != "InvalidInput" {
			t.Fatalf("bad int filter: %s", typ)
		}
		r := e.do(http.MethodGet, "/networking/v2.0/security-group-rules?marker=nope&limit=1", demo, nil)
		if typ, _ := r.fault(t, http.StatusNotFound); typ != "SecurityGroupRuleNotFound" {
			t.Fatalf("bad marker: %s", typ)
		}
	})
}

// A group that another group's rule names as its remote goes, with that
// rule, as in Neutron (whose foreign key cascades); only ports would keep
// it (none carry security groups yet).
func TestSecurityGroupDeleteTakesRulesNamingIt(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		a, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "a"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		b, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "b"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		r := e.ruleOK(map[string]any{"security_group_id": a.ID, "direction": "ingress", "remote_group_id": b.ID})
		aRev, _ := groups.Get(ctx, sc, a.ID).Extract()
		if err := groups.Delete(ctx, sc, b.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if _, err := rules.Get(ctx, sc, r.ID).Extract(); err == nil {
			t.Fatal("the rule naming the deleted group is still there")
		}
		after, err := groups.Get(ctx, sc, a.ID).Extract()
		if err != nil || len(after.Rules) != 2 || after.RevisionNumber != aRev.RevisionNumber+1 {
			t.Fatalf("a after b's delete = %+v, %v", after, err)
		}
	})
}

// Bulk creates (gophercloud's rules.CreateBulk): all of one group and
// project, all or none.
func TestSecurityGroupRulesBulkCreate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		g, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "g"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		h, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "h"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		rule := func(port int) rules.CreateOpts {
			return rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: g.ID,
				Protocol: rules.ProtocolTCP, PortRangeMin: port, PortRangeMax: port}
		}
		got, err := rules.CreateBulk(ctx, sc, []rules.CreateOpts{rule(22), rule(80)}).Extract()
		if err != nil || len(got) != 2 || got[0].PortRangeMin != 22 || got[1].PortRangeMin != 80 || got[1].SecGroupID != g.ID {
			t.Fatalf("bulk = %+v, %v", got, err)
		}
		if after, _ := groups.Get(ctx, sc, g.ID).Extract(); after.RevisionNumber != 2 || len(after.Rules) != 4 {
			t.Fatalf("group after a bulk create: rev %d, %d rules", after.RevisionNumber, len(after.Rules))
		}

		before := e.count("security_group_rules")
		other := rule(443)
		other.SecGroupID = h.ID
		for _, c := range []struct {
			name     string
			opts     []rules.CreateOpts
			status   int
			typ, msg string
		}{
			{"duplicate in the post", []rules.CreateOpts{rule(443), rule(443)}, 409, "DuplicateSecurityGroupRuleInPost", "Duplicate Security Group Rule in POST."},
			{"one exists", []rules.CreateOpts{rule(443), rule(22)}, 409, "SecurityGroupRuleExists", "Security group rule already exists. Rule id is " + got[0].ID + "."},
			{"two groups", []rules.CreateOpts{rule(443), other}, 400, "SecurityGroupNotSingleGroupRules", "Only allowed to update rules for one security profile at a time"},
			{"one bad", []rules.CreateOpts{rule(443), {Direction: "up", EtherType: rules.EtherType4, SecGroupID: g.ID}}, 400, "HTTPBadRequest",
				"Invalid input for direction. Reason: 'up' is not in ['ingress', 'egress']."},
		} {
			_, err := rules.CreateBulk(ctx, sc, c.opts).Extract()
			neutronError(t, err, c.status, c.typ, c.msg)
			if e.count("security_group_rules") != before {
				t.Fatalf("%s: a refused bulk create wrote rules", c.name)
			}
		}
		for _, body := range []string{`{"security_group_rules": []}`, `{"security_group_rules": {}}`, `{"security_group_rules": [null]}`} {
			if typ, _ := e.do(http.MethodPost, "/networking/v2.0/security-group-rules", demo, body).fault(t, http.StatusBadRequest); typ != "HTTPBadRequest" {
				t.Errorf("%s: %s", body, typ)
			}
		}
		// Groups are not created in bulk.
		if typ, msg := e.do(http.MethodPost, "/networking/v2.0/security-groups", demo, `{"security_groups": [{"name": "x"}]}`).fault(t, http.StatusBadRequest); typ != "HTTPBadRequest" || msg != "Bulk operation not supported" {
			t.Fatalf("bulk groups: %s %q", typ, msg)
		}
	})
}
