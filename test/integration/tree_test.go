// Package integration runs a cell tree as separate OS processes, each cell
// with its own database and its own embedded broker, and drives it through
// the Compute API with gophercloud.
package integration

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
)

const imageID = "5f5c1b7e-6c2a-4e43-9a57-0d8c1c0c1c0c"

type cellSpec struct {
	path   string
	hosts  int
	parent string
	// proxied puts the links between the cell and its parent through
	// proxies the test can cut (tree.partitions).
	proxied bool
	// faults is the cell's cells.fault_injection (test only).
	faults map[string]any
	// natsServer, when set, is the nats-server binary the cell's broker
	// runs as, a process of its own (tree.brokers), instead of embedded.
	natsServer string
	// cells are options of the cell's "cells" section, over the tests'.
	cells map[string]any
}

type tree struct {
	t     *testing.T
	dir   string
	procs map[string]*cellProc
	urls  map[string]string // broker URL per cell
	dbs   map[string]string // database DSN per cell
	cells []string          // compute cells, in the order of the specs
	api   string            // Compute API endpoint
	// partitions are the proxied links, by the child cell's path.
	partitions map[string]*partition
	// brokers are the external brokers' processes, by cell.
	brokers map[string]*cellProc
	// certConfigs are the configurations `cell cert` reads for cells on
	// an external broker (whose own configuration has a URL instead).
	certConfigs map[string]string
}

// startTree writes a config per cell, links the cells with `cellcloud cell
// add` on both sides (with the URLs `cellcloud cell link-url` prints), and starts one `cellcloud serve` process per cell.
func startTree(t *testing.T, specs []cellSpec) *tree {
	tr := &tree{t: t, dir: t.TempDir(), procs: map[string]*cellProc{}, urls: map[string]string{}, dbs: map[string]string{},
		partitions: map[string]*partition{}, brokers: map[string]*cellProc{}, certConfigs: map[string]string{}}
	apiPort := freePort(t)
	tr.api = fmt.Sprintf("http://127.0.0.1:%d/v2.1/", apiPort)
	for _, s := range specs {
		name := strings.ReplaceAll(s.path, "!", "_")
		dir := filepath.Join(tr.dir, name)
		port := freePort(t)
		cfg := map[string]any{
			"cell":     s.path,
			"data_dir": dir,
			// TLS with a certificate of the tree CA (`cell cert` below).
			"broker": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", port), "ca": filepath.Join(tr.dir, "tree-ca.pem"),
				"tls_cert": filepath.Join(dir, "broker-cert.pem"), "tls_key": filepath.Join(dir, "broker-key.pem")},
			"cells": map[string]any{"report_interval": "500ms", "refresh_interval": "300ms", "heal_interval": "3s", "heal_window": "1m"},
		}
		if s.faults != nil {
			cfg["cells"].(map[string]any)["fault_injection"] = s.faults
		}
		maps.Copy(cfg["cells"].(map[string]any), s.cells)
		// The API cell and one compute cell run on PostgreSQL when this
		// machine has it (the production path), each in its own schema;
		// the others on their own SQLite files.
		if s.path == "api" || s.path == "api!cell1" {
			if dsn := dbtest.PostgresDSN(t); dsn != "" {
				cfg["database"] = dsn
			}
		}
		if s.parent == "" {
			cfg["api"] = map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", apiPort), "auth": "noauth",
				"quota": map[string]any{"instances": -1, "cores": -1, "ram": -1}}
		} else {
			cfg["compute"] = map[string]any{"hosts": s.hosts,
				"host": map[string]any{"vcpus": 4, "ram_mb": 2048, "disk_gb": 100, "cpu_allocation_ratio": 4, "ram_allocation_ratio": 1}}
			tr.cells = append(tr.cells, s.path)
		}
		if dsn, ok := cfg["database"].(string); ok {
			tr.dbs[s.path] = dsn
		} else {
			tr.dbs[s.path] = filepath.Join(dir, "cell.db")
		}
		if s.natsServer != "" {
			// The certificate is made as for an embedded broker; the cell
			// reaches nats-server by URL, verified against the tree CA.
			tr.certConfigs[s.path] = filepath.Join(tr.dir, name+"-cert.json")
			writeJSON(t, tr.certConfigs[s.path], cfg)
			b := cfg["broker"].(map[string]any)
			conf := filepath.Join(tr.dir, name+"-nats.conf")
			text := fmt.Sprintf("listen: %q\njetstream { store_dir: %q }\ntls { cert_file: %q\nkey_file: %q }\n",
				b["listen"], filepath.Join(dir, "nats"), b["tls_cert"], b["tls_key"])
			if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			tr.brokers[s.path] = &cellProc{t: t, path: s.path + " broker", log: filepath.Join(tr.dir, name+"-nats.log"),
				argv: []string{s.natsServer, "-c", conf}}
			tr.urls[s.path] = fmt.Sprintf("tls://127.0.0.1:%d", port)
			cfg["broker"] = map[string]any{"url": tr.urls[s.path], "ca": b["ca"]}
		}
		path := filepath.Join(tr.dir, name+".json")
		writeJSON(t, path, cfg)
		tr.procs[s.path] = &cellProc{t: t, path: s.path, config: path, log: filepath.Join(tr.dir, name+".log")}
	}
	// Each cell's neighbours reach its broker with its link user: `cell
	// link-url` creates the cell's broker credentials and prints the URL.
	// `cell cert` makes the tree CA (the first time) and each cell's broker
	// certificate.
	for _, s := range specs {
		if cc, ok := tr.certConfigs[s.path]; ok {
			// nats-server without users: its URL is the link URL.
			cellcloud(t, "cell", "cert", "--config", cc, "--ca-key", filepath.Join(tr.dir, "tree-ca-key.pem"))
			continue
		}
		cellcloud(t, "cell", "cert", "--config", tr.procs[s.path].config, "--ca-key", filepath.Join(tr.dir, "tree-ca-key.pem"))
		tr.urls[s.path] = strings.TrimSpace(cellcloud(t, "cell", "link-url", "--config", tr.procs[s.path].config))
	}
	for _, s := range specs {
		if s.parent == "" {
			continue
		}
		childURL, parentURL := tr.urls[s.path], tr.urls[s.parent]
		if s.proxied {
			p := &partition{down: newLinkProxy(t, brokerAddr(t, childURL)), up: newLinkProxy(t, brokerAddr(t, parentURL))}
			tr.partitions[s.path] = p
			childURL, parentURL = p.down.via(t, childURL), p.up.via(t, parentURL)
		}
		cellcloud(t, "cell", "add", "--config", tr.procs[s.parent].config, "--name", s.path, "--relation", "child", "--broker-url", childURL)
		cellcloud(t, "cell", "add", "--config", tr.procs[s.path].config, "--name", s.parent, "--relation", "parent", "--broker-url", parentURL)
	}
	for _, b := range tr.brokers {
		b.start()
	}
	for _, s := range specs {
		tr.procs[s.path].start()
	}
	t.Cleanup(func() {
		for _, p := range tr.procs {
			p.stop()
		}
		for _, b := range tr.brokers {
			b.stop()
		}
		if t.Failed() {
			for path, p := range tr.procs {
				t.Logf("---- last log lines of %s ----\n%s", path, p.tail(40))
			}
		}
	})
	return tr
}

// hostsReported is a testpoll.Eventually condition: the API cell's
// children have reported these numbers of hosts.
func hostsReported(ctx context.Context, apiDB *db.DB, want map[string]int) func() (bool, string) {
	return func() (bool, string) {
		ns, err := cells.ListNeighbours(ctx, apiDB)
		if err != nil {
			return false, err.Error()
		}
		hosts := map[string]int{}
		for _, n := range ns {
			if n.Report != nil {
				hosts[n.Path] = n.Report.Hosts
			}
		}
		for path, n := range want {
			if hosts[path] != n {
				return false, fmt.Sprint(hosts)
			}
		}
		return true, fmt.Sprint(hosts)
	}
}

func (tr *tree) openDB(path string) *db.DB {
	tr.t.Helper()
	d, err := db.Open(context.Background(), tr.dbs[path])
	if err != nil {
		tr.t.Fatalf("open %s database: %v", path, err)
	}
	tr.t.Cleanup(func() { d.Close() })
	return d
}

func (tr *tree) client(token string) *gophercloud.ServiceClient {
	pc := &gophercloud.ProviderClient{HTTPClient: http.Client{Timeout: 30 * time.Second}}
	pc.SetToken(token)
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: tr.api, ResourceBase: tr.api, Type: "compute"}
}

// apiInstance is a row of the API cell's copy.
type apiInstance struct {
	uuid, cell, host, vmState, taskState string
	version                              int64
	deleted, deleteRequested             bool
}

func apiInstances(t *testing.T, d *db.DB) map[string]apiInstance {
	t.Helper()
	rows, err := d.Query(context.Background(), `SELECT uuid, cell_path, host, vm_state, task_state, version, deleted, delete_requested FROM instances`)
	if err != nil {
		t.Fatalf("read API instances: %v", err)
	}
	defer rows.Close()
	out := map[string]apiInstance{}
	for rows.Next() {
		var in apiInstance
		var del, req int
		if err := rows.Scan(&in.uuid, &in.cell, &in.host, &in.vmState, &in.taskState, &in.version, &del, &req); err != nil {
			t.Fatal(err)
		}
		in.deleted, in.deleteRequested = del != 0, req != 0
		out[in.uuid] = in
	}
	return out
}

// cellInstance is a row of a compute cell's own instances table.
type cellInstance struct {
	cell, host, vmState, taskState string
	version                        int64
	deleted                        bool
}

func cellInstances(t *testing.T, cell string, d *db.DB) map[string]cellInstance {
	t.Helper()
	rows, err := d.Query(context.Background(), `SELECT uuid, host, vm_state, task_state, version, deleted FROM instances`)
	if err != nil {
		t.Fatalf("read %s instances: %v", cell, err)
	}
	defer rows.Close()
	out := map[string]cellInstance{}
	for rows.Next() {
		var u string
		in := cellInstance{cell: cell}
		var del int
		if err := rows.Scan(&u, &in.host, &in.vmState, &in.taskState, &in.version, &del); err != nil {
			t.Fatal(err)
		}
		in.deleted = del != 0
		out[u] = in
	}
	return out
}

// converged compares the API cell's copy with every compute cell's truth.
// It returns "" when they agree: every instance the API holds live is live
// in exactly one cell, there with the same host, state and version, and
// every instance the API holds deleted is deleted (or absent) below.
func converged(t *testing.T, api map[string]apiInstance, truth map[string]map[string]cellInstance) string {
	owner := map[string][]cellInstance{}
	for _, insts := range truth {
		for u, in := range insts {
			if !in.deleted {
				owner[u] = append(owner[u], in)
			}
		}
	}
	for u, a := range api {
		live := owner[u]
		if len(live) > 1 {
			return fmt.Sprintf("instance %s is live in %d cells", u, len(live))
		}
		if a.deleted {
			if len(live) == 1 {
				return fmt.Sprintf("instance %s is deleted at the API but live in %s", u, live[0].cell)
			}
			continue
		}
		if len(live) == 0 {
			return fmt.Sprintf("instance %s is %s at the API but live in no cell", u, a.vmState)
		}
		c := live[0]
		if a.cell != c.cell || a.host != c.host || a.vmState != c.vmState || a.taskState != c.taskState || a.version != c.version {
			return fmt.Sprintf("instance %s: API has cell=%s host=%s %s/%s v%d, cell has cell=%s host=%s %s/%s v%d",
				u, a.cell, a.host, a.vmState, a.taskState, a.version, c.cell, c.host, c.vmState, c.taskState, c.version)
		}
	}
	for u := range owner {
		if _, ok := api[u]; !ok {
			return fmt.Sprintf("instance %s is live in a cell but unknown to the API", u)
		}
	}
	return ""
}

func TestTreeOfProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	specs := []cellSpec{
		{path: "api"},
		{path: "api!cell1", hosts: 2, parent: "api"},
		{path: "api!cell1!a", hosts: 2, parent: "api!cell1"},
		{path: "api!cell2", hosts: 2, parent: "api"},
	}
	tr := startTree(t, specs)
	ctx := context.Background()
	computeCells := []string{"api!cell1", "api!cell1!a", "api!cell2"}

	apiDB := tr.openDB("api")
	cellDBs := map[string]*db.DB{}
	for _, c := range computeCells {
		cellDBs[c] = tr.openDB(c)
	}
	truth := func() map[string]map[string]cellInstance {
		out := map[string]map[string]cellInstance{}
		for _, c := range computeCells {
			out[c] = cellInstances(t, c, cellDBs[c])
		}
		return out
	}

	// The tree is ready when the API cell has capacity reports covering
	// every host: api!cell1's report includes its child api!cell1!a.
	tr.waitReady(map[string]int{"api!cell1": 4, "api!cell2": 2})

	admin := tr.client("admin:admin")
	demo := tr.client("demo:demo")

	create := func(name string, n int) ([]string, error) {
		opts := servers.CreateOpts{Name: name, FlavorRef: "1", ImageRef: imageID, Min: n, Max: n}
		r := servers.Create(ctx, demo, opts, nil)
		s, err := r.Extract()
		if err != nil {
			return nil, err
		}
		if n == 1 {
			return []string{s.ID}, nil
		}
		return nil, nil
	}

	// Phase 1: build across the tree. 24 m1.tiny fit (6 hosts × 4); 18 do
	// not fit under api!cell1 (16), so the cell schedulers must spread them.
	for i := range 6 {
		if _, err := create(fmt.Sprintf("single-%d", i), 1); err != nil {
			t.Fatalf("create: %v", err)
		}
	}
	if _, err := create("multi", 12); err != nil {
		t.Fatalf("multi-create: %v", err)
	}
	allActive := func(want int) func() (bool, string) {
		return func() (bool, string) {
			api := apiInstances(t, apiDB)
			live, active := 0, 0
			for _, a := range api {
				if !a.deleted {
					live++
					if a.vmState == "active" && a.taskState == "" {
						active++
					}
				}
			}
			if live != want || active != want {
				return false, fmt.Sprintf("%d live, %d active, want %d", live, active, want)
			}
			if d := converged(t, api, truth()); d != "" {
				return false, d
			}
			return true, ""
		}
	}
	testpoll.Eventually(t, 60*time.Second, "18 ACTIVE instances, converged", allActive(18))

	// Each instance landed where the scheduler said: the API's cell and
	// host for it are those of the one cell database that holds it.
	used := map[string]int{}
	for _, insts := range truth() {
		for _, in := range insts {
			if !in.deleted {
				used[in.cell]++
			}
		}
	}
	if len(used) != 3 {
		t.Errorf("instances landed in %v: the tree was not used", used)
	}
	t.Logf("placement after phase 1: %v", used)

	// Phase 2: kill api!cell2 while builds and deletes are in flight.
	api := apiInstances(t, apiDB)
	var victims []string
	for u, a := range api {
		if a.cell == "api!cell2" && len(victims) < 2 {
			victims = append(victims, u)
		}
	}
	for u, a := range api {
		if a.cell != "api!cell2" && len(victims) < 4 {
			victims = append(victims, u)
		}
	}
	if len(victims) != 4 || api[victims[0]].cell != "api!cell2" {
		t.Fatalf("phase 1 left no instance in api!cell2 to delete during its outage (victims %v)", victims)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	var duringMu sync.Mutex
	var during []string
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids, err := create(fmt.Sprintf("during-%d", i), 1)
			if err != nil {
				errs <- fmt.Errorf("create during the outage: %w", err)
			}
			duringMu.Lock()
			during = append(during, ids...)
			duringMu.Unlock()
		}()
	}
	// victims[0] is in api!cell2; it is deleted once the cell is surely
	// down, so at least one message must wait for it.
	for _, u := range victims[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := servers.Delete(ctx, demo, u).ExtractErr(); err != nil {
				errs <- fmt.Errorf("delete %s during the outage: %w", u, err)
			}
		}()
	}
	// The kill lands while those requests are being accepted, relayed and
	// applied.
	tr.procs["api!cell2"].kill()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := servers.Delete(ctx, demo, victims[0]).ExtractErr(); err != nil {
		t.Fatalf("delete %s while its cell is down: %v", victims[0], err)
	}
	// The deletes for api!cell2 wait in the API cell's outbox.
	testpoll.Eventually(t, 20*time.Second, "messages queued for api!cell2", func() (bool, string) {
		q, err := outbox.Neighbours(ctx, apiDB)
		if err != nil {
			return false, err.Error()
		}
		return q["api!cell2"] > 0, fmt.Sprint(q)
	})

	tr.procs["api!cell2"].start()
	// A create during the outage that the API cell placed before it saw
	// api!cell2 die waits in its outbox and is built when the cell
	// returns; one placed after finds the cell down (at once: its broker
	// died with it) and the rest of the tree full (phase 1 filled
	// api!cell1's 16 slots, and the deletes race with it), so it fails
	// with "No valid host", as Nova's would, and no cell holds it.
	failed := map[string]bool{}
	testpoll.Eventually(t, 90*time.Second, "17 instances after the restart, ACTIVE or found no cell, converged", func() (bool, string) {
		api := apiInstances(t, apiDB)
		for _, u := range during {
			if a := api[u]; a.vmState == "error" && a.cell == "" {
				failed[u] = true
				delete(api, u)
			}
		}
		live, active := 0, 0
		for _, a := range api {
			if !a.deleted {
				live++
				if a.vmState == "active" && a.taskState == "" {
					active++
				}
			}
		}
		if live+len(failed) != 17 || active != live {
			return false, fmt.Sprintf("%d live, %d active, %d found no cell; want 17 in all", live, active, len(failed))
		}
		if d := converged(t, api, truth()); d != "" {
			return false, d
		}
		return true, ""
	})
	t.Logf("creates during the outage: %d of %d found no cell", len(failed), len(during))
	testpoll.Eventually(t, 30*time.Second, "every outbox empty", func() (bool, string) {
		for _, c := range append([]string{"api"}, computeCells...) {
			d := apiDB
			if c != "api" {
				d = cellDBs[c]
			}
			q, err := outbox.Neighbours(ctx, d)
			if err != nil {
				return false, err.Error()
			}
			if len(q) > 0 {
				return false, fmt.Sprintf("%s still queues %v", c, q)
			}
		}
		return true, ""
	})

	// Nothing was applied twice: a twice-applied build would claim twice,
	// so every host's use equals the instances on it; and no address was
	// given twice.
	for _, c := range computeCells {
		checkClaims(t, c, cellDBs[c])
	}
	for _, u := range victims {
		if !apiInstances(t, apiDB)[u].deleted {
			t.Errorf("instance %s deleted during the outage is not deleted", u)
		}
	}
	// The instances are visible through the API too.
	pages, err := servers.List(admin, servers.ListOpts{AllTenants: true}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, err := servers.ExtractServers(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 17 {
		t.Errorf("API lists %d servers, want 17", len(list))
	}
	for _, s := range list {
		if s.Status != "ACTIVE" && !(failed[s.ID] && s.Status == "ERROR") {
			t.Errorf("server %s is %s", s.ID, s.Status)
		}
	}
}

func checkClaims(t *testing.T, cell string, d *db.DB) {
	t.Helper()
	for _, p := range claimProblems(t, cell, d) {
		t.Error(p)
	}
}

// claimProblems is what is wrong with a cell's claims and addresses: a
// host's use that differs from the instances on it (something applied
// twice or lost), an oversubscribed host, an instance with two addresses,
// and a claim or address held by no live instance (a leak).
func claimProblems(t *testing.T, cell string, d *db.DB) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	rows, err := d.Query(ctx, `SELECT n.host, n.used_ram_mb, n.instances,
		(SELECT COUNT(*) FROM instances i WHERE i.host = n.host AND i.deleted = 0),
		(SELECT COALESCE(SUM(c.ram_mb), 0) FROM claims c WHERE c.host = n.host) FROM compute_nodes n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var host string
		var usedRAM, claimRAM int64
		var count, live int
		if err := rows.Scan(&host, &usedRAM, &count, &live, &claimRAM); err != nil {
			t.Fatal(err)
		}
		if usedRAM != claimRAM || count != live || usedRAM != int64(live)*512 {
			out = append(out, fmt.Sprintf("%s host %s: used RAM %d, claims %d, counted %d instances, %d live: something was applied twice or lost",
				cell, host, usedRAM, claimRAM, count, live))
		}
		if usedRAM > 2048 {
			out = append(out, fmt.Sprintf("%s host %s is oversubscribed: %d MB used of 2048", cell, host, usedRAM))
		}
	}
	var dup int
	if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT instance_uuid FROM fixed_ips WHERE instance_uuid IS NOT NULL GROUP BY instance_uuid HAVING COUNT(*) > 1) x`).Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup > 0 {
		out = append(out, fmt.Sprintf("%s: %d instances hold more than one address", cell, dup))
	}
	var live, addressed int
	_ = d.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE deleted = 0`).Scan(&live)
	_ = d.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips WHERE instance_uuid IS NOT NULL`).Scan(&addressed)
	if live != addressed {
		out = append(out, fmt.Sprintf("%s: %d live instances but %d addresses in use", cell, live, addressed))
	}
	for _, q := range []struct{ what, sql string }{
		{"addresses", `SELECT COUNT(*) FROM fixed_ips f WHERE f.instance_uuid IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.uuid = f.instance_uuid AND i.deleted = 0)`},
		{"claims", `SELECT COUNT(*) FROM claims c WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.uuid = c.instance_uuid AND i.deleted = 0)`},
	} {
		var n int
		if err := d.QueryRow(ctx, q.sql).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%s: %d %s held by no live instance", cell, n, q.what))
		}
	}
	return out
}
