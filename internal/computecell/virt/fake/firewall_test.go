package fake_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
)

func ip(p int) *int { return &p }

// TestAllows checks Allows against filters of the kinds the compute
// agent sets: the default group's rules, a port range, ICMP, a remote
// group's address set, port security off and a pending group.
func TestAllows(t *testing.T) {
	ctx := context.Background()
	d, err := fake.New(fake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	const h = "h1"
	def := []virt.Rule{
		{Direction: "egress", EtherType: "IPv4", RuleID: "e4", GroupID: "default"},
		{Direction: "egress", EtherType: "IPv6", RuleID: "e6", GroupID: "default"},
		{Direction: "ingress", EtherType: "IPv4", RemoteGroupID: "default", RuleID: "i4", GroupID: "default"},
		{Direction: "ingress", EtherType: "IPv6", RemoteGroupID: "default", RuleID: "i6", GroupID: "default"},
	}
	web := []virt.Rule{
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortMin: ip(22), PortMax: ip(22), RemotePrefix: "0.0.0.0/0", RuleID: "ssh", GroupID: "web"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "6", PortMin: ip(8000), PortMax: ip(8080), RemotePrefix: "192.0.2.0/24", RuleID: "http", GroupID: "web"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", PortMin: ip(8), RuleID: "ping", GroupID: "web"},
		{Direction: "ingress", EtherType: "IPv6", Protocol: "icmp", RuleID: "ping6", GroupID: "web"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "udp", RemotePrefix: "198.51.100.7", RuleID: "udp", GroupID: "web"},
	}
	port := func(id string, rules ...[]virt.Rule) virt.PortFilter {
		p := virt.PortFilter{PortID: id, Addresses: []string{"10.0.0.5"}, PortSecurity: true}
		for _, rs := range rules {
			p.Rules = append(p.Rules, rs...)
		}
		return p
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.SetAddressSet(ctx, h, "default", []string{"10.0.0.5", "10.0.0.6", "2001:db8::6", "10.1.0.0/16"}))
	must(d.SetFilter(ctx, h, "def", []virt.PortFilter{port("p-def", def)}))
	must(d.SetFilter(ctx, h, "web", []virt.PortFilter{port("p-web", def, web)}))
	must(d.SetFilter(ctx, h, "open", []virt.PortFilter{{PortID: "p-open", PortSecurity: false}}))
	pending := port("p-pend", def)
	pending.Pending = []string{"late"}
	must(d.SetFilter(ctx, h, "pending", []virt.PortFilter{pending}))
	must(d.SetFilter(ctx, h, "two", []virt.PortFilter{port("p-a", def), port("p-b", web)}))

	a := netip.MustParseAddr
	cases := []struct {
		name, vm, dir, proto string
		port                 int
		remote               netip.Addr
		want                 bool
	}{
		{"default: egress any v4", "def", "egress", "tcp", 443, a("203.0.113.9"), true},
		{"default: egress any v6", "def", "egress", "udp", 53, a("2001:db8::53"), true},
		{"default: ingress from a member", "def", "ingress", "tcp", 22, a("10.0.0.6"), true},
		{"default: ingress from a member prefix", "def", "ingress", "udp", 9, a("10.1.2.3"), true},
		{"default: ingress from a v6 member", "def", "ingress", "tcp", 80, a("2001:db8::6"), true},
		{"default: ingress from a stranger", "def", "ingress", "tcp", 22, a("203.0.113.9"), false},
		{"default: v4-mapped member is v4", "def", "ingress", "tcp", 22, a("::ffff:10.0.0.6"), true},
		{"ssh from anywhere", "web", "ingress", "tcp", 22, a("203.0.113.9"), true},
		{"ssh rule is tcp only", "web", "ingress", "udp", 22, a("203.0.113.9"), false},
		{"ssh rule is port 22 only", "web", "ingress", "tcp", 23, a("203.0.113.9"), false},
		{"ssh rule is v4 only", "web", "ingress", "tcp", 22, a("2001:db8::9"), false},
		{"range by number, low end", "web", "ingress", "tcp", 8000, a("192.0.2.1"), true},
		{"range by number, high end", "web", "ingress", "6", 8080, a("192.0.2.1"), true},
		{"range, past the end", "web", "ingress", "tcp", 8081, a("192.0.2.1"), false},
		{"range, outside the prefix", "web", "ingress", "tcp", 8000, a("192.0.3.1"), false},
		{"icmp echo (type 8)", "web", "ingress", "icmp", 8, a("203.0.113.9"), true},
		{"icmp by number", "web", "ingress", "1", 8, a("203.0.113.9"), true},
		{"icmp other type", "web", "ingress", "icmp", 13, a("203.0.113.9"), false},
		{"icmp in a v6 rule is icmpv6", "web", "ingress", "ipv6-icmp", 128, a("2001:db8::9"), true},
		{"udp from a host address", "web", "ingress", "udp", 5000, a("198.51.100.7"), true},
		{"udp from another host", "web", "ingress", "udp", 5000, a("198.51.100.8"), false},
		{"port security off: all in", "open", "ingress", "tcp", 1, a("203.0.113.9"), true},
		{"port security off: all out", "open", "egress", "gre", 0, a("2001:db8::1"), true},
		{"pending group: nothing in, even from a member", "pending", "ingress", "tcp", 22, a("10.0.0.6"), false},
		{"pending group: egress by the held groups", "pending", "egress", "tcp", 22, a("203.0.113.9"), true},
		{"two ports: either lets in", "two", "ingress", "tcp", 22, a("203.0.113.9"), true},
		{"no filter: nothing enforced", "unknown", "ingress", "tcp", 22, a("203.0.113.9"), true},
	}
	for _, c := range cases {
		if got := d.Allows(h, c.vm, c.dir, c.proto, c.port, c.remote); got != c.want {
			t.Errorf("%s: Allows(%s, %s, %s, %d, %s) = %v, want %v", c.name, c.vm, c.dir, c.proto, c.port, c.remote, got, c.want)
		}
	}

	// A member leaving the set is let in no more.
	must(d.SetAddressSet(ctx, h, "default", []string{"10.0.0.5"}))
	if d.Allows(h, "def", "ingress", "tcp", 22, a("10.0.0.6")) {
		t.Error("a member removed from the set is still let in")
	}
	// The set is per host: another host's instance with the same rules
	// has no set, so its remote-group rule matches nothing.
	must(d.SetFilter(ctx, "h2", "def", []virt.PortFilter{port("p-def", def)}))
	if d.Allows("h2", "def", "ingress", "tcp", 22, a("10.0.0.5")) {
		t.Error("a remote-group rule matched on a host without the group's set")
	}
}

// TestFilterForgottenOnDestroy checks that Filter answers the rules and
// the sets they name, and that destroying the instance forgets its filter
// (a second destroy is a no-op).
func TestFilterForgottenOnDestroy(t *testing.T) {
	ctx := context.Background()
	d, _ := fake.New(fake.Config{})
	if err := d.Spawn(ctx, "h1", virt.Instance{UUID: "u1"}); err != nil {
		t.Fatal(err)
	}
	_ = d.SetAddressSet(ctx, "h1", "g", []string{"10.0.0.1"})
	_ = d.SetAddressSet(ctx, "h1", "other", []string{"10.0.0.9"})
	rules := []virt.Rule{{Direction: "ingress", EtherType: "IPv4", RemoteGroupID: "g", GroupID: "g", RuleID: "r"}}
	_ = d.SetFilter(ctx, "h1", "u1", []virt.PortFilter{{PortID: "p", PortSecurity: true, Rules: rules}})
	ps, sets, ok := d.Filter("h1", "u1")
	if !ok || len(ps) != 1 || ps[0].PortID != "p" || len(sets) != 1 || len(sets["g"]) != 1 || sets["g"][0] != "10.0.0.1" {
		t.Fatalf("Filter = %+v %v %v", ps, sets, ok)
	}
	// What Filter returns is a copy.
	ps[0].Rules[0].RemoteGroupID = "changed"
	if ps2, _, _ := d.Filter("h1", "u1"); ps2[0].Rules[0].RemoteGroupID != "g" {
		t.Fatal("Filter's answer shares memory with the driver's state")
	}
	for range 2 {
		if err := d.Destroy(ctx, "h1", "u1"); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := d.Filter("h1", "u1"); ok {
			t.Fatal("the filter of a destroyed instance is still there")
		}
	}
}

// TestUpdateAddressSet: an update removes then adds addresses (a repeat
// changes nothing), the set matches as one given whole does and reads
// sorted, and a set left empty is removed as SetAddressSet with none
// removes it.
func TestUpdateAddressSet(t *testing.T) {
	ctx := context.Background()
	d, _ := fake.New(fake.Config{})
	rules := []virt.Rule{{Direction: "ingress", EtherType: "IPv4", RemoteGroupID: "g", GroupID: "g", RuleID: "r"}}
	_ = d.SetFilter(ctx, "h1", "u1", []virt.PortFilter{{PortID: "p", PortSecurity: true, Rules: rules}})
	in := func(a string) bool { return d.Allows("h1", "u1", "ingress", "tcp", 80, netip.MustParseAddr(a)) }
	for range 2 { // the second a repeat
		if err := d.UpdateAddressSet(ctx, "h1", "g", []string{"10.0.0.9", "10.0.0.1"}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if set := d.AddressSet("h1", "g"); !slices.Equal(set, []string{"10.0.0.1", "10.0.0.9"}) || !in("10.0.0.9") || in("10.0.0.2") {
		t.Fatalf("after an update of no set: %v", set)
	}
	_ = d.UpdateAddressSet(ctx, "h1", "g", []string{"10.1.0.0/16"}, []string{"10.0.0.9", "10.0.0.7"})
	if _, sets, _ := d.Filter("h1", "u1"); !slices.Equal(sets["g"], []string{"10.0.0.1", "10.1.0.0/16"}) || in("10.0.0.9") || !in("10.1.2.3") {
		t.Fatalf("after an update: %v", sets)
	}
	_ = d.UpdateAddressSet(ctx, "h1", "g", nil, []string{"10.0.0.1", "10.1.0.0/16"})
	if set := d.AddressSet("h1", "g"); set != nil || in("10.0.0.1") {
		t.Fatalf("a set left empty: %v", set)
	}
}
