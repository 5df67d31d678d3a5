package quota

import "testing"

// TestNetworkDefaults: Neutron's defaults fill what is not given, a given
// 0 stays; unknown resources and limits out of range are refused.
func TestNetworkDefaults(t *testing.T) {
	d := NetworkDefaults{NetNetwork: 0, NetPort: -1}.WithNeutronDefaults()
	want := map[string]int64{NetNetwork: 0, NetSubnet: 100, NetPort: -1, NetRouter: 10, NetFloatingIP: 50, NetSecurityGroup: 10,
		NetSecurityGroupRule: 100, NetRBACPolicy: 10, NetSubnetPool: -1}
	if len(d) != len(want) {
		t.Fatalf("defaults = %v", d)
	}
	for r, v := range want {
		if d[r] != v {
			t.Errorf("%s = %d, want %d", r, d[r], v)
		}
	}
	for _, c := range []struct {
		d  NetworkDefaults
		ok bool
	}{
		{nil, true}, {NetworkDefaults{NetPort: MaxLimit, NetSubnet: -1}, true},
		{NetworkDefaults{"networks": 1}, false}, {NetworkDefaults{NetSubnet: -2}, false}, {NetworkDefaults{NetPort: MaxLimit + 1}, false},
	} {
		if err := c.d.Validate(); (err == nil) != c.ok {
			t.Errorf("Validate(%v) = %v", c.d, err)
		}
	}
}
