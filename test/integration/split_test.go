package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// TestCellSplitAcrossProcesses runs one compute cell as two processes that
// share the cell's database and broker: one with the cells service, the
// host scheduler and the network service (and the embedded broker), one with
// the compute hosts only. Builds and deletes cross between them over the
// cell's broker.
func TestCellSplitAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	dir := t.TempDir()
	apiPort, apiBroker, cellBroker := freePort(t), freePort(t), freePort(t)
	cellDir := filepath.Join(dir, "cell1")
	cfgs := map[string]map[string]any{
		"api": {"cell": "api", "data_dir": filepath.Join(dir, "api"),
			"broker": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", apiBroker)},
			"api": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", apiPort), "auth": "noauth",
				"quota": map[string]any{"instances": -1, "cores": -1, "ram": -1}},
			"cells": map[string]any{"refresh_interval": "300ms"}},
		"cell1-control": {"cell": "api!cell1", "data_dir": cellDir, "roles": []string{"cells", "scheduler", "network"},
			"broker": map[string]any{"listen": fmt.Sprintf("127.0.0.1:%d", cellBroker)},
			"cells":  map[string]any{"report_interval": "300ms", "refresh_interval": "300ms"}},
		"cell1-compute": {"cell": "api!cell1", "data_dir": cellDir, "roles": []string{"compute"},
			"broker":  map[string]any{"url": fmt.Sprintf("nats://127.0.0.1:%d", cellBroker)},
			"compute": map[string]any{"hosts": 3}},
	}
	procs := map[string]*cellProc{}
	for name, c := range cfgs {
		path := filepath.Join(dir, name+".json")
		writeJSON(t, path, c)
		procs[name] = &cellProc{t: t, path: name, config: path, log: filepath.Join(dir, name+".log")}
	}
	// link-url creates each cell's broker credentials (the compute process
	// reads them from the shared data directory) and prints the URL, with
	// the cell's link user, that its neighbour records.
	cellURL := strings.TrimSpace(cellcloud(t, "cell", "link-url", "--config", procs["cell1-control"].config))
	apiURL := strings.TrimSpace(cellcloud(t, "cell", "link-url", "--config", procs["api"].config))
	cellcloud(t, "cell", "add", "--config", procs["api"].config, "--name", "api!cell1", "--relation", "child", "--broker-url", cellURL)
	cellcloud(t, "cell", "add", "--config", procs["cell1-control"].config, "--name", "api", "--relation", "parent", "--broker-url", apiURL)
	for _, name := range []string{"api", "cell1-control", "cell1-compute"} {
		procs[name].start()
	}
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop()
		}
		if t.Failed() {
			for name, p := range procs {
				t.Logf("---- last log lines of %s ----\n%s", name, p.tail(30))
			}
		}
	})
	tr := &tree{t: t, api: fmt.Sprintf("http://127.0.0.1:%d/v2.1/", apiPort)}
	c := tr.client("demo:demo")
	ctx := context.Background()
	// The compute hosts register when their process starts; the first
	// build may come before, so wait for the API to answer and then build.
	testpoll.Eventually(t, 30*time.Second, "the API", func() (bool, string) {
		_, err := servers.List(c, nil).AllPages(ctx)
		return err == nil, fmt.Sprint(err)
	})
	var ids []string
	testpoll.Eventually(t, 30*time.Second, "hosts to register and a first build to succeed", func() (bool, string) {
		s, err := servers.Create(ctx, c, servers.CreateOpts{Name: "split", FlavorRef: "1", ImageRef: imageID}, nil).Extract()
		if err != nil {
			return false, err.Error()
		}
		ok, detail := false, ""
		testpoll.Eventually(t, 20*time.Second, "the build to finish", func() (bool, string) {
			got, err := servers.Get(ctx, c, s.ID).Extract()
			if err != nil {
				return false, err.Error()
			}
			ok, detail = got.Status == "ACTIVE", got.Status
			return got.Status == "ACTIVE" || got.Status == "ERROR", got.Status
		})
		if !ok {
			_ = servers.Delete(ctx, c, s.ID).ExtractErr()
		} else {
			ids = append(ids, s.ID)
		}
		return ok, detail
	})
	for i := range 3 {
		s, err := servers.Create(ctx, c, servers.CreateOpts{Name: fmt.Sprintf("split-%d", i), FlavorRef: "1", ImageRef: imageID}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID)
	}
	for _, id := range ids {
		testpoll.Eventually(t, 30*time.Second, "ACTIVE "+id, func() (bool, string) {
			got, err := servers.Get(ctx, c, id).Extract()
			if err != nil {
				return false, err.Error()
			}
			return got.Status == "ACTIVE", got.Status
		})
	}
	for _, id := range ids {
		if err := servers.Delete(ctx, c, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		testpoll.Eventually(t, 30*time.Second, "deleted "+id, func() (bool, string) {
			_, err := servers.Get(ctx, c, id).Extract()
			return err != nil, "still there"
		})
	}
}
