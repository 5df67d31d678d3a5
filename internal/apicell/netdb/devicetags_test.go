package netdb_test

import (
	"context"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// A port the cell makes finds the tag its interface was given by its MAC;
// a port bound here carries its own, which a bind replaces and an unbind
// or the server's deletion forgets.
func TestDeviceTags(t *testing.T) {
	const (
		vm1 = "33333333-0000-0000-0000-000000000001"
		vm2 = "33333333-0000-0000-0000-000000000002"
	)
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		netID, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "")
		if err != nil {
			t.Fatal(err)
		}
		mac, err := netdb.NICMAC(ctx, d, netID)
		if err != nil {
			t.Fatal(err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error { return netdb.TagNIC(ctx, tx, vm1, mac, "nic-a") }); err != nil {
			t.Fatal(err)
		}
		// Two interfaces on the network: the tagged one (by its MAC) and
		// another.
		boot(t, d, vm1, "p1", "active", "h1",
			wire.Address{Network: "private", Addr: "10.1.0.2", Version: 4, MAC: mac},
			wire.Address{Network: "private", Addr: "10.1.0.3", Version: 4, MAC: "fa:16:3e:00:00:09"})
		tagged := netdb.PortID(vm1, "private", "10.1.0.2")
		tags, err := netdb.DeviceTags(ctx, d, vm1)
		if err != nil || len(tags) != 1 || tags[tagged] != "nic-a" {
			t.Fatalf("tags of the cell's ports = %v, %v; want %s: nic-a", tags, err, tagged)
		}

		// A user's port bound to vm2 with a tag; bound again without one
		// after an unbind, it has none.
		boot(t, d, vm2, "p1", "active", "h1")
		var port string
		if err := inTx(t, d, func(tx *db.Tx) error {
			p, err := netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: netID, ProjectID: "p1", AdminStateUp: true,
				PortSecurity: true, MadeBy: netdb.MadeByUser}}, t0)
			if err != nil {
				return err
			}
			port = p.ID
			if err := netdb.BindPort(ctx, tx, port, vm2, "az1", t0); err != nil {
				return err
			}
			return netdb.SetDeviceTag(ctx, tx, port, "user-port")
		}); err != nil {
			t.Fatal(err)
		}
		if tags, err := netdb.DeviceTags(ctx, d, vm2); err != nil || len(tags) != 1 || tags[port] != "user-port" {
			t.Fatalf("tags of vm2 = %v, %v", tags, err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error {
			p, err := netdb.GetPort(ctx, tx, port)
			if err != nil {
				return err
			}
			return netdb.DetachServerPort(ctx, tx, nil, "req", p, t0)
		}); err != nil {
			t.Fatal(err)
		}
		if err := inTx(t, d, func(tx *db.Tx) error { return netdb.BindPort(ctx, tx, port, vm2, "az1", t0) }); err != nil {
			t.Fatal(err)
		}
		if tags, err := netdb.DeviceTags(ctx, d, vm2); err != nil || len(tags) != 0 {
			t.Fatalf("tags of vm2 after an unbind and a bind without a tag = %v, %v", tags, err)
		}

		// The server's deletion forgets its interfaces' tags.
		deleteInstance(t, d, vm1)
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM server_nic_tags WHERE server_uuid = ?`, vm1).Scan(&n); err != nil || n != 0 {
			t.Fatalf("interface tags left of a deleted server: %d, %v", n, err)
		}
	})
}
