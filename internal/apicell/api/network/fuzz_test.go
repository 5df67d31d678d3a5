package network_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzCreateBodies sends arbitrary bodies to the creates: whatever comes
// in, the answer is a success or a Neutron-shaped 4xx, never a 500.
func FuzzCreateBodies(f *testing.F) {
	for _, s := range []string{
		`{"network": {"name": "n", "mtu": 1400, "shared": "true"}}`,
		`{"network": {"admin_state_up": 2}}`,
		`{"subnet": {"network_id": "NET", "ip_version": 4, "cidr": "192.168.0.0/24", "allocation_pools": [{"start": "192.168.0.9", "end": "192.168.0.2"}]}}`,
		`{"subnet": {"network_id": "NET", "ip_version": "4", "cidr": "0.0.0.0/0", "gateway_ip": null, "host_routes": [{"destination": "1.2.3.4/8", "nexthop": "192.168.0.1"}]}}`,
		`{"port": {"network_id": "NET"}}`,
		`{"port": {"network_id": "NET", "fixed_ips": [{"ip_address": "10.0.0.9"}, {"subnet_id": "x"}], "mac_address": "FA:16:3E:00:00:01"}}`,
		`{"port": {"network_id": "NET", "fixed_ips": [{"ip_address": "10.0.0.300"}], "security_groups": ["SG"], "port_security_enabled": false}}`,
		`{"port": {"network_id": "NET", "allowed_address_pairs": [{"ip_address": "10.1.0.0/16"}, {"mac_address": "x"}], "binding:profile": [], "tags": ["a", 1]}}`,
		`{"port": {"network_id": "NET", "binding:vnic_type": "direct", "binding:host_id": "h", "device_id": 7, "admin_state_up": "no"}}`,
		`{"network": null}`, `[]`, `{"subnet": {"dns_nameservers": [1, 2]}}`,
		`{"security_group": {"name": "web", "description": "d", "stateful": "false"}}`,
		`{"security_group": {"name": "DEFAULT", "tenant_id": "p", "project_id": "q"}}`,
		`{"security_group_rule": {"security_group_id": "SG", "direction": "ingress", "protocol": "TCP", "port_range_min": "22", "port_range_max": 22, "remote_ip_prefix": "10.0.0.1/8"}}`,
		`{"security_group_rule": {"security_group_id": "SG", "direction": "egress", "ethertype": "ipv6", "protocol": 1, "port_range_max": 300}}`,
		`{"security_group_rule": {"security_group_id": "SG", "direction": "ingress", "remote_group_id": "SG", "remote_ip_prefix": "::/0", "protocol": "any"}}`,
		`{"security_group_rule": {"security_group_id": "SG", "direction": "ingress", "protocol": 256, "port_range_min": -1, "remote_address_group_id": "x"}}`,
		`{"security_group_rule": {"security_group_id": null, "direction": ["ingress"], "ethertype": 4}}`,
		`{"security_group_rules": [{"security_group_id": "SG", "direction": "ingress", "protocol": "udp", "port_range_min": 53, "port_range_max": 53}, {"security_group_id": "SG", "direction": "egress"}]}`,
		`{"security_group_rules": [{}, null, 1]}`,
	} {
		f.Add(s)
	}
	e := newEnv(f)
	// "SG" in a body stands for a group that exists (admin's default).
	var groups struct {
		Groups []struct {
			ID string `json:"id"`
		} `json:"security_groups"`
	}
	e.send(f, http.MethodGet, "/networking/v2.0/security-groups", admin, nil).json(f, &groups)
	sg := groups.Groups[0].ID
	f.Fuzz(func(t *testing.T, body string) {
		body = strings.ReplaceAll(strings.ReplaceAll(body, "SG", sg), "NET", e.private)
		for _, c := range []string{"networks", "subnets", "ports", "security-groups", "security-group-rules"} {
			r := e.send(t, http.MethodPost, "/networking/v2.0/"+c, admin, body)
			if r.status >= 500 {
				t.Fatalf("POST %s %q: %d %s", c, body, r.status, r.body)
			}
			if r.status >= 400 {
				r.fault(t, r.status)
			}
		}
	})
}

// FuzzListQueries sends arbitrary query strings to the lists.
func FuzzListQueries(f *testing.F) {
	for _, s := range []string{
		"limit=2&marker=x&page_reverse=true", "fields=id&fields=name&sort_key=name&sort_dir=desc",
		"fixed_ips=ip_address=10.0.0.2&fixed_ips=subnet_id=x", "shared=1&mtu=9&tags=a", "fixed_ips=%%", "name=%00",
		"tags=a,b&not-tags-any=c,,&tags-any=", "protocol=TCP&port_range_min=22&belongs_to_default_sg=1&sort_key=normalized_cidr&sort_dir=asc",
		"project_id=p&tenant_id=q&stateful=no&revision_number=1",
	} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, q string) {
		if _, err := url.Parse("http://h/?" + q); err != nil {
			return // no client can send it
		}
		for _, c := range []string{"networks", "subnets", "ports", "security-groups", "security-group-rules"} {
			r := e.send(t, http.MethodGet, "/networking/v2.0/"+c+"?"+q, demo, nil)
			if r.status >= 500 {
				t.Fatalf("GET %s?%s: %d %s", c, q, r.status, r.body)
			}
		}
	})
}

// FuzzSecurityGroupTags sends arbitrary bodies to a group's tags and
// arbitrary tags in its path: a success or a Neutron-shaped 4xx, never a
// 500.
func FuzzSecurityGroupTags(f *testing.F) {
	for _, s := range []string{`{"tags": ["a", "b"]}`, `{"tags": ["a", "a"]}`, `{"tags": "a"}`, `{"tags": [1]}`, `{"tags": null}`,
		`{}`, `[]`, ``, `{"tags": ["` + strings.Repeat("x", 256) + `"]}`} {
		f.Add(s, "red")
	}
	f.Add(`{"tags": []}`, strings.Repeat("y", 300))
	e := newEnv(f)
	var g struct {
		Group struct {
			ID string `json:"id"`
		} `json:"security_group"`
	}
	e.send(f, http.MethodPost, "/networking/v2.0/security-groups", demo, `{"security_group": {"name": "fz"}}`).json(f, &g)
	f.Fuzz(func(t *testing.T, body, tag string) {
		base := "/networking/v2.0/security-groups/" + g.Group.ID + "/tags"
		tagPath := base + "/" + url.PathEscape(tag)
		for _, req := range []struct{ method, path, body string }{
			{http.MethodPut, base, body}, {http.MethodPut, tagPath, ""}, {http.MethodGet, tagPath, ""},
			{http.MethodDelete, tagPath, ""}, {http.MethodGet, base, ""},
		} {
			var b any
			if req.body != "" {
				b = req.body
			}
			r := e.send(t, req.method, req.path, demo, b)
			if r.status >= 500 {
				t.Fatalf("%s %s %q: %d %s", req.method, req.path, req.body, r.status, r.body)
			}
			if r.status >= 400 {
				r.fault(t, r.status)
			}
		}
	})
}
