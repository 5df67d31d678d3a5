package hostsched

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// TestSelectForced: a request forced to a host or node goes there without
// the filters (zone, down host, retry) but not to a disabled host or one
// without room, and has no alternates.
func TestSelectForced(t *testing.T) {
	small := capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}
	down := host("h2", 4, 4096, 100)
	down.Up = false
	disabled := host("h3", 4, 4096, 100)
	disabled.Enabled = false
	otherZone := host("h4", 4, 4096, 100)
	otherZone.AvailabilityZone = "az9"
	hosts := []Host{host("h1", 4, 4096, 100), down, disabled, otherZone, host("tiny", 1, 1024, 10)}
	for _, c := range []struct {
		name       string
		host, node string
		num        int
		ignore     []string
		want       []Selection
		noHost     bool
	}{
		{name: "host", host: "h1", want: []Selection{sel("h1")}},
		{name: "host in any case", host: "H1", want: []Selection{sel("h1")}},
		{name: "node", node: "h1", want: []Selection{sel("h1")}},
		{name: "host and node", host: "h1", node: "h1", want: []Selection{sel("h1")}},
		{name: "host and another node", host: "h1", node: "h4", noHost: true},
		{name: "down host", host: "h2", want: []Selection{sel("h2")}},
		{name: "host outside the zone", host: "h4", want: []Selection{sel("h4")}},
		{name: "disabled host", host: "h3", noHost: true},
		{name: "unknown host", host: "nope", noHost: true},
		{name: "ignored host", host: "h1", ignore: []string{"h1"}, noHost: true},
		{name: "several instances on the host", host: "h1", num: 3, want: []Selection{sel("h1"), sel("h1"), sel("h1")}},
		{name: "room for one of two", host: "tiny", num: 2, want: []Selection{sel("tiny")}, noHost: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := &Request{Flavor: small, NumInstances: c.num, AvailabilityZone: "az1", IgnoreHosts: c.ignore, ForcedHost: c.host, ForcedNode: c.node}
			got, err := Default().Select(req, hosts)
			if c.noHost != errors.Is(err, ErrNoValidHost) || (!c.noHost && err != nil) {
				t.Fatalf("Select: %v, want no valid host %v", err, c.noHost)
			}
			if len(got) != len(c.want) || (len(got) > 0 && !reflect.DeepEqual(got, c.want)) {
				t.Errorf("Select = %+v, want %+v", got, c.want)
			}
		})
	}
}
