package network_test

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// sgCell is the security groups side of cell api!c1 on a migrated
// database, with a sender that records what committed transactions sent,
// a settable clock, and a count of the OnChange calls.
type sgCell struct {
	t       *testing.T
	d       *db.DB
	sg      *network.SecGroups
	mu      sync.Mutex
	now     time.Time
	sent    []sgSent
	changes atomic.Int64
	// addrs counts the address rows instance made.
	addrs int
}

type sgSent struct {
	to, method string
	payload    json.RawMessage
}

var sgT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func newSGCell(t *testing.T, d *db.DB, cfg network.SecGroupsConfig) *sgCell {
	t.Helper()
	ctx := context.Background()
	for _, s := range []struct {
		name string
		ms   []db.Migration
	}{{"outbox", outbox.Migrations}, {"compute", celldb.Migrations}} {
		if err := d.Migrate(ctx, s.name, s.ms); err != nil {
			t.Fatalf("migrate %s: %v", s.name, err)
		}
	}
	c := &sgCell{t: t, d: d, now: sgT0}
	cfg.Cell, cfg.DB, cfg.Logger, cfg.Now = "api!c1", d, slog.New(slog.DiscardHandler), c.clock
	if cfg.Sender == nil {
		cfg.Sender = c
	}
	cfg.OnChange = func() { c.changes.Add(1) }
	sg, err := network.NewSecGroups(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.sg = sg
	return c
}

func (c *sgCell) clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *sgCell) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Send records a message once its transaction commits, as the outbox
// sends it only then.
func (c *sgCell) Send(_ context.Context, tx *db.Tx, to, method, _ string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	tx.AfterCommit(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.sent = append(c.sent, sgSent{to, method, b})
	})
	return nil
}

// syncs are the security_groups_sync messages sent, in order; each went
// to the root.
func (c *sgCell) syncs() []wire.SecurityGroupsSync {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []wire.SecurityGroupsSync
	for _, s := range c.sent {
		if s.method != wire.MethodSecurityGroupsSync {
			c.t.Errorf("sent %s, want only security_groups_sync", s.method)
			continue
		}
		if s.to != "api" {
			c.t.Errorf("security_groups_sync sent to %q, want the root", s.to)
		}
		var m wire.SecurityGroupsSync
		if err := json.Unmarshal(s.payload, &m); err != nil {
			c.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// cast applies a message as the cells service does: in a transaction of
// its own.
func (c *sgCell) cast(h func(context.Context, *db.Tx, *wire.Envelope) error, payload any) {
	c.t.Helper()
	b, _ := json.Marshal(payload)
	env := &wire.Envelope{Method: "m", Version: wire.V1, RequestID: "req-sg", Payload: b}
	if err := c.d.InTx(context.Background(), func(tx *db.Tx) error { return h(context.Background(), tx, env) }); err != nil {
		c.t.Fatalf("cast: %v", err)
	}
}

// want runs Want in a transaction of its own, as a build does.
func (c *sgCell) want(nics ...wire.NIC) {
	c.t.Helper()
	ctx := context.Background()
	if err := c.d.InTx(ctx, func(tx *db.Tx) error { return c.sg.Want(ctx, tx, "req-build", nics) }); err != nil {
		c.t.Fatalf("Want: %v", err)
	}
}

// gens reads sg_state.
func (c *sgCell) gens() [2]int64 {
	c.t.Helper()
	var g [2]int64
	if err := c.d.QueryRow(context.Background(), `SELECT rules_gen, members_gen FROM sg_state WHERE id = 1`).Scan(&g[0], &g[1]); err != nil {
		c.t.Fatal(err)
	}
	return g
}

// groupRow is a row of sg_groups and its members.
type groupRow struct {
	found     bool
	revision  int64
	memberSeq int64
	rules     []wire.SecurityGroupRule
	members   []wire.GroupMember
	askedAt   int64
}

func (c *sgCell) group(id string) groupRow {
	c.t.Helper()
	ctx := context.Background()
	var g groupRow
	var rules string
	err := c.d.QueryRow(ctx, `SELECT revision, member_seq, rules, asked_at FROM sg_groups WHERE id = ?`, id).Scan(&g.revision, &g.memberSeq, &rules, &g.askedAt)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		c.t.Fatal(err)
	}
	g.found = err == nil
	if g.found {
		if err := json.Unmarshal([]byte(rules), &g.rules); err != nil {
			c.t.Fatal(err)
		}
	}
	g.members, err = db.Collect(ctx, c.d, func(r db.Scanner) (wire.GroupMember, error) {
		var m wire.GroupMember
		return m, r.Scan(&m.PortID, &m.Address)
	}, `SELECT port_id, address FROM sg_members WHERE group_id = ? ORDER BY port_id, address`, id)
	if err != nil {
		c.t.Fatal(err)
	}
	return g
}

var tcp22 = 22

func sgState(id string, rev int64, rules int) wire.SecurityGroupState {
	g := wire.SecurityGroupState{ID: id, ProjectID: "p1", Revision: rev, Stateful: true}
	for i := range rules {
		g.Rules = append(g.Rules, wire.SecurityGroupRule{ID: id + "-r" + string(rune('a'+i)), Direction: "ingress", EtherType: "IPv4",
			Protocol: "tcp", PortRangeMin: &tcp22, PortRangeMax: &tcp22})
	}
	return g
}

func withMembers(g wire.SecurityGroupState, seq int64, ms ...wire.GroupMember) wire.SecurityGroupState {
	g.HasMembers, g.MemberSeq, g.Members = true, seq, ms
	return g
}

func member(port, addr string) wire.GroupMember { return wire.GroupMember{PortID: port, Address: addr} }

// TestSecurityGroupsNewerWins: a group the cell has no row of is taken
// whole (rules and members; both generations rise, the agent is woken);
// the same message again (a repeat) and an older copy (late: lower
// revision and member sequence) change nothing and wake nobody; newer
// rules alone replace the rules and raise rules_gen only; a newer member
// set at the same revision replaces the members and raises members_gen
// only; Drop deletes the group and its members (rules_gen), and a second
// Drop changes nothing. A group asked for (revision 0) takes the rules
// that come. The root may push a group the cell never asked for (a
// remote group named by a new rule): once it has come, a build of a port
// in it asks for nothing, at no statement; once dropped, it is asked for
// again. A cell down when the root sends security_groups gets it from the
// root's outbox when it is back (a durable cast, sent in the transaction
// of the change), and applies it as here, in whatever order the copies
// come; the periodic sync (TestHealAndReask) repairs anything else.
func TestSecurityGroupsNewerWins(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{})
		first := withMembers(sgState("sg-1", 2, 1), 5, member("port-a", "10.0.0.5"), member("port-b", "10.0.0.6"))
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{first}})
		g := c.group("sg-1")
		if !g.found || g.revision != 2 || g.memberSeq != 5 || len(g.rules) != 1 || g.rules[0].Protocol != "tcp" || *g.rules[0].PortRangeMin != 22 ||
			!slices.Equal(g.members, first.Members) {
			t.Fatalf("group after it came: %+v", g)
		}
		if got := c.gens(); got != [2]int64{1, 1} {
			t.Fatalf("generations after a new group = %v, want [1 1]", got)
		}
		if n := c.changes.Load(); n != 1 {
			t.Fatalf("OnChange called %d times, want 1", n)
		}

		// A repeat, and a late copy: nothing changes.
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{first}})
		late := withMembers(sgState("sg-1", 1, 3), 4, member("port-z", "10.0.0.99"))
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{late}})
		if g := c.group("sg-1"); g.revision != 2 || g.memberSeq != 5 || len(g.rules) != 1 || !slices.Equal(g.members, first.Members) {
			t.Fatalf("group after a repeat and a late copy: %+v", g)
		}
		if got, n := c.gens(), c.changes.Load(); got != [2]int64{1, 1} || n != 1 {
			t.Fatalf("after a repeat and a late copy: generations %v, %d wakes; want [1 1], 1", got, n)
		}

		// Newer rules, without members.
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{sgState("sg-1", 3, 2)}})
		if g := c.group("sg-1"); g.revision != 3 || len(g.rules) != 2 || g.memberSeq != 5 || !slices.Equal(g.members, first.Members) {
			t.Fatalf("group after newer rules: %+v", g)
		}
		if got := c.gens(); got != [2]int64{2, 1} {
			t.Fatalf("generations after newer rules = %v, want [2 1]", got)
		}

		// A newer member set at the same revision.
		newer := withMembers(sgState("sg-1", 3, 2), 7, member("port-c", "10.0.0.7"))
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{newer}})
		if g := c.group("sg-1"); g.revision != 3 || len(g.rules) != 2 || g.memberSeq != 7 || !slices.Equal(g.members, newer.Members) {
			t.Fatalf("group after a newer member set: %+v", g)
		}
		if got, n := c.gens(), c.changes.Load(); got != [2]int64{2, 2} || n != 3 {
			t.Fatalf("after a newer member set: generations %v, %d wakes; want [2 2], 3", got, n)
		}

		// Held now: a build of a port in it asks for nothing, at no statement.
		before := d.Statements()
		c.want(wire.NIC{PortID: "port-x", SecurityGroups: []string{"sg-1"}, PortRevision: 1})
		if n := d.Statements() - before; n != 0 {
			t.Fatalf("a build whose groups are held ran %d statements, want 0", n)
		}
		if s := c.syncs(); len(s) != 0 {
			t.Fatalf("syncs sent for a held group: %+v", s)
		}

		// Drop, and Drop again.
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Drop: []string{"sg-1"}})
		if g := c.group("sg-1"); g.found || len(g.members) != 0 {
			t.Fatalf("group after Drop: %+v", g)
		}
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Drop: []string{"sg-1"}})
		if got, n := c.gens(), c.changes.Load(); got != [2]int64{3, 2} || n != 4 {
			t.Fatalf("after two Drops: generations %v, %d wakes; want [3 2], 4", got, n)
		}

		// Dropped: a port in it is asked for again; the rules that come
		// are taken over the row at revision 0.
		c.want(wire.NIC{PortID: "port-x", SecurityGroups: []string{"sg-1"}, PortRevision: 1})
		if s := c.syncs(); len(s) != 1 || !slices.Equal(s[0].Want, []string{"sg-1"}) {
			t.Fatalf("syncs after a dropped group is wanted again: %+v", s)
		}
		if g := c.group("sg-1"); !g.found || g.revision != 0 || g.askedAt != db.Micros(sgT0) {
			t.Fatalf("asked group: %+v", g)
		}
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{withMembers(sgState("sg-1", 1, 1), 1, member("port-x", "10.0.0.8"))}})
		if g := c.group("sg-1"); g.revision != 1 || g.memberSeq != 1 || len(g.members) != 1 {
			t.Fatalf("asked group after it came: %+v", g)
		}
	})
}

// TestSecurityGroupMembers: a delta from the cell's sequence is applied
// (removed go, added come; members_gen rises); the same delta again (a
// repeat) and an older one (a late copy) change nothing and ask nothing;
// a delta past a gap (the cell missed one, or it came before the set it
// follows) changes nothing and asks the root for the group with a sync
// that is not Complete and says what the cell holds; a delta of a group
// the cell does not hold makes it an asked group (revision 0) and asks
// for it. A cell that was down gets the deltas from the root's outbox
// when it is back, in any order: those past a gap ask, and the whole set
// that answers closes it.
func TestSecurityGroupMembers(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{})
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{
			withMembers(sgState("sg-1", 4, 1), 3, member("port-a", "10.0.0.5"), member("port-b", "10.0.0.6"))}})
		gens := c.gens()

		delta := wire.MemberDelta{GroupID: "sg-1", FromSeq: 3, ToSeq: 4, Added: []wire.GroupMember{member("port-c", "10.0.0.7")},
			Removed: []wire.GroupMember{member("port-a", "10.0.0.5")}}
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{delta}})
		want := []wire.GroupMember{member("port-b", "10.0.0.6"), member("port-c", "10.0.0.7")}
		if g := c.group("sg-1"); g.memberSeq != 4 || !slices.Equal(g.members, want) {
			t.Fatalf("group after a delta: %+v", g)
		}
		if got := c.gens(); got != [2]int64{gens[0], gens[1] + 1} {
			t.Fatalf("generations after a delta = %v, want rules %d, members %d", got, gens[0], gens[1]+1)
		}
		wakes := c.changes.Load()

		// A repeat, and a late copy.
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{delta}})
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{{GroupID: "sg-1", FromSeq: 2, ToSeq: 3,
			Added: []wire.GroupMember{member("port-z", "10.0.0.99")}}}})
		if g := c.group("sg-1"); g.memberSeq != 4 || !slices.Equal(g.members, want) {
			t.Fatalf("group after a repeat and a late delta: %+v", g)
		}
		if got, n, s := c.gens(), c.changes.Load(), c.syncs(); got != [2]int64{gens[0], gens[1] + 1} || n != wakes || len(s) != 0 {
			t.Fatalf("after a repeat and a late delta: generations %v, %d wakes, syncs %+v", got, n-wakes, s)
		}

		// A gap (4 → 5 was missed), with a delta of a group the cell does
		// not hold in the same message.
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{
			{GroupID: "sg-1", FromSeq: 5, ToSeq: 6, Added: []wire.GroupMember{member("port-d", "10.0.0.8")}},
			{GroupID: "sg-9", FromSeq: 0, ToSeq: 1, Added: []wire.GroupMember{member("port-e", "10.0.0.9")}}}})
		if g := c.group("sg-1"); g.memberSeq != 4 || !slices.Equal(g.members, want) || g.askedAt != db.Micros(sgT0) {
			t.Fatalf("group after a gap: %+v", g)
		}
		if g := c.group("sg-9"); !g.found || g.revision != 0 || g.memberSeq != 0 || len(g.members) != 0 {
			t.Fatalf("a group not held, after a delta of it: %+v", g)
		}
		s := c.syncs()
		if len(s) != 1 || s[0].Complete || !slices.Equal(s[0].Want, []string{"sg-1", "sg-9"}) ||
			!slices.Equal(s[0].Held, []wire.HeldGroup{{ID: "sg-1", Revision: 4, MemberSeq: 4}, {ID: "sg-9"}}) {
			t.Fatalf("syncs after a gap: %+v", s)
		}
		if got := c.gens(); got != [2]int64{gens[0], gens[1] + 1} {
			t.Fatalf("generations after a gap = %v, unchanged wanted", got)
		}

		// The whole set the sync brings closes the gap; the delta after it
		// applies.
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{
			withMembers(sgState("sg-1", 4, 1), 6, member("port-b", "10.0.0.6"), member("port-d", "10.0.0.8"))}})
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{{GroupID: "sg-1", FromSeq: 6, ToSeq: 7,
			Removed: []wire.GroupMember{member("port-b", "10.0.0.6")}}}})
		if g := c.group("sg-1"); g.memberSeq != 7 || !slices.Equal(g.members, []wire.GroupMember{member("port-d", "10.0.0.8")}) {
			t.Fatalf("group after the whole set and the next delta: %+v", g)
		}
		if s := c.syncs(); len(s) != 1 {
			t.Fatalf("%d syncs; want the one of the gap alone", len(s))
		}
	})
}

// TestSecurityGroupMembersToTheAgent: with OnMembers (the compute agent
// of this process), the deltas applied are given to it after the commit,
// in their order, instead of OnChange; a repeat, a late copy and a gap
// (the cell asks the root instead) give it nothing, and a message with
// both gives it the applied ones alone. A rolled back transaction gives
// nothing. (An agent in another process, or down, gets nothing here and
// finds members_gen raised when it polls: TestSecurityGroupMembers.)
func TestSecurityGroupMembersToTheAgent(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		var mu sync.Mutex
		var got [][]wire.MemberDelta
		c := newSGCell(t, d, network.SecGroupsConfig{OnMembers: func(ds []wire.MemberDelta) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, ds)
		}})
		calls := func() [][]wire.MemberDelta {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(got)
		}
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{
			withMembers(sgState("sg-1", 4, 1), 3, member("port-a", "10.0.0.5")), withMembers(sgState("sg-2", 1, 1), 1)}})
		wakes := c.changes.Load()

		d1 := wire.MemberDelta{GroupID: "sg-1", FromSeq: 3, ToSeq: 4, Added: []wire.GroupMember{member("port-c", "10.0.0.7")},
			Removed: []wire.GroupMember{member("port-a", "10.0.0.5")}}
		d2 := wire.MemberDelta{GroupID: "sg-2", FromSeq: 1, ToSeq: 2, Added: []wire.GroupMember{member("port-c", "10.0.0.7")}}
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{d1, d2}})
		if g := calls(); len(g) != 1 || len(g[0]) != 2 || g[0][0].GroupID != "sg-1" || g[0][1].GroupID != "sg-2" ||
			!slices.Equal(g[0][0].Added, d1.Added) || !slices.Equal(g[0][0].Removed, d1.Removed) || g[0][1].ToSeq != 2 {
			t.Fatalf("OnMembers after two deltas applied: %+v", g)
		}
		if n := c.changes.Load(); n != wakes {
			t.Fatalf("OnChange called %d times with OnMembers set", n-wakes)
		}

		// A repeat, a late copy, a gap: nothing.
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{d1}})
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{{GroupID: "sg-1", FromSeq: 2, ToSeq: 3}}})
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{{GroupID: "sg-1", FromSeq: 5, ToSeq: 6,
			Added: []wire.GroupMember{member("port-d", "10.0.0.8")}}}})
		if g := calls(); len(g) != 1 {
			t.Fatalf("OnMembers called after a repeat, a late copy or a gap: %+v", g[1:])
		}
		// A repeat with a new delta: the new one alone.
		d3 := wire.MemberDelta{GroupID: "sg-2", FromSeq: 2, ToSeq: 3, Removed: []wire.GroupMember{member("port-c", "10.0.0.7")}}
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{d1, d3}})
		if g := calls(); len(g) != 2 || len(g[1]) != 1 || g[1][0].GroupID != "sg-2" || g[1][0].FromSeq != 2 {
			t.Fatalf("OnMembers after a repeat and a new delta: %+v", g)
		}
		// Rolled back: nothing.
		env := &wire.Envelope{Method: "m", Version: wire.V1, RequestID: "req-sg",
			Payload: marshal(t, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{{GroupID: "sg-2", FromSeq: 3, ToSeq: 4}}})}
		errRollback := errors.New("rolled back")
		if err := d.InTx(context.Background(), func(tx *db.Tx) error {
			if err := c.sg.SecurityGroupMembers(context.Background(), tx, env); err != nil {
				return err
			}
			return errRollback
		}); !errors.Is(err, errRollback) {
			t.Fatalf("InTx = %v", err)
		}
		if g := calls(); len(g) != 2 {
			t.Fatalf("OnMembers called for a rolled back transaction: %+v", g[2:])
		}
	})
}

func marshal(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// instance inserts an instance of the cell with the given NICs; each NIC
// whose port the cell made (no PortID) gets an address row of port
// "made-<i>" at its index, as Allocate records it.
func (c *sgCell) instance(uuid string, nics ...wire.NIC) {
	c.t.Helper()
	ctx := context.Background()
	in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: uuid, Name: "vm", ProjectID: "p1", UserID: "u1", ImageRef: "img", CreatedAt: sgT0},
		Build: celldb.BuildContext{NICs: nics}, Host: "h1", VMState: celldb.VMActive, RequestID: "req-0"}
	err := c.d.InTx(ctx, func(tx *db.Tx) error {
		if err := celldb.Insert(ctx, tx, []celldb.Instance{in}, sgT0); err != nil {
			return err
		}
		for i, n := range nics {
			if n.PortID != "" {
				continue
			}
			c.addrs++
			if _, err := tx.Exec(ctx, `INSERT INTO fixed_ips (subnet_id, address_int, address, network_id, network, in_block, instance_uuid, nic, port_id, mac, updated_at)
				VALUES ('sub-1', ?, ?, 'net-1', 'private', 1, ?, ?, ?, 'fa:16:3e:00:00:01', 0)`, 167772160+c.addrs, fmt.Sprintf("10.0.0.%d", c.addrs), uuid, i,
				"made-"+uuid[:2]+string(rune('0'+i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

func (c *sgCell) nics(uuid string) []wire.NIC {
	c.t.Helper()
	in, err := celldb.Get(context.Background(), c.d, uuid)
	if err != nil {
		c.t.Fatal(err)
	}
	return in.NICs
}

// TestPortUpdate: a port_update newer than the port's NIC rewrites its
// groups, port security and address pairs, raises rules_gen, wakes the
// agent and asks for the groups the cell does not hold (one sync, in the
// same transaction); the same message again (a repeat) and an older one
// (a late copy) change nothing. A port the cell made on the boot, which
// its NIC does not name, is found by its addresses and named on the NIC
// from then on. A port_update of an instance or a port the cell does not
// have is dropped. A cell that was down gets port_update from the root's
// outbox when it is back; copies in any order end at the newest.
func TestPortUpdate(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{})
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{sgState("sg-1", 1, 1)}})
		const vm = "11111111-0000-4000-8000-000000000001"
		c.instance(vm,
			wire.NIC{NetworkID: "net-1", PortID: "port-1", SecurityGroups: []string{"sg-1"}, PortRevision: 2},
			wire.NIC{NetworkID: "net-1", NetworkName: "private"})
		gens, wakes := c.gens(), c.changes.Load()

		up := &wire.PortUpdate{UUID: vm, PortID: "port-1", Revision: 3, SecurityGroups: []string{"sg-1", "sg-2"}, PortSecurity: true,
			AllowedAddressPairs: []wire.AddressPair{{IPAddress: "10.9.9.0/24"}}}
		c.cast(c.sg.PortUpdate, up)
		n := c.nics(vm)[0]
		if n.PortRevision != 3 || !slices.Equal(n.SecurityGroups, up.SecurityGroups) || n.NoPortSecurity || len(n.AllowedAddressPairs) != 1 {
			t.Fatalf("NIC after port_update: %+v", n)
		}
		if got := c.gens(); got != [2]int64{gens[0] + 1, gens[1]} {
			t.Fatalf("generations after port_update = %v, want rules_gen raised alone from %v", got, gens)
		}
		if c.changes.Load() != wakes+1 {
			t.Fatal("port_update did not wake the agent")
		}
		if s := c.syncs(); len(s) != 1 || !slices.Equal(s[0].Want, []string{"sg-2"}) || !slices.Equal(s[0].Held, []wire.HeldGroup{{ID: "sg-2"}}) || s[0].Complete {
			t.Fatalf("syncs after port_update naming a new group: %+v", s)
		}

		// A repeat and a late copy.
		c.cast(c.sg.PortUpdate, up)
		c.cast(c.sg.PortUpdate, &wire.PortUpdate{UUID: vm, PortID: "port-1", Revision: 2, PortSecurity: false})
		if n := c.nics(vm)[0]; n.PortRevision != 3 || !slices.Equal(n.SecurityGroups, up.SecurityGroups) || n.NoPortSecurity {
			t.Fatalf("NIC after a repeat and a late port_update: %+v", n)
		}
		if got, s := c.gens(), c.syncs(); got != [2]int64{gens[0] + 1, gens[1]} || len(s) != 1 {
			t.Fatalf("after a repeat and a late port_update: generations %v, %d syncs", got, len(s))
		}

		// The port the cell made on the boot (NIC 1).
		made := "made-" + vm[:2] + "1"
		c.cast(c.sg.PortUpdate, &wire.PortUpdate{UUID: vm, PortID: made, Revision: 1, SecurityGroups: []string{"sg-1"}, PortSecurity: true})
		nics := c.nics(vm)
		if len(nics) != 2 || nics[1].PortID != made || nics[1].PortRevision != 1 || !slices.Equal(nics[1].SecurityGroups, []string{"sg-1"}) {
			t.Fatalf("NICs after a port_update of a port the cell made: %+v", nics)
		}
		if s := c.syncs(); len(s) != 1 {
			t.Fatalf("a port_update naming held groups sent a sync: %+v", s[1:])
		}

		// Port security off.
		c.cast(c.sg.PortUpdate, &wire.PortUpdate{UUID: vm, PortID: made, Revision: 2, PortSecurity: false})
		if n := c.nics(vm)[1]; !n.NoPortSecurity || len(n.SecurityGroups) != 0 {
			t.Fatalf("NIC after port security off: %+v", n)
		}

		// Unknown instance, unknown port: dropped.
		before := c.gens()
		c.cast(c.sg.PortUpdate, &wire.PortUpdate{UUID: "11111111-0000-4000-8000-00000000000f", PortID: "port-1", Revision: 9})
		c.cast(c.sg.PortUpdate, &wire.PortUpdate{UUID: vm, PortID: "port-9", Revision: 9})
		if got := c.gens(); got != before {
			t.Fatalf("a port_update of an unknown instance or port changed the generations: %v → %v", before, got)
		}
	})
}

// TestAttachedAndDetached: an interface attached is the instance's last
// NIC, an attach of the same port again replaces it (keeping what a newer
// port_update recorded), a detach removes it; each raises rules_gen and
// the attach asks for its new groups. An instance that had no NICs (one
// on the default network) keeps the NIC its addresses are on.
func TestAttachedAndDetached(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{})
		ctx := context.Background()
		const vm = "22222222-0000-4000-8000-000000000001"
		c.instance(vm, wire.NIC{NetworkName: "private"})
		// Recorded as an instance without NICs is: the address row alone.
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			b, err := celldb.BuildForUpdate(ctx, tx, vm)
			if err != nil {
				return err
			}
			b.NICs = nil
			return celldb.SetBuild(ctx, tx, vm, b)
		}); err != nil {
			t.Fatal(err)
		}
		in := func(f func(tx *db.Tx) error) {
			t.Helper()
			if err := d.InTx(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		gens := c.gens()
		nic := wire.NIC{NetworkID: "net-2", PortID: "port-2", SecurityGroups: []string{"sg-5"}, PortRevision: 4,
			FixedIPs: []wire.FixedIP{{SubnetID: "sub-2", Addr: "10.1.0.5"}}}
		in(func(tx *db.Tx) error { return c.sg.Attached(ctx, tx, "req-a", vm, nic) })
		made := "made-" + vm[:2] + "0"
		nics := c.nics(vm)
		if len(nics) != 2 || nics[0].PortID != made || nics[0].NetworkName != "private" || nics[1].PortID != "port-2" || nics[1].PortRevision != 4 {
			t.Fatalf("NICs after an attach: %+v", nics)
		}
		if got := c.gens(); got[0] != gens[0]+1 {
			t.Fatalf("rules_gen after an attach = %d, want %d", got[0], gens[0]+1)
		}
		if s := c.syncs(); len(s) != 1 || !slices.Equal(s[0].Want, []string{"sg-5"}) {
			t.Fatalf("syncs after an attach naming a new group: %+v", s)
		}

		// A newer port_update, then the same port attached again with the
		// attach's older NIC: the newer groups stay.
		c.cast(c.sg.PortUpdate, &wire.PortUpdate{UUID: vm, PortID: "port-2", Revision: 5, SecurityGroups: []string{"sg-5", "sg-6"}, PortSecurity: true})
		in(func(tx *db.Tx) error { return c.sg.Attached(ctx, tx, "req-a2", vm, nic) })
		if nics := c.nics(vm); len(nics) != 2 || nics[1].PortRevision != 5 || len(nics[1].SecurityGroups) != 2 {
			t.Fatalf("NICs after the same port attached again: %+v", nics)
		}

		before := c.gens()
		in(func(tx *db.Tx) error { return c.sg.Detached(ctx, tx, vm, made) })
		if nics := c.nics(vm); len(nics) != 1 || nics[0].PortID != "port-2" {
			t.Fatalf("NICs after a detach: %+v", nics)
		}
		if got := c.gens(); got[0] != before[0]+1 {
			t.Fatalf("rules_gen after a detach = %d, want %d", got[0], before[0]+1)
		}
	})
}

// TestWantAsksOnce: a build naming groups the cell does not hold asks for
// them in one sync, in its transaction, and records them asked (revision
// 0); a second build naming them asks nothing and runs no statement;
// NICs of an API cell that sends no groups (PortRevision 0) name none. A
// transaction that is rolled back asks nothing and teaches the process
// nothing: the next build asks.
func TestWantAsksOnce(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{})
		ctx := context.Background()
		nics := []wire.NIC{{PortID: "p1", SecurityGroups: []string{"sg-b", "sg-a"}, PortRevision: 1},
			{PortID: "p2", SecurityGroups: []string{"sg-a"}, PortRevision: 1}, {PortID: "p3", SecurityGroups: []string{"sg-old"}}}
		boom := errors.New("boom")
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := c.sg.Want(ctx, tx, "req-1", nics); err != nil {
				return err
			}
			return boom
		}); !errors.Is(err, boom) {
			t.Fatalf("rolled back build: %v", err)
		}
		if s := c.syncs(); len(s) != 0 {
			t.Fatalf("a rolled back build sent %+v", s)
		}
		c.want(nics...)
		s := c.syncs()
		if len(s) != 1 || s[0].Complete || !slices.Equal(s[0].Want, []string{"sg-a", "sg-b"}) ||
			!slices.Equal(s[0].Held, []wire.HeldGroup{{ID: "sg-a"}, {ID: "sg-b"}}) {
			t.Fatalf("syncs of a build with new groups: %+v", s)
		}
		for _, id := range []string{"sg-a", "sg-b"} {
			if g := c.group(id); !g.found || g.revision != 0 || g.askedAt != db.Micros(sgT0) {
				t.Fatalf("group %s after it was asked for: %+v", id, g)
			}
		}
		if g := c.group("sg-old"); g.found {
			t.Fatal("a group of a NIC without a port revision was asked for")
		}
		before := d.Statements()
		c.want(nics...)
		if n := d.Statements() - before; n != 0 {
			t.Fatalf("a second build of the same groups ran %d statements, want 0", n)
		}
		if s := c.syncs(); len(s) != 1 {
			t.Fatalf("a second build of the same groups sent %+v", s[1:])
		}

		// Another process (a restart) does not know them held: it finds
		// their rows and asks nothing.
		c2 := newSGCell(t, d, network.SecGroupsConfig{})
		c2.want(nics...)
		if s := c2.syncs(); len(s) != 0 {
			t.Fatalf("a restarted process asked again for groups asked: %+v", s)
		}
	})
}

// TestWantIsDurable: the sync is written to the outbox in the
// transaction of the build that names the group, with the real cells
// sender, and only if it commits. A root that is down when the build
// comes gets it from the outbox when it is back: the durability of the
// outbox is the whole of the receiver-down case (the cells relay tests
// cover its delivery).
func TestWantIsDurable(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{Sender: cells.NewSender("", "api!c1", nil)})
		ctx := context.Background()
		nic := wire.NIC{PortID: "p1", SecurityGroups: []string{"sg-a"}, PortRevision: 1}
		pending := func() []outbox.Entry {
			t.Helper()
			es, err := outbox.Pending(ctx, d, "api", 10)
			if err != nil {
				t.Fatal(err)
			}
			return es
		}
		_ = d.InTx(ctx, func(tx *db.Tx) error {
			if err := c.sg.Want(ctx, tx, "req-1", []wire.NIC{nic}); err != nil {
				t.Fatal(err)
			}
			return errors.New("rolled back")
		})
		if es := pending(); len(es) != 0 {
			t.Fatalf("outbox after a rolled back build: %+v", es)
		}
		c.want(nic)
		es := pending()
		if len(es) != 1 || es[0].Method != wire.MethodSecurityGroupsSync {
			t.Fatalf("outbox after a build with a new group: %+v", es)
		}
		var env wire.Envelope
		if err := json.Unmarshal(es[0].Body, &env); err != nil {
			t.Fatal(err)
		}
		var m wire.SecurityGroupsSync
		if err := json.Unmarshal(env.Payload, &m); err != nil {
			t.Fatal(err)
		}
		if env.Target != "api" || env.RequestID != "req-build" || !slices.Equal(m.Want, []string{"sg-a"}) {
			t.Fatalf("queued sync: %+v %+v", env, m)
		}
	})
}

// TestHealAndReask: the periodic sync is Complete, wants the groups of
// the live instances' NICs that have a port revision (not a deleted
// instance's, not an old API cell's NIC) and says every group the cell
// holds, at its versions; a cell that needs and holds none sends none. A
// group asked for and not come is asked for again once AskTimeout has
// passed, once (the sync resets its asked time), and not before.
func TestHealAndReask(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{})
		ctx := context.Background()
		if err := c.sg.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		if s := c.syncs(); len(s) != 0 {
			t.Fatalf("an empty cell sent %+v", s)
		}
		c.instance("33333333-0000-4000-8000-000000000001", wire.NIC{PortID: "p1", SecurityGroups: []string{"sg-2", "sg-1"}, PortRevision: 1},
			wire.NIC{PortID: "p2", SecurityGroups: []string{"sg-old"}})
		c.instance("33333333-0000-4000-8000-000000000002", wire.NIC{PortID: "p3", SecurityGroups: []string{"sg-1"}, PortRevision: 7})
		c.instance("33333333-0000-4000-8000-000000000003", wire.NIC{PortID: "p4", SecurityGroups: []string{"sg-gone"}, PortRevision: 1})
		if _, err := d.Exec(ctx, `UPDATE instances SET deleted = 1 WHERE uuid = '33333333-0000-4000-8000-000000000003'`); err != nil {
			t.Fatal(err)
		}
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{withMembers(sgState("sg-1", 3, 1), 9),
			sgState("sg-remote", 2, 0)}})
		c.want(wire.NIC{SecurityGroups: []string{"sg-2"}, PortRevision: 1})
		if err := c.sg.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		s := c.syncs()
		if len(s) != 2 {
			t.Fatalf("syncs: %+v; want the ask and the periodic one", s)
		}
		got := s[1]
		if !got.Complete || !slices.Equal(got.Want, []string{"sg-1", "sg-2"}) ||
			!slices.EqualFunc(got.Held, []wire.HeldGroup{{ID: "sg-1", Revision: 3, MemberSeq: 9}, {ID: "sg-2"}, {ID: "sg-remote", Revision: 2}},
				func(a, b wire.HeldGroup) bool {
					// The periodic sync counts each group's members (none here).
					return a.ID == b.ID && a.Revision == b.Revision && a.MemberSeq == b.MemberSeq && a.Members != nil && *a.Members == 0
				}) {
			t.Fatalf("periodic sync: %+v", got)
		}

		// sg-2 stays unanswered: asked for again past AskTimeout (30s),
		// counted from the periodic sync that asked for it last.
		c.advance(20 * time.Second)
		if err := c.sg.Reask(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(c.syncs()); n != 2 {
			t.Fatalf("asked again before AskTimeout: %d syncs", n)
		}
		c.advance(11 * time.Second)
		if err := c.sg.Reask(ctx); err != nil {
			t.Fatal(err)
		}
		s = c.syncs()
		if len(s) != 3 || s[2].Complete || !slices.Equal(s[2].Want, []string{"sg-2"}) || !slices.Equal(s[2].Held, []wire.HeldGroup{{ID: "sg-2"}}) {
			t.Fatalf("syncs after AskTimeout: %+v", s)
		}
		if err := c.sg.Reask(ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(c.syncs()); n != 3 {
			t.Fatalf("asked again at once: %d syncs", n)
		}
	})
}

// TestSecGroupsLoop: the owned loop sends the periodic sync every
// HealInterval once started, and stops on Shutdown (twice is fine).
func TestSecGroupsLoop(t *testing.T) {
	d := dbtest.Open(t, "sqlite")
	c := newSGCell(t, d, network.SecGroupsConfig{HealInterval: 20 * time.Millisecond, AskTimeout: time.Hour})
	c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{sgState("sg-1", 1, 0)}})
	if err := c.sg.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 10*time.Second, "a periodic sync", func() (bool, string) {
		s := c.syncs()
		return len(s) > 0 && s[0].Complete, "none sent yet"
	})
	if err := c.sg.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.sg.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestResyncAtTheSameSequence: a whole member set at the sequence the cell
// holds replaces its set only when the root marks it Resync (it found the
// two differ), and then raises the group's member epoch and members_gen,
// so the agents reload it; a Resync at an older sequence changes nothing.
// The periodic sync says how many members the cell holds of each group.
func TestResyncAtTheSameSequence(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{})
		ctx := context.Background()
		first := withMembers(sgState("sg-1", 2, 1), 5, member("port-a", "10.0.0.5"), member("port-x", "10.0.0.9"))
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{first}})
		epoch := func() int64 {
			var e int64
			if err := d.QueryRow(ctx, `SELECT member_epoch FROM sg_groups WHERE id = ?`, "sg-1").Scan(&e); err != nil {
				t.Fatal(err)
			}
			return e
		}
		root := withMembers(sgState("sg-1", 2, 1), 5, member("port-a", "10.0.0.5"))
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{root}})
		if g := c.group("sg-1"); len(g.members) != 2 || epoch() != 0 {
			t.Fatalf("a set at the same sequence without Resync replaced the cell's: %+v", g)
		}
		gens := c.gens()
		root.Resync = true
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{root}})
		if g := c.group("sg-1"); !slices.Equal(g.members, root.Members) || g.memberSeq != 5 || epoch() != 1 {
			t.Fatalf("after the resync: %+v, epoch %d; want the root's one member at seq 5, epoch 1", g, epoch())
		}
		if after := c.gens(); after[1] <= gens[1] {
			t.Errorf("members_gen %d → %d: the agents are not told", gens[1], after[1])
		}
		older := withMembers(sgState("sg-1", 2, 1), 4, member("port-z", "10.0.0.7"))
		older.Resync = true
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{older}})
		if g := c.group("sg-1"); !slices.Equal(g.members, root.Members) || epoch() != 1 {
			t.Errorf("a resync at an older sequence changed the cell's set: %+v", g)
		}
		// The periodic sync gives the count.
		if err := c.sg.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		ss := c.syncs()
		last := ss[len(ss)-1]
		if len(last.Held) != 1 || last.Held[0].Members == nil || *last.Held[0].Members != 1 {
			t.Errorf("the periodic sync held %+v, want sg-1 with 1 member", last.Held)
		}
	})
}

// TestSecurityGroupMembersRemovedInBatches: a delta that removes more
// members than one statement takes (two groups holding the same ports, a
// port with two addresses) removes exactly those of its group.
func TestSecurityGroupMembersRemovedInBatches(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newSGCell(t, d, network.SecGroupsConfig{})
		var all []wire.GroupMember
		for i := range 450 {
			all = append(all, member(fmt.Sprintf("port-%03d", i), fmt.Sprintf("10.0.%d.%d", i/200, i%200+2)))
		}
		all = append(all, member("port-000", "10.9.9.9")) // a second address of port-000
		c.cast(c.sg.SecurityGroups, &wire.SecurityGroups{Groups: []wire.SecurityGroupState{
			withMembers(sgState("sg-1", 1, 1), 1, all...), withMembers(sgState("sg-2", 1, 1), 1, all...)}})
		// Every member but every third, and not port-000's second address.
		var removed, kept []wire.GroupMember
		for i, m := range all[:450] {
			if i%3 == 0 {
				kept = append(kept, m)
			} else {
				removed = append(removed, m)
			}
		}
		kept = append(kept, all[450])
		c.cast(c.sg.SecurityGroupMembers, &wire.SecurityGroupMembers{Deltas: []wire.MemberDelta{
			{GroupID: "sg-1", FromSeq: 1, ToSeq: 2, Removed: removed}}})
		sortMembers := func(ms []wire.GroupMember) []wire.GroupMember {
			out := slices.Clone(ms)
			slices.SortFunc(out, func(a, b wire.GroupMember) int {
				return cmp.Or(cmp.Compare(a.PortID, b.PortID), cmp.Compare(a.Address, b.Address))
			})
			return out
		}
		if g := c.group("sg-1"); g.memberSeq != 2 || !slices.Equal(g.members, sortMembers(kept)) {
			t.Errorf("sg-1 after removing %d: sequence %d, %d members, want %d", len(removed), g.memberSeq, len(g.members), len(kept))
		}
		if g := c.group("sg-2"); !slices.Equal(g.members, sortMembers(all)) {
			t.Errorf("sg-2 holds %d members, want all %d", len(g.members), len(all))
		}
	})
}
