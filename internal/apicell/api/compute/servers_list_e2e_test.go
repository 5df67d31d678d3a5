package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/tags"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// rawQuery is a list query given as is (for sort_key and sort_dir, which
// gophercloud's ListOpts lacks).
type rawQuery string

func (q rawQuery) ToServerListQuery() (string, error) { return string(q), nil }

// slNames lists with gophercloud, following every page, and returns the
// names in the order listed.
func slNames(t *testing.T, sc *gophercloud.ServiceClient, opts servers.ListOptsBuilder) []string {
	t.Helper()
	pages, err := servers.List(sc, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list %+v: %v", opts, err)
	}
	ss, err := servers.ExtractServers(pages)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, s := range ss {
		out = append(out, s.Name)
	}
	return out
}

// slSet is slNames sorted and joined, for filters where the order does not matter.
func slSet(t *testing.T, sc *gophercloud.ServiceClient, opts servers.ListOptsBuilder) string {
	t.Helper()
	n := slNames(t, sc, opts)
	slices.Sort(n)
	return strings.Join(n, " ")
}

// TestServerListFilters lists servers with Nova's filters, sorts and
// paging through gophercloud: name, status, image, flavor, reservation_id,
// ip, changes-since (with deleted servers), host and node (admins), tags
// (2.26), sort_key and sort_dir; and checks each bad query is a 400 (or
// 403) with the Compute API's fault.
func TestServerListFilters(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	adm := tr.Compute(admin)

	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "web", "flavorRef": "1", "imageRef": imageID, "min_count": 2, "max_count": 2, "return_reservation_id": true}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create web: %s", r)
	}
	var resv struct {
		ID string `json:"reservation_id"`
	}
	r.JSON(t, &resv)
	dbID := create(t, tr, demo, map[string]any{"name": "db", "flavorRef": "1", "imageRef": imageID})
	create(t, tr, other, map[string]any{"name": "web-theirs", "flavorRef": "1", "imageRef": imageID})
	ids := map[string]string{}
	testpoll.Eventually(t, wait, "demo's three servers ACTIVE", func() (bool, string) {
		pages, err := servers.List(sc, nil).AllPages(ctx)
		if err != nil {
			return false, err.Error()
		}
		ss, _ := servers.ExtractServers(pages)
		active := 0
		for _, s := range ss {
			ids[s.Name] = s.ID
			if s.Status == "ACTIVE" {
				active++
			}
		}
		return active == 3, fmt.Sprintf("%d of %d ACTIVE", active, len(ss))
	})
	if err := servers.Stop(ctx, sc, dbID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	dbSrv := waitStatus(t, sc, dbID, "SHUTOFF")
	dbAddr := addresses(t, dbSrv, "private")[0]

	t.Run("filters", func(t *testing.T) {
		for _, c := range []struct {
			opts servers.ListOptsBuilder
			want string
		}{
			{servers.ListOpts{}, "db web-1 web-2"},
			{servers.ListOpts{Name: "^web"}, "web-1 web-2"},
			{servers.ListOpts{Name: "b-"}, "web-1 web-2"},
			{servers.ListOpts{Name: "DB"}, ""},
			{servers.ListOpts{Name: "d.$"}, "db"},
			{servers.ListOpts{Status: "ACTIVE"}, "web-1 web-2"},
			{servers.ListOpts{Status: "shutoff"}, "db"},
			{rawQuery("?status=ACTIVE&status=SHUTOFF"), "db web-1 web-2"},
			{servers.ListOpts{Status: "REBOOT"}, ""},
			{servers.ListOpts{Image: imageID}, "db web-1 web-2"},
			{servers.ListOpts{Image: "00000000-0000-0000-0000-000000000000"}, ""},
			{servers.ListOpts{Flavor: "1"}, "db web-1 web-2"},
			{servers.ListOpts{Flavor: "2"}, ""},
			{servers.ListOpts{Flavor: "no-such-flavor"}, ""},
			{rawQuery("?reservation_id=" + resv.ID), "web-1 web-2"},
			{servers.ListOpts{IP: regexp.QuoteMeta(dbAddr) + "$"}, "db"},
			{servers.ListOpts{IP: "."}, "db web-1 web-2"},
			{servers.ListOpts{IP: "fe80"}, ""},
			// A member's host, node and other admin filters are dropped, as Nova does.
			{servers.ListOpts{Host: "no-such-host"}, "db web-1 web-2"},
			{rawQuery("?node=nothing&user_id=nobody&deleted=true"), "db web-1 web-2"},
			// Before 2.26 the tag filters are no filters.
			{servers.ListOpts{Tags: "nothing"}, "db web-1 web-2"},
		} {
			if got := slSet(t, sc, c.opts); got != c.want {
				t.Errorf("list %+v: %q, want %q", c.opts, got, c.want)
			}
		}
		// detail and index agree.
		pages, err := servers.ListSimple(sc, servers.ListOpts{Name: "^web"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ss, _ := servers.ExtractServers(pages); len(ss) != 2 {
			t.Errorf("index with name=^web: %d servers, want 2", len(ss))
		}
	})

	t.Run("admin filters", func(t *testing.T) {
		host := hostOf(t, tr, dbID)
		got := slNames(t, adm, servers.ListOpts{AllTenants: true, Host: host})
		if !slices.Contains(got, "db") {
			t.Errorf("host=%s lists %v, want db among them", host, got)
		}
		pages, _ := servers.List(adm, servers.ListOpts{AllTenants: true, Host: host}).AllPages(ctx)
		ss, _ := servers.ExtractServers(pages)
		for _, s := range ss {
			if s.Host != host {
				t.Errorf("host=%s lists %s on %s", host, s.Name, s.Host)
			}
		}
		as, err := servers.Get(ctx, adm, dbID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		node := as.HypervisorHostname
		if got := slSet(t, adm, rawQuery("?all_tenants=1&node="+url.QueryEscape("^"+regexp.QuoteMeta(node)+"$")+"&name=db")); got != "db" {
			t.Errorf("node=^%s$&name=db: %q, want db", node, got)
		}
		if got := slSet(t, adm, servers.ListOpts{AllTenants: true, Name: "web"}); got != "web-1 web-2 web-theirs" {
			t.Errorf("all tenants, name=web: %q", got)
		}
		if got := slSet(t, adm, servers.ListOpts{AllTenants: true, TenantID: "other"}); got != "web-theirs" {
			t.Errorf("all tenants, tenant_id=other: %q", got)
		}
		if got := slSet(t, adm, servers.ListOpts{AllTenants: true, UserID: "demo", Name: "web"}); got != "web-1 web-2" {
			t.Errorf("all tenants, user_id=demo: %q", got)
		}
		// An admin's filter names a column of a joined table: 400.
		testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers?all_tenants=1&metadata=x", admin, nil), http.StatusBadRequest)
		testtree.Fault(t, tr.Do(t, http.MethodGet, "/v2.1/servers?_secret=x", admin, nil), http.StatusBadRequest)
	})

	t.Run("sort and page", func(t *testing.T) {
		for _, c := range []struct{ q, want string }{
			{"?sort_key=display_name&sort_dir=asc", "db web-1 web-2"},
			{"?sort_key=display_name&sort_dir=desc", "web-2 web-1 db"},
			{"?sort_key=display_name", "web-2 web-1 db"},
			{"?sort_key=vm_state&sort_dir=asc&sort_key=display_name&sort_dir=desc", "web-2 web-1 db"},
			{"?sort_key=vm_state&sort_dir=desc&sort_key=display_name&sort_dir=asc", "db web-1 web-2"},
			// Keys Nova ignores are dropped with their direction.
			{"?sort_key=id&sort_dir=asc&sort_key=display_name&sort_dir=desc", "web-2 web-1 db"},
			{"?sort_key=display_name&sort_dir=asc&limit=1", "db web-1 web-2"},
			{"?sort_key=display_name&sort_dir=desc&name=web&limit=1", "web-2 web-1"},
			{"?sort_key=display_name&sort_dir=asc&ip=.&limit=2", "db web-1 web-2"},
		} {
			if got := strings.Join(slNames(t, sc, rawQuery(c.q)), " "); got != c.want {
				t.Errorf("list %s: %q, want %q", c.q, got, c.want)
			}
		}
		if got := strings.Join(slNames(t, adm, rawQuery("?all_tenants=1&sort_key=host&sort_key=display_name&sort_dir=asc")), " "); len(strings.Fields(got)) != 4 {
			t.Errorf("admin sorted by host: %q", got)
		}
	})

	t.Run("bad queries", func(t *testing.T) {
		for _, c := range []struct {
			token, q, ver string
			status        int
			want          string
		}{
			{demo, "?name=(", "2.1", 400, "Invalid input for query parameters name. Value: (. '(' is not a 'regex'"},
			{demo, "?name=", "2.1", 400, "is not a 'regex'"},
			{demo, "?ip=[", "2.1", 400, "query parameters ip"},
			{demo, "?changes-since=yesterday", "2.1", 400, "Invalid input for query parameters changes-since. Value: yesterday. 'yesterday' is not a 'date-time'"},
			{demo, "?sort_key=colour", "2.1", 400, "Invalid input for query parameters sort_key. Value: colour. 'colour' is not one of ['access_ip_v4'"},
			{demo, "?sort_dir=up", "2.1", 400, "Unknown sort direction, must be 'desc' or 'asc'"},
			{demo, "?sort_key=display_name&sort_dir=asc&sort_dir=desc", "2.1", 400, "Sort direction size exceeds sort key size"},
			{demo, "?sort_key=host", "2.1", 403, "Only administrators can sort servers by host"},
			{demo, "?status=BOGUS", "2.38", 400, "Invalid status value"},
			{demo, "?status=DELETED", "2.1", 403, "Only administrators may list deleted instances"},
			{demo, "?all_tenants=maybe", "2.1", 400, "Unrecognized value 'maybe'"},
			{demo, "?tags=(", "2.26", 400, "query parameters tags"},
			{demo, "?limit=x", "2.1", 400, "query parameters limit"},
			{demo, "?marker=00000000-0000-0000-0000-000000000000&sort_key=display_name", "2.1", 400, "marker [00000000-0000-0000-0000-000000000000] not found"},
		} {
			for _, p := range []string{"/v2.1/servers", "/v2.1/servers/detail"} {
				faultHas(t, tr.Do(t, http.MethodGet, p+c.q, c.token, nil, atVersion(c.ver)...), c.status, c.want)
			}
		}
		// Before 2.38 a status that matches nothing lists nothing.
		r := tr.Do(t, http.MethodGet, "/v2.1/servers?status=BOGUS", demo, nil, atVersion("2.37")...)
		if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"servers":[]`) {
			t.Errorf("status=BOGUS at 2.37: %s, want an empty list", r)
		}
		// gophercloud surfaces them as 400s.
		_, err := servers.List(sc, servers.ListOpts{Name: "("}).AllPages(ctx)
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Errorf("gophercloud list with a bad name regex: %v, want a 400", err)
		}
	})

	t.Run("tags", func(t *testing.T) {
		v := needMicroversion(t, 26)
		sc26 := tr.Compute(demo)
		sc26.Microversion = v
		for name, ts := range map[string][]string{"web-1": {"a", "b"}, "web-2": {"b"}, "db": {}} {
			if _, err := tags.ReplaceAll(ctx, sc26, ids[name], tags.ReplaceAllOpts{Tags: ts}).Extract(); err != nil {
				t.Fatalf("tag %s: %v", name, err)
			}
		}
		for _, c := range []struct {
			opts servers.ListOpts
			want string
		}{
			{servers.ListOpts{Tags: "a,b"}, "web-1"},
			{servers.ListOpts{Tags: "b"}, "web-1 web-2"},
			{servers.ListOpts{TagsAny: "a,b"}, "web-1 web-2"},
			{servers.ListOpts{NotTags: "a,b"}, "db web-2"},
			{servers.ListOpts{NotTagsAny: "a"}, "db web-2"},
			{servers.ListOpts{NotTagsAny: "a,b"}, "db"},
			{servers.ListOpts{Tags: "b", Name: "2$"}, "web-2"},
			{servers.ListOpts{Tags: "nothing"}, ""},
		} {
			if got := slSet(t, sc26, c.opts); got != c.want {
				t.Errorf("list at 2.26 %+v: %q, want %q", c.opts, got, c.want)
			}
		}
		// The detail view shows the tags.
		var out struct {
			Servers []struct {
				Name string   `json:"name"`
				Tags []string `json:"tags"`
			} `json:"servers"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/detail?sort_key=display_name&sort_dir=asc", demo, nil, atVersion(v)...).JSON(t, &out)
		if got := fmt.Sprint(out.Servers); got != "[{db []} {web-1 [a b]} {web-2 [b]}]" {
			t.Errorf("detail at 2.26: %s", got)
		}
	})

	t.Run("changes-since", func(t *testing.T) {
		time.Sleep(20 * time.Millisecond)
		since := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
		time.Sleep(20 * time.Millisecond)
		if got := slSet(t, sc, servers.ListOpts{ChangesSince: since}); got != "" {
			t.Fatalf("changes-since now: %q, want nothing", got)
		}
		if _, err := servers.Update(ctx, sc, ids["web-1"], servers.UpdateOpts{Name: "web-1b"}).Extract(); err != nil {
			t.Fatal(err)
		}
		deleteAll(t, tr, demo, []string{ids["web-2"]})
		if got := slSet(t, sc, servers.ListOpts{ChangesSince: since}); got != "web-1b web-2" {
			t.Errorf("changes-since: %q, want the renamed and the deleted server", got)
		}
		pages, err := servers.List(sc, servers.ListOpts{ChangesSince: since, Name: "web-2"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ss, _ := servers.ExtractServers(pages); len(ss) != 1 || ss[0].Status != "DELETED" {
			t.Errorf("the deleted server in changes-since: %+v, want it DELETED", ss)
		}
		// Without changes-since it is gone; an admin may list deleted servers.
		if got := slSet(t, sc, nil); got != "db web-1b" {
			t.Errorf("list: %q", got)
		}
		if got := slSet(t, adm, rawQuery("?all_tenants=1&status=DELETED")); got != "web-2" {
			t.Errorf("admin status=DELETED: %q, want web-2", got)
		}
		if got := slSet(t, adm, rawQuery("?all_tenants=1&deleted=true")); got != "web-2" {
			t.Errorf("admin deleted=true: %q, want web-2", got)
		}
		if got := slSet(t, sc, rawQuery("?changes-since="+url.QueryEscape(strings.TrimSuffix(since, "Z")+"+00:00"))); got != "web-1b web-2" {
			t.Errorf("changes-since with an offset: %q", got)
		}
	})
}

// TestChangesBefore: 2.66's changes-before bounds the server list, and is
// ignored before 2.66.
func TestChangesBefore(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{Cells: 1, HostsPerCell: 2})
	at := func(v string) []string { return []string{"X-OpenStack-Nova-API-Version", v} }
	id := create(t, tr, demo, map[string]any{"name": "mv69", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")

	past := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	future := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	count := func(query, ver string) int {
		var out struct {
			Servers []any `json:"servers"`
		}
		r := tr.Do(t, "GET", "/v2.1/servers?"+query, demo, nil, at(ver)...)
		if r.Status != http.StatusOK {
			t.Fatalf("GET /servers?%s at %s: %d %s", query, ver, r.Status, r.Body)
		}
		r.JSON(t, &out)
		return len(out.Servers)
	}
	if n := count("changes-before="+past, "2.66"); n != 0 {
		t.Errorf("servers changed before an hour ago: %d", n)
	}
	if n := count("changes-before="+future, "2.66"); n < 1 {
		t.Errorf("servers changed before an hour from now: %d", n)
	}
	if n := count("changes-before="+past, "2.65"); n < 1 {
		t.Errorf("changes-before is ignored before 2.66, yet %d servers", n)
	}
	for _, c := range []struct{ path, msg string }{
		{"/v2.1/servers?changes-since=" + future + "&changes-before=" + past, "The value of changes-since must be less than or equal to changes-before."},
		{"/v2.1/servers?changes-before=foo", "'foo' is not a 'date-time'"},
	} {
		r := tr.Do(t, "GET", c.path, demo, nil, at("2.66")...)
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("GET %s: %d %s, want 400 %q", c.path, r.Status, r.Body, c.msg)
		}
	}
}

// TestServerListFiltersV283: from 2.83 a member may filter by
// availability_zone, config_drive, key_name, created_at, launched_at,
// terminated_at, power_state, task_state, vm_state, progress and user_id
// (Nova's regular expressions on the column's text, or exact states and
// user); at 2.82 a member's are dropped, while an admin's work at both.
func TestServerListFiltersV283(t *testing.T) {
	t.Parallel()
	mv := needMicroversion(t, 83)
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	runID := create(t, tr, demo, map[string]any{"name": "run", "flavorRef": "1", "imageRef": imageID})
	offID := create(t, tr, demo, map[string]any{"name": "off", "flavorRef": "1", "imageRef": imageID})
	run := waitStatus(t, sc, runID, "ACTIVE")
	waitStatus(t, sc, offID, "ACTIVE")
	if err := servers.Stop(ctxT(t), sc, offID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, sc, offID, "SHUTOFF")
	year := run.Created.UTC().Format("2006")

	list := func(token, v, query string) string {
		t.Helper()
		var body struct {
			Servers []struct {
				Name string `json:"name"`
			} `json:"servers"`
		}
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/detail?"+query, token, nil, atVersion(v)...)
		if r.Status != http.StatusOK {
			t.Fatalf("list %s at %s: %s", query, v, r)
		}
		r.JSON(t, &body)
		names := []string{}
		for _, s := range body.Servers {
			names = append(names, s.Name)
		}
		slices.Sort(names)
		return strings.Join(names, " ")
	}
	for _, c := range []struct{ query, want string }{
		{"vm_state=stopped", "off"},
		{"vm_state=active", "run"},
		{"task_state=deleting", ""},
		{"power_state=%5E4%24", "off"},
		{"power_state=1", "run"},
		{"user_id=" + run.UserID, "off run"},
		{"user_id=nobody", ""},
		{"availability_zone=no-such-zone", ""},
		{"key_name=some-key", ""},
		{"config_drive=True", ""},
		{"created_at=%5E" + year, "off run"},
		{"created_at=%5E1999", ""},
		{"launched_at=%5E" + year, "off run"},
		{"launched_at=%5E1999", ""},
		{"terminated_at=.", ""},
		{"progress=%5E0%24", "off run"},
		{"progress=5", ""},
		// status still wins over vm_state, as in Nova.
		{"status=ACTIVE&vm_state=stopped", "run"},
	} {
		if got := list(demo, mv, c.query); got != c.want {
			t.Errorf("a member's %s at %s: %q, want %q", c.query, mv, got, c.want)
		}
		// At 2.82 a member's are dropped (status still filters).
		want := "off run"
		if strings.HasPrefix(c.query, "status=") {
			want = "run"
		}
		if got := list(demo, "2.82", c.query); got != want {
			t.Errorf("a member's %s at 2.82: %q, want %q (dropped)", c.query, got, want)
		}
		// An admin's work below 2.83 too (within demo's project).
		if got := list(admin, "2.82", c.query+"&all_tenants=1&project_id="+run.TenantID); got != c.want {
			t.Errorf("an admin's %s at 2.82: %q, want %q", c.query, got, c.want)
		}
	}
	// A member's vm_state=deleted is no status: no 403, nothing deleted.
	if got := list(demo, mv, "vm_state=deleted"); got != "" {
		t.Errorf("a member's vm_state=deleted: %q", got)
	}
	// The regular expressions must compile, as before.
	faultHas(t, tr.Do(t, http.MethodGet, "/v2.1/servers?power_state=%28", demo, nil, atVersion(mv)...), 400, "power_state")
}
