package firewall_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/firewall"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// counting is the fake driver, counting the firewall calls per instance
// and per host's set.
type counting struct {
	*fake.Driver
	mu      sync.Mutex
	filters map[string]int
	sets    map[string]int
	updates map[string]int
}

func newCounting(t *testing.T) *counting {
	d, err := fake.New(fake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return &counting{Driver: d, filters: map[string]int{}, sets: map[string]int{}, updates: map[string]int{}}
}

func (c *counting) SetFilter(ctx context.Context, host, uuid string, ports []virt.PortFilter) error {
	c.mu.Lock()
	c.filters[host+"/"+uuid]++
	c.mu.Unlock()
	return c.Driver.SetFilter(ctx, host, uuid, ports)
}

func (c *counting) SetAddressSet(ctx context.Context, host, group string, addrs []string) error {
	c.mu.Lock()
	c.sets[host+"/"+group]++
	c.mu.Unlock()
	return c.Driver.SetAddressSet(ctx, host, group, addrs)
}

func (c *counting) UpdateAddressSet(ctx context.Context, host, group string, add, remove []string) error {
	c.mu.Lock()
	c.updates[host+"/"+group]++
	c.mu.Unlock()
	return c.Driver.UpdateAddressSet(ctx, host, group, add, remove)
}

func (c *counting) updateCounts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps(c.updates)
}

func (c *counting) counts() (filters, sets map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps(c.filters), maps(c.sets)
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// cellDB is a compute cell's database whose security group rows the test
// writes as the cell's network handlers would.
type cellDB struct {
	tb testing.TB
	d  *db.DB
}

func (c cellDB) exec(q string, args ...any) {
	c.tb.Helper()
	if _, err := c.d.Exec(context.Background(), q, args...); err != nil {
		c.tb.Fatalf("%s: %v", q, err)
	}
}

// putGroup writes a group's rules at a revision and raises rules_gen.
func (c cellDB) putGroup(id string, revision int64, rules ...wire.SecurityGroupRule) {
	c.tb.Helper()
	b, _ := json.Marshal(rules)
	c.exec(`INSERT INTO sg_groups (id, project_id, revision, stateful, rules) VALUES (?, 'p', ?, 1, ?)
		ON CONFLICT (id) DO UPDATE SET revision = excluded.revision, rules = excluded.rules`, id, revision, string(b))
	c.exec(`UPDATE sg_state SET rules_gen = rules_gen + 1 WHERE id = 1`)
}

// setMembers replaces a group's members at seq and raises members_gen.
func (c cellDB) setMembers(id string, seq int64, members ...[2]string) {
	c.tb.Helper()
	c.exec(`DELETE FROM sg_members WHERE group_id = ?`, id)
	for _, m := range members {
		c.exec(`INSERT INTO sg_members (group_id, port_id, address) VALUES (?, ?, ?)`, id, m[0], m[1])
	}
	c.exec(`UPDATE sg_groups SET member_seq = ? WHERE id = ?`, seq, id)
	c.exec(`UPDATE sg_state SET members_gen = members_gen + 1 WHERE id = 1`)
}

// instance adds a live instance on host with NICs, each NIC's port
// holding the address given.
func (c cellDB) instance(uuid, host string, nics []wire.NIC, addrs ...string) {
	c.tb.Helper()
	ctx := context.Background()
	err := c.d.InTx(ctx, func(tx *db.Tx) error {
		in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: uuid, Name: uuid, ProjectID: "p", UserID: "u", ImageRef: "i", CreatedAt: t0},
			Host: host, VMState: celldb.VMActive, Build: celldb.BuildContext{NICs: nics}}
		return celldb.Insert(ctx, tx, []celldb.Instance{in}, t0)
	})
	if err != nil {
		c.tb.Fatal(err)
	}
	for i, a := range addrs {
		ap := netip.MustParseAddr(a).As4()
		ai := int64(ap[0])<<24 | int64(ap[1])<<16 | int64(ap[2])<<8 | int64(ap[3])
		c.exec(`INSERT INTO fixed_ips (subnet_id, address_int, address, network_id, network, in_block, instance_uuid, nic, port_id, api_port, mac, updated_at)
			VALUES ('s1', ?, ?, 'n1', 'net1', 1, ?, ?, ?, 1, '', 0)`, ai, a, uuid, i, nics[i].PortID)
	}
}

func nic(port string, groups ...string) wire.NIC {
	return wire.NIC{NetworkID: "n1", NetworkName: "net1", PortID: port, SecurityGroups: groups, PortRevision: 1}
}

func defaultRules() []wire.SecurityGroupRule {
	return []wire.SecurityGroupRule{
		{ID: "e4", Direction: "egress", EtherType: "IPv4"},
		{ID: "e6", Direction: "egress", EtherType: "IPv6"},
		{ID: "i4", Direction: "ingress", EtherType: "IPv4", RemoteGroupID: "def"},
		{ID: "i6", Direction: "ingress", EtherType: "IPv6", RemoteGroupID: "def"},
	}
}

func port(n int) *int { return &n }

func newSyncer(t *testing.T, d *db.DB, drv virt.Firewall) *firewall.Syncer {
	t.Helper()
	s, err := firewall.New(firewall.Config{Cell: "api!c1", DB: d, Driver: drv, Hosts: []string{"h1", "h2"},
		Interval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	return s
}

var anywhere = netip.MustParseAddr("203.0.113.9")

// TestSyncer follows the groups and instances of a cell through the
// Syncer into the fake driver: the filters at start, a member added, a
// rule changed, a spawn, a group not held, a destroy, and a restart.
func TestSyncer(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
			t.Fatal(err)
		}
		c := cellDB{t, d}
		c.putGroup("def", 1, defaultRules()...)
		c.setMembers("def", 1, [2]string{"p1", "10.0.0.5"}, [2]string{"p2", "10.0.0.6"})
		c.putGroup("web", 4, wire.SecurityGroupRule{ID: "ssh", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp",
			PortRangeMin: port(22), PortRangeMax: port(22), RemoteIPPrefix: "0.0.0.0/0"})
		c.instance("vm1", "h1", []wire.NIC{nic("p1", "def", "web")}, "10.0.0.5")
		c.instance("vm2", "h2", []wire.NIC{nic("p2", "def")}, "10.0.0.6")
		c.instance("vm3", "h3", []wire.NIC{nic("p3", "def")}, "10.0.0.7") // another process's host
		legacy := nic("p4", "def")
		legacy.PortRevision = 0
		c.instance("vm4", "h1", []wire.NIC{legacy}, "10.0.0.8")

		drv := newCounting(t)
		s := newSyncer(t, d, drv)

		// At start: the filters of the hosts' instances are set.
		if !drv.Allows("h1", "vm1", "ingress", "tcp", 22, anywhere) {
			t.Fatal("ssh from anywhere is not let into vm1 (web group)")
		}
		if !drv.Allows("h1", "vm1", "ingress", "tcp", 80, netip.MustParseAddr("10.0.0.6")) {
			t.Fatal("a member of the default group is not let into vm1")
		}
		if drv.Allows("h1", "vm1", "ingress", "tcp", 80, netip.MustParseAddr("10.0.0.9")) {
			t.Fatal("a stranger is let into vm1")
		}
		if drv.Allows("h2", "vm2", "ingress", "tcp", 22, anywhere) {
			t.Fatal("ssh is let into vm2, which is not in the web group")
		}
		for _, k := range [][2]string{{"h3", "vm3"}, {"h1", "vm4"}} {
			if _, _, ok := drv.Filter(k[0], k[1]); ok {
				t.Fatalf("%s on %s has a filter: another process's host, or a NIC of an older API cell", k[1], k[0])
			}
		}

		// A member added: the sets are updated, no filter is set again.
		filters0, sets0 := drv.counts()
		c.setMembers("def", 2, [2]string{"p1", "10.0.0.5"}, [2]string{"p2", "10.0.0.6"}, [2]string{"p9", "10.0.0.9"})
		s.Wake()
		testpoll.Eventually(t, 10*time.Second, "the new member let in", func() (bool, string) {
			return drv.Allows("h1", "vm1", "ingress", "tcp", 80, netip.MustParseAddr("10.0.0.9")), "not let in"
		})
		filters1, sets1 := drv.counts()
		if !mapsEqual(filters0, filters1) {
			t.Errorf("a member change set filters again: %v then %v", filters0, filters1)
		}
		if sets1["h1/def"] != sets0["h1/def"]+1 || sets1["h2/def"] != sets0["h2/def"]+1 {
			t.Errorf("the default group's set was not set once on each host: %v then %v", sets0, sets1)
		}
		// A repeat (members_gen moved, member_seq did not): nothing is set.
		c.exec(`UPDATE sg_state SET members_gen = members_gen + 1 WHERE id = 1`)
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if f, st := drv.counts(); !mapsEqual(f, filters1) || !mapsEqual(st, sets1) {
			t.Errorf("a repeated generation set something: %v %v", f, st)
		}

		// A rule changed: vm1's filter follows, vm2's (not in the group) is
		// not set again.
		c.putGroup("web", 5, wire.SecurityGroupRule{ID: "http", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp",
			PortRangeMin: port(80), PortRangeMax: port(80), RemoteIPPrefix: "0.0.0.0/0"})
		s.Wake()
		testpoll.Eventually(t, 10*time.Second, "the rule change enforced", func() (bool, string) {
			return drv.Allows("h1", "vm1", "ingress", "tcp", 80, anywhere) && !drv.Allows("h1", "vm1", "ingress", "tcp", 22, anywhere), "old rules"
		})
		if f, _ := drv.counts(); f["h2/vm2"] != filters1["h2/vm2"] || f["h1/vm1"] != filters1["h1/vm1"]+1 {
			t.Errorf("filters set after a rule change of one group: %v (before %v)", f, filters1)
		}

		// A spawn whose groups are held costs no statement, and its filter
		// is there when VMUp returns.
		c.instance("vm5", "h2", []wire.NIC{nic("p5", "def", "web")}, "10.0.0.10")
		before := d.Statements()
		s.VMUp(ctx, "h2", "vm5", []wire.NIC{nic("p5", "def", "web")}, []wire.Address{{Addr: "10.0.0.10", PortID: "p5", NetworkID: "n1"}})
		if n := d.Statements() - before; n != 0 {
			t.Errorf("VMUp with the groups held ran %d statements", n)
		}
		if !drv.Allows("h2", "vm5", "ingress", "tcp", 80, anywhere) {
			t.Error("vm5's filter is not set when VMUp returns")
		}

		// A group the Syncer does not hold: the port is pending (nothing
		// in) until the loop loads it by id.
		c.exec(`INSERT INTO sg_groups (id, revision, member_seq, stateful, rules) VALUES ('quiet', 1, 0, 1, '[{"id":"q","direction":"ingress","ethertype":"IPv4"}]')`)
		c.instance("vm6", "h1", []wire.NIC{nic("p6", "quiet")}, "10.0.0.11")
		s.VMUp(ctx, "h1", "vm6", []wire.NIC{nic("p6", "quiet")}, []wire.Address{{Addr: "10.0.0.11", PortID: "p6", NetworkID: "n1"}})
		testpoll.Eventually(t, 10*time.Second, "the group loaded by id", func() (bool, string) {
			return drv.Allows("h1", "vm6", "ingress", "udp", 53, anywhere), "still pending"
		})
		// A group not in the cell at all (asked for, not come): pending
		// until it comes (rules_gen).
		s.VMUp(ctx, "h1", "vm6", []wire.NIC{nic("p6", "quiet", "late")}, []wire.Address{{Addr: "10.0.0.11", PortID: "p6", NetworkID: "n1"}})
		if ps, _, _ := drv.Filter("h1", "vm6"); len(ps) != 1 || !slices.Equal(ps[0].Pending, []string{"late"}) {
			t.Fatalf("vm6's port with a group not held: %+v", ps)
		}
		if drv.Allows("h1", "vm6", "ingress", "udp", 53, anywhere) {
			t.Fatal("a port with a pending group lets in")
		}
		c.exec(`UPDATE instances SET build = ? WHERE uuid = 'vm6'`, mustJSON(celldb.BuildContext{NICs: []wire.NIC{nic("p6", "quiet", "late")}}))
		c.putGroup("late", 1)
		s.Wake()
		testpoll.Eventually(t, 10*time.Second, "the group come", func() (bool, string) {
			ps, _, _ := drv.Filter("h1", "vm6")
			return len(ps) == 1 && len(ps[0].Pending) == 0, "still pending"
		})

		// A destroy: the filter goes; a reload while the instance's row is
		// still live (its delete commits later) does not bring it back.
		if err := drv.Destroy(ctx, "h1", "vm1"); err != nil {
			t.Fatal(err)
		}
		s.VMGone(ctx, "h1", "vm1")
		c.exec(`UPDATE sg_state SET rules_gen = rules_gen + 1 WHERE id = 1`)
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := drv.Filter("h1", "vm1"); ok {
			t.Fatal("a destroyed instance's filter is back")
		}
		c.exec(`UPDATE instances SET deleted = 1 WHERE uuid = 'vm1'`)
		c.exec(`UPDATE sg_state SET rules_gen = rules_gen + 1 WHERE id = 1`)
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := drv.Filter("h1", "vm1"); ok {
			t.Fatal("a deleted instance has a filter")
		}
		// vm1 was the one instance of h1 whose rules name the default
		// group (vm6 is in quiet and late, vm4's NIC is legacy): h1's set
		// of it goes.
		if set := drv.AddressSet("h1", "def"); set != nil {
			t.Errorf("h1 keeps the default group's set, which none of its filters names: %v", set)
		}

		// A restart: a new Syncer on a new driver (the process's memory is
		// gone) sets everything from the database.
		drv2 := newCounting(t)
		s2 := newSyncer(t, d, drv2)
		if !drv2.Allows("h2", "vm5", "ingress", "tcp", 80, anywhere) || !drv2.Allows("h2", "vm2", "ingress", "udp", 1, netip.MustParseAddr("10.0.0.9")) {
			t.Error("a restarted Syncer did not set the filters and sets of h2")
		}
		if drv2.Allows("h2", "vm2", "ingress", "tcp", 80, anywhere) {
			t.Error("a restarted Syncer let a stranger into vm2")
		}
		if !drv2.Allows("h1", "vm6", "ingress", "udp", 53, anywhere) {
			t.Error("a restarted Syncer did not set vm6's filter")
		}
		if _, _, ok := drv2.Filter("h1", "vm1"); ok {
			t.Error("a restarted Syncer set a deleted instance's filter")
		}
		// An instance it knows from the database alone goes with its row
		// (deleted by a process that ran before this one).
		c.exec(`UPDATE instances SET deleted = 1 WHERE uuid = 'vm2'`)
		c.exec(`UPDATE sg_state SET rules_gen = rules_gen + 1 WHERE id = 1`)
		if err := s2.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, _, ok := drv2.Filter("h2", "vm2"); ok {
			t.Error("the filter of an instance deleted meanwhile stays")
		}
		if !drv2.Allows("h2", "vm5", "ingress", "tcp", 80, anywhere) {
			t.Error("vm5's filter went with vm2's")
		}
	})
}

// applyDelta writes a member delta as the cell's handler does (Removed
// go, then Added come; the sequence; members_gen) and returns it.
func (c cellDB) applyDelta(d wire.MemberDelta) wire.MemberDelta {
	c.tb.Helper()
	for _, m := range d.Removed {
		c.exec(`DELETE FROM sg_members WHERE group_id = ? AND port_id = ? AND address = ?`, d.GroupID, m.PortID, m.Address)
	}
	for _, m := range d.Added {
		c.exec(`INSERT INTO sg_members (group_id, port_id, address) VALUES (?, ?, ?) ON CONFLICT (group_id, port_id, address) DO NOTHING`,
			d.GroupID, m.PortID, m.Address)
	}
	c.exec(`UPDATE sg_groups SET member_seq = ? WHERE id = ? AND member_seq = ?`, d.ToSeq, d.GroupID, d.FromSeq)
	c.exec(`UPDATE sg_state SET members_gen = members_gen + 1 WHERE id = 1`)
	return d
}

func gm(port, addr string) wire.GroupMember { return wire.GroupMember{PortID: port, Address: addr} }

// TestSyncerMemberDeltas: member deltas the cell applied in this process
// (Members) update the sets of the hosts that use the group by the delta:
// no statement, no set given whole, no filter set again; an address two
// ports have stays while one of them does; a repeat and a late copy
// change nothing; a gap (a delta another process applied) makes the loop
// reload the group from the database and set it whole; a delta of a
// group the Syncer does not hold is left to the loop. (An agent down
// while deltas came loads the sets whole at Start: TestSyncer's restart.)
func TestSyncerMemberDeltas(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
			t.Fatal(err)
		}
		c := cellDB{t, d}
		c.putGroup("def", 1, defaultRules()...)
		c.putGroup("web", 1, wire.SecurityGroupRule{ID: "ssh", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp",
			PortRangeMin: port(22), PortRangeMax: port(22), RemoteIPPrefix: "0.0.0.0/0"})
		c.setMembers("def", 1, [2]string{"p1", "10.0.0.5"}, [2]string{"p2", "10.0.0.6"})
		c.instance("vm1", "h1", []wire.NIC{nic("p1", "def")}, "10.0.0.5")
		c.instance("vm2", "h2", []wire.NIC{nic("p2", "def")}, "10.0.0.6")
		c.instance("vm3", "h2", []wire.NIC{nic("p3", "web")}, "10.0.0.7") // names no remote group
		drv := newCounting(t)
		s := newSyncer(t, d, drv)
		in := func(host, vm, addr string) bool {
			return drv.Allows(host, vm, "ingress", "tcp", 80, netip.MustParseAddr(addr))
		}
		filters0, sets0 := drv.counts()
		if in("h1", "vm1", "10.0.0.9") {
			t.Fatal("a stranger is let in")
		}

		// A delta: both hosts' sets updated once, nothing else.
		add := c.applyDelta(wire.MemberDelta{GroupID: "def", FromSeq: 1, ToSeq: 2, Added: []wire.GroupMember{gm("p9", "10.0.0.9")}})
		before := d.Statements()
		s.Members([]wire.MemberDelta{add})
		if n := d.Statements() - before; n != 0 {
			t.Errorf("an in-process delta ran %d statements", n)
		}
		if !in("h1", "vm1", "10.0.0.9") || !in("h2", "vm2", "10.0.0.9") {
			t.Fatal("the member added is not let in when Members returns")
		}
		if u := drv.updateCounts(); u["h1/def"] != 1 || u["h2/def"] != 1 || len(u) != 2 {
			t.Errorf("updates after a delta: %v, want one per host of the group's set", u)
		}
		if f, st := drv.counts(); !mapsEqual(f, filters0) || !mapsEqual(st, sets0) {
			t.Errorf("a delta set filters or whole sets: %v %v (before %v %v)", f, st, filters0, sets0)
		}
		if set := drv.AddressSet("h1", "def"); !slices.Equal(set, []string{"10.0.0.5", "10.0.0.6", "10.0.0.9"}) {
			t.Errorf("h1's set = %v", set)
		}

		// A repeat and a late copy: nothing. The poll after them (members_gen
		// moved, the sequence held is the database's): nothing either.
		s.Members([]wire.MemberDelta{add, {GroupID: "def", FromSeq: 0, ToSeq: 1, Added: []wire.GroupMember{gm("p8", "10.0.0.8")}}})
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if u := drv.updateCounts(); u["h1/def"] != 1 || u["h2/def"] != 1 {
			t.Errorf("a repeat or a late delta updated a set: %v", u)
		}
		if _, st := drv.counts(); !mapsEqual(st, sets0) {
			t.Errorf("a repeat or the poll after a delta set a set whole: %v (before %v)", st, sets0)
		}
		if in("h1", "vm1", "10.0.0.8") {
			t.Error("a late delta's member is let in")
		}

		// A second port with the same address, then the first port gone:
		// the address stays (no driver call for either).
		same := c.applyDelta(wire.MemberDelta{GroupID: "def", FromSeq: 2, ToSeq: 3, Added: []wire.GroupMember{gm("p10", "10.0.0.9")}})
		gone := c.applyDelta(wire.MemberDelta{GroupID: "def", FromSeq: 3, ToSeq: 4, Removed: []wire.GroupMember{gm("p9", "10.0.0.9")}})
		s.Members([]wire.MemberDelta{same, gone})
		if !in("h1", "vm1", "10.0.0.9") {
			t.Error("an address another port still has left the set")
		}
		if u := drv.updateCounts(); u["h1/def"] != 1 {
			t.Errorf("deltas that change no address updated the set: %v", u)
		}
		last := c.applyDelta(wire.MemberDelta{GroupID: "def", FromSeq: 4, ToSeq: 5, Removed: []wire.GroupMember{gm("p10", "10.0.0.9")},
			Added: []wire.GroupMember{gm("p11", "10.0.0.11")}})
		s.Members([]wire.MemberDelta{last})
		if in("h1", "vm1", "10.0.0.9") || in("h2", "vm2", "10.0.0.9") || !in("h2", "vm2", "10.0.0.11") {
			t.Error("the last port of an address gone and a new one come: not followed")
		}

		// A gap: another process applied 5 → 6 (the loop is not woken by
		// it); the delta 6 → 7 here makes the loop reload the group and
		// set it whole on both hosts.
		c.applyDelta(wire.MemberDelta{GroupID: "def", FromSeq: 5, ToSeq: 6, Added: []wire.GroupMember{gm("p12", "10.0.0.12")}})
		next := c.applyDelta(wire.MemberDelta{GroupID: "def", FromSeq: 6, ToSeq: 7, Added: []wire.GroupMember{gm("p13", "10.0.0.13")}})
		_, sets1 := drv.counts()
		updates1 := drv.updateCounts()
		s.Members([]wire.MemberDelta{next})
		testpoll.Eventually(t, 10*time.Second, "the gap closed by a reload", func() (bool, string) {
			return in("h1", "vm1", "10.0.0.12") && in("h2", "vm2", "10.0.0.13"), "members missing"
		})
		if _, st := drv.counts(); st["h1/def"] != sets1["h1/def"]+1 || st["h2/def"] != sets1["h2/def"]+1 {
			t.Errorf("after a gap: whole sets %v (before %v), want one more per host", st, sets1)
		}
		if u := drv.updateCounts(); !mapsEqual(u, updates1) {
			t.Errorf("a delta after a gap updated a set: %v (before %v)", u, updates1)
		}
		// The delta after the reload applies in memory again (once the
		// loop's round is over: Sync waits for it).
		if err := s.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		after := c.applyDelta(wire.MemberDelta{GroupID: "def", FromSeq: 7, ToSeq: 8, Removed: []wire.GroupMember{gm("p12", "10.0.0.12")}})
		before = d.Statements()
		s.Members([]wire.MemberDelta{after})
		if n := d.Statements() - before; n != 0 || in("h1", "vm1", "10.0.0.12") {
			t.Errorf("the delta after a reload: %d statements, member still let in: %v", n, in("h1", "vm1", "10.0.0.12"))
		}

		// A group the Syncer does not hold: nothing set (the loop loads it
		// when a VM names it).
		c.exec(`INSERT INTO sg_groups (id, revision, member_seq, stateful, rules) VALUES ('other', 1, 1, 1, '[]')`)
		s.Members([]wire.MemberDelta{{GroupID: "other", FromSeq: 1, ToSeq: 2, Added: []wire.GroupMember{gm("p1", "10.0.0.5")}}})
		if set := drv.AddressSet("h1", "other"); set != nil {
			t.Errorf("a set of a group no filter names: %v", set)
		}
	})
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
