package compute_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// zoneOf is the server's OS-EXT-AZ:availability_zone.
func zoneOf(t *testing.T, tr *testtree.Tree, id string) string {
	t.Helper()
	var body struct {
		Server struct {
			Zone string `json:"OS-EXT-AZ:availability_zone"`
		} `json:"server"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil).JSON(t, &body)
	return body.Server.Zone
}

// waitZoneCells waits until the cells reporting zone to the API cell are
// exactly want.
func waitZoneCells(t *testing.T, tr *testtree.Tree, zone string, want ...string) {
	t.Helper()
	slices.Sort(want)
	testpoll.Eventually(t, wait, "the cells' reports name zone "+zone, func() (bool, string) {
		ns, err := cells.ListNeighbours(t.Context(), tr.API.DB)
		if err != nil {
			return false, err.Error()
		}
		var got []string
		for _, n := range ns {
			if n.Relation == cells.Child && n.Report != nil && slices.Contains(n.Report.AvailabilityZones, zone) {
				got = append(got, n.Path)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("reported by %v", got)
	})
}

// unshelveEvents are the events of the server's unshelve action of
// request rid, as an admin sees them.
func actionEvents(t *testing.T, tr *testtree.Tree, id, rid string) []map[string]any {
	t.Helper()
	var body struct {
		Action struct {
			Events []map[string]any `json:"events"`
		} `json:"instanceAction"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions/"+rid, admin, nil).JSON(t, &body)
	return body.Action.Events
}

// TestUnshelveIntoAZone (2.77): cell1's host002 is in az1, cell2's host001
// in az2; a server booted into az1 is shelved (offloaded at once).
// From 2.77 the unshelve body is null or {"availability_zone": ZONE}
// (Nova's schema: {} and other keys are 400s); a zone no cell has is
// Nova's 400; an ACTIVE server is the 409 of its state. Unshelved into
// nova, it boots on cell1's host001 and its zone is nova. Into az2, which
// only cell2 has, it stays SHELVED_OFFLOADED (it does not change cell, as
// in Nova's cells v2), its zone unchanged, the unshelve action's event in
// error with "No valid host". At 2.76 the zone is ignored (Nova's schema
// takes anything): it unshelves in its own zone.
func TestUnshelveIntoAZone(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 77)
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	ctx := ctxT(t)
	c1, c2 := tr.Cells[0].Config().Cell, tr.Cells[1].Config().Cell
	ag := adminAt(tr, "2.41")
	for zone, host := range map[string]string{"az1": c1 + "@cell1-host002", "az2": c2 + "@cell2-host001"} {
		a, err := aggregates.Create(ctx, ag, aggregates.CreateOpts{Name: zone, AvailabilityZone: zone}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := aggregates.AddHost(ctx, ag, a.ID, aggregates.AddHostOpts{Host: host}).Extract(); err != nil {
			t.Fatalf("add %s to %s: %v", host, zone, err)
		}
	}
	waitZoneCells(t, tr, "az1", c1)
	waitZoneCells(t, tr, "az2", c2)

	sc := tr.Compute(demo)
	sc.Microversion = mv
	id := create(t, tr, demo, map[string]any{"name": "mover", "flavorRef": "1", "imageRef": imageID, "availability_zone": "az1"})
	waitStatus(t, sc, id, "ACTIVE")
	if h := hostOf(t, tr, id); h != "cell1-host002" {
		t.Fatalf("booted into az1 on %q, want cell1-host002", h)
	}
	at := atVersion(mv)
	post := func(body string, hdr []string) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, body, hdr...)
	}
	faultHas(t, post(`{"unshelve": {"availability_zone": "nova"}}`, at), http.StatusConflict,
		"Cannot 'unshelve' instance "+id+" while it is in vm_state active")
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")

	for _, c := range []struct{ body, want string }{
		{`{"unshelve": {}}`, "'availability_zone' is a required property"},
		{`{"unshelve": {"availability_zone": "nova", "host": "x"}}`, "Additional properties are not allowed ('host' was unexpected)"},
		{`{"unshelve": {"availability_zone": 7}}`, "7 is not of type 'string'"},
		{`{"unshelve": {"availability_zone": " nova"}}`, "An invalid 'name' value was provided"},
		{`{"unshelve": "nova"}`, "is not of type 'object', 'null'"},
		{`{"unshelve": {"availability_zone": "az-none"}}`, "The requested availability zone is not available"},
	} {
		faultHas(t, post(c.body, at), http.StatusBadRequest, c.want)
	}
	if s, err := servers.Get(ctx, sc, id).Extract(); err != nil || s.Status != "SHELVED_OFFLOADED" || s.TaskState != "" {
		t.Fatalf("after the refused unshelves: %+v, %v", s, err)
	}

	// Into nova: cell1's other host.
	if err := servers.Unshelve(ctx, sc, id, servers.UnshelveOpts{AvailabilityZone: "nova"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "ACTIVE")
	if h, z := hostOf(t, tr, id), zoneOf(t, tr, id); h != "cell1-host001" || z != "nova" {
		t.Errorf("unshelved into nova on %q in zone %q, want cell1-host001 in nova", h, z)
	}

	// Into az2, which only cell2 has: no valid host in its cell.
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	r := post(`{"unshelve": {"availability_zone": "az2"}}`, at)
	if r.Status != http.StatusAccepted {
		t.Fatalf("unshelve into az2: %s", r)
	}
	rid := r.Header.Get("X-Openstack-Request-Id")
	testpoll.Eventually(t, wait, "the unshelve into az2 to fail", func() (bool, string) {
		evs := actionEvents(t, tr, id, rid)
		for _, e := range evs {
			if e["result"] == "Error" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("events %v", evs)
	})
	// The cleared task state comes up after the event (an instance_update).
	testpoll.Eventually(t, wait, "the server offloaded with no task", func() (bool, string) {
		s, err := servers.Get(ctx, sc, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		return s.Status == "SHELVED_OFFLOADED" && s.TaskState == "", s.Status + "/" + s.TaskState
	})
	if z, h := zoneOf(t, tr, id), hostOf(t, tr, id); z != "nova" || h != "" {
		t.Errorf("after no valid host: zone %q, host %q; want nova and none", z, h)
	}
	if evs := actionEvents(t, tr, id, rid); len(evs) != 1 || !strings.Contains(fmt.Sprint(evs[0]["traceback"]), "No valid host") {
		t.Errorf("unshelve events %v, want one in error with No valid host", evs)
	}
	// 2.84: an admin sees the failed event's message as its details.
	if servesMicroversion(84) {
		var body struct {
			Action struct {
				Events []map[string]any `json:"events"`
			} `json:"instanceAction"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id+"/os-instance-actions/"+rid, admin, nil, atVersion("2.84")...).JSON(t, &body)
		if evs := body.Action.Events; len(evs) != 1 || evs[0]["details"] != evs[0]["traceback"] ||
			!strings.Contains(fmt.Sprint(evs[0]["details"]), "No valid host") {
			t.Errorf("unshelve events at 2.84 %v, want details with No valid host", evs)
		}
	}

	// At 2.76 the zone is not looked at: its own zone, nova.
	r = post(`{"unshelve": {"availability_zone": "az2"}}`, atVersion("2.76"))
	if r.Status != http.StatusAccepted {
		t.Fatalf("unshelve at 2.76: %s", r)
	}
	waitStatus(t, sc, id, "ACTIVE")
	if z := zoneOf(t, tr, id); z != "nova" {
		t.Errorf("unshelved at 2.76 in zone %q, want nova", z)
	}
}

// TestUnshelveZoneOfAShelvedServer (2.77): a server SHELVED on its host
// (never offloaded) cannot be given a zone: Nova's 409, and null still
// powers it on where it is.
func TestUnshelveZoneOfAShelvedServer(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 77)
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1, ShelvedOffloadTime: -1})
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "stay", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED")
	faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, `{"unshelve": {"availability_zone": "nova"}}`, atVersion(mv)...),
		http.StatusConflict, `Specifying an availability zone or a host when unshelving server "`+id+`" with status "shelved" is not supported. The server status must be SHELVED_OFFLOADED.`)
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, `{"unshelve": null}`, atVersion(mv)...); r.Status != http.StatusAccepted {
		t.Fatalf("unshelve null at %s: %s", mv, r)
	}
	waitStatus(t, sc, id, "ACTIVE")
}
