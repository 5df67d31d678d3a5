package network_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// FuzzUpdateBodies sends arbitrary bodies to the updates of networks,
// subnets, security groups and ports, each on a network (and its subnet),
// group or port of its own, by an admin and by the owner: the answer is a
// success or a Neutron-shaped 4xx, never a 500. (The creates:
// FuzzCreateBodies.)
func FuzzUpdateBodies(f *testing.F) {
	seeds := map[string][]string{
		"networks": {`{"network": {"name": "n2", "admin_state_up": false, "shared": true, "mtu": 1400, "description": "d"}}`,
			`{"network": {"mtu": "x"}}`, `{"network": {"admin_state_up": 2}}`, `{"network": {"id": "other"}}`, `{"network": {"tenant_id": "x"}}`,
			`{"network": {"router:external": true}}`, `{"network": {"port_security_enabled": "no"}}`},
		"subnets": {`{"subnet": {"name": "s2", "enable_dhcp": false, "gateway_ip": "192.168.7.254", "dns_nameservers": ["8.8.8.8"]}}`,
			`{"subnet": {"gateway_ip": null}}`, `{"subnet": {"gateway_ip": "10.9.9.9"}}`, `{"subnet": {"cidr": "10.0.0.0/24"}}`,
			`{"subnet": {"allocation_pools": [{"start": "192.168.7.9", "end": "192.168.7.2"}]}}`,
			`{"subnet": {"host_routes": [{"destination": "1.2.3.4/8", "nexthop": "192.168.7.1"}]}}`, `{"subnet": {"dns_nameservers": [1, 2]}}`,
			`{"subnet": {"ip_version": 6}}`},
		"security-groups": {`{"security_group": {"name": "sg2", "description": "d", "stateful": false}}`, `{"security_group": {"name": "default"}}`,
			`{"security_group": {"stateful": "maybe"}}`, `{"security_group": {"project_id": "x"}}`, `{"security_group": {"security_group_rules": []}}`},
		"ports": {`{"port": {"name": "p2", "admin_state_up": false, "security_groups": [], "port_security_enabled": false}}`,
			`{"port": {"allowed_address_pairs": [{"ip_address": "10.0.0.0/8", "mac_address": "fa:16:3e:00:00:01"}]}}`,
			`{"port": {"mac_address": "fa:16:3e:00:00:02", "binding:host_id": "h", "binding:profile": {"a": 1}}}`,
			`{"port": {"fixed_ips": []}}`, `{"port": {"network_id": "x"}}`, `{"port": {"security_groups": ["x"]}}`, `{"port": {"device_id": null}}`},
	}
	kinds := []string{"networks", "subnets", "security-groups", "ports"}
	for i, k := range kinds {
		for _, s := range append(seeds[k], `{}`, `null`, `[]`, ``, `{"x"`, `{"`+strings.ReplaceAll(strings.TrimSuffix(k, "s"), "-", "_")+`": null}`) {
			f.Add(uint8(i), false, s)
			f.Add(uint8(i), true, s)
		}
	}
	e := newEnv(f)
	// Each run makes a network and perhaps a group of demo's: no quota.
	e.unlimited(f, "demo")
	n := 0
	// create makes an object of demo's (as the admin) and returns its id.
	create := func(t *testing.T, kind, body string) string {
		r := e.send(t, http.MethodPost, "/networking/v2.0/"+kind, admin, body)
		var out map[string]struct {
			ID string `json:"id"`
		}
		r.json(t, &out)
		key := strings.ReplaceAll(strings.TrimSuffix(kind, "s"), "-", "_")
		if r.status != http.StatusCreated || out[key].ID == "" {
			t.Fatalf("create %s: %d %s", key, r.status, r.body)
		}
		return out[key].ID
	}
	f.Fuzz(func(t *testing.T, kind uint8, asAdmin bool, body string) {
		n++
		token := demo
		if asAdmin {
			token = admin
		}
		net := create(t, "networks", fmt.Sprintf(`{"network": {"name": "fz-%d", "project_id": "demo"}}`, n))
		id := net
		k := kinds[int(kind)%len(kinds)]
		switch k {
		case "security-groups":
			id = create(t, k, fmt.Sprintf(`{"security_group": {"name": "fz-%d", "project_id": "demo"}}`, n))
		case "subnets":
			id = create(t, "subnets", `{"subnet": {"network_id": "`+net+`", "ip_version": 4, "cidr": "192.168.7.0/24", "project_id": "demo"}}`)
		case "ports":
			id = create(t, "ports", `{"port": {"network_id": "`+e.private+`", "project_id": "demo"}}`)
		}
		r := e.send(t, http.MethodPut, "/networking/v2.0/"+k+"/"+id, token, body)
		if r.status >= 500 {
			t.Fatalf("PUT %s %q: %d %s", k, body, r.status, r.body)
		}
		if r.status >= 400 {
			r.fault(t, r.status)
		}
	})
}
