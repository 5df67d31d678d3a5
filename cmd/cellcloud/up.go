package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/up"
)

func cmdUp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, level, err := upOptions(args, stderr)
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, level)
	if err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return usageError{err}
	}
	return runUp(ctx, o, log, stdout)
}

// upOptions reads the flags of `cellcloud up`; the second result is the
// log level.
func upOptions(args []string, stderr io.Writer) (up.Options, string, error) {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := up.Options{}
	spec := compute.DefaultSpec()
	fs.StringVar(&o.DataDir, "data-dir", "./data", "directory for every cell's database and broker")
	fs.IntVar(&o.Cells, "cells", 2, "number of compute cells")
	fs.IntVar(&o.HostsPerCell, "hosts-per-cell", 4, "fake hosts in each compute cell")
	listen := fs.String("listen", "127.0.0.1", "address to listen on (host or host:port; 0.0.0.0 or :: for every interface); the API port is --api-port")
	port := fs.Int("api-port", 8774, "Compute API port")
	fs.IntVar(&spec.VCPUs, "host-vcpus", spec.VCPUs, "vCPUs of each fake host")
	fs.Int64Var(&spec.RAMMB, "host-ram-mb", spec.RAMMB, "RAM (MiB) of each fake host")
	fs.Int64Var(&spec.DiskGB, "host-disk-gb", spec.DiskGB, "disk (GB) of each fake host")
	fs.DurationVar(&o.ReportInterval, "report-interval", 10*time.Second, "how often each cell reports its capacity to its parent")
	// As on a real cloud, a client polling every second or two sees BUILD,
	// REBOOT, REBUILD, RESIZE, SHELVING... before the status that follows.
	fs.DurationVar(&o.SpawnLatency, "spawn-latency", 3*time.Second, "how long a fake spawn takes (a resize or migration spawns on its new host)")
	opLatency := fs.Duration("op-latency", 3*time.Second, "how long each other fake operation takes (reboot, rebuild, stop, start, pause, suspend, rescue, snapshot, shelve...)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&o.Auth, "auth", "local", "authentication: local (the API cell's own Identity v3), keystone (an external Keystone, --keystone-url), noauth (development)")
	fs.StringVar(&o.KeystoneURL, "keystone-url", "", "the external Keystone v3 endpoint of --auth keystone")
	fs.StringVar(&o.AdminPassword, "admin-password", "", "password of the bootstrap user admin (default: kept from DATA_DIR/openrc-admin, or generated)")
	fs.StringVar(&o.DemoPassword, "demo-password", "", "password of the bootstrap user demo (default: kept from DATA_DIR/openrc-demo, or generated)")
	fs.StringVar(&o.PolicyFile, "policy-file", "", "policy overrides (YAML or JSON, as policy.yaml)")
	if err := fs.Parse(args); err != nil {
		return o, "", err
	}
	if fs.NArg() > 0 {
		return o, "", usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *port < 0 || *port > 65535 {
		return o, "", usageError{fmt.Errorf("--api-port %d is not a port", *port)}
	}
	if o.SpawnLatency < 0 || *opLatency < 0 {
		return o, "", usageError{fmt.Errorf("--spawn-latency and --op-latency must not be negative")}
	}
	o.OpLatency = map[string]time.Duration{}
	for _, op := range fake.Ops {
		o.OpLatency[op] = *opLatency
	}
	o.Listen = joinHostPort(*listen, *port)
	o.Host = config.HostSpec(spec)
	return o, *level, nil
}

func runUp(ctx context.Context, o up.Options, log *slog.Logger, stdout io.Writer) error {
	start := time.Now()
	tree, err := up.Start(ctx, o, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cellcloud is up in %s: 1 API cell, %d compute cells, %d fake hosts\n\n",
		time.Since(start).Round(time.Millisecond), o.Cells, o.Cells*o.HostsPerCell)
	root := strings.TrimSuffix(tree.APIURL(), "/v2.1")
	switch o.Auth {
	case "noauth":
		fmt.Fprintf(stdout, "  Compute API     %s   (auth: noauth; send X-Auth-Token: USER:PROJECT, admin:admin is an admin)\n", tree.APIURL())
	case "keystone":
		fmt.Fprintf(stdout, "  Compute API     %s   (auth: tokens of the Keystone at %s)\n", tree.APIURL(), o.KeystoneURL)
	default:
		fmt.Fprintf(stdout, "  Identity API    %s/identity/v3\n", root)
		fmt.Fprintf(stdout, "  Compute API     %s\n", tree.APIURL())
	}
	fmt.Fprintf(stdout, "  Image API       %s/image/v2   (image %s)\n", root, up.DefaultImageID)
	fmt.Fprintf(stdout, "  Networking API  %s/networking/v2.0   (network private)\n", root)
	fmt.Fprintf(stdout, "  Block Storage   %s/volume/v3\n\n", root)
	if len(tree.OpenRC) > 0 {
		fmt.Fprintf(stdout, "  credentials     %s   (admin on project admin)\n", tree.OpenRC["admin"].Path)
		fmt.Fprintf(stdout, "                  %s   (member of project demo)\n\n", tree.OpenRC["demo"].Path)
	}
	for _, n := range tree.Nodes() {
		fmt.Fprintf(stdout, "  cell %-12s broker %-26s database %s\n", n.Config().Cell, n.BrokerURL(), n.Config().Database)
	}
	if rc, ok := tree.OpenRC["demo"]; ok {
		fmt.Fprintf(stdout, "\n  try: source %s\n       openstack server create --flavor m1.tiny --image %s --network private --wait vm1\n\n", rc.Path, image.CirrosName)
	} else {
		fmt.Fprintf(stdout, "\n  try: curl -s -H 'X-Auth-Token: demo:demo' -H 'Content-Type: application/json' \\\n"+
			"         -d '{\"server\": {\"name\": \"vm1\", \"flavorRef\": \"1\", \"imageRef\": \"%s\"}}' %s/servers\n\n", up.DefaultImageID, tree.APIURL())
	}
	fmt.Fprintln(stdout, "Press Ctrl-C to stop.")
	select {
	case <-ctx.Done():
	case err := <-tree.API.Errors():
		log.Error("compute API failed", "err", err)
	}
	fmt.Fprintln(stdout, "shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tree.Shutdown(sctx)
	return nil
}

// joinHostPort adds port to a listen address that has none. An empty
// address is the loopback one: exposure is a deliberate --listen.
func joinHostPort(listen string, port int) string {
	if listen == "" {
		listen = "127.0.0.1"
	}
	if _, _, err := net.SplitHostPort(listen); err == nil {
		return listen // already host:port
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(listen, "["), "]"), strconv.Itoa(port))
}
