package netdb

import "strconv"

// ipProtocol is an IP protocol name a security group rule may give, and its
// number (neutron-lib's IP_PROTOCOL_MAP).
type ipProtocol struct {
	name string
	num  int
}

// ipProtocols are the protocol names a rule accepts, in neutron-lib's order
// (the order Neutron's messages list them in). "icmpv6" is the legacy name
// of ipv6-icmp.
var ipProtocols = []ipProtocol{
	{"ah", 51}, {"dccp", 33}, {"egp", 8}, {"esp", 50}, {"gre", 47}, {"hopopt", 0}, {"icmp", 1}, {"igmp", 2},
	{"ip", 0}, {"ipip", 4}, {"ipv6-encap", 41}, {"ipv6-frag", 44}, {"ipv6-icmp", 58}, {"icmpv6", 58},
	{"ipv6-nonxt", 59}, {"ipv6-opts", 60}, {"ipv6-route", 43}, {"ospf", 89}, {"pgm", 113}, {"rsvp", 46},
	{"sctp", 132}, {"tcp", 6}, {"udp", 17}, {"udplite", 136}, {"vrrp", 112},
}

// ProtocolNames are the names a rule's protocol may take besides a number
// from 0 to 255 and none, in Neutron's order.
func ProtocolNames() []string {
	out := make([]string, len(ipProtocols))
	for i, p := range ipProtocols {
		out[i] = p.name
	}
	return out
}

// ProtocolNumber is the IP protocol number of a rule's protocol (a name
// ProtocolNames lists, or a number); ok is false for none or what is
// neither.
func ProtocolNumber(protocol string) (num int, ok bool) {
	if protocol == "" {
		return 0, false
	}
	for _, p := range ipProtocols {
		if p.name == protocol {
			return p.num, true
		}
	}
	n, err := strconv.Atoi(protocol)
	if err != nil || n < 0 || n > 255 {
		return 0, false
	}
	return n, true
}

// protocolKey is how duplicate rules compare protocols, as Neutron's
// _get_ip_proto_name_and_num: a name and its number are the same protocol,
// and a number is known by the last name neutron-lib maps to it (but 58 by
// ipv6-icmp); with IPv6, icmp, icmpv6 and 1 are ipv6-icmp.
func protocolKey(protocol, ethertype string) string {
	if protocol == "" {
		return "+"
	}
	if ethertype == "IPv6" {
		switch protocol {
		case "icmp", "icmpv6":
			protocol = "ipv6-icmp"
		case "1":
			protocol = "58"
		}
	}
	for _, p := range ipProtocols {
		if p.name == protocol {
			return p.name + "/" + strconv.Itoa(p.num)
		}
	}
	name := protocol
	for _, p := range ipProtocols {
		// The last name wins, as in the Python dict neutron-lib builds
		// from its map, less the legacy icmpv6 (58 is ipv6-icmp).
		if strconv.Itoa(p.num) == protocol && p.name != "icmpv6" {
			name = p.name
		}
	}
	return name + "/" + protocol
}
