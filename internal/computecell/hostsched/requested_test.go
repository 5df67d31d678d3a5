package hostsched

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// TestSelectRequested: a request with a requested destination (2.74's
// host and hypervisor_hostname) goes to that host alone, and only when
// every filter passes it: unlike a forced host, a down host, one outside
// the zone, one ignored (a retry) or one of another tenant's aggregate is
// no valid host. Names match exactly. The host scheduler's weighers make
// no difference with one host; there are no alternates.
func TestSelectRequested(t *testing.T) {
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	down := host("h2", 4, 4096, 100)
	down.Up = false
	disabled := host("h3", 4, 4096, 100)
	disabled.Enabled = false
	otherZone := host("h4", 4, 4096, 100)
	otherZone.AvailabilityZone = "az9"
	isolated := host("h5", 4, 4096, 100)
	isolated.Aggregates = []map[string]string{{"filter_tenant_id": "someone-else"}}
	// big would win the weighers: a request for h1 still goes to h1.
	hosts := []Host{host("h1", 4, 4096, 100), down, disabled, otherZone, isolated, host("tiny", 1, 1024, 10), host("big", 64, 65536, 1000)}
	for _, c := range []struct {
		name       string
		host, node string
		num        int
		ignore     []string
		want       []Selection
		noHost     bool
	}{
		{name: "host", host: "h1", want: []Selection{sel("h1")}},
		{name: "node", node: "h1", want: []Selection{sel("h1")}},
		{name: "host and its node", host: "h1", node: "h1", want: []Selection{sel("h1")}},
		{name: "host and another node", host: "h1", node: "big", noHost: true},
		{name: "host in another case", host: "H1", noHost: true},
		{name: "down host", host: "h2", noHost: true},
		{name: "disabled host", host: "h3", noHost: true},
		{name: "host outside the zone", host: "h4", noHost: true},
		{name: "another tenant's host", host: "h5", noHost: true},
		{name: "unknown host", host: "nope", noHost: true},
		{name: "ignored host (a retry)", host: "h1", ignore: []string{"h1"}, noHost: true},
		{name: "several instances on the host", host: "h1", num: 3, want: []Selection{sel("h1"), sel("h1"), sel("h1")}},
		{name: "room for one of two", host: "tiny", num: 2, want: []Selection{sel("tiny")}, noHost: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := &Request{Flavor: small, NumInstances: c.num, AvailabilityZone: "az1", ProjectID: "p1", IgnoreHosts: c.ignore,
				RequestedHost: c.host, RequestedNode: c.node}
			got, err := Default().Select(req, hosts)
			if c.noHost != errors.Is(err, ErrNoValidHost) || (!c.noHost && err != nil) {
				t.Fatalf("Select: %v, want no valid host %v", err, c.noHost)
			}
			if c.noHost && !strings.Contains(err.Error(), "requested host") {
				t.Errorf("no valid host %q does not name the requested host", err)
			}
			if len(got) != len(c.want) || (len(got) > 0 && !reflect.DeepEqual(got, c.want)) {
				t.Errorf("Select = %+v, want %+v", got, c.want)
			}
		})
	}
}

// TestRequestedHosts: the hosts a request may go to before the filters.
func TestRequestedHosts(t *testing.T) {
	hosts := []Host{{Name: "a"}, {Name: "b"}}
	for _, c := range []struct {
		req  Request
		want []string
	}{
		{Request{}, []string{"a", "b"}},
		{Request{RequestedHost: "b"}, []string{"b"}},
		{Request{RequestedNode: "a"}, []string{"a"}},
		{Request{RequestedHost: "a", RequestedNode: "b"}, nil},
		{Request{RequestedHost: "c"}, nil},
	} {
		var got []string
		for _, h := range requestedHosts(&c.req, hosts) {
			got = append(got, h.Name)
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("requestedHosts(%+v) = %v, want %v", c.req, got, c.want)
		}
	}
}
