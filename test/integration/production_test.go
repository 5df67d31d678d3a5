package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/openrc"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/natstest"
)

// TestProductionTree runs the tree of the production walkthrough
// (docs/operations.md, "A production deployment"): every cell a `cellcloud
// serve` process with its own PostgreSQL database (here a fresh schema
// each), all on one external NATS server with JetStream and a user (here
// in-process, on a free port); an API cell with local identity whose
// openrc `serve` writes, a routing cell and two compute cells below it
// (three levels), linked with `cellcloud cell add` on both sides. It boots
// servers through gophercloud signed in with that openrc, kills one
// compute cell's process (SIGKILL) while more servers are booted,
// restarts it, and checks that nothing is lost: every server ACTIVE,
// live in exactly one cell, and every cell's database agreeing with the
// API cell's copy.
func TestProductionTree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	if os.Getenv(dbtest.EnvPostgres) == "" {
		t.Skipf("the production tree runs every cell on PostgreSQL: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", dbtest.EnvPostgres)
	}
	ctx := context.Background()
	dir := t.TempDir()

	// The external broker: a cluster of three NATS servers with JetStream
	// and a user; every cell's inbox stream on all three, under a prefix
	// of the tree's own.
	cl := natstest.StartCluster(t, 3, "cellcloud", "nats-secret")
	natsURL := cl.URL()
	const prefix = "prod"

	const api, routing, c1, c2 = "api", "api!region1", "api!region1!c1", "api!region1!c2"
	apiPort := freePort(t)
	procs := map[string]*cellProc{}
	dsns := map[string]string{}
	intervals := map[string]any{"report_interval": "500ms", "refresh_interval": "300ms", "heal_interval": "3s", "heal_window": "1m"}
	for _, c := range []string{api, routing, c1, c2} {
		name := strings.ReplaceAll(c, "!", "_")
		dsns[c] = dbtest.PostgresDSN(t)
		cfg := map[string]any{"cell": c, "data_dir": filepath.Join(dir, name), "database": dsns[c],
			"broker": map[string]any{"url": natsURL, "prefix": prefix, "stream": map[string]any{"replicas": 3}}, "cells": intervals}
		switch c {
		case api:
			cfg["api"] = map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", apiPort), "auth": "local",
				"quota": map[string]any{"instances": -1, "cores": -1, "ram": -1}}
		case routing:
			cfg["roles"] = []string{"cells"}
		default:
			cfg["host"] = name
			cfg["compute"] = map[string]any{"hosts": 3, "host_prefix": name + "-host",
				"host": map[string]any{"vcpus": 8, "ram_mb": 4096, "disk_gb": 100, "cpu_allocation_ratio": 4, "ram_allocation_ratio": 1}}
		}
		path := filepath.Join(dir, name+".json")
		writeJSON(t, path, cfg)
		procs[c] = &cellProc{t: t, path: c, config: path, log: filepath.Join(dir, name+".log")}
	}
	procs[api].env = []string{"CELLCLOUD_ADMIN_PASSWORD=admin-secret"}
	// The links, on both sides; every cell's broker is the same cluster.
	for _, l := range [][2]string{{api, routing}, {routing, c1}, {routing, c2}} {
		parent, child := l[0], l[1]
		cellcloud(t, "cell", "add", "--config", procs[parent].config, "--name", child, "--relation", "child", "--broker-url", natsURL)
		cellcloud(t, "cell", "add", "--config", procs[child].config, "--name", parent, "--relation", "parent", "--broker-url", natsURL)
	}
	for _, c := range []string{c1, c2, routing, api} {
		procs[c].start()
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop()
		}
		if t.Failed() {
			for path, p := range procs {
				t.Logf("---- last log lines of %s ----\n%s", path, p.tail(30))
			}
		}
	})

	open := func(c string) *db.DB {
		d, err := db.Open(ctx, dsns[c])
		if err != nil {
			t.Fatalf("open %s database: %v", c, err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	apiDB := open(api)
	cellDBs := map[string]*db.DB{routing: open(routing), c1: open(c1), c2: open(c2)}
	testpoll.Eventually(t, 60*time.Second, "the routing cell's report of both compute cells' hosts at the API cell",
		hostsReported(ctx, apiDB, map[string]int{routing: 6}))

	// serve wrote the admin's openrc: the client signs in with it, as the
	// openstack CLI does after `source`.
	rcPath := filepath.Join(dir, "api", "openrc-admin")
	var env map[string]string
	var err error
	testpoll.Eventually(t, 30*time.Second, "serve to write openrc-admin", func() (bool, string) {
		env, err = openrc.Read(rcPath)
		return err == nil, fmt.Sprint(err)
	})
	if want := fmt.Sprintf("http://127.0.0.1:%d/identity/v3", apiPort); env["OS_AUTH_URL"] != want || env["OS_PASSWORD"] != "admin-secret" {
		t.Fatalf("openrc-admin has %s / %s, want %s and the bootstrap password", env["OS_AUTH_URL"], env["OS_PASSWORD"], want)
	}
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: env["OS_AUTH_URL"],
		Username: env["OS_USERNAME"], Password: env["OS_PASSWORD"], DomainName: env["OS_USER_DOMAIN_NAME"], TenantName: env["OS_PROJECT_NAME"]})
	if err != nil {
		t.Fatalf("sign in with openrc-admin: %v", err)
	}
	compute, err := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{Region: env["OS_REGION_NAME"]})
	if err != nil {
		t.Fatal(err)
	}

	// `cellcloud status --config` of the API cell: its database, its
	// broker, and the tree signed in with the same openrc.
	out := cellcloud(t, "status", "--config", procs[api].config)
	for _, want := range []string{`(?m)^database .*\(postgres\): ok`, `(?m)^broker +nats://cellcloud:xxxxx@127\.0\.0\.1:\d+(,nats://cellcloud:xxxxx@127\.0\.0\.1:\d+){2}: ok`,
		`(?m)^  api!region1\s+up\s`, `(?m)^    api!region1!c1\s+up\s+3 hosts`, `(?m)^    api!region1!c2\s+up\s+3 hosts`} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("status --config lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "nats-secret") || strings.Contains(out, "admin-secret") {
		t.Errorf("status --config shows a password:\n%s", out)
	}
	// Of a compute cell: its services' heartbeats, from its database.
	out = cellcloud(t, "status", "--config", procs[c2].config)
	if !regexp.MustCompile(`(?m)^services .*nova-conductor@api_region1_c2 \d+s ago.*nova-compute: 3 of 3 hosts up`).MatchString(out) {
		t.Errorf("status --config of a compute cell lacks its services:\n%s", out)
	}

	var created []string
	create := func(name string) {
		t.Helper()
		s, err := servers.Create(ctx, compute, servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: imageID}, nil).Extract()
		if err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
		created = append(created, s.ID)
	}
	truth := func() map[string]map[string]cellInstance {
		out := map[string]map[string]cellInstance{}
		for c, d := range cellDBs {
			out[c] = cellInstances(t, c, d)
		}
		return out
	}
	// allActive: every server created is ACTIVE through the API, live in
	// exactly one compute cell (none in the routing cell), and the cells'
	// databases agree with the API cell's copy.
	allActive := func() (bool, string) {
		for _, id := range created {
			s, err := servers.Get(ctx, compute, id).Extract()
			if err != nil {
				return false, fmt.Sprintf("server %s: %v", id, err)
			}
			if s.Status != "ACTIVE" {
				return false, fmt.Sprintf("server %s is %s", id, s.Status)
			}
		}
		tr := truth()
		for u, in := range tr[routing] {
			if !in.deleted {
				return false, fmt.Sprintf("instance %s is live in the routing cell", u)
			}
		}
		a := apiInstances(t, apiDB)
		if d := converged(t, a, tr); d != "" {
			return false, d
		}
		live := 0
		for _, in := range a {
			if !in.deleted {
				live++
			}
		}
		if live != len(created) {
			return false, fmt.Sprintf("%d live at the API, %d created", live, len(created))
		}
		return true, ""
	}

	for i := range 8 {
		create(fmt.Sprintf("vm-%d", i))
	}
	testpoll.Eventually(t, 60*time.Second, "8 servers ACTIVE, the cells agreeing with the API copy", allActive)
	used := map[string]int{}
	for c, insts := range truth() {
		for _, in := range insts {
			if !in.deleted {
				used[c]++
			}
		}
	}
	t.Logf("placement: %v", used)

	// Every cell's inbox stream is on the three NATS servers. The one
	// that leads the most of them is stopped with builds in flight (as
	// losing its machine would), and stays down for the rest of the test
	// but its last step: the cells connected to it reconnect to the other
	// two, the streams it led elect new leaders, and nothing is lost.
	streams := prefix + "_CELLIN_"
	led, replicas := cl.Leaders(streams)
	if replicas != 3 {
		t.Fatalf("the inbox streams have %d replicas, want 3 (broker.stream.replicas)", replicas)
	}
	victim, most := cl.Names()[0], -1
	for _, name := range cl.Names() {
		if led[name] > most {
			victim, most = name, led[name]
		}
	}
	t.Logf("inbox stream leaders: %v", led)
	for i := 8; i < 12; i++ {
		create(fmt.Sprintf("vm-%d", i))
	}
	t.Logf("stopping %s, the leader of %d inbox streams, with 4 builds in flight", victim, most)
	cl.Stop(victim)
	for i := 12; i < 16; i++ {
		create(fmt.Sprintf("vm-%d", i))
	}
	testpoll.Eventually(t, 60*time.Second, "16 servers ACTIVE with "+victim+" down, the cells agreeing with the API copy", allActive)
	testpoll.Eventually(t, 30*time.Second, "both compute cells reporting with "+victim+" down", hostsReported(ctx, apiDB, map[string]int{routing: 6}))

	// A compute cell's process dies with builds in flight to it, stays
	// down until its parent counts it down, servers are booted meanwhile
	// (they go to the other cell), and it comes back (to the two NATS
	// servers left).
	for i := 16; i < 22; i++ {
		create(fmt.Sprintf("vm-%d", i))
	}
	procs[c1].kill()
	testpoll.Eventually(t, 30*time.Second, "the routing cell to count api!region1!c1 down", func() (bool, string) {
		nbs, err := cells.ListNeighbours(ctx, cellDBs[routing])
		if err != nil {
			return false, err.Error()
		}
		for _, n := range nbs {
			if n.Path == c1 {
				return time.Since(n.LastSeen) > 2*time.Second, fmt.Sprintf("last heard %s ago", time.Since(n.LastSeen))
			}
		}
		return false, "no api!region1!c1 in the routing cell's table"
	})
	for i := 22; i < 26; i++ {
		create(fmt.Sprintf("vm-%d", i))
	}
	procs[c1].start()
	testpoll.Eventually(t, 60*time.Second, "26 servers ACTIVE after api!region1!c1's restart, nothing lost or doubled", allActive)
	testpoll.Eventually(t, 30*time.Second, "api!region1!c1 reporting again", hostsReported(ctx, apiDB, map[string]int{routing: 6}))

	// The stopped NATS server comes back with its store: it catches up
	// with the streams it missed, and builds go on.
	cl.Start(victim)
	for i := 26; i < 30; i++ {
		create(fmt.Sprintf("vm-%d", i))
	}
	testpoll.Eventually(t, 60*time.Second, "30 servers ACTIVE after "+victim+" came back", allActive)
	final := truth()
	after := map[string]int{}
	for c, insts := range final {
		for _, in := range insts {
			if !in.deleted {
				after[c]++
			}
		}
	}
	t.Logf("placement after the outage: %v", after)
	for _, id := range created {
		n := 0
		for _, insts := range final {
			if in, ok := insts[id]; ok && !in.deleted {
				n++
			}
		}
		if n != 1 {
			t.Errorf("server %s is live in %d cells", id, n)
		}
	}
}
