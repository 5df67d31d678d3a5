package sgsync_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// pushed decodes the security_groups messages sent, by cell.
func pushed(t *testing.T, msgs []msg) map[string]*wire.SecurityGroups {
	t.Helper()
	out := map[string]*wire.SecurityGroups{}
	for _, m := range msgs {
		if m.method != wire.MethodSecurityGroups {
			t.Fatalf("unexpected %s to %s", m.method, m.to)
		}
		if out[m.to] != nil {
			t.Fatalf("two messages to %s", m.to)
		}
		var sg wire.SecurityGroups
		if err := json.Unmarshal(m.payload, &sg); err != nil {
			t.Fatal(err)
		}
		out[m.to] = &sg
	}
	return out
}

// TestRuleChangesGoToTheHoldersAlone: cell1 holds B (and C, B's remote);
// cell2 holds A. A rule created in B goes to cell1 alone, B's rules only
// (no members), at B's new revision; a rule of B naming A makes cell1 a
// holder of A, which it gets whole in the same message; deleting a rule
// pushes B again. A failed send leaves the rule uncreated (one
// transaction). A repeat of a push at the same revision the cell ignores
// (wire contract), so the push itself need not be deduplicated.
func TestRuleChangesGoToTheHoldersAlone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{{ID: f.b}}})
		f.sync("api!cell2", wire.SecurityGroupsSync{Want: []string{f.a}, Held: []wire.HeldGroup{{ID: f.a}}})
		create := func(r *netdb.SecurityGroupRule) error {
			return d.InTx(ctx, func(tx *db.Tx) error {
				return sgsync.CreateRules(ctx, tx, f.out, "req-rule", []*netdb.SecurityGroupRule{r}, t0)
			})
		}

		f.out.setDown(true)
		if err := create(&netdb.SecurityGroupRule{SecurityGroupID: f.b, ProjectID: "p", Direction: "ingress", EtherType: "IPv4", Protocol: "udp"}); err == nil {
			t.Fatal("a rule created although its push failed")
		}
		f.out.setDown(false)
		if n := len(f.state(f.b).Rules); n != 3 {
			t.Fatalf("B has %d rules after a failed create, want 3", n)
		}

		udp := &netdb.SecurityGroupRule{SecurityGroupID: f.b, ProjectID: "p", Direction: "ingress", EtherType: "IPv4", Protocol: "udp"}
		if err := create(udp); err != nil {
			t.Fatal(err)
		}
		got := pushed(t, f.out.take())
		bs := f.state(f.b)
		if len(got) != 1 || got["api!cell1"] == nil {
			t.Fatalf("rule create pushed to %v, want cell1 alone", got)
		}
		if g := got["api!cell1"]; !slices.Equal(groupIDs(g), []string{f.b}) || g.Groups[0].HasMembers ||
			g.Groups[0].Revision != bs.RevisionNumber || len(g.Groups[0].Rules) != 4 {
			t.Errorf("pushed %+v, want B's 4 rules at revision %d without members", g, bs.RevisionNumber)
		}

		if err := create(&netdb.SecurityGroupRule{SecurityGroupID: f.b, ProjectID: "p", Direction: "ingress", EtherType: "IPv4", RemoteGroupID: f.a}); err != nil {
			t.Fatal(err)
		}
		got = pushed(t, f.out.take())
		g := got["api!cell1"]
		if len(got) != 1 || g == nil || !slices.Equal(groupIDs(g), sorted(f.a, f.b)) {
			t.Fatalf("a rule naming A pushed %v, want B and A to cell1", got)
		}
		if a := find(g, f.a); !a.HasMembers || len(a.Members) != 1 || a.Members[0].Address != f.addrA {
			t.Errorf("A sent as %+v, want it whole", a)
		}
		if h := f.holds("api!cell1"); !slices.Equal(h, sorted(f.a, f.b, f.c)) {
			t.Errorf("cell1 holds %v, want A, B and C", h)
		}

		if err := d.InTx(ctx, func(tx *db.Tx) error { return sgsync.DeleteRule(ctx, tx, f.out, "req-rule", udp.ID, nil, t0) }); err != nil {
			t.Fatal(err)
		}
		got = pushed(t, f.out.take())
		if g := got["api!cell1"]; len(got) != 1 || g == nil || !slices.Equal(groupIDs(g), []string{f.b}) || len(g.Groups[0].Rules) != 4 {
			t.Errorf("rule delete pushed %v, want B's 4 rules left to cell1", got)
		}
	})
}

// TestGroupDeleteDropsItInItsHolders: deleting C (which B's rule names)
// sends Drop of C to its holders (cell1, holding it as B's remote, and
// cell2, holding it for itself), ends their holding, and pushes B, whose
// rule naming C went with it, to B's holder; an update that raises a
// group's revision pushes it, one that changes nothing does not.
func TestGroupDeleteDropsItInItsHolders(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{{ID: f.b}}})
		f.sync("api!cell2", wire.SecurityGroupsSync{Want: []string{f.c}, Held: []wire.HeldGroup{{ID: f.c}}})
		// C's port goes first: a group with a port is in use.
		if err := d.InTx(ctx, func(tx *db.Tx) error { _, err := netdb.DeletePort(ctx, tx, f.portC, nil); return err }); err != nil {
			t.Fatal(err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return sgsync.DeleteGroup(ctx, tx, f.out, "req-del", f.c, nil, t0) }); err != nil {
			t.Fatal(err)
		}
		got := pushed(t, f.out.take())
		if c1 := got["api!cell1"]; c1 == nil || !slices.Equal(c1.Drop, []string{f.c}) || !slices.Equal(groupIDs(c1), []string{f.b}) ||
			len(c1.Groups[0].Rules) != 2 {
			t.Errorf("cell1 got %+v, want Drop of C and B without its rule naming C, in one message", c1)
		}
		if c2 := got["api!cell2"]; c2 == nil || !slices.Equal(c2.Drop, []string{f.c}) || len(c2.Groups) != 0 {
			t.Errorf("cell2 got %+v, want Drop of C", c2)
		}
		if h := f.holds("api!cell1"); !slices.Equal(h, []string{f.b}) {
			t.Errorf("cell1 holds %v after C's delete, want B", h)
		}
		if h := f.holds("api!cell2"); len(h) != 0 {
			t.Errorf("cell2 holds %v after C's delete, want none", h)
		}

		stateful := false
		if _, err := updateGroup(ctx, d, f, f.b, netdb.SecurityGroupPatch{Stateful: &stateful}); err != nil {
			t.Fatal(err)
		}
		got = pushed(t, f.out.take())
		if g := got["api!cell1"]; len(got) != 1 || g == nil || g.Groups[0].Stateful {
			t.Errorf("making B stateless pushed %v, want B stateless to cell1", got)
		}
		if _, err := updateGroup(ctx, d, f, f.b, netdb.SecurityGroupPatch{Stateful: &stateful}); err != nil {
			t.Fatal(err)
		}
		if msgs := f.out.take(); len(msgs) != 0 {
			t.Errorf("an update that changed nothing sent %+v", msgs)
		}
	})
}

func updateGroup(ctx context.Context, d *db.DB, f *fixture, id string, p netdb.SecurityGroupPatch) (*netdb.SecurityGroup, error) {
	var g *netdb.SecurityGroup
	err := d.InTx(ctx, func(tx *db.Tx) (err error) {
		g, err = sgsync.UpdateGroup(ctx, tx, f.out, "req-upd", id, p, nil, t0)
		return err
	})
	return g, err
}
