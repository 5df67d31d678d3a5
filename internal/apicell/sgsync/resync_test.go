package sgsync_test

import (
	"context"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestSyncResendsADriftedMemberSet: a cell whose periodic sync holds a
// group at the root's member sequence with the root's member count gets
// nothing; one that holds a count the root does not (a member set that
// drifted at the same sequence) gets the whole set marked Resync; while
// changes of the group wait in the log (their delta is still to come) the
// counts are not compared. A cell that gives no count (an earlier
// release) is never resynced. The counts are the member sets' sizes.
func TestSyncResendsADriftedMemberSet(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		cs := f.state(f.c)
		counts, err := netdb.GroupMemberCounts(ctx, d, []string{f.a, f.b, f.c})
		if err != nil {
			t.Fatal(err)
		}
		if counts[f.c] != 1 || counts[f.a] != 1 || counts[f.b] != 0 {
			t.Fatalf("member counts %v, want A 1, B none, C 1", counts)
		}
		// The cell first becomes a holder of C.
		f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.c}, Held: []wire.HeldGroup{{ID: f.c}}})
		hold := func(n *int) wire.SecurityGroupsSync {
			return wire.SecurityGroupsSync{Want: []string{f.c}, Complete: true,
				Held: []wire.HeldGroup{{ID: f.c, Revision: cs.RevisionNumber, MemberSeq: cs.MemberSeq, Members: n}}}
		}
		if got := f.sync("api!cell1", hold(ptr(1))); got != nil {
			t.Errorf("a cell at the root's sequence and count got %+v", got)
		}
		if got := f.sync("api!cell1", hold(nil)); got != nil {
			t.Errorf("a cell that gives no count got %+v", got)
		}
		got := f.sync("api!cell1", hold(ptr(2)))
		c := find(got, f.c)
		if got == nil || c == nil || !c.Resync || !c.HasMembers || c.MemberSeq != cs.MemberSeq || len(c.Members) != 1 {
			t.Fatalf("a drifted cell got %+v, want C whole at seq %d marked Resync", got, cs.MemberSeq)
		}
		// A change of C waits in the log: no comparison.
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			return netdb.LogMemberChanges(ctx, tx, []netdb.MemberChange{{Member: netdb.Member{GroupID: f.c, PortID: "p-x", Address: "10.9.0.99"}, Added: true}})
		}); err != nil {
			t.Fatal(err)
		}
		if got := f.sync("api!cell1", hold(ptr(2))); got != nil {
			t.Errorf("with C's change in the log, a count that differs got %+v", got)
		}
	})
}
