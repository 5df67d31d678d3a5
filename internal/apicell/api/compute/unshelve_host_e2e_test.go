package compute_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestUnshelveToAHost (2.91): two cells of two hosts, cell1's host002 in
// az1, the others in nova. An admin's server built on cell1's host001
// with a requested destination (2.74) is pinned to no zone. Shelved
// (offloaded at once), it is unshelved as Nova's compute API does:
//   - the body's schema (unshelve_v291), and at 2.90 the 2.77 schema,
//     which has no host: 400s;
//   - a member naming a host: the unshelve_to_host rule's 403; a host
//     that does not exist: 400; a zone no cell has: 400; a host outside
//     the zone given, or outside the zone the server is pinned to: 409 —
//     each leaving the server SHELVED_OFFLOADED with no task;
//   - to cell1's host002 (in az1, while the server is pinned to none): it
//     ends ACTIVE there, its zone az1;
//   - with availability_zone null and a host: unpinned, ACTIVE on that
//     host; with a zone alone: pinned to it, after which a host outside
//     it is a 409 until null unpins it again;
//   - to a host of the other cell: 202, then Nova's NoValidHost (the
//     server never changes cell): it stays SHELVED_OFFLOADED, the action's
//     event in error.
//
// A refused unshelve sends nothing to the cell (it is refused inside the
// transaction that would record the action and its message).
func TestUnshelveToAHost(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 91)
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	ctx := ctxT(t)
	c1, c2 := tr.Cells[0].Config().Cell, tr.Cells[1].Config().Cell
	h1, h2, other := c1+"@cell1-host001", c1+"@cell1-host002", c2+"@cell2-host001"
	ag := adminAt(tr, "2.41")
	a, err := aggregates.Create(ctx, ag, aggregates.CreateOpts{Name: "az1", AvailabilityZone: "az1"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aggregates.AddHost(ctx, ag, a.ID, aggregates.AddHostOpts{Host: h2}).Extract(); err != nil {
		t.Fatal(err)
	}
	waitZoneCells(t, tr, "az1", c1)

	sc := adminAt(tr, mv)
	// gophercloud's create has no host (2.74): raw.
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", admin, map[string]any{"server": map[string]any{"name": "mover", "flavorRef": "1",
		"imageRef": imageID, "networks": "auto", "host": h1}}, atVersion("2.74")...)
	if r.Status != http.StatusAccepted {
		t.Fatalf("create on %s: %s", h1, r)
	}
	var created struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
	}
	r.JSON(t, &created)
	id := created.Server.ID
	waitStatus(t, sc, id, "ACTIVE")
	// A member's server, for the rule.
	mine := create(t, tr, demo, map[string]any{"name": "mine", "flavorRef": "1", "imageRef": imageID})
	msc := tr.Compute(demo)
	waitStatus(t, msc, mine, "ACTIVE")
	for _, x := range []struct {
		id  string
		tok string
	}{{id, admin}, {mine, demo}} {
		if err := servers.Shelve(ctx, tr.Compute(x.tok), x.id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	waitStatus(t, msc, mine, "SHELVED_OFFLOADED")

	unshelve := func(server, token, ver, body string) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+server+"/action", token, `{"unshelve": `+body+`}`, atVersion(ver)...)
	}
	offloaded := func(server string) {
		t.Helper()
		got, err := servers.Get(ctx, sc, server).Extract()
		if err != nil || got.Status != "SHELVED_OFFLOADED" || got.TaskState != "" {
			t.Fatalf("after refused unshelves: %+v, %v", got, err)
		}
	}
	for _, c := range []struct {
		name, server, token, ver, body string
		status                         int
		want                           string
	}{
		{"host at 2.90", id, admin, "2.90", `{"availability_zone": "nova", "host": "` + h1 + `"}`, 400,
			"Invalid input for field/attribute unshelve. Value: {'availability_zone': 'nova', 'host': '" + h1 + "'}. Additional properties are not allowed ('host' was unexpected)"},
		{"host not a string", id, admin, mv, `{"host": 7}`, 400, "Invalid input for field/attribute host. Value: 7. 7 is not of type 'string'"},
		{"zone not a string", id, admin, mv, `{"availability_zone": 7}`, 400,
			"Invalid input for field/attribute availability_zone. Value: 7. 7 is not of type 'string', 'null'"},
		{"another key", id, admin, mv, `{"foo": "x"}`, 400,
			"Invalid input for field/attribute unshelve. Value: {'foo': 'x'}. Additional properties are not allowed ('foo' was unexpected)"},
		{"not an object", id, admin, mv, `"x"`, 400, "Invalid input for field/attribute unshelve. Value: x. 'x' is not of type 'object', 'null'"},
		{"a member names a host", mine, demo, mv, `{"host": "` + h1 + `"}`, 403,
			"Policy doesn't allow os_compute_api:os-shelve:unshelve_to_host to be performed."},
		{"no such host", id, admin, mv, `{"host": "no-such-host"}`, 400, "Compute host no-such-host could not be found."},
		{"no such zone", id, admin, mv, `{"availability_zone": "az9", "host": "` + h1 + `"}`, 400, "The requested availability zone is not available"},
		{"host outside the zone given", id, admin, mv, `{"availability_zone": "nova", "host": "` + h2 + `"}`, 409,
			`Host "` + h2 + `" is not in the availability zone "nova".`},
	} {
		r := unshelve(c.server, c.token, c.ver, c.body)
		if msg := testtree.Fault(t, r, c.status); msg != c.want {
			t.Errorf("%s: %q, want %q", c.name, msg, c.want)
		}
	}
	offloaded(id)
	offloaded(mine)

	// Pinned to no zone: to host002 in az1.
	zoneHost := func(wantHost, wantZone string) {
		t.Helper()
		waitStatus(t, sc, id, "ACTIVE")
		if h, z := hostOf(t, tr, id), zoneOf(t, tr, id); h != wantHost || z != wantZone {
			t.Errorf("unshelved on %q in %q, want %q in %q", h, z, wantHost, wantZone)
		}
	}
	shelve := func() {
		t.Helper()
		if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, sc, id, "SHELVED_OFFLOADED")
	}
	accepted := func(body string) *testtree.Response {
		t.Helper()
		r := unshelve(id, admin, mv, body)
		if r.Status != http.StatusAccepted {
			t.Fatalf("unshelve %s: %s", body, r)
		}
		return r
	}
	accepted(`{"host": "` + h2 + `"}`)
	zoneHost("cell1-host002", "az1")

	// Unpinned with a host; then pinned to az1 by a zone alone.
	shelve()
	accepted(`{"availability_zone": null, "host": "` + h1 + `"}`)
	zoneHost("cell1-host001", "nova")
	shelve()
	accepted(`{"availability_zone": "az1"}`)
	zoneHost("cell1-host002", "az1")
	shelve()
	if msg := testtree.Fault(t, unshelve(id, admin, mv, `{"host": "`+h1+`"}`), 409); msg != `Host "`+h1+`" is not in the availability zone "az1".` {
		t.Errorf("host outside the pinned zone: %q", msg)
	}
	offloaded(id)
	accepted(`{"availability_zone": null, "host": "` + h1 + `"}`)
	zoneHost("cell1-host001", "nova")

	// A host of the other cell: no valid host in the server's cell.
	shelve()
	rid := accepted(`{"host": "` + other + `"}`).Header.Get("X-Openstack-Request-Id")
	testpoll.Eventually(t, wait, "the unshelve to another cell's host to fail", func() (bool, string) {
		evs := actionEvents(t, tr, id, rid)
		for _, e := range evs {
			if e["result"] == "Error" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("events %v", evs)
	})
	testpoll.Eventually(t, wait, "the server offloaded with no task", func() (bool, string) {
		s, err := servers.Get(ctx, sc, id).Extract()
		if err != nil {
			return false, err.Error()
		}
		return s.Status == "SHELVED_OFFLOADED" && s.TaskState == "", s.Status + "/" + s.TaskState
	})
	if evs := actionEvents(t, tr, id, rid); len(evs) != 1 || !strings.Contains(fmt.Sprint(evs[0]["traceback"]), "No valid host") {
		t.Errorf("unshelve events %v, want one in error with No valid host", evs)
	}

	// {} is a plain unshelve at 2.91 (Nova's schema requires nothing).
	accepted(`{}`)
	waitStatus(t, sc, id, "ACTIVE")
}

// TestUnshelveHostOfAShelvedServer (2.91): a server SHELVED on its host
// (never offloaded) cannot be given a host or have its zone unpinned:
// Nova's 409, nothing sent.
func TestUnshelveHostOfAShelvedServer(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 91)
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 1, ShelvedOffloadTime: -1})
	ctx := ctxT(t)
	sc := adminAt(tr, mv)
	id := create(t, tr, admin, map[string]any{"name": "kept", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")
	host := tr.Cells[0].Config().Cell + "@" + hostOf(t, tr, id)
	if err := servers.Shelve(ctx, sc, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, id, "SHELVED")
	want := `Specifying an availability zone or a host when unshelving server "` + id + `" with status "shelved" is not supported. ` +
		"The server status must be SHELVED_OFFLOADED."
	for _, body := range []string{`{"host": "` + host + `"}`, `{"availability_zone": null}`} {
		r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", admin, `{"unshelve": `+body+`}`, atVersion(mv)...)
		if msg := testtree.Fault(t, r, http.StatusConflict); msg != want {
			t.Errorf("%s: %q, want %q", body, msg, want)
		}
	}
	if s, err := servers.Get(ctx, sc, id).Extract(); err != nil || s.Status != "SHELVED" || s.TaskState != "" {
		t.Errorf("after the refusals: %+v, %v", s, err)
	}
}
