package apicopy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// sgFixture is an API cell with a network, a project's default group and
// a group "web", and servers bound to the default group as a create binds
// them (one reservation).
type sgFixture struct {
	t          *testing.T
	d          *db.DB
	h          *apicopy.Handlers
	rec        *recorder
	net        string
	def, web   string
	specs      map[string]wire.InstanceSpec
	statements int64
}

func newSGFixture(t *testing.T, d *db.DB, uuids ...string) *sgFixture {
	t.Helper()
	ctx := context.Background()
	if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
		t.Fatal(err)
	}
	netID, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "")
	if err != nil {
		t.Fatal(err)
	}
	f := &sgFixture{t: t, d: d, rec: &recorder{}, net: netID, specs: map[string]wire.InstanceSpec{}}
	f.h = &apicopy.Handlers{Sender: f.rec, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
	err = d.InTx(ctx, func(tx *db.Tx) error {
		def := &netdb.SecurityGroup{Name: "default", ProjectID: "p", Stateful: true, IsDefault: true}
		web := &netdb.SecurityGroup{Name: "web", ProjectID: "p", Stateful: true}
		for _, g := range []*netdb.SecurityGroup{def, web} {
			if err := netdb.CreateSecurityGroup(ctx, tx, g, t0); err != nil {
				return err
			}
		}
		f.def, f.web = def.ID, web.ID
		var insts []apidb.Instance
		for i, u := range uuids {
			spec := wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", ReservationID: "r-1", LaunchIndex: i,
				CreatedAt: t0}
			insts = append(insts, apidb.Instance{InstanceSpec: spec, FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building",
				TaskState: "scheduling"})
		}
		if err := apidb.Create(ctx, tx, insts); err != nil {
			return err
		}
		groups, err := netdb.BindSecurityGroups(ctx, tx, "r-1", "p", nil, len(uuids))
		for _, in := range insts {
			in.SecurityGroups = groups // what the build carries
			f.specs[in.UUID] = in.InstanceSpec
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// placed is the root's scheduler sending the build of uuids to child.
func (f *sgFixture) placed(child string, base int64, uuids ...string) {
	f.t.Helper()
	b := &wire.BuildInstances{BaseVersion: base, Recorded: true}
	for _, u := range uuids {
		b.Instances = append(b.Instances, f.specs[u])
	}
	if err := f.d.InTx(context.Background(), func(tx *db.Tx) error { return f.h.Placed(context.Background(), tx, child, "req-p", b) }); err != nil {
		f.t.Fatalf("Placed(%s): %v", child, err)
	}
}

// update applies one instance_update carrying states, counting its statements.
func (f *sgFixture) update(states ...wire.InstanceState) {
	f.t.Helper()
	payload, _ := json.Marshal(wire.InstanceUpdate{Instances: states})
	env := &wire.Envelope{ID: "m", Method: wire.MethodInstanceUpdate, RequestID: "req-u", Payload: payload}
	before := f.d.Statements()
	if err := f.d.InTx(context.Background(), func(tx *db.Tx) error { return f.h.InstanceUpdate(context.Background(), tx, env) }); err != nil {
		f.t.Fatal(err)
	}
	f.statements = f.d.Statements() - before
}

// changeGroup is addSecurityGroup (add) or removeSecurityGroup, as the
// Compute API runs it.
func (f *sgFixture) changeGroup(server, group string, add bool) {
	f.t.Helper()
	ctx := context.Background()
	err := f.d.InTx(ctx, func(tx *db.Tx) error {
		var err error
		if add {
			_, err = netdb.BindSecurityGroup(ctx, tx, server, group, t0)
		} else {
			_, err = netdb.UnbindSecurityGroup(ctx, tx, server, group, t0)
		}
		if err != nil {
			return err
		}
		return sgsync.ServerGroupsChanged(ctx, tx, f.rec, "req-g", server)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// portUpdates takes the port_updates sent since the last take, and fails
// on any other message.
func (f *sgFixture) portUpdates() (to []string, pus []*wire.PortUpdate) {
	f.t.Helper()
	for i, m := range f.rec.msgs {
		if m.method != wire.MethodPortUpdate {
			f.t.Fatalf("sent %v, want only port_update", m)
		}
		to, pus = append(to, m.to), append(pus, f.rec.payloads[i].(*wire.PortUpdate))
	}
	f.rec.msgs, f.rec.payloads = nil, nil
	return to, pus
}

func (f *sgFixture) revision(port string) int64 {
	f.t.Helper()
	p, err := netdb.GetPort(context.Background(), f.d, port)
	if err != nil {
		f.t.Fatal(err)
	}
	return p.RevisionNumber
}

func addrs(ip string) []wire.Address {
	return []wire.Address{{Network: "private", Addr: ip, Version: 4, MAC: "fa:16:3e:00:00:01"}}
}

// TestGroupsChangedBeforeTheCellReportsAddresses: a server whose groups
// change (addSecurityGroup) before its cell has reported its addresses has
// no port yet, so nothing is sent then; the port its cell made is recorded
// from the first update that carries its address at revision 2 (above the
// revision 1 of the NIC the cell made from the build), and port_update
// with the server's groups now goes to the cell in that update's
// transaction. A server whose groups did not change, and one whose groups
// were changed and changed back (add then remove), get no port_update and
// their ports stay at revision 1; their update costs no more statements
// than it did (the boot path: one insert-or-ignore per table and the
// member log, and the apply). A repeat of the update, and a late (older)
// copy, send nothing again. The port_update is in the update's
// transaction (durable): a cell that is down gets it when it returns, and
// after its NIC (it reported the address), so the cell has the instance.
func TestGroupsChangedBeforeTheCellReportsAddresses(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		const changed, same, back = "55555555-0000-4000-8000-000000000001", "55555555-0000-4000-8000-000000000002",
			"55555555-0000-4000-8000-000000000003"
		f := newSGFixture(t, d, changed, same, back)
		f.placed("api!c1", 0, changed, same, back)
		f.changeGroup(changed, f.web, true)
		f.changeGroup(back, f.web, true)
		f.changeGroup(back, f.web, false)
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("port_update sent for servers with no port: %v", to)
		}

		// The control alone: the statements of the boot path.
		sameUp := wire.InstanceState{UUID: same, Cell: "api!c1", Version: 2, VMState: "active", Addresses: addrs("10.1.0.3")}
		f.update(sameUp)
		boot := f.statements
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("port_update for a server whose groups did not change: %v", to)
		}
		// Changed back: as many statements as the boot path but the
		// bindings' read, and nothing sent.
		backUp := wire.InstanceState{UUID: back, Cell: "api!c1", Version: 2, VMState: "active", Addresses: addrs("10.1.0.4")}
		f.update(backUp)
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("port_update for a server whose groups were changed back: %v", to)
		}
		if f.statements != boot+1 {
			t.Errorf("the update of a server whose groups were changed back ran %d statements, want %d (the boot's and the bindings' read)",
				f.statements, boot+1)
		}

		up := wire.InstanceState{UUID: changed, Cell: "api!c1", Version: 2, VMState: "active", Addresses: addrs("10.1.0.2")}
		f.update(up)
		port := netdb.PortID(changed, "private", "10.1.0.2")
		to, pus := f.portUpdates()
		want := wire.PortUpdate{UUID: changed, PortID: port, Revision: 2, SecurityGroups: sortedIDs(f.def, f.web), PortSecurity: true}
		if len(pus) != 1 || to[0] != "api!c1" || !samePortUpdate(*pus[0], want) {
			t.Fatalf("sent %v %+v; want one port_update %+v to api!c1", to, pus, want)
		}
		if r := f.revision(port); r != 2 {
			t.Errorf("the port's revision = %d, want 2", r)
		}
		for _, p := range []string{netdb.PortID(same, "private", "10.1.0.3"), netdb.PortID(back, "private", "10.1.0.4")} {
			if r := f.revision(p); r != 1 {
				t.Errorf("port %s of a server whose groups are the build's: revision %d, want 1", p, r)
			}
		}

		// A repeat, and a late copy: nothing.
		f.update(up)
		f.update(wire.InstanceState{UUID: changed, Cell: "api!c1", Version: 1, VMState: "building", Addresses: addrs("10.1.0.2")})
		// A later update with the same addresses: nothing either.
		up.Version, up.PowerState = 3, 1
		f.update(up)
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("a repeat, a late copy or a later update sent %v", to)
		}
		// A change now goes the usual way, above the revision sent.
		f.changeGroup(changed, f.web, false)
		to, pus = f.portUpdates()
		if len(pus) != 1 || to[0] != "api!c1" || pus[0].Revision != 3 || !slices.Equal(pus[0].SecurityGroups, []string{f.def}) {
			t.Fatalf("a later removeSecurityGroup sent %v %+v; want revision 3 with the default group to api!c1", to, pus)
		}
	})
}

// TestRevisedPortsFollowTheBuild: a build carries its ports as they were
// when it was recorded. A port update of a server not placed yet is not
// sent (no cell), and goes to the cell its build is placed in, after the
// build; a port update sent to the cell that then hands the build back
// goes again to the cell it is placed in next; and when the copy's cell
// changes to the cell below a routing cell that builds it, the ports
// revised since the build go to that cell. Each carries the port's state
// now. A repeat or a late copy of the placement or of the update sends
// nothing; a server none of whose ports were revised sends nothing when
// placed or moved. The messages are in the placement's or the update's
// transaction (durable): a cell that is down gets them when it returns,
// after the build (the same sender's outbox, in order); one a routing
// cell drops (it has no such instance) is sent again to the cell below
// when that cell reports.
func TestRevisedPortsFollowTheBuild(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		const u, plain, deep = "66666666-0000-4000-8000-000000000001", "66666666-0000-4000-8000-000000000002",
			"66666666-0000-4000-8000-000000000003"
		f := newSGFixture(t, d, u, plain, deep)
		// A port of the user's passed in to u and to deep: bound at the
		// create (its revision then is what the build carries).
		userPort := func(server string) *netdb.Port {
			var p *netdb.Port
			err := d.InTx(ctx, func(tx *db.Tx) error {
				var err error
				if p, err = netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: f.net, ProjectID: "p", MadeBy: netdb.MadeByUser,
					AdminStateUp: true, PortSecurity: true, SecurityGroups: []string{f.def}}}, t0); err != nil {
					return err
				}
				if err := netdb.BindPort(ctx, tx, p.ID, server, "", t0); err != nil {
					return err
				}
				p, err = netdb.GetPort(ctx, tx, p.ID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		up, dp := userPort(u), userPort(deep)
		updatePort := func(id string, groups ...string) {
			t.Helper()
			err := d.InTx(ctx, func(tx *db.Tx) error {
				p, err := netdb.UpdatePort(ctx, tx, id, netdb.PortPatch{SecurityGroups: &groups}, nil, t0)
				if err != nil {
					return err
				}
				return sgsync.SendPortUpdate(ctx, tx, f.rec, "req-port", p)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		wantOne := func(what, cell string, want wire.PortUpdate) {
			t.Helper()
			to, pus := f.portUpdates()
			if len(pus) != 1 || to[0] != cell || !samePortUpdate(*pus[0], want) {
				t.Fatalf("%s: sent %v %+v; want one port_update %+v to %s", what, to, pus, want, cell)
			}
		}

		// Before the first placement: no cell to send to.
		updatePort(up.ID, f.def, f.web)
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("a port update of a server in no cell sent %v", to)
		}
		want := wire.PortUpdate{UUID: u, PortID: up.ID, Revision: up.RevisionNumber + 1, SecurityGroups: sortedIDs(f.def, f.web), PortSecurity: true}
		f.placed("api!c1", 0, u, plain)
		wantOne("the first placement", "api!c1", want)
		f.placed("api!c1", 0, u, plain) // a repeat: the copy is there already
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("a repeated placement sent %v", to)
		}

		// Updated while in c1, which then hands the build back: placed in c2.
		updatePort(up.ID, f.web)
		want.Revision, want.SecurityGroups = want.Revision+1, []string{f.web}
		wantOne("an update in c1", "api!c1", want)
		f.placed("api!c2", 100, u, plain)
		wantOne("placed again in c2", "api!c2", want)
		f.placed("api!c2", 100, u, plain)
		f.placed("api!c1", 0, u, plain) // late: an older placement
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("a repeated or late placement sent %v", to)
		}
		// The cell reports: same cell, nothing to send.
		f.update(wire.InstanceState{UUID: u, Cell: "api!c2", Version: 102, VMState: "active", Addresses: []wire.Address{
			{Network: "private", NetworkID: f.net, Addr: up.FixedIPs[0].IPAddress, Version: 4, MAC: up.MACAddress, PortID: up.ID}}},
			wire.InstanceState{UUID: plain, Cell: "api!c2", Version: 102, VMState: "active", Addresses: addrs("10.1.0.9")})
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("the new cell's report sent %v", to)
		}

		// A routing cell: the copy names api!r, a port update goes there
		// (and is dropped: it does not hold the instance); the cell below
		// that builds it reports, and is sent it.
		f.placed("api!r", 0, deep)
		updatePort(dp.ID, f.web)
		wantDeep := wire.PortUpdate{UUID: deep, PortID: dp.ID, Revision: dp.RevisionNumber + 1, SecurityGroups: []string{f.web}, PortSecurity: true}
		wantOne("an update while the copy names the routing cell", "api!r", wantDeep)
		reported := wire.InstanceState{UUID: deep, Cell: "api!r!c3", Version: 2, VMState: "building", TaskState: "spawning"}
		f.update(reported)
		wantOne("the report of the cell below", "api!r!c3", wantDeep)
		f.update(reported) // a repeat
		late := reported
		late.Version = 1
		f.update(late) // a late copy
		reported.Version, reported.VMState, reported.TaskState = 3, "active", ""
		f.update(reported) // a later one from the same cell
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("a repeat, a late or a later update sent %v", to)
		}

		// A server with no revised port moves without a port_update.
		f.update(wire.InstanceState{UUID: plain, Cell: "api!c2!c4", Version: 103, VMState: "active", Addresses: addrs("10.1.0.9")})
		if to, _ := f.portUpdates(); len(to) != 0 {
			t.Fatalf("a server with no revised port moved and sent %v", to)
		}
	})
}

// TestGroupsChangedInTheFirstCellReachTheNextCellsPorts: a server whose
// groups changed while its first cell held it (port_update sent there for
// the port that cell made) is built again in another cell, which makes a
// port of its own from the build's groups: that port is recorded at
// revision 2 and the new cell is sent the server's groups now.
func TestGroupsChangedInTheFirstCellReachTheNextCellsPorts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		const u = "77777777-0000-4000-8000-000000000001"
		f := newSGFixture(t, d, u)
		f.placed("api!c1", 0, u)
		f.update(wire.InstanceState{UUID: u, Cell: "api!c1", Version: 2, VMState: "active", Addresses: addrs("10.1.0.2")})
		f.changeGroup(u, f.web, true)
		to, pus := f.portUpdates()
		if len(pus) != 1 || to[0] != "api!c1" || pus[0].Revision != 2 {
			t.Fatalf("addSecurityGroup sent %v %+v; want one port_update at revision 2 to api!c1", to, pus)
		}
		// c1's port (revision 2) goes to c2 after the build; c2 drops it
		// (not its port). c2's own port is then revised and sent.
		f.placed("api!c2", 100, u)
		if to, pus = f.portUpdates(); len(pus) != 1 || to[0] != "api!c2" || pus[0].PortID != netdb.PortID(u, "private", "10.1.0.2") {
			t.Fatalf("placed again: sent %v %+v; want c1's port to api!c2", to, pus)
		}
		f.update(wire.InstanceState{UUID: u, Cell: "api!c2", Version: 102, VMState: "active", Addresses: addrs("10.2.0.5")})
		port := netdb.PortID(u, "private", "10.2.0.5")
		want := wire.PortUpdate{UUID: u, PortID: port, Revision: 2, SecurityGroups: sortedIDs(f.def, f.web), PortSecurity: true}
		to, pus = f.portUpdates()
		if len(pus) != 1 || to[0] != "api!c2" || !samePortUpdate(*pus[0], want) {
			t.Fatalf("the new cell's port: sent %v %+v; want %+v to api!c2", to, pus, want)
		}
	})
}

func sortedIDs(ids ...string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

func samePortUpdate(a, b wire.PortUpdate) bool {
	ag, bg := sortedIDs(a.SecurityGroups...), sortedIDs(b.SecurityGroups...)
	return a.UUID == b.UUID && a.PortID == b.PortID && a.Revision == b.Revision && slices.Equal(ag, bg) &&
		a.PortSecurity == b.PortSecurity && len(a.AllowedAddressPairs) == len(b.AllowedAddressPairs)
}
