package netdb_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// migrated makes the test database an API cell's: apidb's set and ours.
func migrated(t *testing.T, d *db.DB) {
	t.Helper()
	ctx := context.Background()
	if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
		t.Fatalf("migrate api: %v", err)
	}
	if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
		t.Fatalf("migrate netapi: %v", err)
	}
}

func code(err error) string {
	var e *netdb.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func inTx(t *testing.T, d *db.DB, f func(tx *db.Tx) error) error {
	t.Helper()
	return d.InTx(context.Background(), f)
}

func createNetwork(t *testing.T, d *db.DB, n *netdb.Network) *netdb.Network {
	t.Helper()
	if err := inTx(t, d, func(tx *db.Tx) error { return netdb.CreateNetwork(context.Background(), tx, n, t0) }); err != nil {
		t.Fatalf("create network %q: %v", n.Name, err)
	}
	return n
}

func createSubnet(t *testing.T, d *db.DB, spec netdb.SubnetSpec) (*netdb.Subnet, error) {
	t.Helper()
	var s *netdb.Subnet
	err := inTx(t, d, func(tx *db.Tx) (err error) {
		s, err = netdb.CreateSubnet(context.Background(), tx, spec, t0)
		return err
	})
	return s, err
}

// boot makes an instance in the API copy and reports it active (or in
// vmState) with one address per addrs entry ("network addr mac").
func boot(t *testing.T, d *db.DB, uuid, project, vmState, host string, addrs ...wire.Address) {
	t.Helper()
	ctx := context.Background()
	in := apidb.Instance{
		InstanceSpec: wire.InstanceSpec{UUID: uuid, Name: "vm-" + uuid[:4], ProjectID: project, UserID: "u", ImageRef: "img",
			ReservationID: "r-" + uuid, CreatedAt: t0},
		FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling",
	}
	err := d.InTx(ctx, func(tx *db.Tx) error {
		if err := apidb.Create(ctx, tx, []apidb.Instance{in}); err != nil {
			return err
		}
		a, err := apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: uuid, Cell: "api!cell1", Version: 3, Host: host, Node: host,
			VMState: vmState, PowerState: 1, Addresses: addrs, AvailabilityZone: "az1", UpdatedAt: t0}, t0)
		if err != nil {
			return err
		}
		// What apicopy does with the update.
		_, err = netdb.MaterializeServerPorts(ctx, tx, []netdb.ServerAddresses{{UUID: uuid, ProjectID: a.ProjectID, Zone: a.AvailabilityZone, Addresses: addrs}}, t0)
		return err
	})
	if err != nil {
		t.Fatalf("boot %s: %v", uuid, err)
	}
}

func deleteInstance(t *testing.T, d *db.DB, uuid string) {
	t.Helper()
	ctx := context.Background()
	err := d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: uuid, Cell: "api!cell1", Version: 9, VMState: "deleted", Deleted: true}, t0); err != nil {
			return err
		}
		_, err := netdb.FreeServerPorts(ctx, tx, uuid, t0)
		return err
	})
	if err != nil {
		t.Fatalf("delete %s: %v", uuid, err)
	}
}

func TestSeedIsIdempotent(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		// Several API cell processes seeding at once (their migrations
		// done) make one network.
		if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		ids := make([]string, 4)
		errs := make([]error, 4)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ids[i], errs[i] = netdb.Seed(ctx, d, "private", "10.0.0.0/8", "")
			}()
		}
		wg.Wait()
		id := ids[0]
		for i := range ids {
			if errs[i] != nil || ids[i] != id {
				t.Fatalf("concurrent seed %d = %q, %v; want %q", i, ids[i], errs[i], id)
			}
		}
		again, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "")
		if err != nil || again != id {
			t.Fatalf("second seed = %q, %v; want %q", again, err, id)
		}
		nets, err := netdb.ListNetworks(ctx, d)
		if err != nil || len(nets) != 1 {
			t.Fatalf("networks = %d, %v; want 1", len(nets), err)
		}
		n := nets[0]
		if n.ID != id || n.Name != "private" || !n.Shared || !n.AdminStateUp || n.MTU != 1500 || n.ProjectID != netdb.SeedProjectID || len(n.Subnets) != 1 {
			t.Fatalf("seeded network = %+v", n)
		}
		s, err := netdb.GetSubnet(ctx, d, n.Subnets[0])
		if err != nil {
			t.Fatal(err)
		}
		if s.CIDR != "10.0.0.0/8" || s.GatewayIP != "10.0.0.1" || s.IPVersion != 4 || !s.EnableDHCP ||
			len(s.AllocationPools) != 1 || s.AllocationPools[0] != (netdb.Pool{Start: "10.0.0.2", End: "10.255.255.254"}) {
			t.Fatalf("seeded subnet = %+v", s)
		}
		// A network the operator emptied of subnets gets its subnet back.
		if _, err := d.Exec(ctx, `DELETE FROM subnets`); err != nil {
			t.Fatal(err)
		}
		if again, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", ""); err != nil || again != id {
			t.Fatalf("reseed = %q, %v", again, err)
		}
		if n, _ := netdb.GetNetwork(ctx, d, "private"); n == nil || len(n.Subnets) != 1 {
			t.Fatalf("reseeded network = %+v", n)
		}
		if _, err := netdb.Seed(ctx, d, "bad", "10.0.0.0/31", ""); err == nil {
			t.Fatal("seed with a /31 succeeded")
		}
		// Seeded before the admin project's id was known: given it, once.
		if again, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "0123abcd"); err != nil || again != id {
			t.Fatalf("seed with the owner = %q, %v", again, err)
		}
		n, _ = netdb.GetNetwork(ctx, d, "private")
		s, _ = netdb.GetSubnet(ctx, d, n.Subnets[0])
		if n.ProjectID != "0123abcd" || s.ProjectID != "0123abcd" {
			t.Fatalf("after a seed with the owner: network project %q, subnet project %q", n.ProjectID, s.ProjectID)
		}
		if _, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "other"); err != nil {
			t.Fatal(err)
		}
		if n, _ = netdb.GetNetwork(ctx, d, "private"); n.ProjectID != "0123abcd" {
			t.Fatalf("an owned network changed hands on a later seed: %q", n.ProjectID)
		}
	})
}

func TestNetworks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		a := createNetwork(t, d, &netdb.Network{Name: "alpha", ProjectID: "p1", AdminStateUp: true})
		if a.ID == "" || a.MTU != netdb.DefaultMTU || a.RevisionNumber != 1 || !a.CreatedAt.Equal(t0) {
			t.Fatalf("created = %+v", a)
		}
		for _, key := range []string{a.ID, "alpha"} {
			n, err := netdb.GetNetwork(ctx, d, key)
			if err != nil || n.ID != a.ID || n.ProjectID != "p1" || len(n.Subnets) != 0 {
				t.Fatalf("GetNetwork(%q) = %+v, %v", key, n, err)
			}
		}
		if _, err := netdb.NetworkByID(ctx, d, "alpha"); !errors.Is(err, netdb.ErrNotFound) || code(err) != "NetworkNotFound" {
			t.Fatalf("NetworkByID(name) = %v; want NetworkNotFound", err)
		}
		if _, err := netdb.GetNetwork(ctx, d, "nope"); !errors.Is(err, netdb.ErrNotFound) {
			t.Fatalf("GetNetwork(nope) = %v", err)
		}
		if n := (&netdb.Network{ProjectID: "p1"}); !n.VisibleTo("p1", false) || n.VisibleTo("p2", false) || !n.VisibleTo("p2", true) {
			t.Fatal("VisibleTo is wrong for a private network")
		}

		// Names are unique (not empty ones).
		err := inTx(t, d, func(tx *db.Tx) error {
			return netdb.CreateNetwork(ctx, tx, &netdb.Network{Name: "alpha", ProjectID: "p2"}, t0)
		})
		if !errors.Is(err, netdb.ErrConflict) {
			t.Fatalf("duplicate name: %v", err)
		}
		createNetwork(t, d, &netdb.Network{ProjectID: "p1"})
		createNetwork(t, d, &netdb.Network{ProjectID: "p1"})

		// Update: rename, share, MTU; the revision goes up.
		name, shared, mtu := "beta", true, 9000
		var u *netdb.Network
		err = inTx(t, d, func(tx *db.Tx) (err error) {
			u, err = netdb.UpdateNetwork(ctx, tx, a.ID, netdb.NetworkPatch{Name: &name, Shared: &shared, MTU: &mtu}, t0.Add(time.Minute))
			return err
		})
		if err != nil || u.Name != "beta" || !u.Shared || u.MTU != 9000 || u.RevisionNumber != 2 {
			t.Fatalf("update = %+v, %v", u, err)
		}
		if got, _ := netdb.NetworkByID(ctx, d, a.ID); got.Name != "beta" || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("after update = %+v", got)
		}
		err = inTx(t, d, func(tx *db.Tx) (err error) {
			u, err = netdb.UpdateNetwork(ctx, tx, a.ID, netdb.NetworkPatch{Name: &name, MTU: &mtu}, t0.Add(time.Hour))
			return err
		})
		if err != nil || u.RevisionNumber != 2 || !u.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("an update that changes nothing = %+v, %v; want revision 2 kept", u, err)
		}
		other := createNetwork(t, d, &netdb.Network{Name: "gamma", ProjectID: "p1"})
		taken := "beta"
		err = inTx(t, d, func(tx *db.Tx) error {
			_, err := netdb.UpdateNetwork(ctx, tx, other.ID, netdb.NetworkPatch{Name: &taken}, t0)
			return err
		})
		if !errors.Is(err, netdb.ErrConflict) {
			t.Fatalf("rename to a taken name: %v", err)
		}

		// Delete takes the subnets with it.
		if _, err := createSubnet(t, d, netdb.SubnetSpec{NetworkID: a.ID, ProjectID: "p1", IPVersion: 4, CIDR: "192.168.0.0/24"}); err != nil {
			t.Fatal(err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error { return netdb.DeleteNetwork(ctx, tx, a.ID) }); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if subs, _ := netdb.ListSubnets(ctx, d); len(subs) != 0 {
			t.Fatalf("subnets left after delete: %d", len(subs))
		}
		err = inTx(t, d, func(tx *db.Tx) error { return netdb.DeleteNetwork(ctx, tx, a.ID) })
		if !errors.Is(err, netdb.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func TestSubnetValidation(t *testing.T) {
	gw := func(s string) *string { return &s }
	cases := []struct {
		name string
		spec netdb.SubnetSpec
		code string
		kind error
	}{
		{"ipv6", netdb.SubnetSpec{IPVersion: 6, CIDR: "fd00::/64"}, "HTTPBadRequest", netdb.ErrInvalid},
		{"not a cidr", netdb.SubnetSpec{IPVersion: 4, CIDR: "banana"}, "HTTPBadRequest", netdb.ErrInvalid},
		{"v6 cidr", netdb.SubnetSpec{IPVersion: 4, CIDR: "fd00::/64"}, "InvalidInput", netdb.ErrInvalid},
		{"host bits", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.1/24"}, "HTTPBadRequest", netdb.ErrInvalid},
		{"too small", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/31"}, "InvalidInput", netdb.ErrInvalid},
		{"gateway outside", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", GatewayIP: gw("10.2.0.1")}, "InvalidInput", netdb.ErrInvalid},
		{"gateway broadcast", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", GatewayIP: gw("10.1.0.255")}, "InvalidInput", netdb.ErrInvalid},
		{"gateway garbage", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", GatewayIP: gw("x")}, "HTTPBadRequest", netdb.ErrInvalid},
		{"pool reversed", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", AllocationPools: []netdb.Pool{{"10.1.0.9", "10.1.0.5"}}}, "InvalidAllocationPool", netdb.ErrInvalid},
		{"pool outside", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", AllocationPools: []netdb.Pool{{"10.1.0.5", "10.1.1.5"}}}, "OutOfBoundsAllocationPool", netdb.ErrInvalid},
		{"pool has network address", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", AllocationPools: []netdb.Pool{{"10.1.0.0", "10.1.0.5"}}}, "OutOfBoundsAllocationPool", netdb.ErrInvalid},
		{"pools overlap", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", AllocationPools: []netdb.Pool{{"10.1.0.5", "10.1.0.9"}, {"10.1.0.9", "10.1.0.20"}}}, "OverlappingAllocationPools", netdb.ErrConflict},
		{"gateway in pool", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", AllocationPools: []netdb.Pool{{"10.1.0.1", "10.1.0.9"}}}, "GatewayConflictWithAllocationPools", netdb.ErrConflict},
		{"too many dns", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", DNSNameservers: []string{"1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.5", "1.1.1.6"}}, "DNSNameServersExhausted", netdb.ErrInvalid},
		{"bad dns", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", DNSNameservers: []string{"dns.example"}}, "HTTPBadRequest", netdb.ErrInvalid},
		{"duplicate dns", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", DNSNameservers: []string{"1.1.1.1", "1.1.1.1"}}, "HTTPBadRequest", netdb.ErrInvalid},
		{"bad route", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.1.0.0/24", HostRoutes: []netdb.HostRoute{{"nowhere", "10.1.0.1"}}}, "HTTPBadRequest", netdb.ErrInvalid},
		{"overlaps a sibling", netdb.SubnetSpec{IPVersion: 4, CIDR: "10.0.0.0/16"}, "InvalidInput", netdb.ErrInvalid},
		{"no such network", netdb.SubnetSpec{NetworkID: "00000000-0000-0000-0000-00000000dead", IPVersion: 4, CIDR: "10.9.0.0/24"}, "NetworkNotFound", netdb.ErrNotFound},
	}
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		n := createNetwork(t, d, &netdb.Network{Name: "private", ProjectID: "admin", Shared: true})
		if _, err := createSubnet(t, d, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "admin", IPVersion: 4, CIDR: "10.0.0.0/8"}); err != nil {
			t.Fatal(err)
		}
		for _, c := range cases {
			spec := c.spec
			if spec.NetworkID == "" {
				spec.NetworkID = n.ID
			}
			spec.ProjectID = "admin"
			_, err := createSubnet(t, d, spec)
			if code(err) != c.code || !errors.Is(err, c.kind) {
				t.Errorf("%s: err = %v (code %q); want code %q", c.name, err, code(err), c.code)
			}
		}
		subs, err := netdb.ListSubnets(ctx, d)
		if err != nil || len(subs) != 1 {
			t.Fatalf("subnets after refused creates = %d, %v; want 1 (nothing written)", len(subs), err)
		}

		// A good one, with a gateway in the middle and no gateway at all.
		s, err := createSubnet(t, d, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "admin", IPVersion: 4, CIDR: "192.168.1.0/24",
			GatewayIP: gw("192.168.1.100"), DNSNameservers: []string{"8.8.8.8"}, HostRoutes: []netdb.HostRoute{{"172.16.0.1/12", "192.168.1.1"}}})
		if err != nil {
			t.Fatal(err)
		}
		want := []netdb.Pool{{"192.168.1.1", "192.168.1.99"}, {"192.168.1.101", "192.168.1.254"}}
		if len(s.AllocationPools) != 2 || s.AllocationPools[0] != want[0] || s.AllocationPools[1] != want[1] {
			t.Fatalf("pools around the gateway = %+v; want %+v", s.AllocationPools, want)
		}
		if s.HostRoutes[0].Destination != "172.16.0.0/12" {
			t.Fatalf("route destination not canonical: %+v", s.HostRoutes)
		}
		noGW, err := createSubnet(t, d, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "admin", IPVersion: 4, CIDR: "192.168.2.0/30", GatewayIP: gw("")})
		if err != nil || noGW.GatewayIP != "" || len(noGW.AllocationPools) != 1 || noGW.AllocationPools[0] != (netdb.Pool{"192.168.2.1", "192.168.2.2"}) {
			t.Fatalf("no gateway = %+v, %v", noGW, err)
		}
		got, err := netdb.GetSubnet(ctx, d, s.ID)
		if err != nil || got.GatewayIP != "192.168.1.100" || len(got.DNSNameservers) != 1 || got.RevisionNumber != 1 {
			t.Fatalf("get = %+v, %v", got, err)
		}

		// Update: a gateway inside an existing pool is refused, with pools
		// that leave room it is taken.
		newGW := "192.168.1.50"
		err = inTx(t, d, func(tx *db.Tx) error {
			_, err := netdb.UpdateSubnet(ctx, tx, s.ID, netdb.SubnetPatch{GatewayIP: &newGW}, t0)
			return err
		})
		if code(err) != "GatewayConflictWithAllocationPools" {
			t.Fatalf("gateway into a pool: %v", err)
		}
		pools := []netdb.Pool{{"192.168.1.60", "192.168.1.70"}}
		var u *netdb.Subnet
		err = inTx(t, d, func(tx *db.Tx) (err error) {
			u, err = netdb.UpdateSubnet(ctx, tx, s.ID, netdb.SubnetPatch{GatewayIP: &newGW, AllocationPools: &pools}, t0)
			return err
		})
		if err != nil || u.GatewayIP != newGW || u.RevisionNumber != 2 {
			t.Fatalf("update = %+v, %v", u, err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error { return netdb.DeleteSubnet(ctx, tx, s.ID) }); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := netdb.GetSubnet(ctx, d, s.ID); code(err) != "SubnetNotFound" {
			t.Fatalf("get deleted = %v", err)
		}
	})
}

func TestServersPortsAreRecordedAndFreed(t *testing.T) {
	const (
		vm1 = "11111111-0000-0000-0000-000000000001"
		vm2 = "11111111-0000-0000-0000-000000000002"
		vm3 = "11111111-0000-0000-0000-000000000003"
	)
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		netID, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := netdb.NetworkByID(ctx, d, netID)
		boot(t, d, vm1, "p1", "active", "h1", wire.Address{Network: "private", Addr: "10.1.0.2", Version: 4, MAC: "fa:16:3e:00:00:01"})
		// An address on a network the API cell does not have gets no port.
		boot(t, d, vm2, "p2", "building", "h2", wire.Address{Network: "private", Addr: "10.2.0.2", Version: 4},
			wire.Address{Network: "elsewhere", Addr: "172.16.0.2", Version: 4, MAC: "fa:16:3e:00:00:02"})
		boot(t, d, vm3, "p1", "active", "h1") // no address yet: no port

		all, err := netdb.ListPorts(ctx, d, netdb.PortFilter{})
		if err != nil || len(all) != 2 {
			t.Fatalf("ports = %d, %v; want 2", len(all), err)
		}
		p1, err := netdb.GetPort(ctx, d, netdb.PortID(vm1, "private", "10.1.0.2"))
		if err != nil {
			t.Fatal(err)
		}
		if p1.DeviceID != vm1 || p1.NetworkID != netID || p1.ProjectID != "p1" || p1.Status != "ACTIVE" || p1.HostID != "h1" ||
			p1.DeviceOwner != "compute:az1" || p1.MACAddress != "fa:16:3e:00:00:01" || p1.MadeBy != netdb.MadeByCell ||
			len(p1.FixedIPs) != 1 || p1.FixedIPs[0] != (netdb.FixedIP{SubnetID: n.Subnets[0], IPAddress: "10.1.0.2"}) {
			t.Fatalf("port of vm1 = %+v", p1)
		}
		// The same update again records nothing more.
		boot2 := func() error {
			return d.InTx(ctx, func(tx *db.Tx) error {
				_, err := netdb.MaterializeServerPorts(ctx, tx, []netdb.ServerAddresses{{UUID: vm1, ProjectID: "p1", Zone: "az1", Addresses: []wire.Address{{Network: "private", Addr: "10.1.0.2", Version: 4}}}}, t0)
				return err
			})
		}
		if err := boot2(); err != nil {
			t.Fatal(err)
		}
		if ps, _ := netdb.ListPorts(ctx, d, netdb.PortFilter{DeviceIDs: []string{vm1}}); len(ps) != 1 || ps[0].MACAddress != "fa:16:3e:00:00:01" {
			t.Fatalf("ports of vm1 after a repeated update = %+v", ps)
		}
		p2, err := netdb.ListPorts(ctx, d, netdb.PortFilter{DeviceIDs: []string{vm2, vm2, "no-such-vm"}})
		if err != nil || len(p2) != 1 || p2[0].Status != "DOWN" || p2[0].ProjectID != "p2" || p2[0].MACAddress == "" {
			t.Fatalf("ports of a building vm2 = %+v, %v", p2, err)
		}
		if ps, _ := netdb.ListPorts(ctx, d, netdb.PortFilter{ProjectID: "p1"}); len(ps) != 1 || ps[0].ID != p1.ID {
			t.Fatalf("ports of p1 = %+v", ps)
		}
		if ps, _ := netdb.ListPorts(ctx, d, netdb.PortFilter{ProjectID: "p1", DeviceIDs: []string{vm2}}); len(ps) != 0 {
			t.Fatalf("p1 sees vm2's ports: %+v", ps)
		}

		// A deleted instance's ports go with it.
		deleteInstance(t, d, vm2)
		if ps, _ := netdb.ListPorts(ctx, d, netdb.PortFilter{}); len(ps) != 1 {
			t.Fatalf("ports after deleting vm2 = %d; want 1", len(ps))
		}
		if _, err := netdb.GetPort(ctx, d, p2[0].ID); code(err) != "PortNotFound" || !errors.Is(err, netdb.ErrNotFound) {
			t.Fatalf("port of a deleted vm = %v", err)
		}
		// Deleting it twice changes nothing.
		deleteInstance(t, d, vm2)
	})
}

func TestMigrationRecordsThePortsOfLiveInstances(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations[:5]); err != nil {
			t.Fatal(err)
		}
		if _, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", ""); err != nil {
			t.Fatal(err)
		}
		const n = 7
		err := d.InTx(ctx, func(tx *db.Tx) error {
			var insts []apidb.Instance
			for i := range n {
				insts = append(insts, apidb.Instance{
					InstanceSpec: wire.InstanceSpec{UUID: uuidN(i), Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i",
						ReservationID: "r", CreatedAt: t0},
					FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building"})
			}
			if err := apidb.Create(ctx, tx, insts); err != nil {
				return err
			}
			for i := range n {
				if _, err := apidb.ApplyUpdate(ctx, tx, wire.InstanceState{UUID: uuidN(i), Cell: "c", Version: 1, VMState: "active",
					Addresses: []wire.Address{{Network: "private", Addr: addrN(i), Version: 4}}, Deleted: i == 0}, t0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
			t.Fatal(err)
		}
		ps, err := netdb.ListPorts(ctx, d, netdb.PortFilter{})
		if err != nil || len(ps) != n-1 {
			t.Fatalf("ports = %d, %v; want %d (the live instances')", len(ps), err, n-1)
		}
		if _, err := netdb.GetPort(ctx, d, netdb.PortID(uuidN(n-1), "private", addrN(n-1))); err != nil {
			t.Fatalf("get the last port: %v", err)
		}
	})
}

func uuidN(i int) string { return fmt.Sprintf("22222222-0000-0000-0000-%012d", i) }

func addrN(i int) string { return fmt.Sprintf("10.3.%d.%d", i/250, i%250+2) }

func TestInUse(t *testing.T) {
	const vm = "33333333-0000-0000-0000-000000000001"
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		netID, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := netdb.NetworkByID(ctx, d, netID)
		boot(t, d, vm, "p1", "active", "h1", wire.Address{Network: "private", Addr: "10.1.0.5", Version: 4, MAC: "fa:16:3e:00:00:05"})

		err = inTx(t, d, func(tx *db.Tx) error { return netdb.DeleteNetwork(ctx, tx, netID) })
		if code(err) != "NetworkInUse" || !errors.Is(err, netdb.ErrInUse) {
			t.Fatalf("delete a network with ports: %v", err)
		}
		err = inTx(t, d, func(tx *db.Tx) error { return netdb.DeleteSubnet(ctx, tx, n.Subnets[0]) })
		if code(err) != "SubnetInUse" {
			t.Fatalf("delete a subnet with ports: %v", err)
		}
		rename := "renamed"
		err = inTx(t, d, func(tx *db.Tx) error {
			_, err := netdb.UpdateNetwork(ctx, tx, netID, netdb.NetworkPatch{Name: &rename}, t0)
			return err
		})
		if code(err) != "NetworkInUse" {
			t.Fatalf("rename a network with ports: %v", err)
		}
		unshare := false
		err = inTx(t, d, func(tx *db.Tx) error {
			_, err := netdb.UpdateNetwork(ctx, tx, netID, netdb.NetworkPatch{Shared: &unshare}, t0)
			return err
		})
		if code(err) != "InvalidSharedSetting" {
			t.Fatalf("unshare a network another project uses: %v", err)
		}
		if got, _ := netdb.NetworkByID(ctx, d, netID); got.Name != "private" || !got.Shared || len(got.Subnets) != 1 {
			t.Fatalf("refused changes were written: %+v", got)
		}

		deleteInstance(t, d, vm)
		if err := inTx(t, d, func(tx *db.Tx) error { return netdb.DeleteNetwork(ctx, tx, netID) }); err != nil {
			t.Fatalf("delete once the server is gone: %v", err)
		}
	})
}
