// Package firewall is the compute agent's enforcement of security groups:
// it turns the groups a compute cell holds (celldb's sg_groups and
// sg_members, which the cell's network handlers keep) and the NICs of the
// instances on this process's hosts into each port's effective rules, and
// programs them into the hypervisor driver through virt.Firewall: one
// filter per instance (SetFilter), and per host the address sets of the
// groups its instances' rules name as remote (SetAddressSet).
//
// Effective is the pure part: one port's filter from its NIC and the
// groups. The Syncer (syncer.go) is the stateful part, one per compute
// process: it holds the groups and the instances' ports in memory, polls
// celldb's sg_state generations, and programs the driver only with what
// changed, so that a spawn whose groups it holds costs no SQL statement.
package firewall

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Group is a security group as the cell holds it.
type Group struct {
	ID string
	// Revision is the revision of the group's rules; 0 is a group asked
	// for but not come yet: a port in it is Pending.
	Revision  int64
	MemberSeq int64
	// MemberEpoch rises when the cell replaced the member set at the same
	// sequence (a resync from the root).
	MemberEpoch int64
	Stateful    bool
	Rules       []wire.SecurityGroupRule
	// Members are the distinct addresses (or prefixes) of the group's
	// members, sorted.
	Members []string
}

// held says whether g is a group whose rules the cell holds.
func held(g Group, ok bool) bool { return ok && g.Revision > 0 }

// Effective is what the host enforces on one port: the NIC (its PortID
// the port's), addrs its addresses. Without port security, nothing is
// filtered and there are no rules. Otherwise the rules are each rule of
// each of the port's groups (in the NIC's order of groups, then the
// group's), with the group's statefulness; a rule's remote group stays a
// reference to the host's address set of that group; a rule whose remote
// prefix is not of its ethertype matches nothing and is left out. A group
// of the port the cell does not hold yet is Pending: nothing is let in
// until it comes.
func Effective(nic wire.NIC, addrs []string, groups map[string]Group) virt.PortFilter {
	pf := virt.PortFilter{PortID: nic.PortID, Addresses: slices.Clone(addrs), PortSecurity: !nic.NoPortSecurity}
	for _, id := range nic.SecurityGroups {
		if !slices.Contains(pf.SecurityGroups, id) {
			pf.SecurityGroups = append(pf.SecurityGroups, id)
		}
	}
	for _, p := range nic.AllowedAddressPairs {
		pf.AllowedAddressPairs = append(pf.AllowedAddressPairs, virt.AddressPair{IPAddress: p.IPAddress, MACAddress: p.MACAddress})
	}
	if nic.NoPortSecurity {
		return pf
	}
	for _, id := range pf.SecurityGroups {
		g, ok := groups[id]
		if !held(g, ok) {
			pf.Pending = append(pf.Pending, id)
			continue
		}
		for _, r := range g.Rules {
			if vr, ok := rule(r, g); ok {
				pf.Rules = append(pf.Rules, vr)
			}
		}
	}
	return pf
}

// rule is a group's rule as a host enforces it; false for a rule that
// matches nothing (an unknown direction or ethertype, a remote prefix of
// the other address family or not a prefix at all).
func rule(r wire.SecurityGroupRule, g Group) (virt.Rule, bool) {
	vr := virt.Rule{Direction: strings.ToLower(r.Direction), Protocol: r.Protocol, RemoteGroupID: r.RemoteGroupID,
		Stateful: g.Stateful, RuleID: r.ID, GroupID: g.ID}
	if vr.Direction != "ingress" && vr.Direction != "egress" {
		return vr, false
	}
	switch strings.ToLower(r.EtherType) {
	case "ipv4":
		vr.EtherType = "IPv4"
	case "ipv6":
		vr.EtherType = "IPv6"
	default:
		return vr, false
	}
	if r.PortRangeMin != nil {
		vr.PortMin = new(int)
		*vr.PortMin = *r.PortRangeMin
	}
	if r.PortRangeMax != nil {
		vr.PortMax = new(int)
		*vr.PortMax = *r.PortRangeMax
	}
	if r.RemoteIPPrefix != "" {
		p, ok := prefix(r.RemoteIPPrefix)
		if !ok || p.Addr().Is6() != (vr.EtherType == "IPv6") {
			return vr, false
		}
		vr.RemotePrefix = p.String()
		vr.RemoteGroupID = ""
	}
	return vr, true
}

// prefix parses an address or a prefix (an address is its host prefix),
// masked.
func prefix(s string) (netip.Prefix, bool) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	return p.Masked(), true
}

// Answer is instance_filter's answer from what the host's driver holds:
// each port's filter, its remote groups expanded to the addresses of the
// host's set of the group that are of the rule's ethertype.
func Answer(uuid, host string, ports []virt.PortFilter, sets map[string][]string) wire.InstanceFilterAnswer {
	out := wire.InstanceFilterAnswer{UUID: uuid, Host: host, Ports: []wire.PortFilter{}}
	for _, p := range ports {
		wp := wire.PortFilter{PortID: p.PortID, Addresses: nonNil(p.Addresses), PortSecurity: p.PortSecurity,
			SecurityGroups: nonNil(p.SecurityGroups), Pending: p.Pending, Rules: []wire.EffectiveRule{}}
		for _, a := range p.AllowedAddressPairs {
			wp.AllowedAddressPairs = append(wp.AllowedAddressPairs, wire.AddressPair{IPAddress: a.IPAddress, MACAddress: a.MACAddress})
		}
		for _, r := range p.Rules {
			er := wire.EffectiveRule{Direction: r.Direction, EtherType: r.EtherType, Protocol: r.Protocol,
				PortRangeMin: r.PortMin, PortRangeMax: r.PortMax, RemoteGroupID: r.RemoteGroupID, RuleID: r.RuleID, GroupID: r.GroupID}
			switch {
			case r.RemotePrefix != "":
				er.Remote = []string{r.RemotePrefix}
			case r.RemoteGroupID != "":
				for _, a := range sets[r.RemoteGroupID] {
					if p, ok := prefix(a); ok && p.Addr().Is6() == (r.EtherType == "IPv6") {
						er.Remote = append(er.Remote, a)
					}
				}
			}
			wp.Rules = append(wp.Rules, er)
		}
		out.Ports = append(out.Ports, wp)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
