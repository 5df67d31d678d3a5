package sgsync_test

import (
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestSyncOfANewCell: a cell that asks for B (held at 0/0: asked, not
// come) becomes a holder of B and of C, the remote group B's rule names,
// and gets both whole: rules at their revisions and member sets at their
// sequences (C's member is its port's address; B has none). A repeat (the
// cell asked again before the answer arrived) gets the same answer and
// records no holder twice.
func TestSyncOfANewCell(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ask := wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{{ID: f.b}}}
		first := f.sync("api!cell1", ask)
		if first == nil || !slices.Equal(groupIDs(first), sorted(f.b, f.c)) || len(first.Drop) != 0 {
			t.Fatalf("answer %+v, want B and C, no drop", first)
		}
		b, c := find(first, f.b), find(first, f.c)
		bs, cs := f.state(f.b), f.state(f.c)
		if b.Revision != bs.RevisionNumber || len(b.Rules) != 3 || !b.HasMembers || b.MemberSeq != bs.MemberSeq || len(b.Members) != 0 {
			t.Errorf("B sent as %+v, want revision %d, 3 rules, no members at seq %d", b, bs.RevisionNumber, bs.MemberSeq)
		}
		if !c.HasMembers || c.MemberSeq != cs.MemberSeq || len(c.Members) != 1 || c.Members[0] != (wire.GroupMember{PortID: f.portC, Address: f.addrC}) {
			t.Errorf("C sent as %+v, want its one member at seq %d", c, cs.MemberSeq)
		}
		var remote *wire.SecurityGroupRule
		for i, r := range b.Rules {
			if r.RemoteGroupID != "" {
				remote = &b.Rules[i]
			}
		}
		if remote == nil || remote.RemoteGroupID != f.c || remote.Protocol != "tcp" || *remote.PortRangeMin != 22 || remote.Direction != "ingress" {
			t.Errorf("B's rules %+v lack the tcp/22 rule from C", b.Rules)
		}
		if got := f.holds("api!cell1"); !slices.Equal(got, sorted(f.b, f.c)) {
			t.Errorf("cell1 holds %v, want B and C", got)
		}
		again := f.sync("api!cell1", ask)
		if again == nil || !slices.Equal(groupIDs(again), groupIDs(first)) || find(again, f.c).MemberSeq != c.MemberSeq {
			t.Errorf("a repeated sync answered %+v, want the same answer", again)
		}
		if n := f.holderRows("api!cell1"); n != 2 {
			t.Errorf("%d holder rows after the repeat, want 2", n)
		}
	})
}

// TestSyncHeldUpToDateOrOlder: a cell that holds B and C at the root's
// revisions and sequences gets no answer at all; one that holds B at an
// older revision gets B's rules (not its members, whose sequence it has);
// one whose member sequence of C is older gets C whole again. A late copy
// of an earlier sync looks like the older ones: its answer carries what
// the root has now, which a cell that has moved on ignores (not newer than
// its own). A cell that is down when answered gets the answer from the
// outbox (the answer is a durable cast sent in this transaction).
func TestSyncHeldUpToDateOrOlder(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		bs, cs := f.state(f.b), f.state(f.c)
		upToDate := wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{held(bs), held(cs)}}
		if got := f.sync("api!cell1", upToDate); got != nil {
			t.Fatalf("an up to date cell got %+v, want nothing", got)
		}
		if got := f.holds("api!cell1"); !slices.Equal(got, sorted(f.b, f.c)) {
			t.Errorf("cell1 holds %v, want B and C", got)
		}
		olderRules := held(bs)
		olderRules.Revision--
		got := f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{olderRules, held(cs)}})
		if got == nil || !slices.Equal(groupIDs(got), []string{f.b}) || got.Groups[0].HasMembers || got.Groups[0].Revision != bs.RevisionNumber {
			t.Errorf("older rules of B answered %+v, want B's rules alone", got)
		}
		olderMembers := held(cs)
		olderMembers.MemberSeq = 0
		got = f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{held(bs), olderMembers}})
		if got == nil || !slices.Equal(groupIDs(got), []string{f.c}) || !got.Groups[0].HasMembers || len(got.Groups[0].Members) != 1 {
			t.Errorf("no member set of C answered %+v, want C whole", got)
		}
	})
}

// TestSyncCompleteDropsWhatIsNoLongerNeeded: a cell holding B and C
// whose complete sync wants A alone becomes a holder of A only (A's rules
// name A itself: no other group comes with it); B and C are dropped both
// at the root and in the cell (Drop). A group the cell wants that does not
// exist (deleted meanwhile) is dropped too, and one it holds that is gone.
// The same complete sync again drops nothing more and answers nothing new
// (the cell applied the first answer).
func TestSyncCompleteDropsWhatIsNoLongerNeeded(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		bs, cs := f.state(f.b), f.state(f.c)
		if got := f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{held(bs), held(cs)}}); got != nil {
			t.Fatalf("setup: %+v", got)
		}
		f.sync("api!cell2", wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{held(bs), held(cs)}})
		complete := wire.SecurityGroupsSync{Complete: true, Want: []string{f.a, "gone-wanted"},
			Held: []wire.HeldGroup{held(bs), held(cs), {ID: "gone-held", Revision: 3, MemberSeq: 2}}}
		got := f.sync("api!cell1", complete)
		if got == nil || !slices.Equal(groupIDs(got), []string{f.a}) || !got.Groups[0].HasMembers ||
			len(got.Groups[0].Members) != 1 || got.Groups[0].Members[0].Address != f.addrA {
			t.Fatalf("complete sync answered %+v, want A whole with its one member", got)
		}
		if drop := sorted(got.Drop...); !slices.Equal(drop, sorted(f.b, f.c, "gone-wanted", "gone-held")) {
			t.Errorf("dropped %v, want B, C and the two gone groups", drop)
		}
		if h := f.holds("api!cell1"); !slices.Equal(h, []string{f.a}) {
			t.Errorf("cell1 holds %v, want A alone", h)
		}
		if h := f.holds("api!cell2"); !slices.Equal(h, sorted(f.b, f.c)) {
			t.Errorf("cell2 holds %v: another cell's sync changed it", h)
		}
		as := f.state(f.a)
		again := f.sync("api!cell1", wire.SecurityGroupsSync{Complete: true, Want: []string{f.a}, Held: []wire.HeldGroup{held(as)}})
		if again != nil {
			t.Errorf("the complete sync of a cell that applied the answer got %+v, want nothing", again)
		}
	})
}

// TestSyncThatIsNotCompleteKeepsWhatTheCellHolds: a sync for a new group
// (not complete) leaves the cell a holder of what it held before, and a
// held group whose member sequence moved on is sent whole even if not
// wanted (a cell that saw a gap asks that way).
func TestSyncThatIsNotCompleteKeepsWhatTheCellHolds(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		bs, cs := f.state(f.b), f.state(f.c)
		f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.b}, Held: []wire.HeldGroup{held(bs), held(cs)}})
		f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.a}, Held: []wire.HeldGroup{{ID: f.a}}})
		if h := f.holds("api!cell1"); !slices.Equal(h, sorted(f.a, f.b, f.c)) {
			t.Errorf("cell1 holds %v, want A, B and C", h)
		}
		gap := held(cs)
		gap.MemberSeq = 0
		got := f.sync("api!cell1", wire.SecurityGroupsSync{Held: []wire.HeldGroup{gap}})
		if got == nil || !slices.Equal(groupIDs(got), []string{f.c}) || !got.Groups[0].HasMembers {
			t.Errorf("a held group behind answered %+v, want C whole", got)
		}
	})
}
