package bench_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/bench"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
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
