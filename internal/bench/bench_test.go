package bench_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/bench"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestRun boots a few instances with single and multi-creates through the
// bench's own tree and checks that every figure is filled in: all booted,
// all deleted, the messages and transactions counted per cell.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a tree")
	}
	for _, batch := range []int{1, 5} {
		res, err := bench.Run(context.Background(), bench.Options{Cells: 2, HostsPerCell: 2, N: 20, K: 4, Batch: batch, DataDir: t.TempDir()})
		if err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if res.Booted != 20 || res.Errors != 0 || res.BootsPerSec <= 0 || res.DeletesPerSec <= 0 {
			t.Errorf("batch %d: booted %d, errors %d, %.1f boots/s, %.1f deletes/s", batch, res.Booted, res.Errors, res.BootsPerSec, res.DeletesPerSec)
		}
		if res.CreateLatency.P50 <= 0 || res.ActiveLatency.P50 <= 0 || res.ListLatency.P50 <= 0 {
			t.Errorf("batch %d: latencies %+v %+v %+v", batch, res.CreateLatency, res.ActiveLatency, res.ListLatency)
		}
		if len(res.Cells) != 3 || res.EnvelopesPerBoot <= 0 || res.BrokerMessagesPerBoot < res.EnvelopesPerBoot || res.Cells[0].Transactions <= 0 ||
			res.Cells[0].Statements < res.Cells[0].Transactions || res.StatementsPerBoot < res.Cells[0].StmtPerBoot {
			t.Errorf("batch %d: costs %+v, %.2f envelopes, %.2f broker messages and %.2f statements per boot", batch, res.Cells, res.EnvelopesPerBoot, res.BrokerMessagesPerBoot, res.StatementsPerBoot)
		}
		if len(res.Targets) != 5 || res.PeakRSSMB <= 0 || res.CPUSeconds <= 0 {
			t.Errorf("batch %d: targets %+v, RSS %.0f, CPU %.1f", batch, res.Targets, res.PeakRSSMB, res.CPUSeconds)
		}
		var out strings.Builder
		bench.WriteTable(&out, res)
		if !strings.Contains(out.String(), "booted to ACTIVE        20 (0 errors)") {
			t.Errorf("table:\n%s", out.String())
		}
	}
}

// TestRunDepth3: the bench's own tree of three levels, compute cells
// below routing cells, boots and deletes through every level.
func TestRunDepth3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a tree")
	}
	res, err := bench.Run(context.Background(), bench.Options{Cells: 2, HostsPerCell: 2, Depth: 3, N: 10, K: 2, Batch: 1, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Booted != 10 || res.Errors != 0 || res.DeletesPerSec <= 0 {
		t.Errorf("booted %d, errors %d, %.1f deletes/s", res.Booted, res.Errors, res.DeletesPerSec)
	}
	var paths []string
	var leafTx int64
	for _, c := range res.Cells {
		paths = append(paths, c.Cell)
		if strings.Count(c.Cell, "!") == 2 {
			leafTx += c.Transactions
		}
	}
	if want := []string{"api", "api!mid1", "api!mid1!cell1", "api!mid2", "api!mid2!cell2"}; strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("cells %v, want %v", paths, want)
	}
	if leafTx == 0 {
		t.Error("the compute cells two levels down committed nothing")
	}
}

// TestBadOptions: nonsense stops the bench at once with a clear message;
// an unreachable URL too.
func TestBadOptions(t *testing.T) {
	for _, c := range []struct {
		o   bench.Options
		msg string
	}{
		{bench.Options{Cells: 0, HostsPerCell: 1, N: 1, K: 1, Batch: 1}, "--cells 0"},
		{bench.Options{Cells: 1, HostsPerCell: 1, N: -5, K: 1, Batch: 1}, "-n -5"},
		{bench.Options{Cells: 1, HostsPerCell: 1, N: 1, K: 0, Batch: 1}, "-k 0"},
		{bench.Options{Cells: 1, HostsPerCell: 1, N: 1, K: 1, Batch: 0}, "--batch 0"},
		{bench.Options{Cells: 1, HostsPerCell: 1, Depth: 4, N: 1, K: 1, Batch: 1}, "--depth 4"},
		{bench.Options{N: 1, K: 1, Batch: 1, URL: "http://127.0.0.1:1/v2.1"}, "--url needs --token"},
		{bench.Options{Cells: 2, HostsPerCell: 10, N: 1281, K: 1, Batch: 1, Host: compute.HostSpec{VCPUs: 64, RAMMB: 1 << 20, DiskGB: 1000, CPURatio: 1}}, "hold only 1280 m1.tiny instances"},
		{bench.Options{N: 1, K: 1, Batch: 1, URL: "http://127.0.0.1:1/v2.1", Token: "x"}, "the Compute API at http://127.0.0.1:1/v2.1"},
	} {
		_, err := bench.Run(context.Background(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want %q", c.o, err, c.msg)
		}
	}
}

// TestRunOnPostgres: with Options.Postgres every cell's database is a
// schema of that database: the boots succeed, the round trips to the
// server are counted per boot, and the schemas are gone afterwards.
func TestRunOnPostgres(t *testing.T) {
	base := os.Getenv(dbtest.EnvPostgres)
	if base == "" {
		t.Skipf("PostgreSQL not configured: set %s", dbtest.EnvPostgres)
	}
	if testing.Short() {
		t.Skip("starts a tree")
	}
	ctx := context.Background()
	res, err := bench.Run(ctx, bench.Options{Cells: 2, HostsPerCell: 2, N: 20, K: 4, Batch: 1, DataDir: t.TempDir(), Postgres: base})
	if err != nil {
		t.Fatal(err)
	}
	if res.Booted != 20 || res.Errors != 0 || res.Options.Database != "postgres" || res.Options.Schemas == "" {
		t.Errorf("booted %d, errors %d, database %q, schemas %q", res.Booted, res.Errors, res.Options.Database, res.Options.Schemas)
	}
	if res.RoundTripsPerBoot <= 0 || res.StatementsPerBoot <= 0 || len(res.Cells) != 3 || res.Cells[0].RoundTrips <= 0 {
		t.Errorf("%.2f round trips and %.2f statements per boot, cells %+v", res.RoundTripsPerBoot, res.StatementsPerBoot, res.Cells)
	}
	var out strings.Builder
	bench.WriteTable(&out, res)
	if !strings.Contains(out.String(), "databases on postgres") || !strings.Contains(out.String(), "DB round trips per boot") {
		t.Errorf("table:\n%s", out.String())
	}
	d, err := db.Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var n int
	if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name LIKE ?`, res.Options.Schemas+"%").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d schemas %s* left after the run (%v)", n, res.Options.Schemas, err)
	}
}

// TestPostgresOptionRefusedWithURL: --postgres is for the bench's own
// tree; a deployment by URL has its databases.
func TestPostgresOptionRefusedWithURL(t *testing.T) {
	o := bench.Options{N: 1, K: 1, Batch: 1, URL: "http://127.0.0.1:1/v2.1", Token: "t", Postgres: "postgres://127.0.0.1/x"}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--postgres") {
		t.Errorf("Validate: %v", err)
	}
	o = bench.Options{N: 1, K: 1, Batch: 1, Cells: 1, HostsPerCell: 1, Postgres: "mysql://x"}
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("Validate: %v", err)
	}
}
