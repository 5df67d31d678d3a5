package compute_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// TestResetStateShowsAtOnce: os-resetState is visible in the read right
// after its 202, as in Nova (which sets the state before answering); the
// API copy then holds the version the cell gave the reset, so an update
// the cell sent before it (still on its way) cannot undo it; and an
// instance no cell holds is reset in the copy.
func TestResetStateShowsAtOnce(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := context.Background()
	id := create(t, tr, demo, map[string]any{"name": "reset-me", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")

	status := func(id string) string {
		t.Helper()
		var out struct{ Server struct{ Status string } }
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil).JSON(t, &out)
		return out.Server.Status
	}
	reset := func(id, state string) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", admin, map[string]any{"os-resetState": map[string]any{"state": state}})
	}
	for _, c := range []struct{ state, want string }{{"error", "ERROR"}, {"active", "ACTIVE"}, {"error", "ERROR"}, {"error", "ERROR"}} {
		if r := reset(id, c.state); r.Status != http.StatusAccepted {
			t.Fatalf("reset to %s: %s", c.state, r)
		}
		// No polling: the state is there in the very next read.
		if got := status(id); got != c.want {
			t.Errorf("right after a reset to %s: status %s, want %s", c.state, got, c.want)
		}
	}

	// The copy holds the cell's version of the reset: an older update
	// (one the cell sent before it) is ignored.
	in, err := apidb.Get(ctx, tr.API.DB, id)
	if err != nil {
		t.Fatal(err)
	}
	var cellDB *db.DB
	for _, n := range tr.Cells {
		if n.Config().Cell == in.Cell {
			cellDB = n.DB
		}
	}
	truth, err := celldb.Get(ctx, cellDB, id)
	if err != nil {
		t.Fatal(err)
	}
	if in.Version != truth.Version || in.VMState != "error" || truth.VMState != "error" {
		t.Errorf("after the resets: copy version %d %s, cell version %d %s; want equal, error", in.Version, in.VMState, truth.Version, truth.VMState)
	}
	older := wire.InstanceState{UUID: id, Cell: in.Cell, Version: in.Version - 1, Host: in.Host, Node: in.Node, VMState: "active", PowerState: 1, UpdatedAt: time.Now()}
	if err := tr.API.DB.InTx(ctx, func(tx *db.Tx) error {
		_, err := apidb.ApplyUpdate(ctx, tx, older, time.Now())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := status(id); got != "ERROR" {
		t.Errorf("an update older than the reset undid it: status %s", got)
	}

	// A server no cell could build (ERROR, no cell) is reset in the copy.
	if r := tr.Do(t, http.MethodPost, "/v2.1/flavors", admin, map[string]any{"flavor": map[string]any{
		"name": "huge", "id": "huge", "ram": 1 << 30, "vcpus": 1, "disk": 1}}); r.Status != http.StatusOK {
		t.Fatalf("create flavor: %s", r)
	}
	lost := create(t, tr, admin, map[string]any{"name": "nowhere", "flavorRef": "huge", "imageRef": imageID})
	waitStatus(t, tr.Compute(admin), lost, "ERROR")
	if r := reset(lost, "active"); r.Status != http.StatusAccepted {
		t.Fatalf("reset of a server in no cell: %s", r)
	}
	if got := status(lost); got != "ACTIVE" {
		t.Errorf("right after resetting a server in no cell: %s, want ACTIVE", got)
	}

	// Bad input: the 400 Nova's schema gives; a member may not.
	for _, body := range []map[string]any{{"state": "paused"}, {}, {"state": "error", "x": 1}} {
		testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", admin, map[string]any{"os-resetState": body}), http.StatusBadRequest)
	}
	testtree.Fault(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, map[string]any{"os-resetState": map[string]any{"state": "active"}}), http.StatusForbidden)
	if got := status(id); got != "ERROR" {
		t.Errorf("refused resets changed the server: %s", got)
	}
}
