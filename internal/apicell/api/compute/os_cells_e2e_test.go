package compute_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestOSCells: os-cells lists every cell of the tree with its path and
// state, the detail with capabilities and hosts; show gives one cell's
// capacity; capacities sum the tree in cells v1's format; unknown cells
// are 404 and members are refused.
func TestOSCells(t *testing.T) {
	tr := operatorTree(t)
	var list struct {
		Cells []struct {
			Name         string         `json:"name"`
			State        string         `json:"state"`
			Type         string         `json:"type"`
			RPCPort      int            `json:"rpc_port"`
			Hosts        int            `json:"hosts"`
			Capabilities map[string]any `json:"capabilities"`
		} `json:"cells"`
	}
	r := tr.Do(t, "GET", "/v2.1/os-cells/detail", admin, nil)
	r.JSON(t, &list)
	if len(list.Cells) != 2 {
		t.Fatalf("os-cells detail: %s", r.Body)
	}
	for i, want := range []string{"api!cell1", "api!cell2"} {
		c := list.Cells[i]
		if c.Name != want || c.State != "up" || c.Type != "child" || c.Hosts != 2 || c.RPCPort == 0 || c.Capabilities["hypervisor_type"] == nil {
			t.Errorf("cell %d: %+v, want %s up with 2 hosts", i, c, want)
		}
	}
	r = tr.Do(t, "GET", "/v2.1/os-cells/api!cell2", admin, nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"free_ram_mb":131072`) || !strings.Contains(string(r.Body), `"state":"up"`) {
		t.Errorf("show api!cell2: %d %s", r.Status, r.Body)
	}
	var caps struct {
		Cell struct {
			Capacities struct {
				RAMFree struct {
					TotalMB int            `json:"total_mb"`
					Units   map[string]int `json:"units_by_mb"`
				} `json:"ram_free"`
			} `json:"capacities"`
		} `json:"cell"`
	}
	r = tr.Do(t, "GET", "/v2.1/os-cells/capacities", admin, nil)
	r.JSON(t, &caps)
	// 4 hosts of 64 GiB: 4 x 128 m1.tiny (512 MB) by RAM.
	if caps.Cell.Capacities.RAMFree.TotalMB != 4*65536 || caps.Cell.Capacities.RAMFree.Units["512"] != 4*128 {
		t.Errorf("capacities: %s", r.Body)
	}
	r = tr.Do(t, "GET", "/v2.1/os-cells/api!cell1/capacities", admin, nil)
	r.JSON(t, &caps)
	if caps.Cell.Capacities.RAMFree.TotalMB != 2*65536 {
		t.Errorf("capacities of api!cell1: %s", r.Body)
	}
	for _, path := range []string{"/v2.1/os-cells/api!cell9", "/v2.1/os-cells/nonsense", "/v2.1/os-cells/api!cell9/capacities"} {
		if r := tr.Do(t, "GET", path, admin, nil); r.Status != http.StatusNotFound || !strings.Contains(string(r.Body), "doesn't exist") {
			t.Errorf("GET %s: %d %s", path, r.Status, r.Body)
		}
	}
	if r := tr.Do(t, "GET", "/v2.1/os-cells", demo, nil); r.Status != http.StatusForbidden {
		t.Errorf("a member lists cells: %d", r.Status)
	}
}
