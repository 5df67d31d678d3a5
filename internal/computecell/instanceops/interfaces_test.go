package instanceops

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// iface hands the cell an attach_interface or detach_interface, as the
// API cell sends it.
func (c *shelveCell) iface(method, requestID string, payload any) {
	c.t.Helper()
	raw, _ := json.Marshal(payload)
	env := &wire.Envelope{ID: "m-" + requestID, Method: method, RequestID: requestID, Payload: raw}
	ctx := context.Background()
	handle := c.o.AttachInterface
	if method == wire.MethodDetachInterface {
		handle = c.o.DetachInterface
	}
	if err := c.d.InTx(ctx, func(tx *db.Tx) error { return handle(ctx, tx, env) }); err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
}

// updates are the instance states sent up, in order.
func (r *recorder) updates() []wire.InstanceState {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.InstanceState
	for _, m := range r.msgs {
		if m.method == wire.MethodInstanceUpdate {
			out = append(out, m.payload.(*wire.InstanceUpdate).Instances...)
		}
	}
	return out
}

func portAddrs(addrs []wire.Address, port string) []string {
	var out []string
	for _, a := range addrs {
		if a.PortID == port {
			out = append(out, a.Addr)
		}
	}
	return out
}

// TestAttachAndDetachInterface: the cell records an attached interface's
// addresses as the instance's and sends them up with a new version; the
// same message applied twice (the inbox applies each message once, but a
// second attach of the same port is harmless too) leaves one interface;
// a detach frees the port's addresses and sends the state up, and a
// second detach changes nothing but the version. While the cell is down,
// the messages wait in the API cell's outbox (one transaction with the
// port's binding, so a sender that dies halfway has sent neither).
func TestAttachAndDetachInterface(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newShelveCell(t, d, 0)
		nic := wire.NIC{NetworkID: "net-1", NetworkName: "private", PortID: "port-1", MAC: "fa:16:3e:00:00:01",
			FixedIPs: []wire.FixedIP{{SubnetID: "sub-1", Addr: "10.0.3.9"}}}
		attach := &wire.AttachInterface{UUID: c.uuid, NIC: nic, UserID: "u", ProjectID: "p"}
		c.iface(wire.MethodAttachInterface, "req-a", attach)
		ups := c.rec.updates()
		if len(ups) != 1 || len(portAddrs(ups[0].Addresses, "port-1")) != 1 {
			t.Fatalf("updates after attach: %+v", ups)
		}
		c.iface(wire.MethodAttachInterface, "req-a2", attach)
		addrs, err := celldb.Addresses(ctx, d, c.uuid)
		if err != nil {
			t.Fatal(err)
		}
		if got := portAddrs(addrs, "port-1"); len(got) != 1 || got[0] != "10.0.3.9" {
			t.Fatalf("addresses after a second attach: %+v", addrs)
		}
		var nics int
		if err := d.QueryRow(ctx, `SELECT COUNT(DISTINCT nic) FROM fixed_ips WHERE instance_uuid = ?`, c.uuid).Scan(&nics); err != nil || nics != 1 {
			t.Fatalf("interfaces = %d, %v; want 1", nics, err)
		}

		// A second port is the next interface.
		second := *attach
		second.NIC = wire.NIC{NetworkID: "net-1", NetworkName: "private", PortID: "port-2", MAC: "fa:16:3e:00:00:02",
			FixedIPs: []wire.FixedIP{{SubnetID: "sub-1", Addr: "10.0.3.10"}}}
		c.iface(wire.MethodAttachInterface, "req-b", &second)
		var nic2 int
		if err := d.QueryRow(ctx, `SELECT nic FROM fixed_ips WHERE port_id = 'port-2'`).Scan(&nic2); err != nil || nic2 != 1 {
			t.Fatalf("second interface's index = %d, %v; want 1", nic2, err)
		}

		// An address another instance of the cell has is refused: the
		// action is an error and nothing is recorded.
		taken := *attach
		taken.UUID = "55555555-0000-4000-8000-000000000002"
		other := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: taken.UUID, Name: "vm2", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
			Flavor: c.instance().Flavor, Host: "h1", VMState: "active", RequestID: "req-0"}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{other}, t0) }); err != nil {
			t.Fatal(err)
		}
		taken.NIC.PortID = "port-3"
		c.iface(wire.MethodAttachInterface, "req-c", &taken)
		if a, _ := celldb.Addresses(ctx, d, taken.UUID); len(a) != 0 {
			t.Fatalf("an address taken was recorded: %+v", a)
		}
		if recs, err := celldb.ListActions(ctx, d, taken.UUID, ""); err != nil || len(recs) != 1 || recs[0].Message != "Error" {
			t.Fatalf("actions of the refused attach = %+v, %v; want one Error", recs, err)
		}

		detach := &wire.DetachInterface{UUID: c.uuid, PortID: "port-1", UserID: "u", ProjectID: "p"}
		before := len(c.rec.updates())
		c.iface(wire.MethodDetachInterface, "req-d", detach)
		ups = c.rec.updates()
		if len(ups) != before+1 || len(portAddrs(ups[len(ups)-1].Addresses, "port-1")) != 0 || len(portAddrs(ups[len(ups)-1].Addresses, "port-2")) != 1 {
			t.Fatalf("update after detach: %+v", ups[len(ups)-1])
		}
		c.iface(wire.MethodDetachInterface, "req-d2", detach)
		if addrs, _ := celldb.Addresses(ctx, d, c.uuid); len(portAddrs(addrs, "port-1")) != 0 || len(portAddrs(addrs, "port-2")) != 1 {
			t.Fatalf("addresses after detaching twice: %+v", addrs)
		}

		// A message for an instance the cell does not have is dropped.
		gone := *detach
		gone.UUID = "55555555-0000-4000-8000-00000000000f"
		c.iface(wire.MethodDetachInterface, "req-e", &gone)

		recs, err := celldb.ListActions(ctx, d, c.uuid, "")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range recs {
			names = append(names, r.Action)
		}
		if len(names) != 5 {
			t.Fatalf("instance actions %v; want 3 attaches and 2 detaches", names)
		}
	})
}
