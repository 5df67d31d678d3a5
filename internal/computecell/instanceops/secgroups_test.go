package instanceops

import (
	"context"
	"log/slog"
	"slices"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func rulesGen(t *testing.T, d *db.DB) int64 {
	t.Helper()
	var g int64
	if err := d.QueryRow(context.Background(), `SELECT rules_gen FROM sg_state WHERE id = 1`).Scan(&g); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestInterfacesChangeFilters: an interface attached is recorded on the
// instance's NICs, with its groups, and raises rules_gen in the
// transaction of the attach (the instance's filter is of other ports
// now); with the security groups service, its groups the cell does not
// hold are asked for in that transaction too. A detach removes the NIC
// and raises rules_gen. An attach refused (an address another instance
// has) changes neither.
func TestInterfacesChangeFilters(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newShelveCell(t, d, 0)
		sg, err := network.NewSecGroups(network.SecGroupsConfig{Cell: testCell, DB: d, Sender: c.rec, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		c.o.cfg.Ports = sg
		gen := rulesGen(t, d)
		nic := wire.NIC{NetworkID: "net-1", NetworkName: "private", PortID: "port-1", MAC: "fa:16:3e:00:00:01",
			FixedIPs: []wire.FixedIP{{SubnetID: "sub-1", Addr: "10.0.3.9"}}, SecurityGroups: []string{"sg-1"}, PortRevision: 2}
		c.iface(wire.MethodAttachInterface, "req-a", &wire.AttachInterface{UUID: c.uuid, NIC: nic, UserID: "u", ProjectID: "p"})
		if nics := c.instance().NICs; len(nics) != 1 || nics[0].PortID != "port-1" || !slices.Equal(nics[0].SecurityGroups, []string{"sg-1"}) || nics[0].PortRevision != 2 {
			t.Fatalf("NICs after an attach: %+v", nics)
		}
		if g := rulesGen(t, d); g != gen+1 {
			t.Fatalf("rules_gen after an attach = %d, want %d", g, gen+1)
		}
		var asks int
		c.rec.mu.Lock()
		for _, m := range c.rec.msgs {
			if m.method == wire.MethodSecurityGroupsSync {
				asks++
				if s := m.payload.(*wire.SecurityGroupsSync); !slices.Equal(s.Want, []string{"sg-1"}) {
					t.Errorf("sync after an attach: %+v", s)
				}
			}
		}
		c.rec.mu.Unlock()
		if asks != 1 {
			t.Fatalf("%d syncs after an attach naming a new group, want 1", asks)
		}

		// Refused: another instance has the address.
		taken := nic
		taken.PortID = "port-2"
		if _, err := d.Exec(context.Background(), `UPDATE fixed_ips SET instance_uuid = 'someone-else' WHERE port_id = 'port-1'`); err != nil {
			t.Fatal(err)
		}
		c.iface(wire.MethodAttachInterface, "req-b", &wire.AttachInterface{UUID: c.uuid, NIC: taken, UserID: "u", ProjectID: "p"})
		if nics := c.instance().NICs; len(nics) != 1 {
			t.Fatalf("NICs after a refused attach: %+v", nics)
		}
		if g := rulesGen(t, d); g != gen+1 {
			t.Fatalf("rules_gen after a refused attach = %d, want %d", g, gen+1)
		}
		if _, err := d.Exec(context.Background(), `UPDATE fixed_ips SET instance_uuid = ? WHERE port_id = 'port-1'`, c.uuid); err != nil {
			t.Fatal(err)
		}

		c.iface(wire.MethodDetachInterface, "req-d", &wire.DetachInterface{UUID: c.uuid, PortID: "port-1", UserID: "u", ProjectID: "p"})
		if nics := c.instance().NICs; len(nics) != 0 {
			t.Fatalf("NICs after a detach: %+v", nics)
		}
		if g := rulesGen(t, d); g != gen+2 {
			t.Fatalf("rules_gen after a detach = %d, want %d", g, gen+2)
		}

		// Without the service (the default), the NIC is recorded and
		// rules_gen raised all the same.
		c.o.cfg.Ports = recordPorts{}
		c.iface(wire.MethodAttachInterface, "req-e", &wire.AttachInterface{UUID: c.uuid, NIC: nic, UserID: "u", ProjectID: "p"})
		if nics := c.instance().NICs; len(nics) != 1 || rulesGen(t, d) != gen+3 {
			t.Fatalf("default Ports: NICs %+v, rules_gen %d; want one NIC and %d", nics, rulesGen(t, d), gen+3)
		}
	})
}
