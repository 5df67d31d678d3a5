package testtree_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db/archive"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/up"
)

// The archive of a running tree, the compute cell first (the other order
// than the one docs/operations.md advises, to show its window), then the
// API cell: the API answers for the live server all along; for the
// deleted one as long as the API copy has it (listed with deleted=true,
// its actions empty once its cell has archived them), then not at all; and
// the cell goes on building.
func TestArchiveInARunningTree(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1})
	ctx := context.Background()
	const admin = "admin:p"
	boot := func(name string) string {
		t.Helper()
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", admin, map[string]any{"server": map[string]any{"name": name, "imageRef": up.DefaultImageID, "flavorRef": "1"}})
		if r.Status != http.StatusAccepted {
			t.Fatalf("boot %s: %s", name, r)
		}
		var body struct {
			Server struct {
				ID string `json:"id"`
			} `json:"server"`
		}
		r.JSON(t, &body)
		id := body.Server.ID
		testpoll.Eventually(t, 60*time.Second, name+" ACTIVE", func() (bool, string) {
			in, err := apidb.Get(ctx, tr.API.DB, id)
			if err != nil || in.VMState != "active" {
				return false, fmt.Sprintf("%+v %v", in, err)
			}
			return true, ""
		})
		return id
	}
	live, gone := boot("live"), boot("gone")
	if r := tr.Do(t, http.MethodDelete, "/v2.1/servers/"+gone, admin, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %s", r)
	}
	testpoll.Eventually(t, 60*time.Second, "the deleted server deleted in the API copy", func() (bool, string) {
		in, err := apidb.Get(ctx, tr.API.DB, gone)
		return err == nil && in.Deleted, fmt.Sprintf("%+v %v", in, err)
	})
	cell := tr.Cells[0]
	testpoll.Eventually(t, 30*time.Second, "the delete's action finished in the cell", func() (bool, string) {
		var n int
		err := cell.DB.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE uuid = ? AND deleted = 1`, gone).Scan(&n)
		return err == nil && n == 1, fmt.Sprint(n, err)
	})

	ids := func(path string) []string {
		t.Helper()
		r := tr.Do(t, http.MethodGet, path, admin, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %s", path, r)
		}
		var body struct {
			Servers []struct {
				ID string `json:"id"`
			} `json:"servers"`
		}
		r.JSON(t, &body)
		var out []string
		for _, s := range body.Servers {
			out = append(out, s.ID)
		}
		return out
	}
	actions := func(id string) (int, int) {
		t.Helper()
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions", admin, nil, "OpenStack-API-Version", "compute 2.21")
		if r.Status != http.StatusOK {
			return r.Status, 0
		}
		var body struct {
			Actions []any `json:"instanceActions"`
		}
		r.JSON(t, &body)
		return r.Status, len(body.Actions)
	}
	if st, n := actions(gone); st != http.StatusOK || n != 2 {
		t.Fatalf("actions of the deleted server before the archive: %d, %d; want 200 and create, delete", st, n)
	}

	// The compute cell, while it runs: no cutoff, every deleted row.
	got, err := archive.Archive(ctx, cell.DB, node.ArchivePlan(false), archive.Options{MaxRows: 1, UntilComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if got["instances"] != 1 || got["instance_actions"] != 2 || got["instance_action_events"] < 1 {
		t.Errorf("the cell archived %v, want the deleted server with its 2 actions and their events", got)
	}
	if got := ids("/v2.1/servers/detail?deleted=true&all_tenants=1"); fmt.Sprint(got) != fmt.Sprint([]string{gone}) {
		t.Errorf("deleted servers once the cell archived: %v, want the deleted one (the API copy has it)", got)
	}
	if st, n := actions(gone); st != http.StatusOK || n != 0 {
		t.Errorf("actions of the deleted server once its cell archived them: %d, %d; want 200 and none", st, n)
	}
	if st, n := actions(live); st != http.StatusOK || n != 1 {
		t.Errorf("actions of the live server: %d, %d; want 200 and create", st, n)
	}

	// The API cell.
	got, err = archive.Archive(ctx, tr.API.DB, node.ArchivePlan(true), archive.Options{MaxRows: 1000, UntilComplete: true})
	if err != nil {
		t.Fatal(err)
	}
	if got["instances"] != 1 {
		t.Errorf("the API cell archived %v, want the deleted server", got)
	}
	if got := ids("/v2.1/servers/detail?deleted=true&all_tenants=1"); len(got) != 0 {
		t.Errorf("deleted servers once both archived: %v, want none", got)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+gone, admin, nil); r.Status != http.StatusNotFound {
		t.Errorf("GET the archived server: %s, want 404", r)
	}
	if got := ids("/v2.1/servers/detail?all_tenants=1"); fmt.Sprint(got) != fmt.Sprint([]string{live}) {
		t.Errorf("servers: %v, want the live one", got)
	}
	// The tree goes on: a new server builds (and archiving again moves
	// nothing).
	boot("after")
	for _, d := range []struct {
		root bool
		name string
	}{{false, "cell"}, {true, "API cell"}} {
		dbh := cell.DB
		if d.root {
			dbh = tr.API.DB
		}
		if got, err := archive.Archive(ctx, dbh, node.ArchivePlan(d.root), archive.Options{MaxRows: 10, UntilComplete: true}); err != nil || got.Total() != 0 {
			t.Errorf("the %s archived again: %v, %v; want nothing", d.name, got, err)
		}
	}
}
