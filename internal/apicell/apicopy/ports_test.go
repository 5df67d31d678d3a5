package apicopy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apicopy"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestInstanceUpdatesKeepThePorts: the port a cell made on a boot is
// recorded when an update first carries its address, once however often
// the update arrives; a port passed in is left as it is; the deletion of
// the instance deletes the ports made for it (and releases, in the cell
// that reserved it, the address of its fixed-IP port) and unbinds and
// keeps the port passed in. The deletion arriving twice changes nothing
// more.
func TestInstanceUpdatesKeepThePorts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
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
		nw, _ := netdb.NetworkByID(ctx, d, netID)
		const u = "44444444-0000-4000-8000-0000000000b1"
		in := apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
			FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling"}
		var user, fixed *netdb.Port
		err = d.InTx(ctx, func(tx *db.Tx) error {
			if err := apidb.Create(ctx, tx, []apidb.Instance{in}); err != nil {
				return err
			}
			// A port of the user's, bound on the boot, and one made for a
			// fixed IP of a block that cell api!c1 holds (reserved there).
			if user, err = netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: netID, ProjectID: "p", MadeBy: netdb.MadeByUser,
				AdminStateUp: true, PortSecurity: true}}, t0); err != nil {
				return err
			}
			if err := netdb.BindPort(ctx, tx, user.ID, u, "", t0); err != nil {
				return err
			}
			if _, err := netdb.LeaseBlockOf(ctx, tx, nw.Subnets[0], "api!c1", netip.MustParseAddr("10.9.0.1"), t0); err != nil {
				return err
			}
			fixed, err = netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: netID, ProjectID: "p", MadeBy: netdb.MadeByBoot,
				DeviceID: u, DeviceOwner: "compute:nova", ServerGroups: true, AdminStateUp: true, PortSecurity: true},
				FixedIPs: []netdb.FixedIPRequest{{IPAddress: "10.9.0.7"}}, Reserved: map[string]string{"10.9.0.7": "api!c1"}}, t0)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		h := &apicopy.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return t0 }}
		update := func(st wire.InstanceState) {
			t.Helper()
			payload, _ := json.Marshal(wire.InstanceUpdate{Instances: []wire.InstanceState{st}})
			env := &wire.Envelope{ID: "m", Method: wire.MethodInstanceUpdate, RequestID: "req-u", Payload: payload}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.InstanceUpdate(ctx, tx, env) }); err != nil {
				t.Fatal(err)
			}
		}
		portsOf := func() map[string]*netdb.Port {
			t.Helper()
			ps, err := netdb.ListPorts(ctx, d, netdb.PortFilter{})
			if err != nil {
				t.Fatal(err)
			}
			out := map[string]*netdb.Port{}
			for _, p := range ps {
				out[p.ID] = p
			}
			return out
		}
		cellPort := netdb.PortID(u, "private", "10.1.0.2")
		active := wire.InstanceState{UUID: u, Cell: "api!c1", Version: 2, VMState: "active", Host: "h1", Addresses: []wire.Address{
			{Network: "private", Addr: "10.1.0.2", Version: 4, MAC: "fa:16:3e:00:00:01"},
			{Network: "private", NetworkID: netID, Addr: user.FixedIPs[0].IPAddress, Version: 4, MAC: user.MACAddress, PortID: user.ID},
			{Network: "private", NetworkID: netID, Addr: "10.9.0.7", Version: 4, MAC: fixed.MACAddress, PortID: fixed.ID}}}
		update(active)
		update(active) // twice: nothing more
		ps := portsOf()
		if len(ps) != 3 || ps[cellPort] == nil || ps[cellPort].MadeBy != netdb.MadeByCell || ps[cellPort].DeviceID != u ||
			ps[cellPort].Status != "ACTIVE" || ps[cellPort].HostID != "h1" || ps[user.ID].DeviceID != u || ps[fixed.ID].DeviceID != u {
			t.Fatalf("ports after the boot = %+v", ps)
		}
		// A later update with the same addresses costs nothing and changes
		// nothing.
		active.Version, active.PowerState = 3, 4
		update(active)
		if len(portsOf()) != 3 || len(rec.msgs) != 0 {
			t.Fatalf("after a later update: %d ports, sent %v", len(portsOf()), rec.msgs)
		}

		deleted := wire.InstanceState{UUID: u, Cell: "api!c1", Version: 9, VMState: "deleted", Deleted: true}
		update(deleted)
		update(deleted)
		ps = portsOf()
		if len(ps) != 1 || ps[user.ID] == nil || ps[user.ID].DeviceID != "" || ps[user.ID].DeviceOwner != "" {
			t.Fatalf("ports after the deletion = %+v", ps)
		}
		if len(rec.msgs) != 1 || rec.msgs[0] != (sent{"api!c1", wire.MethodReleaseAddresses, "req-u"}) ||
			len(rec.payloads[0].(*wire.ReleaseAddresses).PortIDs) != 1 || rec.payloads[0].(*wire.ReleaseAddresses).PortIDs[0] != fixed.ID {
			t.Fatalf("sent %v %v; want one release of %s in api!c1", rec.msgs, rec.payloads, fixed.ID)
		}
		// The addresses are free again.
		if port, _, err := netdb.AddressUser(ctx, d, netID, "10.9.0.7"); err != nil || port != "" {
			t.Fatalf("10.9.0.7 still used by %q (%v)", port, err)
		}
	})
}
