package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/cellcloud/cellcloud/internal/bench"
)

// cmdBench runs the benchmark (docs/benchmarks.md).
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o bench.Options
	fs.IntVar(&o.Cells, "cells", 2, "compute cells of the bench's own tree")
	fs.IntVar(&o.HostsPerCell, "hosts-per-cell", 100, "fake hosts in each compute cell")
	fs.IntVar(&o.Host.VCPUs, "host-vcpus", 64, "vCPUs of each fake host")
	fs.Int64Var(&o.Host.RAMMB, "host-ram-mb", 262144, "RAM of each fake host, MiB")
	fs.Int64Var(&o.Host.DiskGB, "host-disk-gb", 10000, "disk of each fake host, GB")
	fs.IntVar(&o.Depth, "depth", 2, "levels of the tree: 2 is an API cell over the compute cells, 3 puts them below ceil(sqrt(cells)) routing cells")
	fs.IntVar(&o.N, "n", 1000, "instances to boot")
	fs.IntVar(&o.K, "k", 64, "concurrent clients")
	fs.IntVar(&o.Batch, "batch", 1, "instances per create request (1: single creates; more: multi-creates)")
	fs.StringVar(&o.URL, "url", "", "drive a running deployment's Compute API (e.g. http://127.0.0.1:8774/v2.1) instead of starting a tree")
	fs.StringVar(&o.Token, "token", "", "with --url: an administrator's token (X-Auth-Token)")
	fs.StringVar(&o.DataDir, "data-dir", "", "where the bench's own tree keeps its files (default: a temporary directory)")
	fs.BoolVar(&o.RemoteGroup, "remote-group", false, "boot every instance in a security group whose rule names the group itself as remote (its members change with every boot)")
	fs.IntVar(&o.Aggregates, "aggregates", 0, "spread the hosts over this many host aggregates before the boots")
	fs.BoolVar(&o.BootFromVolume, "boot-from-volume", false, "boot every instance from a new 1-GiB volume made from the image, deleted with it")
	fs.IntVar(&o.Zones, "zones", 0, "with --aggregates: give that many of them an availability zone, and boot into the zones in turn")
	fs.StringVar(&o.Postgres, "postgres", "", "put every cell of the bench's own tree on this PostgreSQL database, each in a schema of its own made and dropped by the bench (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	fs.IntVar(&o.DatabasePool.MaxOpen, "db-max-open", 0, "with --postgres: each cell's pool of connections (0: the default, as database_pool.max_open)")
	jsonPath := fs.String("json", "", "also write the result as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the boot phase (control plane and clients) to this file, for go tool pprof")
	memProfile := fs.String("memprofile", "", "write a heap profile to this file once every instance is booted, for go tool pprof")
	curves := fs.Bool("curves", false, "run the scaling series of docs/benchmarks.md (instances, hosts, cells) and print a Markdown table")
	maxN := fs.Int("curves-max-n", 100000, "with --curves: the largest number of instances to boot")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	o.Host.CPURatio, o.Host.RAMRatio, o.Host.DiskRatio = 1, 1, 1
	o.Progress = stderr
	if err := o.Validate(); err != nil {
		return usageError{err}
	}
	if *curves {
		return runCurves(ctx, o, *maxN, stdout)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		o.BeforeBoot = func() {
			if err := pprof.StartCPUProfile(f); err != nil {
				fmt.Fprintf(stderr, "CPU profile: %v\n", err)
			}
		}
		o.AfterBoot = pprof.StopCPUProfile
		defer pprof.StopCPUProfile() // a run stopped during the boot phase
	}
	if *memProfile != "" {
		stopCPU := o.AfterBoot
		o.AfterBoot = func() {
			if stopCPU != nil {
				stopCPU()
			}
			f, err := os.Create(*memProfile)
			if err != nil {
				fmt.Fprintf(stderr, "heap profile: %v\n", err)
				return
			}
			defer f.Close()
			runtime.GC() // the profile shows the heap as of the last collection
			if err := pprof.WriteHeapProfile(f); err != nil {
				fmt.Fprintf(stderr, "heap profile: %v\n", err)
			}
		}
	}
	res, err := bench.Run(ctx, o)
	if err != nil {
		return err
	}
	bench.WriteTable(stdout, res)
	if *jsonPath != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonPath, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s\n", *jsonPath)
	}
	return nil
}

// runCurves runs the scaling series: instances (1,000 to 100,000 on 10
// cells of 100 hosts), hosts (100 to 10,000 in 1 cell, 1,000 instances)
// and cells (1 to 20 of 100 hosts, 5,000 instances), each with the
// clients and batch of o, and prints a row per run.
func runCurves(ctx context.Context, o bench.Options, maxN int, stdout io.Writer) error {
	type point struct {
		series                 string
		cells, hostsPerCell, n int
	}
	var points []point
	for _, n := range []int{1000, 10000, 100000} {
		if n <= maxN {
			points = append(points, point{"instances", 10, 100, n})
		}
	}
	for _, h := range []int{100, 1000, 10000} {
		points = append(points, point{"hosts", 1, h, min(1000, maxN)})
	}
	for _, c := range []int{1, 5, 10, 20} {
		points = append(points, point{"cells", c, 100, min(5000, maxN)})
	}
	fmt.Fprintf(stdout, "| series | cells x hosts | instances | boots/s | create p99 | time to ACTIVE p50 | list detail p99 | envelopes/boot | peak RSS |\n")
	fmt.Fprintf(stdout, "| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, p := range points {
		po := o
		po.Cells, po.HostsPerCell, po.N = p.cells, p.hostsPerCell, p.n
		// Hosts big enough for the point, with room to spare: 100,000
		// instances do not fit on 1,000 hosts of 64 vCPUs.
		if need := (p.n*5/4 + p.cells*p.hostsPerCell - 1) / (p.cells * p.hostsPerCell); po.Fits() < p.n*5/4 {
			po.Host.VCPUs = max(po.Host.VCPUs, need)
			po.Host.RAMMB = max(po.Host.RAMMB, int64(need)*512)
			po.Host.DiskGB = max(po.Host.DiskGB, int64(need))
		}
		res, err := bench.Run(ctx, po)
		if err != nil {
			return fmt.Errorf("%s %d x %d, %d instances: %w", p.series, p.cells, p.hostsPerCell, p.n, err)
		}
		fmt.Fprintf(stdout, "| %s | %d x %d | %d | %.0f | %.0f ms | %.1f s | %.0f ms | %.2f | %.0f MiB |\n", p.series, p.cells, p.hostsPerCell,
			p.n, res.BootsPerSec, res.CreateLatency.P99, res.ActiveLatency.P50/1000, res.ListLatency.P99, res.EnvelopesPerBoot, res.PeakRSSMB)
	}
	return nil
}
