package fake

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
)

// The fake hypervisor's firewall is its own state: each instance's port
// filters and each host's address sets, as SetFilter and SetAddressSet
// left them. A filter is an instance's on its host whether or not the
// instance runs there (a restarted agent may set it before the restore
// spawns the instance); removing the instance (Destroy, the shelve
// operation) forgets its filter.

// vmKey is an instance on one host.
type vmKey struct{ host, uuid string }

var (
	_ virt.Firewall          = (*Driver)(nil)
	_ virt.FilterReader      = (*Driver)(nil)
	_ virt.AddressSetUpdater = (*Driver)(nil)
)

// SetAddressSet sets the host's address set of a group; none removes it.
// A set is held as a set: Filter and AddressSet give its addresses sorted.
func (d *Driver) SetAddressSet(_ context.Context, host, groupID string, addrs []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(addrs) == 0 {
		delete(d.sets[host], groupID)
		if len(d.sets[host]) == 0 {
			delete(d.sets, host)
		}
		return nil
	}
	set := make(map[string]struct{}, len(addrs))
	for _, a := range addrs {
		set[a] = struct{}{}
	}
	if d.sets[host] == nil {
		d.sets[host] = map[string]map[string]struct{}{}
	}
	d.sets[host][groupID] = set
	return nil
}

// UpdateAddressSet removes addresses from the host's set of a group, then
// adds some; a set left empty is removed.
func (d *Driver) UpdateAddressSet(_ context.Context, host, groupID string, add, remove []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	set := d.sets[host][groupID]
	for _, a := range remove {
		delete(set, a)
	}
	if len(add) > 0 && set == nil {
		set = make(map[string]struct{}, len(add))
		if d.sets[host] == nil {
			d.sets[host] = map[string]map[string]struct{}{}
		}
		d.sets[host][groupID] = set
	}
	for _, a := range add {
		set[a] = struct{}{}
	}
	if len(set) == 0 {
		delete(d.sets[host], groupID)
		if len(d.sets[host]) == 0 {
			delete(d.sets, host)
		}
	}
	return nil
}

// list is a set's addresses, sorted (nil: none).
func list(set map[string]struct{}) []string {
	if len(set) == 0 {
		return nil
	}
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// SetFilter sets the filter of the instance's ports on host; none removes it.
func (d *Driver) SetFilter(_ context.Context, host, uuid string, ports []virt.PortFilter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(ports) == 0 {
		delete(d.filters, vmKey{host, uuid})
		return nil
	}
	d.filters[vmKey{host, uuid}] = clonePorts(ports)
	return nil
}

// Filter returns the instance's port filters on host and the address sets
// of the host their rules name, and whether it has a filter.
func (d *Driver) Filter(host, uuid string) ([]virt.PortFilter, map[string][]string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps, ok := d.filters[vmKey{host, uuid}]
	if !ok {
		return nil, nil, false
	}
	sets := map[string][]string{}
	for _, p := range ps {
		for _, r := range p.Rules {
			if r.RemoteGroupID != "" {
				sets[r.RemoteGroupID] = list(d.sets[host][r.RemoteGroupID])
			}
		}
	}
	return clonePorts(ps), sets, true
}

// AddressSet returns the host's address set of a group (nil: none).
func (d *Driver) AddressSet(host, groupID string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return list(d.sets[host][groupID])
}

func clonePorts(ps []virt.PortFilter) []virt.PortFilter {
	out := slices.Clone(ps)
	for i := range out {
		p := &out[i]
		p.Addresses = slices.Clone(p.Addresses)
		p.SecurityGroups = slices.Clone(p.SecurityGroups)
		p.AllowedAddressPairs = slices.Clone(p.AllowedAddressPairs)
		p.Pending = slices.Clone(p.Pending)
		p.Rules = slices.Clone(p.Rules)
	}
	return out
}

// Allows says whether the host's filter of the instance lets a new
// connection through one of its ports, as Neutron's iptables and OVS
// firewall drivers decide it: direction "ingress" is a packet to the port
// from remote, "egress" one from the port to remote; protocol is a name
// ("tcp", "icmp", ...) or a number; port is the destination port, or for
// ICMP the type (the code being 0).
//
// A rule matches when its ethertype is remote's address family, its
// protocol is the packet's (any when it names none; "icmp" in an IPv6
// rule is ICMPv6), the port is in its range (for ICMP: the type and the
// code are the rule's, where it names them) and remote is in its prefix,
// or in the host's address set of its remote group (none: nothing), or
// the rule names neither. A port without port security lets everything
// through; one with a group pending lets nothing in. An instance without
// a filter has nothing enforced: everything passes.
//
// Not modelled: the replies a stateful rule lets back (conntrack), the
// source-address check of traffic out of a port (its addresses and
// address pairs), and the traffic Neutron always lets through (DHCP,
// IPv6 neighbour discovery).
func (d *Driver) Allows(host, uuid, direction, protocol string, port int, remote netip.Addr) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	ps, ok := d.filters[vmKey{host, uuid}]
	if !ok {
		return true
	}
	remote = remote.Unmap()
	for _, p := range ps {
		if !p.PortSecurity {
			return true
		}
		if direction == "ingress" && len(p.Pending) > 0 {
			continue
		}
		for _, r := range p.Rules {
			if r.Direction == direction && d.matches(host, r, protocol, port, remote) {
				return true
			}
		}
	}
	return false
}

// matches says whether rule r lets the packet through.
func (d *Driver) matches(host string, r virt.Rule, protocol string, port int, remote netip.Addr) bool {
	v6 := remote.Is6()
	if (r.EtherType == "IPv6") != v6 {
		return false
	}
	want := protoNumber(protocol, v6)
	if rp := protoNumber(r.Protocol, v6); rp != anyProto {
		if rp != want || rp == unknownProto {
			return false
		}
		switch rp {
		case 1, 58: // ICMP: the type and code
			if (r.PortMin != nil && *r.PortMin != port) || (r.PortMax != nil && *r.PortMax != 0) {
				return false
			}
		case 6, 17, 33, 132, 136: // TCP, UDP, DCCP, SCTP, UDP-Lite
			lo, hi := 0, 65535
			if r.PortMin != nil {
				lo, hi = *r.PortMin, *r.PortMin
			}
			if r.PortMax != nil {
				hi = *r.PortMax
			}
			if port < lo || port > hi {
				return false
			}
		}
	}
	switch {
	case r.RemotePrefix != "":
		return inPrefix(r.RemotePrefix, remote)
	case r.RemoteGroupID != "":
		for a := range d.sets[host][r.RemoteGroupID] {
			if inPrefix(a, remote) {
				return true
			}
		}
		return false
	}
	return true
}

// inPrefix says whether a is p, an address or a prefix.
func inPrefix(p string, a netip.Addr) bool {
	if !strings.Contains(p, "/") {
		b, err := netip.ParseAddr(p)
		return err == nil && b.Unmap() == a
	}
	pfx, err := netip.ParsePrefix(p)
	return err == nil && pfx.Masked().Contains(a)
}

const (
	anyProto     = -1
	unknownProto = -2
)

// protoNumbers are the protocol names of the Networking API.
var protoNumbers = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2, "ipip": 4,
	"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
	"ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// protoNumber is a protocol's number (anyProto for none), ICMP being
// ICMPv6 for IPv6.
func protoNumber(p string, v6 bool) int {
	p = strings.ToLower(strings.TrimSpace(p))
	if p == "" || p == "any" {
		return anyProto
	}
	n, ok := protoNumbers[p]
	if !ok {
		var err error
		if n, err = strconv.Atoi(p); err != nil || n < 0 || n > 255 {
			return unknownProto
		}
	}
	if n == 1 && v6 {
		n = 58
	}
	return n
}
