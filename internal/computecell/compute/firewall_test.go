package compute_test

import (
	"context"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestSpawnSetsFilter checks the compute role's enforcement: a spawn sets
// the instance's filter, with no statement more than a spawn of a NIC of
// an older API cell (nothing enforced) once the firewall holds its
// groups; a move's copy gets the filter too; destroys take it away.
func TestSpawnSetsFilter(t *testing.T) {
	ctx := context.Background()
	d := dbtest.Open(t, "sqlite")
	for _, s := range []struct {
		name string
		ms   []db.Migration
	}{{"outbox", outbox.Migrations}, {"cells", cells.Migrations}, {"compute", celldb.Migrations}} {
		if err := d.Migrate(ctx, s.name, s.ms); err != nil {
			t.Fatalf("migrate %s: %v", s.name, err)
		}
	}
	drv, err := fake.New(fake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	// The firewall reads the generations only when woken: the statement
	// counts below are the spawns' alone.
	svc, err := compute.New(compute.Config{Cell: cell, DB: d, Sender: &recorder{}, Driver: drv, Hosts: []string{"h1", "h2"},
		FirewallInterval: time.Hour, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := d.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The cell holds the group (written after Start: the first spawn
	// finds it missing and the firewall loads it).
	exec(`INSERT INTO sg_groups (id, revision, member_seq, stateful, rules) VALUES ('web', 1, 1, 1,
		'[{"id":"ssh","direction":"ingress","ethertype":"IPv4","protocol":"tcp","port_range_min":22,"port_range_max":22,"remote_ip_prefix":"0.0.0.0/0"},
		{"id":"self","direction":"ingress","ethertype":"IPv4","remote_group_id":"web"}]')`)
	exec(`INSERT INTO sg_members (group_id, port_id, address) VALUES ('web', 'port-x', '10.0.0.99')`)
	exec(`UPDATE sg_state SET rules_gen = rules_gen + 1 WHERE id = 1`)
	add := func(i int, rev int64) string {
		t.Helper()
		u := uuidN(i)
		n := wire.NIC{NetworkID: "n1", NetworkName: "net1", PortID: "port-" + u, SecurityGroups: []string{"web"}, PortRevision: rev}
		in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
			Flavor: small, VMState: celldb.VMBuilding, TaskState: celldb.TaskNetworking, Version: 1, RequestID: "req-" + u,
			Build: celldb.BuildContext{NICs: []wire.NIC{n}}}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, t0) }); err != nil {
			t.Fatal(err)
		}
		exec(`INSERT INTO fixed_ips (subnet_id, address_int, address, network_id, network, in_block, instance_uuid, nic, port_id, api_port, mac, updated_at)
			VALUES ('s1', ?, ?, 'n1', 'net1', 0, ?, 0, ?, 1, '', 0)`, 167772160+i, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String(), u, n.PortID)
		return u
	}
	ssh := func(host, u string) bool {
		return drv.Allows(host, u, "ingress", "tcp", 22, netip.MustParseAddr("203.0.113.9"))
	}
	closed := func(host, u string) bool {
		return !drv.Allows(host, u, "ingress", "tcp", 80, netip.MustParseAddr("203.0.113.9"))
	}

	first := add(1, 1)
	if err := svc.Spawn(ctx, "h1", first); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, 10*time.Second, "the first instance's group loaded", func() (bool, string) {
		return ssh("h1", first) && closed("h1", first), "ssh not let in"
	})

	// The same spawn by a compute role whose driver has no firewall.
	plain, err := compute.New(compute.Config{Cell: cell, DB: d, Sender: &recorder{}, Driver: noFirewall{drv}, Hosts: []string{"h3"},
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	// spawnCost is the fewest statements the spawns of us ran: the
	// counter is the database's, and the services' own loops (the image
	// cache's first read, a heartbeat, the firewall's poll) may run a
	// statement during any one spawn; a spawn's own statements are the
	// same each time, so the least is the spawn's cost.
	spawnCost := func(svc *compute.Service, host string, us ...string) int64 {
		t.Helper()
		least := int64(-1)
		for _, u := range us {
			before := d.Statements()
			if err := svc.Spawn(ctx, host, u); err != nil {
				t.Fatal(err)
			}
			if n := d.Statements() - before; least < 0 || n < least {
				least = n
			}
		}
		return least
	}
	if err := plain.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = plain.Shutdown(context.Background()) })
	base, legacy, enforced := add(4, 1), add(2, 0), add(3, 7)
	extra := func(svc *compute.Service, host string, us ...string) {
		t.Helper()
		for _, u := range us {
			if err := svc.Destroy(ctx, host, u); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The extra instances measured go again, so the rest sees h1 as
	// before.
	b2, b3, l2, l3, e2, e3 := add(5, 1), add(6, 1), add(7, 0), add(8, 0), add(9, 7), add(10, 7)
	bc := spawnCost(plain, "h3", base, b2, b3)
	lc := spawnCost(svc, "h1", legacy, l2, l3)
	ec := spawnCost(svc, "h1", enforced, e2, e3)
	extra(plain, "h3", b2, b3)
	extra(svc, "h1", l2, l3, e2, e3)
	if ec != bc || lc != bc {
		t.Errorf("spawns with the groups held ran %d statements, with nothing enforced %d, without a firewall %d", ec, lc, bc)
	}
	if !ssh("h1", enforced) || !closed("h1", enforced) {
		t.Error("the filter of a spawned instance is not set when Spawn returns")
	}
	if _, _, ok := drv.Filter("h1", legacy); ok {
		t.Error("a NIC of an older API cell (port revision 0) has a filter")
	}
	a, err := svc.InstanceFilter(ctx, "h1", enforced)
	if err != nil || len(a.Ports) != 1 || a.Ports[0].PortID != "port-"+enforced || len(a.Ports[0].Rules) != 2 || a.Ports[0].Rules[0].Remote[0] != "0.0.0.0/0" {
		t.Errorf("InstanceFilter = %+v, %v", a, err)
	}

	// A move's copy on h2 gets the filter; destroying either copy takes
	// that copy's away.
	if err := svc.VMSpawn(ctx, "h2", enforced, small); err != nil {
		t.Fatal(err)
	}
	if !ssh("h2", enforced) || !closed("h2", enforced) {
		t.Error("a move's copy has no filter")
	}
	if err := svc.VMDestroy(ctx, "h2", enforced); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := drv.Filter("h2", enforced); ok {
		t.Error("a destroyed copy keeps its filter")
	}
	if err := svc.Destroy(ctx, "h1", enforced); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := drv.Filter("h1", enforced); ok {
		t.Error("a destroyed instance keeps its filter")
	}
	if a, err := svc.InstanceFilter(ctx, "h1", enforced); err != nil || len(a.Ports) != 0 {
		t.Errorf("InstanceFilter of a destroyed instance = %+v, %v", a, err)
	}

	// The offload of a shelved instance takes it off its host: its filter
	// goes, and the host's set of the group its rules named with it.
	if drv.AddressSet("h1", "web") == nil {
		t.Fatal("h1 has no set of the group the first instance's rules name")
	}
	if err := svc.VMOp(ctx, "h1", first, "shelve"); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := drv.Filter("h1", first); ok {
		t.Error("an offloaded instance keeps its filter")
	}
	if set := drv.AddressSet("h1", "web"); set != nil {
		t.Errorf("h1 keeps the set of a group no instance of it names: %v", set)
	}
}

// noFirewall is a driver without the firewall ability.
type noFirewall struct{ d *fake.Driver }

func (n noFirewall) Spawn(ctx context.Context, host string, in virt.Instance) error {
	return n.d.Spawn(ctx, host, in)
}
func (n noFirewall) Destroy(ctx context.Context, host, uuid string) error {
	return n.d.Destroy(ctx, host, uuid)
}
