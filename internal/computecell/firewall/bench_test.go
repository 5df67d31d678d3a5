package firewall_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/firewall"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// BenchmarkVMUp is the firewall's share of a spawn whose groups are held:
// the default group's filter computed and set, on one of 100 hosts.
func BenchmarkVMUp(b *testing.B) {
	ctx := context.Background()
	d := dbtest.Open(b, "sqlite")
	if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
		b.Fatal(err)
	}
	c := cellDB{d: d}
	c.tb = b
	c.putGroup("def", 1, defaultRules()...)
	drv, _ := fake.New(fake.Config{})
	hosts := make([]string, 100)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("h%d", i)
	}
	s, err := firewall.New(firewall.Config{DB: d, Driver: drv, Hosts: hosts, Interval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(ctx)
	before := d.Statements()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		u := fmt.Sprintf("vm-%d", i)
		s.VMUp(ctx, hosts[i%len(hosts)], u, []wire.NIC{nic("p-"+u, "def")}, []wire.Address{{Addr: "10.0.0.1", PortID: "p-" + u}})
	}
	b.StopTimer()
	if n := d.Statements() - before; n != 0 {
		b.Fatalf("%d statements", n)
	}
}
