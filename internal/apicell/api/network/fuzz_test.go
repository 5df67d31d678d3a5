package network_test

import (
	"net/http"
	"net/url"
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
		`{"network": null}`, `[]`, `{"subnet": {"dns_nameservers": [1, 2]}}`,
	} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		for _, c := range []string{"networks", "subnets", "ports"} {
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
	} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, q string) {
		if _, err := url.Parse("http://h/?" + q); err != nil {
			return // no client can send it
		}
		for _, c := range []string{"networks", "subnets", "ports"} {
			r := e.send(t, http.MethodGet, "/networking/v2.0/"+c+"?"+q, demo, nil)
			if r.status >= 500 {
				t.Fatalf("GET %s?%s: %d %s", c, q, r.status, r.body)
			}
		}
	})
}
