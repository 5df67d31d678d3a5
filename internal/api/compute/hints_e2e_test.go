package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestCellSchedulerHints: an admin's target_cell forces the cell, a
// member's is ignored; same_cell and different_cell follow the named
// instances' cells; bad hints are 400 and create nothing.
func TestCellSchedulerHints(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 3, HostsPerCell: 2})
	adminSC := tr.Compute(admin)
	boot := func(token string, hints map[string]any) string {
		t.Helper()
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{
			"server":             map[string]any{"name": "h", "flavorRef": "1", "imageRef": imageID},
			"os:scheduler_hints": hints,
		})
		if r.Status != http.StatusAccepted {
			t.Fatalf("create with hints %v: %s", hints, r)
		}
		var out struct {
			Server struct{ ID string } `json:"server"`
		}
		r.JSON(t, &out)
		return out.Server.ID
	}
	cellOf := func(id string) string {
		t.Helper()
		waitStatus(t, adminSC, id, "ACTIVE")
		// Hosts are named after their cell: cell2-host001.
		var body struct {
			Server struct {
				Host string `json:"OS-EXT-SRV-ATTR:host"`
			} `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil).JSON(t, &body)
		return "api!" + strings.SplitN(body.Server.Host, "-", 2)[0]
	}

	for _, target := range []string{"api!cell3", "api!cell1", "api!cell3"} {
		id := boot(admin, map[string]any{"target_cell": target})
		if got := cellOf(id); got != target {
			t.Errorf("admin target_cell %s: built in %s", target, got)
		}
	}
	anchor := boot(admin, map[string]any{"target_cell": "api!cell2"})
	anchorCell := cellOf(anchor)
	same := boot(admin, map[string]any{"same_cell": anchor})
	if got := cellOf(same); got != anchorCell {
		t.Errorf("same_cell as %s (in %s): built in %s", anchor, anchorCell, got)
	}
	for range 3 {
		diff := boot(admin, map[string]any{"different_cell": []string{anchor}})
		if got := cellOf(diff); got == anchorCell {
			t.Errorf("different_cell from %s: built in the same cell %s", anchor, got)
		}
	}
	// A member's target_cell is ignored, not refused (as in cells v1).
	if id := boot(demo, map[string]any{"target_cell": "api!nope"}); id == "" {
		t.Error("a member's target_cell hint was refused")
	}

	before := len(listAll(t, tr, admin, "?all_tenants=1"))
	for _, hints := range []map[string]any{
		{"target_cell": "api!nope!x y"},
		{"target_cell": "other!cell1"},
		{"target_cell": []string{"api!cell1", "api!cell2"}},
		{"same_cell": "00000000-0000-0000-0000-000000000000"},
		{"different_cell": []string{"nonsense"}},
	} {
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", admin, map[string]any{
			"server":             map[string]any{"name": "bad", "flavorRef": "1", "imageRef": imageID},
			"os:scheduler_hints": hints,
		})
		if msg := testtree.Fault(t, r, http.StatusBadRequest); !strings.Contains(msg, "os:scheduler_hints") {
			t.Errorf("hints %v: fault %q does not name the hints", hints, msg)
		}
	}
	if after := len(listAll(t, tr, admin, "?all_tenants=1")); after != before {
		t.Errorf("bad hints created servers: %d before, %d after", before, after)
	}
}
