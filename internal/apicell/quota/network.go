package quota

import (
	"fmt"
	"slices"
	"strings"
)

// The Networking API's quota resources, by Neutron's names (its quota
// registry with the ML2, L3, security group and RBAC plugins).
const (
	NetNetwork           = "network"
	NetSubnet            = "subnet"
	NetPort              = "port"
	NetRouter            = "router"
	NetFloatingIP        = "floatingip"
	NetSecurityGroup     = "security_group"
	NetSecurityGroupRule = "security_group_rule"
	NetRBACPolicy        = "rbac_policy"
	NetSubnetPool        = "subnetpool"
)

// NetworkResources is every Networking API quota resource, in the order
// the API lists them.
func NetworkResources() []string {
	return []string{NetNetwork, NetSubnet, NetPort, NetRouter, NetFloatingIP, NetSecurityGroup, NetSecurityGroupRule,
		NetRBACPolicy, NetSubnetPool}
}

// NetworkDefaults are the Networking API's default limits by resource
// (neutron.conf [QUOTAS] quota_<resource>); -1 is unlimited. A resource
// missing from the map takes Neutron's default.
type NetworkDefaults map[string]int64

// NeutronDefaults are Neutron's defaults (neutron/conf/quota.py; a
// subnet pool has none of its own, so default_quota's -1).
func NeutronDefaults() NetworkDefaults {
	return NetworkDefaults{NetNetwork: 100, NetSubnet: 100, NetPort: 500, NetRouter: 10, NetFloatingIP: 50,
		NetSecurityGroup: 10, NetSecurityGroupRule: 100, NetRBACPolicy: 10, NetSubnetPool: Unlimited}
}

// WithNeutronDefaults is d with every resource it lacks at Neutron's
// default (0 is a limit here, as in neutron.conf).
func (d NetworkDefaults) WithNeutronDefaults() NetworkDefaults {
	out := NeutronDefaults()
	for r, v := range d {
		out[r] = v
	}
	return out
}

// Validate refuses a resource the Networking API does not have and a
// limit below -1 or above MaxLimit.
func (d NetworkDefaults) Validate() error {
	known := NetworkResources()
	keys := make([]string, 0, len(d))
	for r := range d {
		keys = append(keys, r)
	}
	slices.Sort(keys)
	for _, r := range keys {
		if !slices.Contains(known, r) {
			return fmt.Errorf("network quota default %q: no such resource (known: %s)", r, strings.Join(known, ", "))
		}
		if v := d[r]; v < Unlimited || v > MaxLimit {
			return fmt.Errorf("network quota default %s = %d must be between -1 (unlimited) and %d", r, v, MaxLimit)
		}
	}
	return nil
}
