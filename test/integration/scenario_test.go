package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/scenario"
	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// A tree of processes is a scenario.Cloud, so the scenarios written once
// run against separate `cellcloud serve` processes too.
var _ scenario.Cloud = (*tree)(nil)

func (tr *tree) ComputeURL() string  { return tr.api }
func (tr *tree) AdminToken() string  { return "admin:admin" }
func (tr *tree) MemberToken() string { return "demo:demo" }

func (tr *tree) ComputeCells() []scenario.Cell {
	var out []scenario.Cell
	for _, path := range tr.cells {
		out = append(out, scenario.Cell{Path: path})
	}
	return out
}

// AddressCell is the compute cell that handed out a: the holder of its
// block in the API cell's database.
func (tr *tree) AddressCell(a netip.Addr) (string, error) {
	return netdb.AddressHolder(context.Background(), tr.openDB("api"), a)
}

// waitReady waits until the API cell has capacity reports of hosts (per
// child cell) and the Compute API answers: the promise of a scenario.Cloud.
func (tr *tree) waitReady(hosts map[string]int) {
	tr.t.Helper()
	testpoll.Eventually(tr.t, 60*time.Second, "capacity reports at the API cell", hostsReported(context.Background(), tr.openDB("api"), hosts))
	// The cells service records reports before the API listens.
	testpoll.Eventually(tr.t, 60*time.Second, "the Compute API to answer", tr.apiAnswers)
}

// apiAnswers is a testpoll.Eventually condition: the Compute API answers.
func (tr *tree) apiAnswers() (bool, string) {
	resp, err := http.Get(tr.api)
	if err != nil {
		return false, err.Error()
	}
	resp.Body.Close()
	return resp.StatusCode < 500, resp.Status
}

// TestBootActDeleteProcesses runs scenario.BootActDelete (also run in
// process, in internal/scenario) against an API cell and two compute cells,
// each its own process.
func TestBootActDeleteProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts several processes")
	}
	tr := startTree(t, []cellSpec{{path: "api"}, {path: "api!cell1", hosts: 2, parent: "api"}, {path: "api!cell2", hosts: 2, parent: "api"}})
	tr.waitReady(map[string]int{"api!cell1": 2, "api!cell2": 2})
	if got := fmt.Sprint(tr.ComputeCells()); got != "[{api!cell1} {api!cell2}]" {
		t.Fatalf("compute cells %s", got)
	}
	scenario.BootActDelete(t, tr)
}
