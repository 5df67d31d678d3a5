package netdb_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// An update's addresses are recorded in statements of a power of two rows,
// a short chunk padded with rows of no network: every address gets exactly
// one port and one fixed IP whatever the count (3 is padded to 4; 300 is
// 256 and 44 padded to 64), the padding none, and the same update again
// records nothing more.
func TestServersPortsRecordedInPaddedBatches(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		migrated(t, d)
		if _, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", ""); err != nil {
			t.Fatal(err)
		}
		total := 0
		for _, n := range []int{1, 3, 300} {
			var servers []netdb.ServerAddresses
			var insts []apidb.Instance
			for i := range n {
				u := fmt.Sprintf("44444444-0000-0000-%04d-%012d", n, i)
				insts = append(insts, apidb.Instance{
					InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p1", UserID: "u", ImageRef: "img", ReservationID: "r-" + u, CreatedAt: t0},
					FlavorID:     "1", Flavor: apidb.DefaultFlavors[0], VMState: "active",
				})
				servers = append(servers, netdb.ServerAddresses{UUID: u, ProjectID: "p1", Zone: "az1",
					Addresses: []wire.Address{{Network: "private", Addr: fmt.Sprintf("10.%d.%d.%d", 10+n%200, i/250, i%250+2), Version: 4}}})
			}
			record := func() error {
				return d.InTx(ctx, func(tx *db.Tx) error {
					_, err := netdb.MaterializeServerPorts(ctx, tx, servers, t0)
					return err
				})
			}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, insts) }); err != nil {
				t.Fatal(err)
			}
			if err := record(); err != nil {
				t.Fatalf("record %d: %v", n, err)
			}
			if err := record(); err != nil { // a repeated update
				t.Fatalf("record %d again: %v", n, err)
			}
			total += n
			var ports, ips, distinct int
			if err := d.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM ports), (SELECT COUNT(*) FROM port_fixed_ips),
				(SELECT COUNT(DISTINCT port_id) FROM port_fixed_ips)`).Scan(&ports, &ips, &distinct); err != nil {
				t.Fatal(err)
			}
			if ports != total || ips != total || distinct != total {
				t.Fatalf("after %d servers: %d ports, %d fixed IPs of %d ports; want %d each", n, ports, ips, distinct, total)
			}
			last := servers[n-1]
			p, err := netdb.GetPort(ctx, d, netdb.PortID(last.UUID, "private", last.Addresses[0].Addr))
			if err != nil || p.DeviceID != last.UUID || len(p.FixedIPs) != 1 || p.FixedIPs[0].IPAddress != last.Addresses[0].Addr {
				t.Fatalf("port of the last of %d = %+v, %v", n, p, err)
			}
		}
	})
}
