package firewall

import (
	"reflect"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func iptr(n int) *int { return &n }

// defaultGroup is Neutron's default group of a project: everything out,
// in from the group's own members.
func defaultGroup() Group {
	return Group{ID: "def", Revision: 1, Stateful: true, Rules: []wire.SecurityGroupRule{
		{ID: "e4", Direction: "egress", EtherType: "IPv4"},
		{ID: "e6", Direction: "egress", EtherType: "IPv6"},
		{ID: "i4", Direction: "ingress", EtherType: "IPv4", RemoteGroupID: "def"},
		{ID: "i6", Direction: "ingress", EtherType: "IPv6", RemoteGroupID: "def"},
	}}
}

func TestEffective(t *testing.T) {
	ssh := Group{ID: "ssh", Revision: 3, Stateful: true, Rules: []wire.SecurityGroupRule{
		{ID: "s", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: iptr(22), PortRangeMax: iptr(22), RemoteIPPrefix: "0.0.0.0/0"},
		{ID: "ping", Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", PortRangeMin: iptr(8), PortRangeMax: iptr(0)},
		// A host address is its /32; a prefix is masked.
		{ID: "h", Direction: "ingress", EtherType: "ipv4", Protocol: "udp", RemoteIPPrefix: "192.0.2.7"},
		{ID: "m", Direction: "INGRESS", EtherType: "IPv6", Protocol: "58", RemoteIPPrefix: "2001:db8::1/32"},
		// A prefix of the other family matches nothing: left out.
		{ID: "bad", Direction: "ingress", EtherType: "IPv4", RemoteIPPrefix: "2001:db8::/32"},
	}}
	stateless := Group{ID: "sl", Revision: 1, Stateful: false, Rules: []wire.SecurityGroupRule{{ID: "x", Direction: "egress", EtherType: "IPv4"}}}
	asked := Group{ID: "asked"} // revision 0: asked for, not come
	groups := map[string]Group{"def": defaultGroup(), "ssh": ssh, "sl": stateless, "asked": asked}
	addrs := []string{"10.0.0.5"}
	defRules := []virt.Rule{
		{Direction: "egress", EtherType: "IPv4", Stateful: true, RuleID: "e4", GroupID: "def"},
		{Direction: "egress", EtherType: "IPv6", Stateful: true, RuleID: "e6", GroupID: "def"},
		{Direction: "ingress", EtherType: "IPv4", RemoteGroupID: "def", Stateful: true, RuleID: "i4", GroupID: "def"},
		{Direction: "ingress", EtherType: "IPv6", RemoteGroupID: "def", Stateful: true, RuleID: "i6", GroupID: "def"},
	}
	sshRules := []virt.Rule{
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: iptr(22), PortMax: iptr(22), RemotePrefix: "0.0.0.0/0", Stateful: true, RuleID: "s", GroupID: "ssh"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", PortMin: iptr(8), PortMax: iptr(0), Stateful: true, RuleID: "ping", GroupID: "ssh"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "udp", RemotePrefix: "192.0.2.7/32", Stateful: true, RuleID: "h", GroupID: "ssh"},
		{Direction: "ingress", EtherType: "IPv6", Protocol: "58", RemotePrefix: "2001:db8::/32", Stateful: true, RuleID: "m", GroupID: "ssh"},
	}
	cases := []struct {
		name string
		nic  wire.NIC
		want virt.PortFilter
	}{
		{"default group: egress any, ingress from the group's set",
			wire.NIC{PortID: "p", SecurityGroups: []string{"def"}, PortRevision: 1},
			virt.PortFilter{PortID: "p", Addresses: addrs, PortSecurity: true, SecurityGroups: []string{"def"}, Rules: defRules}},
		{"two groups, in the NIC's order, a group named twice once",
			wire.NIC{PortID: "p", SecurityGroups: []string{"ssh", "def", "ssh"}, PortRevision: 2},
			virt.PortFilter{PortID: "p", Addresses: addrs, PortSecurity: true, SecurityGroups: []string{"ssh", "def"}, Rules: append(append([]virt.Rule{}, sshRules...), defRules...)}},
		{"stateless group",
			wire.NIC{PortID: "p", SecurityGroups: []string{"sl"}, PortRevision: 1},
			virt.PortFilter{PortID: "p", Addresses: addrs, PortSecurity: true, SecurityGroups: []string{"sl"},
				Rules: []virt.Rule{{Direction: "egress", EtherType: "IPv4", RuleID: "x", GroupID: "sl"}}}},
		{"port security off: no rules",
			wire.NIC{PortID: "p", SecurityGroups: []string{"def"}, NoPortSecurity: true, PortRevision: 1},
			virt.PortFilter{PortID: "p", Addresses: addrs, SecurityGroups: []string{"def"}}},
		{"a group asked for and one unknown: pending, the held one's rules stay",
			wire.NIC{PortID: "p", SecurityGroups: []string{"asked", "def", "nowhere"}, PortRevision: 1},
			virt.PortFilter{PortID: "p", Addresses: addrs, PortSecurity: true, SecurityGroups: []string{"asked", "def", "nowhere"},
				Pending: []string{"asked", "nowhere"}, Rules: defRules}},
		{"no group, port security on: nothing allowed",
			wire.NIC{PortID: "p", PortRevision: 1},
			virt.PortFilter{PortID: "p", Addresses: addrs, PortSecurity: true}},
		{"allowed address pairs go with the port",
			wire.NIC{PortID: "p", SecurityGroups: []string{"def"}, PortRevision: 1,
				AllowedAddressPairs: []wire.AddressPair{{IPAddress: "10.0.9.0/24"}, {IPAddress: "10.0.0.100", MACAddress: "fa:16:3e:00:00:01"}}},
			virt.PortFilter{PortID: "p", Addresses: addrs, PortSecurity: true, SecurityGroups: []string{"def"}, Rules: defRules,
				AllowedAddressPairs: []virt.AddressPair{{IPAddress: "10.0.9.0/24"}, {IPAddress: "10.0.0.100", MACAddress: "fa:16:3e:00:00:01"}}}},
	}
	for _, c := range cases {
		got := Effective(c.nic, addrs, groups)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

// TestAnswer checks instance_filter's answer: a remote group expanded to
// the addresses of the host's set of the rule's family, prefixes as they
// are, the fields the wire requires never null.
func TestAnswer(t *testing.T) {
	f := []virt.PortFilter{Effective(wire.NIC{PortID: "p", SecurityGroups: []string{"def"}, PortRevision: 1}, nil, map[string]Group{"def": defaultGroup()}),
		{PortID: "q", PortSecurity: true, Rules: []virt.Rule{{Direction: "ingress", EtherType: "IPv4", RemotePrefix: "0.0.0.0/0", RuleID: "r", GroupID: "g"}}}}
	a := Answer("u", "h", f, map[string][]string{"def": {"10.0.0.5", "10.1.0.0/16", "2001:db8::5"}})
	if a.UUID != "u" || a.Host != "h" || len(a.Ports) != 2 {
		t.Fatalf("answer %+v", a)
	}
	p := a.Ports[0]
	if p.Addresses == nil || p.SecurityGroups == nil || len(p.Rules) != 4 {
		t.Fatalf("port %+v", p)
	}
	if got := p.Rules[2].Remote; !reflect.DeepEqual(got, []string{"10.0.0.5", "10.1.0.0/16"}) || p.Rules[2].RemoteGroupID != "def" {
		t.Errorf("IPv4 rule of the default group: remote %v", got)
	}
	if got := p.Rules[3].Remote; !reflect.DeepEqual(got, []string{"2001:db8::5"}) {
		t.Errorf("IPv6 rule of the default group: remote %v", got)
	}
	if p.Rules[0].Remote != nil {
		t.Errorf("egress to any: remote %v", p.Rules[0].Remote)
	}
	if got := a.Ports[1].Rules[0].Remote; !reflect.DeepEqual(got, []string{"0.0.0.0/0"}) {
		t.Errorf("prefix rule: remote %v", got)
	}
	if empty := Answer("u", "h", nil, nil); empty.Ports == nil {
		t.Error("an instance without filter answers null ports")
	}
}

// TestToPorts checks how addresses are given to NICs: a NIC with a port
// gets that port's addresses; one whose port the cell made gets the next
// address left on its network and the port's id.
func TestToPorts(t *testing.T) {
	nics := []wire.NIC{
		{NetworkID: "n1", NetworkName: "net1"},
		{NetworkID: "n2", PortID: "api-port"},
		{NetworkID: "n1", NetworkName: "net1"},
	}
	addrs := []wire.Address{
		{Addr: "10.0.0.5", PortID: "cell-a", NetworkID: "n1", Network: "net1"},
		{Addr: "10.2.0.5", PortID: "api-port", NetworkID: "n2"},
		{Addr: "10.2.0.6", PortID: "api-port", NetworkID: "n2"},
		{Addr: "10.0.0.9", PortID: "cell-b", NetworkID: "n1", Network: "net1"},
	}
	ps := toPorts(nics, addrs)
	want := [][2]any{{"cell-a", []string{"10.0.0.5"}}, {"api-port", []string{"10.2.0.5", "10.2.0.6"}}, {"cell-b", []string{"10.0.0.9"}}}
	for i, p := range ps {
		if p.nic.PortID != want[i][0] || !reflect.DeepEqual(p.addrs, want[i][1]) {
			t.Errorf("NIC %d: port %q addresses %v, want %v", i, p.nic.PortID, p.addrs, want[i])
		}
	}
}
