package sgsync_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func (f *fixture) flusher() *sgsync.Flusher {
	f.t.Helper()
	fl, err := sgsync.NewFlusher(sgsync.FlusherConfig{DB: f.d, Sender: f.out, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.t.Fatal(err)
	}
	return fl
}

// members decodes the security_group_members messages sent, by cell; a
// cell must get one at most.
func members(t *testing.T, msgs []msg) map[string]*wire.SecurityGroupMembers {
	t.Helper()
	out := map[string]*wire.SecurityGroupMembers{}
	for _, m := range msgs {
		if m.method != wire.MethodSecurityGroupMembers {
			t.Fatalf("unexpected %s to %s", m.method, m.to)
		}
		if out[m.to] != nil {
			t.Fatalf("two member messages to %s", m.to)
		}
		var sm wire.SecurityGroupMembers
		if err := json.Unmarshal(m.payload, &sm); err != nil {
			t.Fatal(err)
		}
		out[m.to] = &sm
	}
	return out
}

func delta(sm *wire.SecurityGroupMembers, group string) *wire.MemberDelta {
	if sm == nil {
		return nil
	}
	for i := range sm.Deltas {
		if sm.Deltas[i].GroupID == group {
			return &sm.Deltas[i]
		}
	}
	return nil
}

// TestFlusherSendsDeltasOncePerHolder: cell1 holds A and C, cell2 holds
// C. A port made in A and C, and another made in C and deleted before the
// flush, are logged; one flush sends cell1 one message with A's and C's
// deltas and cell2 one with C's, each from the group's sequence to the
// next; the port made and deleted is a removal (the last change wins, so
// a cell that got the port in a whole set meanwhile drops it). The log is
// empty after; the next flush finds nothing and sends nothing (one SELECT,
// no transaction).
func TestFlusherSendsDeltasOncePerHolder(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.a, f.c}, Held: []wire.HeldGroup{{ID: f.a}, {ID: f.c}}})
		f.sync("api!cell2", wire.SecurityGroupsSync{Want: []string{f.c}, Held: []wire.HeldGroup{{ID: f.c}}})
		as, cs := f.state(f.a), f.state(f.c)
		var both, gone *netdb.Port
		err := d.InTx(ctx, func(tx *db.Tx) (err error) {
			both, err = netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: f.net, ProjectID: "p", AdminStateUp: true, PortSecurity: true,
				SecurityGroups: []string{f.a, f.c}}}, t0)
			if err != nil {
				return err
			}
			gone, err = netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: f.net, ProjectID: "p", AdminStateUp: true, PortSecurity: true,
				SecurityGroups: []string{f.c}}}, t0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { _, err := netdb.DeletePort(ctx, tx, gone.ID, nil); return err }); err != nil {
			t.Fatal(err)
		}
		if n := f.logRows(); n != 4 {
			t.Fatalf("%d rows logged, want 4 (both in A and C, gone in C and out)", n)
		}
		fl := f.flusher()
		n, err := fl.Once(ctx)
		if err != nil || n != 4 {
			t.Fatalf("flush took %d rows: %v", n, err)
		}
		got := members(t, f.out.take())
		if len(got) != 2 {
			t.Fatalf("flush sent to %d cells, want 2", len(got))
		}
		bothA := wire.GroupMember{PortID: both.ID, Address: both.FixedIPs[0].IPAddress}
		goneC := wire.GroupMember{PortID: gone.ID, Address: gone.FixedIPs[0].IPAddress}
		da := delta(got["api!cell1"], f.a)
		if da == nil || da.FromSeq != as.MemberSeq || da.ToSeq != as.MemberSeq+1 || !slices.Equal(da.Added, []wire.GroupMember{bothA}) || len(da.Removed) != 0 {
			t.Errorf("A's delta to cell1 %+v, want +%v from %d to %d", da, bothA, as.MemberSeq, as.MemberSeq+1)
		}
		for _, cell := range []string{"api!cell1", "api!cell2"} {
			dc := delta(got[cell], f.c)
			if dc == nil || dc.FromSeq != cs.MemberSeq || dc.ToSeq != cs.MemberSeq+1 || !slices.Equal(dc.Added, []wire.GroupMember{bothA}) ||
				!slices.Equal(dc.Removed, []wire.GroupMember{goneC}) {
				t.Errorf("C's delta to %s %+v, want +%v -%v", cell, dc, bothA, goneC)
			}
		}
		if delta(got["api!cell2"], f.a) != nil {
			t.Error("cell2 got A's delta without holding A")
		}
		if s := f.state(f.a).MemberSeq; s != as.MemberSeq+1 {
			t.Errorf("A's member sequence %d, want %d", s, as.MemberSeq+1)
		}
		if n := f.logRows(); n != 0 {
			t.Errorf("%d rows left in the log", n)
		}
		commits, stmts := d.Commits(), d.Statements()
		if n, err := fl.Once(ctx); err != nil || n != 0 {
			t.Errorf("a flush of an empty log took %d rows: %v", n, err)
		}
		if msgs := f.out.take(); len(msgs) != 0 {
			t.Errorf("a flush of an empty log sent %+v", msgs)
		}
		if d.Commits() != commits || d.Statements() != stmts+1 {
			t.Errorf("a flush of an empty log ran %d statements and %d transactions, want 1 and 0", d.Statements()-stmts, d.Commits()-commits)
		}
		// A sync after the flush: the whole set at the new sequence has
		// the port, and not the deleted one.
		w := f.sync("api!cell3", wire.SecurityGroupsSync{Want: []string{f.c}, Held: []wire.HeldGroup{{ID: f.c}}})
		c := find(w, f.c)
		if c == nil || c.MemberSeq != cs.MemberSeq+1 || len(c.Members) != 2 || slices.Contains(c.Members, goneC) {
			t.Errorf("C whole after the flush %+v, want its 2 members at %d", c, cs.MemberSeq+1)
		}
	})
}

// TestFlusherFailureLeavesTheLog: a flush whose send fails commits
// nothing: the rows stay, no sequence moves, and the next flush sends the
// same delta (the same numbers) once the outbox works. (A holder that is
// down gets its deltas from the outbox in order when it returns; a repeat
// or a late copy of a delta is one the cell is at or past, and one it
// missed is a gap it mends with a sync: both on the cell side.)
func TestFlusherFailureLeavesTheLog(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.a}, Held: []wire.HeldGroup{{ID: f.a}}})
		as := f.state(f.a)
		err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: f.net, ProjectID: "p", AdminStateUp: true, PortSecurity: true,
				SecurityGroups: []string{f.a}}}, t0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		fl := f.flusher()
		f.out.setDown(true)
		if _, err := fl.Once(ctx); err == nil {
			t.Fatal("a flush with a failing outbox succeeded")
		}
		if n, s := f.logRows(), f.state(f.a).MemberSeq; n != 1 || s != as.MemberSeq {
			t.Fatalf("after a failed flush: %d rows, sequence %d; want 1 and %d", n, s, as.MemberSeq)
		}
		f.out.setDown(false)
		if n, err := fl.Once(ctx); err != nil || n != 1 {
			t.Fatalf("flush: %d, %v", n, err)
		}
		d1 := delta(members(t, f.out.take())["api!cell1"], f.a)
		if d1 == nil || d1.FromSeq != as.MemberSeq || d1.ToSeq != as.MemberSeq+1 || len(d1.Added) != 1 {
			t.Errorf("delta %+v, want one added from %d", d1, as.MemberSeq)
		}
	})
}

// TestFlusherRunsOnItsOwn: started, the flusher sends what is logged
// within its interval, and Shutdown waits for it.
func TestFlusherRunsOnItsOwn(t *testing.T) {
	d := dbtest.Open(t, "sqlite")
	f := newFixture(t, d)
	ctx := context.Background()
	f.sync("api!cell1", wire.SecurityGroupsSync{Want: []string{f.a}, Held: []wire.HeldGroup{{ID: f.a}}})
	fl := f.flusher()
	if err := fl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = fl.Shutdown(ctx) }()
	err := d.InTx(ctx, func(tx *db.Tx) error {
		_, err := netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: f.net, ProjectID: "p", AdminStateUp: true, PortSecurity: true,
			SecurityGroups: []string{f.a}}}, t0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []msg
	testpoll.Eventually(t, 10*time.Second, "the flusher to send the new member", func() (bool, string) {
		got = append(got, f.out.take()...)
		return len(got) > 0, "nothing sent"
	})
	if d := delta(members(t, got)["api!cell1"], f.a); d == nil || len(d.Added) != 1 {
		t.Errorf("sent %+v", got)
	}
	if err := fl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestMemberLogOfServersAndPorts: the writes that change a group's
// members log them: a cell's boot-made port recorded from the server's
// addresses joins the server's groups (one statement for the whole
// update); addSecurityGroup adds the server's boot-made ports to the
// group (and raises their revision); a port update turning port security
// off removes its addresses, and address pairs add theirs; the server's
// deletion removes its ports' addresses.
func TestMemberLogOfServersAndPorts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		f := newFixture(t, d)
		ctx := context.Background()
		const server = "00000000-0000-4000-8000-0000000000aa"
		in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: server, Name: "s", ProjectID: "p", UserID: "u", ImageRef: "img",
			ReservationID: "r-1", CreatedAt: t0}, FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling"}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := apidb.Create(ctx, tx, []apidb.Instance{in}); err != nil {
				return err
			}
			_, err := netdb.BindSecurityGroups(ctx, tx, "r-1", "p", nil, 1)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rows := func() []netdb.MemberChange {
			t.Helper()
			var out []netdb.MemberChange
			if err := d.InTx(ctx, func(tx *db.Tx) (err error) {
				out, err = netdb.TakeMemberChanges(ctx, tx, 100)
				if err == nil {
					_, err = tx.Exec(ctx, `DELETE FROM security_group_member_changes`)
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			for i := range out {
				out[i].ID = 0
			}
			return out
		}
		addr := wire.Address{Network: "net", NetworkID: f.net, Addr: "10.9.0.77", Version: 4}
		port := netdb.PortID(server, "net", addr.Addr)
		record := func() {
			t.Helper()
			err := d.InTx(ctx, func(tx *db.Tx) error {
				_, err := netdb.MaterializeServerPorts(ctx, tx, []netdb.ServerAddresses{{UUID: server, ProjectID: "p", Addresses: []wire.Address{addr}}}, t0)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		record()
		want := netdb.MemberChange{Member: netdb.Member{GroupID: f.a, PortID: port, Address: "10.9.0.77"}, Added: true}
		if got := rows(); !slices.Equal(got, []netdb.MemberChange{want}) {
			t.Errorf("recording the boot's port logged %+v, want %+v", got, want)
		}
		record() // the same addresses again (a repeated update): nothing new
		if got := rows(); len(got) != 0 {
			t.Errorf("recording the same port again logged %+v", got)
		}

		before, _ := netdb.GetPort(ctx, d, port)
		if err := d.InTx(ctx, func(tx *db.Tx) error { _, err := netdb.BindSecurityGroup(ctx, tx, server, f.b, t0); return err }); err != nil {
			t.Fatal(err)
		}
		after, _ := netdb.GetPort(ctx, d, port)
		if got := rows(); !slices.Equal(got, []netdb.MemberChange{{Member: netdb.Member{GroupID: f.b, PortID: port, Address: "10.9.0.77"}, Added: true}}) {
			t.Errorf("addSecurityGroup logged %+v", got)
		}
		if after.RevisionNumber != before.RevisionNumber+1 || !slices.Contains(after.SecurityGroups, f.b) {
			t.Errorf("the port after addSecurityGroup: revision %d (was %d), groups %v", after.RevisionNumber, before.RevisionNumber, after.SecurityGroups)
		}

		pairs := []netdb.AddressPair{{IPAddress: "10.9.0.200"}}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := netdb.UpdatePort(ctx, tx, f.portC, netdb.PortPatch{AllowedAddressPairs: &pairs}, nil, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got := rows(); !slices.Equal(got, []netdb.MemberChange{{Member: netdb.Member{GroupID: f.c, PortID: f.portC, Address: "10.9.0.200"}, Added: true}}) {
			t.Errorf("an address pair logged %+v", got)
		}
		off, none := false, []string{}
		noPairs := []netdb.AddressPair{}
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := netdb.UpdatePort(ctx, tx, f.portC, netdb.PortPatch{PortSecurity: &off, SecurityGroups: &none, AllowedAddressPairs: &noPairs}, nil, t0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if got := rows(); len(got) != 2 || got[0].Added || got[1].Added {
			t.Errorf("port security off logged %+v, want the two addresses removed", got)
		}

		if err := d.InTx(ctx, func(tx *db.Tx) error { _, err := netdb.FreeServerPorts(ctx, tx, server, t0); return err }); err != nil {
			t.Fatal(err)
		}
		got := rows()
		if len(got) != 2 || got[0].Added || got[1].Added || got[0].PortID != port {
			t.Errorf("the server's deletion logged %+v, want its port out of A and B", got)
		}
	})
}
