package compute_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// sgNoValidHost is Nova's fault for a build no host can take.
const sgNoValidHost = "No valid host was found. There are not enough hosts available."

// sgCreate creates a server group with gophercloud.
func sgCreate(t *testing.T, sc *gophercloud.ServiceClient, name, policy string) *servergroups.ServerGroup {
	t.Helper()
	g, err := servergroups.Create(context.Background(), sc, servergroups.CreateOpts{Name: name, Policies: []string{policy}}).Extract()
	if err != nil {
		t.Fatalf("create server group %s (%s): %v", name, policy, err)
	}
	return g
}

// sgBoot boots count servers into group and returns their ids.
func sgBoot(t *testing.T, tr *testtree.Tree, token, group string, count int) []string {
	t.Helper()
	server := map[string]any{"name": "sg", "flavorRef": "1", "imageRef": imageID}
	if count == 1 {
		return []string{sgBootOne(t, tr, token, server, map[string]any{"group": group})}
	}
	server["min_count"] = count
	server["return_reservation_id"] = true
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{"server": server, "os:scheduler_hints": map[string]any{"group": group}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("boot %d into group %s: %s", count, group, r)
	}
	var res struct {
		ReservationID string `json:"reservation_id"`
	}
	r.JSON(t, &res)
	// An admin sees the reservation ids from 2.3.
	r = tr.Do(t, http.MethodGet, "/v2.1/servers/detail?all_tenants=1", admin, nil, atVersion("2.3")...)
	var out struct {
		Servers []map[string]any `json:"servers"`
	}
	r.JSON(t, &out)
	var ids []string
	for _, s := range out.Servers {
		if s["OS-EXT-SRV-ATTR:reservation_id"] == res.ReservationID {
			ids = append(ids, s["id"].(string))
		}
	}
	if len(ids) != count {
		t.Fatalf("boot into group %s: found %d servers of reservation %s, want %d", group, len(ids), res.ReservationID, count)
	}
	return ids
}

// sgBootOne boots one server with scheduler hints and returns its id.
func sgBootOne(t *testing.T, tr *testtree.Tree, token string, server, hints map[string]any) string {
	t.Helper()
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", token, map[string]any{"server": server, "os:scheduler_hints": hints})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create %v with hints %v: %s", server, hints, r)
	}
	var out struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
	}
	r.JSON(t, &out)
	return out.Server.ID
}

// sgHostOf waits until a server is ACTIVE and returns its cell and host.
func sgHostOf(t *testing.T, tr *testtree.Tree, id string) (cell, host string) {
	t.Helper()
	waitStatus(t, tr.Compute(admin), id, "ACTIVE")
	var body struct {
		Server struct {
			Host string `json:"OS-EXT-SRV-ATTR:host"`
		} `json:"server"`
	}
	tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil).JSON(t, &body)
	// Hosts are named after their cell: cell2-host001.
	return "api!" + strings.SplitN(body.Server.Host, "-", 2)[0], body.Server.Host
}

// sgHostsOf is sgHostOf's host for each of ids.
func sgHostsOf(t *testing.T, tr *testtree.Tree, ids []string) []string {
	t.Helper()
	var out []string
	for _, id := range ids {
		_, h := sgHostOf(t, tr, id)
		out = append(out, h)
	}
	return out
}

// sgDistinct reports whether s has no value twice.
func sgDistinct(s []string) bool {
	c := slices.Clone(s)
	slices.Sort(c)
	return len(slices.Compact(c)) == len(s)
}

// sgMembers are a group's members as gophercloud shows them, sorted.
func sgMembers(t *testing.T, sc *gophercloud.ServiceClient, id string) []string {
	t.Helper()
	g, err := servergroups.Get(context.Background(), sc, id).Extract()
	if err != nil {
		t.Fatalf("get server group %s: %v", id, err)
	}
	m := slices.Clone(g.Members)
	slices.Sort(m)
	return m
}

// sgSorted is a sorted copy of s.
func sgSorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}

// TestServerGroups: create, show, list and delete server groups with
// gophercloud; anti-affinity members on distinct hosts until there are no
// more hosts (then ERROR with Nova's fault), affinity members on one host;
// bad input is a 4xx and creates nothing.
func TestServerGroups(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 3})
	ctx := ctxT(t)
	sc := tr.Compute(demo)

	anti := sgCreate(t, sc, "spread", "anti-affinity")
	aff := sgCreate(t, sc, "together", "affinity")
	if anti.Name != "spread" || !slices.Equal(anti.Policies, []string{"anti-affinity"}) || anti.Members == nil || len(anti.Members) != 0 ||
		anti.Metadata == nil || len(anti.Metadata) != 0 || anti.ID == "" || anti.ProjectID != "" {
		t.Errorf("created group %+v, want name, one policy, no members, empty metadata and (at 2.1) no project", anti)
	}
	got, err := servergroups.Get(ctx, sc, aff.ID).Extract()
	if err != nil || got.ID != aff.ID || got.Name != "together" || !slices.Equal(got.Policies, []string{"affinity"}) {
		t.Errorf("show = %+v, %v", got, err)
	}
	// 2.13 shows the project and user.
	r := tr.Do(t, http.MethodGet, "/v2.1/os-server-groups/"+aff.ID, demo, nil, atVersion("2.13")...)
	if sg, _ := r.Map(t)["server_group"].(map[string]any); sg["project_id"] != "demo" || sg["user_id"] != "demo" {
		t.Errorf("show at 2.13: %s", r.Body)
	}

	// Anti-affinity: three members, on three hosts, booted one by one
	// without waiting.
	var spread []string
	for range 3 {
		spread = append(spread, sgBoot(t, tr, demo, anti.ID, 1)...)
	}
	if hs := sgHostsOf(t, tr, spread); !sgDistinct(hs) {
		t.Errorf("anti-affinity members on hosts %v, want three distinct", hs)
	}
	if m := sgMembers(t, sc, anti.ID); !slices.Equal(m, sgSorted(spread)) {
		t.Errorf("anti-affinity group members %v, want %v", m, sgSorted(spread))
	}
	// A fourth finds no host.
	extra := sgBoot(t, tr, demo, anti.ID, 1)[0]
	s := waitStatus(t, sc, extra, "ERROR")
	if s.Fault.Message != sgNoValidHost || s.Fault.Code != 500 {
		t.Errorf("fourth anti-affinity member's fault %+v, want %q", s.Fault, sgNoValidHost)
	}

	// Affinity: a multi-create of two, then one more, all on one host.
	together := sgBoot(t, tr, demo, aff.ID, 2)
	together = append(together, sgBoot(t, tr, demo, aff.ID, 1)...)
	if hs := sgHostsOf(t, tr, together); hs[0] != hs[1] || hs[1] != hs[2] {
		t.Errorf("affinity members on hosts %v, want one host", hs)
	}
	if m := sgMembers(t, sc, aff.ID); !slices.Equal(m, sgSorted(together)) {
		t.Errorf("affinity group members %v, want %v", m, sgSorted(together))
	}

	// Lists: a project sees its own groups; an admin all with all_projects.
	oth := sgCreate(t, tr.Compute(other), "theirs", "affinity")
	listed := func(token, query string) []string {
		t.Helper()
		r := tr.Do(t, http.MethodGet, "/v2.1/os-server-groups"+query, token, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list %s: %s", query, r)
		}
		var out struct {
			Groups []struct {
				ID string `json:"id"`
			} `json:"server_groups"`
		}
		r.JSON(t, &out)
		ids := []string{}
		for _, g := range out.Groups {
			ids = append(ids, g.ID)
		}
		return ids
	}
	for _, c := range []struct {
		token, query string
		want         []string
	}{
		{demo, "", []string{anti.ID, aff.ID}},
		{demo, "?all_projects=1", []string{anti.ID, aff.ID}},
		{other, "", []string{oth.ID}},
		{admin, "", []string{}},
		{admin, "?all_projects", []string{anti.ID, aff.ID, oth.ID}},
		{admin, "?all_projects=1&limit=1&offset=1", []string{aff.ID}},
		{admin, "?all_projects=1&limit=0", []string{anti.ID, aff.ID, oth.ID}},
		{admin, "?all_projects=1&offset=3", []string{}},
	} {
		if got := listed(c.token, c.query); !slices.Equal(got, c.want) {
			t.Errorf("list as %s %q = %v, want %v", c.token, c.query, got, c.want)
		}
	}
	pages, err := servergroups.List(sc, servergroups.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, err := servergroups.ExtractServerGroups(pages); err != nil || len(all) != 2 {
		t.Errorf("gophercloud list = %d groups, %v; want 2", len(all), err)
	}

	// Another project's group is not there for a member, to show, delete
	// or boot into.
	if _, err := servergroups.Get(ctx, sc, oth.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("show another project's group: %v, want 404", err)
	}
	faultHas(t, tr.Do(t, http.MethodDelete, "/v2.1/os-server-groups/"+oth.ID, demo, nil), http.StatusNotFound, "Instance group "+oth.ID+" could not be found.")
	before := len(listAll(t, tr, admin, "?all_tenants=1"))
	bootBad := func(hints any, status int, want string) {
		t.Helper()
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{
			"server":             map[string]any{"name": "bad", "flavorRef": "1", "imageRef": imageID},
			"os:scheduler_hints": hints,
		})
		faultHas(t, r, status, want)
	}
	bootBad(map[string]any{"group": oth.ID}, http.StatusBadRequest, "Instance group "+oth.ID+" could not be found.")
	bootBad(map[string]any{"group": "nonsense"}, http.StatusBadRequest, "Invalid input for field/attribute group")
	bootBad(map[string]any{"group": []string{anti.ID, aff.ID}}, http.StatusBadRequest, "Invalid input for field/attribute group")
	bootBad(map[string]any{"group": "00000000-0000-0000-0000-000000000000"}, http.StatusBadRequest,
		"Instance group 00000000-0000-0000-0000-000000000000 could not be found.")

	// Bad creates.
	for _, c := range []struct {
		body    any
		version string
		want    string
	}{
		{map[string]any{"server_group": map[string]any{"name": "x"}}, "", "'policies' is a required property"},
		{map[string]any{"server_group": map[string]any{"policies": []string{"affinity"}}}, "", "'name' is a required property"},
		{map[string]any{"server_group": map[string]any{"name": "x", "policies": []string{"foo"}}}, "",
			"Invalid input for field/attribute 0. Value: foo. 'foo' is not one of ['anti-affinity', 'affinity']"},
		{map[string]any{"server_group": map[string]any{"name": "x", "policies": []string{"affinity", "anti-affinity"}}}, "", "is too long"},
		{map[string]any{"server_group": map[string]any{"name": "x", "policies": []string{"affinity", "affinity"}}}, "", "has non-unique elements"},
		{map[string]any{"server_group": map[string]any{"name": "x", "policies": []string{}}}, "", "[] should be non-empty"},
		{map[string]any{"server_group": map[string]any{"name": "x", "policies": "affinity"}}, "", "is not of type 'array'"},
		{map[string]any{"server_group": map[string]any{"name": "x", "policies": []string{"soft-affinity"}}}, "", "is not one of"},
		{map[string]any{"server_group": map[string]any{"name": "", "policies": []string{"affinity"}}}, "", "Invalid input for field/attribute name"},
		{map[string]any{"server_group": map[string]any{"name": " x", "policies": []string{"affinity"}}}, "", "An invalid 'name' value was provided"},
		{map[string]any{"server_group": map[string]any{"name": "x", "policy": "affinity", "policies": []string{"affinity"}}}, "",
			"Additional properties are not allowed ('policy' was unexpected)"},
		{map[string]any{"server_group": map[string]any{"name": "x", "policies": []string{"affinity"}}, "extra": 1}, "", "Additional properties are not allowed"},
		{map[string]any{"servergroup": map[string]any{"name": "x", "policies": []string{"affinity"}}}, "", "'server_group' is a required property"},
		{"[]", "", "is not of type 'object'"},
	} {
		var h []string
		if c.version != "" {
			h = atVersion(c.version)
		}
		faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/os-server-groups", demo, c.body, h...), http.StatusBadRequest, c.want)
	}
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/os-server-groups?limit=-1", demo, nil), http.StatusBadRequest, "Invalid input for query parameters limit")
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/os-server-groups?offset=x", demo, nil), http.StatusBadRequest, "Invalid input for query parameters offset")
	if got := listed(demo, ""); len(got) != 2 {
		t.Errorf("bad creates made groups: %v", got)
	}
	if after := len(listAll(t, tr, admin, "?all_tenants=1")); after != before {
		t.Errorf("boots with bad groups made servers: %d before, %d after", before, after)
	}

	// The soft policies come with 2.15.
	r = tr.Do(t, http.MethodPost, "/v2.1/os-server-groups", demo,
		map[string]any{"server_group": map[string]any{"name": "soft", "policies": []string{"soft-anti-affinity"}}}, atVersion("2.15")...)
	if r.Status != http.StatusOK {
		t.Fatalf("soft-anti-affinity at 2.15: %s", r)
	}
	var soft struct {
		Group struct {
			ID       string   `json:"id"`
			Policies []string `json:"policies"`
		} `json:"server_group"`
	}
	r.JSON(t, &soft)
	if !slices.Equal(soft.Group.Policies, []string{"soft-anti-affinity"}) {
		t.Errorf("soft group %s", r.Body)
	}
	softMembers := sgBoot(t, tr, demo, soft.Group.ID, 2)
	for _, id := range softMembers {
		sgHostOf(t, tr, id)
	}

	// A deleted member is no member (one in ERROR still is); a deleted
	// group is gone.
	deleteAll(t, tr, demo, spread[:1])
	want := sgSorted(append(slices.Clone(spread[1:]), extra))
	if m := sgMembers(t, sc, anti.ID); !slices.Equal(m, want) {
		t.Errorf("members after a member's delete %v, want %v", m, want)
	}
	if err := servergroups.Delete(ctx, sc, anti.ID).ExtractErr(); err != nil {
		t.Fatalf("delete group: %v", err)
	}
	if _, err := servergroups.Get(ctx, sc, anti.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("show a deleted group: %v, want 404", err)
	}
	if err := servergroups.Delete(ctx, sc, anti.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("delete a deleted group: %v, want 404", err)
	}
	bootBad(map[string]any{"group": anti.ID}, http.StatusBadRequest, "Instance group "+anti.ID+" could not be found.")
	// Its servers stay.
	waitStatus(t, sc, spread[1], "ACTIVE")
	// gophercloud's own boot with the hint.
	srv, err := servers.Create(ctx, sc, servers.CreateOpts{Name: "gc", FlavorRef: "1", ImageRef: imageID},
		servers.SchedulerHintOpts{Group: aff.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, h := sgHostOf(t, tr, srv.ID); h != sgHostsOf(t, tr, together[:1])[0] {
		t.Errorf("gophercloud-booted affinity member on %s, want the group's host", h)
	}
}

// TestServerGroupsAcrossCells: anti-affinity members may use the hosts of
// every cell (a cell that runs out hands the rest back and another cell
// takes them); affinity members follow the first into its cell, even when
// the cell scheduler prefers another.
func TestServerGroupsAcrossCells(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	sc := tr.Compute(demo)

	anti := sgCreate(t, sc, "spread", "anti-affinity")
	spread := sgBoot(t, tr, demo, anti.ID, 4)
	hs := sgHostsOf(t, tr, spread)
	if !sgDistinct(hs) {
		t.Errorf("four anti-affinity members over two cells of two hosts on %v, want four distinct hosts", hs)
	}
	extra := sgBoot(t, tr, demo, anti.ID, 1)[0]
	if s := waitStatus(t, sc, extra, "ERROR"); s.Fault.Message != sgNoValidHost {
		t.Errorf("fifth anti-affinity member's fault %+v, want %q", s.Fault, sgNoValidHost)
	}

	// The first affinity member goes where an admin sends it: to the cell
	// the cell scheduler ranks last (it ranks cell1 first on a tie, and
	// cell2 now has less room); the others must follow it there.
	aff := sgCreate(t, sc, "together", "affinity")
	first := sgBootOne(t, tr, admin, map[string]any{"name": "first", "flavorRef": "1", "imageRef": imageID},
		map[string]any{"group": aff.ID, "target_cell": "api!cell2"})
	cell, host := sgHostOf(t, tr, first)
	if cell != "api!cell2" {
		t.Fatalf("the admin's target_cell api!cell2 put the first member in %s", cell)
	}
	for range 3 {
		id := sgBoot(t, tr, demo, aff.ID, 1)[0]
		if c, h := sgHostOf(t, tr, id); c != cell || h != host {
			t.Errorf("affinity member in %s on %s, want %s on %s", c, h, cell, host)
		}
	}
}

// TestServerGroupRules (2.64): a group has one policy and its rules;
// anti-affinity with max_server_per_host 2 puts at most two members on a
// host, and a member that does not fit goes to ERROR; rules are refused
// for other policies, and the old form is refused from 2.64.
func TestServerGroupRules(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	sc := tr.Compute(demo)
	sc.Microversion = "2.64"
	two := 2
	g, err := servergroups.Create(context.Background(), sc, servergroups.CreateOpts{Name: "pairs", Policy: "anti-affinity",
		Rules: &servergroups.Rules{MaxServerPerHost: two}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if g.Policy == nil || *g.Policy != "anti-affinity" || g.Rules == nil || g.Rules.MaxServerPerHost != 2 || len(g.Policies) != 0 {
		t.Fatalf("created group: %+v", g)
	}
	r := tr.Do(t, http.MethodGet, "/v2.1/os-server-groups/"+g.ID, demo, nil, "X-OpenStack-Nova-API-Version", "2.63")
	if !strings.Contains(string(r.Body), `"policies":["anti-affinity"]`) || strings.Contains(string(r.Body), `"rules"`) {
		t.Errorf("the group before 2.64: %s", r.Body)
	}
	hosts := map[string]int{}
	for range 4 {
		_, h := sgHostOf(t, tr, sgBoot(t, tr, demo, g.ID, 1)[0])
		hosts[h]++
	}
	if len(hosts) != 2 || hosts["cell1-host001"] != 2 || hosts["cell1-host002"] != 2 {
		t.Errorf("4 members with max_server_per_host 2 on 2 hosts: %v", hosts)
	}
	fifth := sgBoot(t, tr, demo, g.ID, 1)[0]
	waitStatus(t, tr.Compute(demo), fifth, "ERROR")

	for _, c := range []struct {
		body map[string]any
		msg  string
	}{
		{map[string]any{"name": "x", "policy": "affinity", "rules": map[string]any{"max_server_per_host": 2}}, "Only anti-affinity policy supports rules."},
		{map[string]any{"name": "x", "policies": []string{"affinity"}}, "'policy' is a required property"},
		{map[string]any{"name": "x", "policy": "affinity", "policies": []string{"affinity"}}, "('policies' was unexpected)"},
		{map[string]any{"name": "x", "policy": "nope"}, "Invalid input for field/attribute policy. Value: nope. 'nope' is not one of ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']"},
		{map[string]any{"name": "x", "policy": "anti-affinity", "rules": map[string]any{"foo": 1}}, "('foo' was unexpected)"},
		{map[string]any{"name": "x", "policy": "anti-affinity", "rules": map[string]any{"max_server_per_host": 0}}, "0 is less than the minimum of 1"},
		{map[string]any{"name": "x", "policy": "anti-affinity", "rules": map[string]any{"max_server_per_host": "abc"}}, "'abc' does not match '^[0-9]*$'"},
	} {
		r := tr.Do(t, http.MethodPost, "/v2.1/os-server-groups", demo, map[string]any{"server_group": c.body}, "X-OpenStack-Nova-API-Version", "2.64")
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("create %v: %d %s, want 400 %q", c.body, r.Status, r.Body, c.msg)
		}
	}
}
