package netdb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestCheckQuotaCountsPorts: a project's ports are its rows of the ports
// table, those of its live instances' fixed IPs among them (a deleted
// instance's are gone); CheckQuota refuses the port
// that would pass the limit with OverQuota, allows the one that fits, and
// never refuses an unlimited resource.
func TestCheckQuotaCountsPorts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		if _, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", ""); err != nil {
			t.Fatal(err)
		}
		boot(t, d, uuidN(1), "demo", "active", "h1", wire.Address{Network: "private", Addr: "10.0.0.2"}, wire.Address{Network: "private", Addr: "10.0.0.3"})
		boot(t, d, uuidN(2), "demo", "active", "h1", wire.Address{Network: "private", Addr: "10.0.0.4"})
		boot(t, d, uuidN(3), "other", "active", "h1", wire.Address{Network: "private", Addr: "10.0.0.5"})
		deleteInstance(t, d, uuidN(2))
		if n, err := netdb.CountPorts(ctx, d, "demo"); err != nil || n != 2 {
			t.Fatalf("ports of demo = %d, %v; want 2", n, err)
		}
		check := func(limit int64, adding int) error {
			return inTx(t, d, func(tx *db.Tx) error {
				return netdb.CheckQuota(ctx, tx, quota.NetworkDefaults{quota.NetPort: limit}, "demo", quota.NetPort, adding)
			})
		}
		err := check(2, 1)
		if !errors.Is(err, netdb.ErrOverQuota) || err.Error() != "Quota exceeded for resources: ['port']." || code(err) != "OverQuota" {
			t.Fatalf("a third port at a limit of 2: %v (%s)", err, code(err))
		}
		if err := check(3, 1); err != nil {
			t.Fatalf("a third port at a limit of 3: %v", err)
		}
		if err := check(-1, 1000); err != nil {
			t.Fatalf("unlimited: %v", err)
		}
		// A project's own limit wins over the default.
		if err := inTx(t, d, func(tx *db.Tx) error {
			return netdb.SetProjectQuotas(ctx, tx, "demo", netdb.QuotaLimits{quota.NetPort: 5}, []string{quota.NetPort}, false)
		}); err != nil {
			t.Fatal(err)
		}
		if err := check(2, 3); err != nil {
			t.Fatalf("own limit 5, 2 used, 3 more: %v", err)
		}
		if err := check(2, 4); !errors.Is(err, netdb.ErrOverQuota) {
			t.Fatalf("own limit 5, 2 used, 4 more: %v", err)
		}
	})
}
