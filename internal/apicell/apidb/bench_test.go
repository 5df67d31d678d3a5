package apidb_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// BenchmarkApplyUpdate: an instance update applied at the top, in its own
// transaction as the API cell's inbox applies a message, over a copy of
// 10,000 instances (SQLite; PostgreSQL too when CELLCLOUD_TEST_POSTGRES
// is set).
func BenchmarkApplyUpdate(b *testing.B) {
	for _, engine := range dbtest.Engines() {
		b.Run(engine, func(b *testing.B) {
			ctx := context.Background()
			d := dbtest.Open(b, engine)
			if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
				b.Fatal(err)
			}
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			const n = 10000
			insts := make([]apidb.Instance, n)
			for i := range insts {
				u := fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
				insts[i] = apidb.Instance{InstanceSpec: wire.InstanceSpec{UUID: u, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img",
					ReservationID: "r", CreatedAt: t0}, FlavorID: "1", Flavor: apidb.DefaultFlavors[0], VMState: "building", TaskState: "scheduling"}
			}
			if err := d.InTx(ctx, func(tx *db.Tx) error { return apidb.Create(ctx, tx, insts) }); err != nil {
				b.Fatal(err)
			}
			version := int64(0)
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				version++
				st := wire.InstanceState{UUID: insts[i%n].UUID, Cell: "api!cell1", Version: version, Host: "h1", Node: "h1",
					VMState: "active", PowerState: 1, Addresses: []wire.Address{{Network: "private", Addr: "10.1.0.2", Version: 4}},
					LaunchedAt: t0, UpdatedAt: t0}
				if err := d.InTx(ctx, func(tx *db.Tx) error {
					_, err := apidb.ApplyUpdate(ctx, tx, st, t0)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
