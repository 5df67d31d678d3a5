package volume_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
)

// TestSnapshotCreate: the copy is written in the volume's cell, creating,
// and snapshot_create goes to that cell; the force rule of an in-use
// volume, a volume not available, and the quota refuse with Cinder's
// texts and write nothing.
func TestSnapshotCreate(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	vol := e.available(map[string]any{"size": 3})
	r := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": map[string]any{"volume_id": vol, "name": "s",
		"force": false, "metadata": map[string]string{"k": "v"}}})
	s := r.json(t, 202)["snapshot"].(map[string]any)
	id := s["id"].(string)
	for k, want := range map[string]any{"status": "creating", "size": float64(3), "name": "s", "volume_id": vol,
		"os-extended-snapshot-attributes:progress": "0%", "os-extended-snapshot-attributes:project_id": e.demoProject} {
		if fmt.Sprint(s[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, s[k], want)
		}
	}
	if _, ok := s["user_id"]; ok {
		t.Error("user_id below 3.41")
	}
	if target, a := e.lastAction(); target != cell1 || a.Action != wire.SnapshotCreate || a.SnapshotID != id || a.VolumeID != vol || a.CreatedAt.IsZero() {
		t.Errorf("sent %s %+v", target, a)
	}
	e.cellSays(nil, []wire.SnapshotState{{ID: id, VolumeID: vol, Cell: cell1, Version: 1, Status: "available", Progress: "100%", SizeGB: 3}})
	got := e.send("GET", e.demoPath("/snapshots/"+id), e.demo, nil, "OpenStack-API-Version", "volume 3.41").json(t, 200)["snapshot"].(map[string]any)
	if got["status"] != "available" || got["os-extended-snapshot-attributes:progress"] != "100%" || got["user_id"] == nil || got["group_snapshot_id"] != nil {
		t.Errorf("after the cell: %v", got)
	}

	e.quotas.set("snapshots", 1)
	busy := e.available(map[string]any{"size": 1})
	e.cellSays([]wire.VolumeState{{ID: busy, Cell: cell1, Version: 2, Status: "in-use", SizeGB: 1}}, nil)
	creating := e.createVolume(map[string]any{"size": 1})
	vols0, snaps0 := e.rows()
	n0 := len(e.sent.all())
	for _, tc := range []struct {
		name   string
		snap   map[string]any
		status int
		msg    string
	}{
		{"no volume", map[string]any{"name": "x"}, 400, `Invalid input for field/attribute snapshot. Value: {"name":"x"}. 'volume_id' is a required property`},
		{"unknown volume", map[string]any{"volume_id": "nope"}, 404, "Volume nope could not be found."},
		{"volume creating", map[string]any{"volume_id": creating}, 400, "Invalid volume: Volume " + creating + " status must be available, but current status is: creating."},
		{"quota", map[string]any{"volume_id": vol}, 413, "Maximum number of snapshots allowed (1) exceeded for quota 'snapshots'."},
		{"bad force", map[string]any{"volume_id": vol, "force": "sure"}, 400, "Unrecognized value 'sure', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'"},
		{"unknown key", map[string]any{"volume_id": vol, "size": 1}, 400, `Invalid input for field/attribute snapshot. Value: {"size":1,"volume_id":"` + vol + `"}. Additional properties are not allowed ('size' was unexpected)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": tc.snap})
			name := map[int]string{400: "badRequest", 404: "itemNotFound", 413: "overLimit"}[tc.status]
			if msg := r.fault(t, tc.status, name); msg != tc.msg {
				t.Errorf("%q, want %q", msg, tc.msg)
			}
		})
	}
	// In use without force: refused (below 3.66); with force: the status check passes.
	if msg := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": map[string]any{"volume_id": busy}}).fault(t, 400, "badRequest"); msg != "Invalid volume: Volume "+busy+" status must be available, but current status is: in-use." {
		t.Errorf("in-use without force: %q", msg)
	}
	if msg := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": map[string]any{"volume_id": busy, "force": true}}).fault(t, 413, "overLimit"); msg != "Maximum number of snapshots allowed (1) exceeded for quota 'snapshots'." {
		t.Errorf("in-use with force reaches the quota: %q", msg)
	}
	if v, s := e.rows(); v != vols0 || s != snaps0 || len(e.sent.all()) != n0 {
		t.Errorf("a refused snapshot wrote: volumes %d→%d snapshots %d→%d messages +%d", vols0, v, snaps0, s, len(e.sent.all())-n0)
	}
}

// TestSnapshotLifecycle: list, update, metadata, delete (Cinder's text
// when not available or error), the admin actions, and the cell's
// deletion.
func TestSnapshotLifecycle(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	vol := e.available(map[string]any{"size": 1})
	var ids []string
	for i := range 3 {
		id := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": map[string]any{"volume_id": vol, "name": fmt.Sprint("s", i)}}).json(t, 202)["snapshot"].(map[string]any)["id"].(string)
		ids = append(ids, id)
	}
	e.cellSays(nil, []wire.SnapshotState{{ID: ids[0], VolumeID: vol, Cell: cell1, Version: 1, Status: "available", SizeGB: 1}})
	l := e.send("GET", e.demoPath("/snapshots/detail?status=available"), e.demo, nil).json(t, 200)["snapshots"].([]any)
	if len(l) != 1 || l[0].(map[string]any)["id"] != ids[0] {
		t.Errorf("filter by status: %v", l)
	}
	page := e.send("GET", e.demoPath("/snapshots?limit=2&sort=name:asc"), e.demo, nil, "OpenStack-API-Version", "volume 3.45").json(t, 200)
	if len(page["snapshots"].([]any)) != 2 || page["snapshots_links"] == nil {
		t.Errorf("page %v", page)
	}
	if msg := e.send("GET", e.demoPath("/snapshots?colour=red"), e.demo, nil, "OpenStack-API-Version", "volume 3.31").fault(t, 400, "badRequest"); msg != "Invalid filters colour are found in query options." {
		t.Errorf("bad filter: %q", msg)
	}
	u := e.send("PUT", e.demoPath("/snapshots/"+ids[0]), e.demo, map[string]any{"snapshot": map[string]any{"name": "renamed"}}).json(t, 200)["snapshot"].(map[string]any)
	if u["name"] != "renamed" {
		t.Errorf("update %v", u)
	}
	if msg := e.send("PUT", e.demoPath("/snapshots/"+ids[0]), e.demo, map[string]any{"snapshot": map[string]any{}}).fault(t, 400, "badRequest"); msg != "Invalid input for field/attribute snapshot. Value: {}. {} does not have enough properties" {
		t.Errorf("empty update: %q", msg)
	}
	mp := e.demoPath("/snapshots/" + ids[0] + "/metadata")
	if got := e.send("POST", mp, e.demo, map[string]any{"metadata": map[string]string{"a": "1"}}).json(t, 200)["metadata"]; fmt.Sprint(got) != "map[a:1]" {
		t.Errorf("metadata %v", got)
	}
	if msg := e.send("GET", mp+"/b", e.demo, nil).fault(t, 404, "itemNotFound"); msg != "Snapshot "+ids[0]+" has no metadata with key b." {
		t.Errorf("missing key: %q", msg)
	}
	// ids[1] is creating (with a cell): refused.
	if msg := e.send("DELETE", e.demoPath("/snapshots/"+ids[1]), e.demo, nil).fault(t, 400, "badRequest"); msg != "Invalid snapshot: Snapshot status must be available or error and must not be part of a group." {
		t.Errorf("delete creating: %q", msg)
	}
	e.send("DELETE", e.demoPath("/snapshots/"+ids[0]), e.demo, nil).empty(t, 202)
	if target, a := e.lastAction(); target != cell1 || a != (wire.VolumeAction{VolumeID: vol, Action: wire.SnapshotDelete, SnapshotID: ids[0]}) {
		t.Errorf("delete sent %s %+v", target, a)
	}
	e.cellSays(nil, []wire.SnapshotState{{ID: ids[0], VolumeID: vol, Cell: cell1, Version: 2, Deleted: true}})
	e.send("GET", e.demoPath("/snapshots/"+ids[0]), e.demo, nil).fault(t, 404, "itemNotFound")
	// Admin actions.
	ap := e.adminPath("/snapshots/" + ids[1] + "/action")
	if msg := e.send("POST", e.demoPath("/snapshots/"+ids[1]+"/action"), e.demo, map[string]any{"os-reset_status": map[string]any{"status": "error"}}).fault(t, 403, "forbidden"); msg != "Policy doesn't allow volume_extension:snapshot_admin_actions:reset_status to be performed." {
		t.Errorf("member reset: %q", msg)
	}
	if msg := e.send("POST", ap, e.admin, map[string]any{"os-reset_status": map[string]any{"status": "bogus"}}).fault(t, 400, "badRequest"); msg != "Must specify a valid status" {
		t.Errorf("bad status: %q", msg)
	}
	e.send("POST", ap, e.admin, map[string]any{"os-reset_status": map[string]any{"status": "error"}}).empty(t, 202)
	if _, a := e.lastAction(); a != (wire.VolumeAction{VolumeID: vol, Action: wire.VolumeResetStatus, SnapshotID: ids[1], Status: "error"}) {
		t.Errorf("reset sent %+v", a)
	}
	e.send("POST", e.adminPath("/snapshots/"+ids[2]+"/action"), e.admin, map[string]any{"os-force_delete": map[string]any{}}).empty(t, 202)
	if _, a := e.lastAction(); a.Action != wire.SnapshotDelete || a.SnapshotID != ids[2] {
		t.Errorf("force delete sent %+v", a)
	}
}

// TestSnapshotsWithGophercloud: create, get, list with gophercloud.
func TestSnapshotsWithGophercloud(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	ctx := context.Background()
	c := e.gc("demo", "pw-demo", "demo")
	vol := e.available(map[string]any{"size": 1})
	s, err := snapshots.Create(ctx, c, snapshots.CreateOpts{VolumeID: vol, Name: "gs"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if s.Status != "creating" || s.VolumeID != vol || s.Size != 1 || s.CreatedAt.IsZero() {
		t.Errorf("created %+v", s)
	}
	if got, err := snapshots.Get(ctx, c, s.ID).Extract(); err != nil || got.Name != "gs" {
		t.Errorf("get %+v %v", got, err)
	}
	pages, err := snapshots.List(c, snapshots.ListOpts{VolumeID: vol}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, err := snapshots.ExtractSnapshots(pages); err != nil || len(all) != 1 {
		t.Errorf("list %+v %v", all, err)
	}
}
