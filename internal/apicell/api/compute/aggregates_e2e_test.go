package compute_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"

	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/testtree"
)

// computeHosts are the compute hosts as os-services names them
// ("api!cell1@cell1-host001"), sorted.
func computeHosts(t *testing.T, tr *testtree.Tree) []string {
	t.Helper()
	pages, err := services.List(adminAt(tr, "2.11"), services.ListOpts{Binary: "nova-compute"}).AllPages(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := services.ExtractServices(pages)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range ss {
		out = append(out, s.Host)
	}
	slices.Sort(out)
	return out
}

// aggregateRows is every row of the three aggregate tables, as text: what
// a refused request must leave as it was.
func aggregateRows(t *testing.T, tr *testtree.Tree) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT id, uuid, name, created_at, updated_at FROM aggregates ORDER BY id`,
		`SELECT aggregate_id, cell, host FROM aggregate_hosts ORDER BY id`,
		`SELECT aggregate_id, key, value FROM aggregate_metadata ORDER BY aggregate_id, key`,
	} {
		rows, err := tr.API.DB.Query(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

// TestAggregates drives every os-aggregates call through gophercloud on
// two cells of two hosts: an aggregate with a zone spans a host of each
// cell; the zone checks, name and host conflicts, and the 404s answer as
// Nova does; the zone list follows the aggregates.
func TestAggregates(t *testing.T) {
	tr := operatorTree(t)
	ctx := ctxT(t)
	hosts := computeHosts(t, tr)
	if len(hosts) != 4 || !strings.HasPrefix(hosts[0], "api!cell1@") || !strings.HasPrefix(hosts[3], "api!cell2@") {
		t.Fatalf("compute hosts: %v", hosts)
	}
	bare := func(h string) string { return h[strings.LastIndex(h, "@")+1:] }
	sc := adminAt(tr, "2.1")
	sc41 := adminAt(tr, "2.41")

	// Create: 200, no hosts or metadata in the answer, uuid from 2.41.
	r := tr.Do(t, "POST", "/v2.1/os-aggregates", admin, map[string]any{"aggregate": map[string]any{"name": "agg1", "availability_zone": "az1"}})
	if r.Status != http.StatusOK {
		t.Fatalf("create: %s", r)
	}
	created := r.Map(t)["aggregate"].(map[string]any)
	if got := sortedKeys(created); !slices.Equal(got, []string{"availability_zone", "created_at", "deleted", "deleted_at", "id", "name", "updated_at"}) {
		t.Errorf("created aggregate's keys at 2.1: %v", got)
	}
	if created["name"] != "agg1" || created["availability_zone"] != "az1" || created["deleted"] != false || created["deleted_at"] != nil || created["updated_at"] != nil {
		t.Errorf("created aggregate: %v", created)
	}
	id1 := int(created["id"].(float64))
	agg2, err := aggregates.Create(ctx, sc41, aggregates.CreateOpts{Name: "agg2", AvailabilityZone: "az2"}).Extract()
	if err != nil || agg2.UUID == "" || agg2.AvailabilityZone != "az2" || agg2.ID == id1 {
		t.Fatalf("create at 2.41: %+v %v", agg2, err)
	}
	agg3, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "agg3"}).Extract()
	if err != nil || agg3.UUID != "" || agg3.AvailabilityZone != "" {
		t.Fatalf("create without a zone at 2.1: %+v %v", agg3, err)
	}
	r = tr.Do(t, "GET", fmt.Sprintf("/v2.1/os-aggregates/%d", agg3.ID), admin, nil)
	if a := r.Map(t)["aggregate"].(map[string]any); a["availability_zone"] != nil || a["uuid"] != nil {
		t.Errorf("an aggregate without a zone at 2.1: %v", a)
	}
	if _, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "agg1"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Errorf("a second agg1: %v", err)
	}
	faultHas(t, tr.Do(t, "POST", "/v2.1/os-aggregates", admin, map[string]any{"aggregate": map[string]any{"name": "agg1"}}), http.StatusConflict, "Aggregate agg1 already exists.")

	// add_host: a host of each cell, one named qualified, one bare.
	a, err := aggregates.AddHost(ctx, sc, id1, aggregates.AddHostOpts{Host: hosts[0]}).Extract()
	if err != nil || !slices.Equal(a.Hosts, []string{hosts[0]}) || a.UUID != "" {
		t.Fatalf("agg1 after an add at 2.1: %+v %v", a, err)
	}
	a, err = aggregates.AddHost(ctx, sc41, id1, aggregates.AddHostOpts{Host: bare(hosts[3])}).Extract()
	if err != nil || !slices.Equal(a.Hosts, []string{hosts[0], hosts[3]}) || a.AvailabilityZone != "az1" || a.UUID == "" {
		t.Fatalf("agg1 after two adds: %+v %v", a, err)
	}
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", id1), admin, map[string]any{"add_host": map[string]any{"host": hosts[0]}}),
		http.StatusConflict, fmt.Sprintf("Aggregate %d already has host %s.", id1, hosts[0]))
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", id1), admin, map[string]any{"add_host": map[string]any{"host": "nohost"}}),
		http.StatusNotFound, "Compute host nohost could not be found.")
	faultHas(t, tr.Do(t, "POST", "/v2.1/os-aggregates/9999/action", admin, map[string]any{"add_host": map[string]any{"host": hosts[1]}}),
		http.StatusNotFound, "Aggregate 9999 could not be found.")
	// A host in az1 joins no aggregate of another zone; one without a zone
	// it may join, but that one then takes no other zone.
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", agg2.ID), admin, map[string]any{"add_host": map[string]any{"host": hosts[0]}}),
		http.StatusConflict, fmt.Sprintf("Cannot add host to aggregate %d. Reason: One or more hosts already in availability zone(s) ['az1'].", agg2.ID))
	if _, err := aggregates.AddHost(ctx, sc, agg3.ID, aggregates.AddHostOpts{Host: hosts[0]}).Extract(); err != nil {
		t.Fatal(err)
	}
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", agg3.ID), admin, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"availability_zone": "az2"}}}),
		http.StatusBadRequest, fmt.Sprintf("Cannot update metadata of aggregate %d. Reason: One or more hosts already in availability zone(s) ['az1'].", agg3.ID))
	faultHas(t, tr.Do(t, "PUT", fmt.Sprintf("/v2.1/os-aggregates/%d", agg3.ID), admin, map[string]any{"aggregate": map[string]any{"availability_zone": "az2"}}),
		http.StatusBadRequest, fmt.Sprintf("Cannot update aggregate %d. Reason: One or more hosts already in availability zone(s) ['az1'].", agg3.ID))
	if a, err := aggregates.SetMetadata(ctx, sc, agg3.ID, aggregates.SetMetadataOpts{Metadata: map[string]any{"availability_zone": "az1"}}).Extract(); err != nil || a.AvailabilityZone != "az1" {
		t.Errorf("agg3 into the zone of its host: %+v %v", a, err)
	}

	// set_metadata: keys set, null deletes, the zone is never emptied.
	a, err = aggregates.SetMetadata(ctx, sc, id1, aggregates.SetMetadataOpts{Metadata: map[string]any{"ssd": "true", "gpu": "no"}}).Extract()
	if err != nil || a.Metadata["ssd"] != "true" || a.Metadata["availability_zone"] != "az1" || a.UpdatedAt.IsZero() {
		t.Fatalf("set_metadata: %+v %v", a, err)
	}
	a, err = aggregates.SetMetadata(ctx, sc, id1, aggregates.SetMetadataOpts{Metadata: map[string]any{"gpu": nil, "absent": nil}}).Extract()
	if err != nil || len(a.Metadata) != 2 || a.Metadata["ssd"] != "true" {
		t.Fatalf("set_metadata with nulls: %+v %v", a, err)
	}
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", id1), admin, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"availability_zone": nil}}}),
		http.StatusBadRequest, fmt.Sprintf("Cannot update metadata of aggregate %d. Reason: Aggregate agg1 does not support empty named availability zone.", id1))

	// update: rename, a name in use, a zone of its own hosts' choosing.
	a, err = aggregates.Update(ctx, sc, id1, aggregates.UpdateOpts{Name: " agg1b "}).Extract()
	if err != nil || a.Name != "agg1b" || len(a.Hosts) != 2 {
		t.Fatalf("rename: %+v %v", a, err)
	}
	faultHas(t, tr.Do(t, "PUT", fmt.Sprintf("/v2.1/os-aggregates/%d", id1), admin, map[string]any{"aggregate": map[string]any{"name": "agg2"}}),
		http.StatusConflict, "Aggregate agg2 already exists.")
	faultHas(t, tr.Do(t, "PUT", fmt.Sprintf("/v2.1/os-aggregates/%d", id1), admin, map[string]any{"aggregate": map[string]any{"availability_zone": nil}}),
		http.StatusBadRequest, fmt.Sprintf("Cannot update aggregate %d. Reason: Aggregate agg1b does not support empty named availability zone.", id1))

	// The zones: az1 has a host of each cell; the others are in "nova".
	zones := map[string][]string{}
	var zoneInfo struct {
		Zones []struct {
			Name  string                    `json:"zoneName"`
			Hosts map[string]map[string]any `json:"hosts"`
		} `json:"availabilityZoneInfo"`
	}
	tr.Do(t, "GET", "/v2.1/os-availability-zone/detail", admin, nil).JSON(t, &zoneInfo)
	for _, z := range zoneInfo.Zones {
		for h := range z.Hosts {
			zones[z.Name] = append(zones[z.Name], h)
		}
		slices.Sort(zones[z.Name])
	}
	if !slices.Equal(zones["az1"], []string{hosts[0], hosts[3]}) || !slices.Equal(zones["nova"], []string{hosts[1], hosts[2]}) || zones["az2"] != nil {
		t.Errorf("zones from the aggregates: %v", zones)
	}
	if ss, err := services.List(adminAt(tr, "2.11"), services.ListOpts{Host: hosts[3], Binary: "nova-compute"}).AllPages(ctx); err != nil {
		t.Error(err)
	} else if s, _ := services.ExtractServices(ss); len(s) != 1 || s[0].Zone != "az1" {
		t.Errorf("os-services zone of %s: %+v", hosts[3], s)
	}

	// List, show, delete.
	pages, err := aggregates.List(sc41).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := aggregates.ExtractAggregates(pages)
	if len(all) != 3 || all[0].ID != id1 || all[0].UUID == "" || !slices.Equal(all[2].Hosts, []string{hosts[0]}) {
		t.Errorf("list: %+v", all)
	}
	faultHas(t, tr.Do(t, "DELETE", fmt.Sprintf("/v2.1/os-aggregates/%d", id1), admin, nil),
		http.StatusBadRequest, fmt.Sprintf("Cannot remove host from aggregate %d. Reason: Host aggregate is not empty.", id1))
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", id1), admin, map[string]any{"remove_host": map[string]any{"host": hosts[1]}}),
		http.StatusNotFound, fmt.Sprintf("Cannot remove host %s in aggregate %d", hosts[1], id1))
	faultHas(t, tr.Do(t, "POST", "/v2.1/os-aggregates/9999/action", admin, map[string]any{"remove_host": map[string]any{"host": hosts[1]}}),
		http.StatusNotFound, fmt.Sprintf("Cannot remove host %s in aggregate 9999", hosts[1]))
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", id1), admin, map[string]any{"remove_host": map[string]any{"host": "nohost"}}),
		http.StatusNotFound, fmt.Sprintf("Cannot remove host nohost in aggregate %d", id1))
	for _, h := range []string{bare(hosts[0]), hosts[3]} {
		if a, err = aggregates.RemoveHost(ctx, sc, id1, aggregates.RemoveHostOpts{Host: h}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	if len(a.Hosts) != 0 {
		t.Errorf("hosts after removing both: %v", a.Hosts)
	}
	if err := aggregates.Delete(ctx, sc, id1).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	faultHas(t, tr.Do(t, "GET", fmt.Sprintf("/v2.1/os-aggregates/%d", id1), admin, nil), http.StatusNotFound, fmt.Sprintf("Aggregate %d could not be found.", id1))
	faultHas(t, tr.Do(t, "DELETE", fmt.Sprintf("/v2.1/os-aggregates/%d", id1), admin, nil), http.StatusNotFound, fmt.Sprintf("Aggregate %d could not be found.", id1))
	// The name is free again at once (Nova's API database deletes for good).
	if _, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "agg1b"}).Extract(); err != nil {
		t.Errorf("the name of a deleted aggregate: %v", err)
	}
	// As Nova, deleting a compute service takes its host out of its
	// aggregates.
	sc53 := adminAt(tr, "2.53")
	pg, err := services.List(sc53, services.ListOpts{Host: hosts[0], Binary: "nova-compute"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	svcs, _ := services.ExtractServices(pg)
	if len(svcs) != 1 {
		t.Fatalf("the service of %s: %+v", hosts[0], svcs)
	}
	if err := services.Delete(ctx, sc53, svcs[0].ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if a, err := aggregates.Get(ctx, sc, agg3.ID).Extract(); err != nil || len(a.Hosts) != 0 || a.AvailabilityZone != "az1" {
		t.Errorf("agg3 after its host's service was deleted: %+v %v", a, err)
	}
	// The zone list follows: hosts[3] is back in the default zone.
	zoneInfo.Zones = nil
	tr.Do(t, "GET", "/v2.1/os-availability-zone/detail", admin, nil).JSON(t, &zoneInfo)
	for _, z := range zoneInfo.Zones {
		if _, ok := z.Hosts[hosts[3]]; ok && z.Name != "nova" {
			t.Errorf("%s in zone %s after leaving az1", hosts[3], z.Name)
		}
	}
}

// TestAggregateRefusals: bad input (Nova's schema messages), bad ids, a
// member's calls (403) and unknown actions leave the aggregate tables as
// they were.
func TestAggregateRefusals(t *testing.T) {
	tr := operatorTree(t)
	hosts := computeHosts(t, tr)
	r := tr.Do(t, "POST", "/v2.1/os-aggregates", admin, map[string]any{"aggregate": map[string]any{"name": "a", "availability_zone": "z"}})
	if r.Status != http.StatusOK {
		t.Fatalf("create: %s", r)
	}
	id := int(r.Map(t)["aggregate"].(map[string]any)["id"].(float64))
	action := fmt.Sprintf("/v2.1/os-aggregates/%d/action", id)
	one := fmt.Sprintf("/v2.1/os-aggregates/%d", id)
	before := aggregateRows(t, tr)
	long := strings.Repeat("x", 256)
	for _, c := range []struct {
		token, method, path string
		body                any
		status              int
		want                string
	}{
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{}, 400, "'aggregate' is a required property"},
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{}}, 400, "'name' is a required property"},
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{"name": "b", "x": 1}}, 400, "Additional properties are not allowed ('x' was unexpected)"},
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{"name": ""}}, 400, "Invalid input for field/attribute name"},
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{"name": long}}, 400, "is too long"},
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{"name": " b"}}, 400, "An invalid 'name' value was provided"},
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{"name": "b", "availability_zone": "z:1"}}, 400,
			"Invalid input for field/attribute availability_zone. Value: z:1. 'z:1' is not valid under any of the given schemas"},
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{"name": "b", "availability_zone": ""}}, 400, "is not valid under any of the given schemas"},
		{admin, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{"name": "a"}}, 409, "Aggregate a already exists."},
		{admin, "PUT", one, map[string]any{"aggregate": map[string]any{}}, 400, "{} is not valid under any of the given schemas"},
		{admin, "PUT", one, map[string]any{"aggregate": map[string]any{"foo": 1}}, 400, "Additional properties are not allowed ('foo' was unexpected)"},
		{admin, "PUT", one, map[string]any{"aggregate": map[string]any{"name": "   "}}, 400, "An invalid 'name' value was provided"},
		{admin, "PUT", one, map[string]any{"aggregate": map[string]any{"name": ""}}, 400, "The name must be: printable characters with at least one non space character"},
		{admin, "PUT", one, map[string]any{"aggregate": map[string]any{"name": long}}, 400, "is too long"},
		{admin, "PUT", one, map[string]any{"aggregate": map[string]any{"name": "c", "availability_zone": nil}}, 400, "does not support empty named availability zone"},
		{admin, "PUT", "/v2.1/os-aggregates/abc", map[string]any{"aggregate": map[string]any{"name": "c"}}, 400, "Invalid input received: id must be an integer"},
		{admin, "PUT", "/v2.1/os-aggregates/4242", map[string]any{"aggregate": map[string]any{"name": "c"}}, 404, "Aggregate 4242 could not be found."},
		{admin, "GET", "/v2.1/os-aggregates/abc", nil, 400, "Invalid input received: id must be an integer"},
		{admin, "DELETE", "/v2.1/os-aggregates/1.5", nil, 400, "Invalid input received: id must be an integer"},
		{admin, "POST", action, map[string]any{"add_host": map[string]any{}}, 400, "'host' is a required property"},
		{admin, "POST", action, map[string]any{"add_host": map[string]any{"host": "a b"}}, 400, `'a b' does not match '^[a-zA-Z0-9-._]*$'`},
		{admin, "POST", action, map[string]any{"add_host": map[string]any{"host": 1}}, 400, "1 is not of type 'string'"},
		{admin, "POST", action, map[string]any{"add_host": map[string]any{"host": "nohost"}}, 404, "Compute host nohost could not be found."},
		{admin, "POST", action, map[string]any{"add_host": map[string]any{"host": "api!cell9@" + hosts[0][strings.LastIndex(hosts[0], "@")+1:]}}, 404, "could not be found"},
		{admin, "POST", "/v2.1/os-aggregates/x/action", map[string]any{"add_host": map[string]any{"host": hosts[0]}}, 400, "Invalid input received: id must be an integer"},
		{admin, "POST", action, map[string]any{"remove_host": map[string]any{"host": hosts[0]}}, 404, fmt.Sprintf("Cannot remove host %s in aggregate %d", hosts[0], id)},
		{admin, "POST", action, map[string]any{"set_metadata": map[string]any{}}, 400, "'metadata' is a required property"},
		{admin, "POST", action, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"a/b": "1"}}}, 400, "'a/b' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'"},
		{admin, "POST", action, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"k": 1}}}, 400, "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string', 'null'"},
		{admin, "POST", action, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"k": long}}}, 400, "is too long"},
		{admin, "POST", action, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"availability_zone": ""}}}, 400, "does not support empty named availability zone"},
		{admin, "POST", action, map[string]any{"cache": []any{}}, 400, "There is no such action: cache"},
		{demo, "GET", "/v2.1/os-aggregates", nil, 403, "os_compute_api:os-aggregates:index"},
		{demo, "GET", one, nil, 403, "os_compute_api:os-aggregates:show"},
		{demo, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{"name": "m"}}, 403, "os_compute_api:os-aggregates:create"},
		{demo, "PUT", one, map[string]any{"aggregate": map[string]any{"name": "m"}}, 403, "os_compute_api:os-aggregates:update"},
		{demo, "DELETE", one, nil, 403, "os_compute_api:os-aggregates:delete"},
		{demo, "POST", action, map[string]any{"add_host": map[string]any{"host": hosts[0]}}, 403, "os_compute_api:os-aggregates:add_host"},
		{demo, "POST", action, map[string]any{"remove_host": map[string]any{"host": hosts[0]}}, 403, "os_compute_api:os-aggregates:remove_host"},
		{demo, "POST", action, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"k": "v"}}}, 403, "os_compute_api:os-aggregates:set_metadata"},
		// A member's bad body is a 400: Nova checks the schema first.
		{demo, "POST", "/v2.1/os-aggregates", map[string]any{"aggregate": map[string]any{}}, 400, "'name' is a required property"},
	} {
		r := tr.Do(t, c.method, c.path, c.token, c.body)
		faultHas(t, r, c.status, c.want)
		if t.Failed() {
			t.Logf("%s %s %v", c.method, c.path, c.body)
		}
		if after := aggregateRows(t, tr); after != before {
			t.Fatalf("%s %s %v (%d) wrote:\n%s\nwas:\n%s", c.method, c.path, c.body, c.status, after, before)
		}
	}
}

// TestAggregateZonesWithInstances: a host with an instance does not change
// zone through an aggregate (Nova's checks, from the API cell's copy of
// the instances): it joins no aggregate of a zone, its aggregate takes no
// zone; once the instance is gone both are allowed.
func TestAggregateZonesWithInstances(t *testing.T) {
	tr := operatorTree(t)
	ctx := ctxT(t)
	sc := adminAt(tr, "2.1")
	id := create(t, tr, demo, map[string]any{"name": "pinned", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, tr.Compute(demo), id, "ACTIVE")
	on := hostOf(t, tr, id)
	az, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "zoned", AvailabilityZone: "az1"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	plain, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "plain"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	before := aggregateRows(t, tr)
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", az.ID), admin, map[string]any{"add_host": map[string]any{"host": on}}),
		http.StatusConflict, fmt.Sprintf("Cannot add host to aggregate %d. Reason: The host cannot be added to the aggregate as the availability zone of the host would change from 'None' to 'az1' but the host already has 1 instance(s).", az.ID))
	if after := aggregateRows(t, tr); after != before {
		t.Errorf("a refused add_host wrote:\n%s\nwas:\n%s", after, before)
	}
	if _, err := aggregates.AddHost(ctx, sc, plain.ID, aggregates.AddHostOpts{Host: on}).Extract(); err != nil {
		t.Fatal(err)
	}
	before = aggregateRows(t, tr)
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", plain.ID), admin, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"availability_zone": "az1"}}}),
		http.StatusBadRequest, fmt.Sprintf("Cannot update metadata of aggregate %d. Reason: One or more hosts contain instances in this zone.", plain.ID))
	faultHas(t, tr.Do(t, "PUT", fmt.Sprintf("/v2.1/os-aggregates/%d", plain.ID), admin, map[string]any{"aggregate": map[string]any{"name": "renamed", "availability_zone": "az1"}}),
		http.StatusBadRequest, fmt.Sprintf("Cannot update aggregate %d. Reason: One or more hosts contain instances in this zone.", plain.ID))
	if after := aggregateRows(t, tr); after != before {
		t.Errorf("refused zone changes wrote (the rename too):\n%s\nwas:\n%s", after, before)
	}

	deleteAll(t, tr, demo, []string{id})
	if a, err := aggregates.SetMetadata(ctx, sc, plain.ID, aggregates.SetMetadataOpts{Metadata: map[string]any{"availability_zone": "az1"}}).Extract(); err != nil || a.AvailabilityZone != "az1" {
		t.Fatalf("the zone of an empty host's aggregate: %+v %v", a, err)
	}
	if _, err := aggregates.AddHost(ctx, sc, az.ID, aggregates.AddHostOpts{Host: on}).Extract(); err != nil {
		t.Fatalf("an empty host into az1: %v", err)
	}
	// The host is in az1 by two aggregates; leaving one keeps it there.
	if _, err := aggregates.RemoveHost(ctx, sc, plain.ID, aggregates.RemoveHostOpts{Host: on}).Extract(); err != nil {
		t.Fatal(err)
	}

	// A new instance on the host (the only enabled one): it does not leave
	// az1, its aggregate's zone does not change, until another aggregate
	// of az1 has it.
	for _, h := range computeHosts(t, tr) {
		if !strings.HasSuffix(h, "@"+on) {
			if r := tr.Do(t, "PUT", "/v2.1/os-services/disable", admin, map[string]any{"host": h, "binary": "nova-compute"}); r.Status != http.StatusOK {
				t.Fatalf("disable %s: %s", h, r)
			}
		}
	}
	id2 := create(t, tr, demo, map[string]any{"name": "pinned2", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, tr.Compute(demo), id2, "ACTIVE")
	if got := hostOf(t, tr, id2); got != on {
		t.Fatalf("the server went to %s, the only enabled host is %s", got, on)
	}
	before = aggregateRows(t, tr)
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", az.ID), admin, map[string]any{"remove_host": map[string]any{"host": on}}),
		http.StatusConflict, fmt.Sprintf("Cannot remove host from aggregate %d. Reason: The host cannot be removed from the aggregate as the availability zone of the host would change from 'az1' to 'None' but the host already has 1 instance(s).", az.ID))
	faultHas(t, tr.Do(t, "POST", fmt.Sprintf("/v2.1/os-aggregates/%d/action", az.ID), admin, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"availability_zone": "az2"}}}),
		http.StatusBadRequest, fmt.Sprintf("Cannot update metadata of aggregate %d. Reason: One or more hosts contain instances in this zone.", az.ID))
	if after := aggregateRows(t, tr); after != before {
		t.Errorf("refused changes wrote:\n%s\nwas:\n%s", after, before)
	}
	// Setting the zone it has already is no change.
	if _, err := aggregates.SetMetadata(ctx, sc, az.ID, aggregates.SetMetadataOpts{Metadata: map[string]any{"availability_zone": "az1"}}).Extract(); err != nil {
		t.Errorf("the same zone again: %v", err)
	}
	if _, err := aggregates.AddHost(ctx, sc, plain.ID, aggregates.AddHostOpts{Host: on}).Extract(); err != nil {
		t.Fatalf("into another aggregate of az1: %v", err)
	}
	if _, err := aggregates.RemoveHost(ctx, sc, az.ID, aggregates.RemoveHostOpts{Host: on}).Extract(); err != nil {
		t.Errorf("out of one of its two aggregates of az1: %v", err)
	}
}

// TestAggregatesWithACellDown: a host of a cell the API cell counts down
// neither joins nor leaves an aggregate (503 naming the cell, at once: its
// cell could not take it into its scheduling), while the hosts of the
// cells that are up do, and the aggregate's metadata changes (the cell
// that is down gets its snapshot when it returns).
func TestAggregatesWithACellDown(t *testing.T) {
	tr := testtree.Start(t, testtree.Options{Cells: 2, HostsPerCell: 2})
	testpoll.Eventually(t, wait, "host mappings of 4 hosts", func() (bool, string) {
		var n int
		if err := tr.API.DB.QueryRow(t.Context(), `SELECT COUNT(*) FROM host_mappings WHERE kind = 'hypervisor'`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 4, fmt.Sprint(n, " mapped")
	})
	const down = "api!cell2"
	hosts := computeHosts(t, tr)
	ctx := ctxT(t)
	sc := adminAt(tr, "2.41")
	a, err := aggregates.Create(ctx, sc, aggregates.CreateOpts{Name: "spans", AvailabilityZone: "az1"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if a, err = aggregates.AddHost(ctx, sc, a.ID, aggregates.AddHostOpts{Host: hosts[2]}).Extract(); err != nil {
		t.Fatalf("add %s: %v", hosts[2], err)
	}
	for _, n := range tr.Cells {
		if n.Config().Cell == down {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			n.Shutdown(sctx)
			cancel()
		}
	}
	testpoll.Eventually(t, wait, "the API cell to count "+down+" down", func() (bool, string) {
		r, err := tr.Send(http.MethodGet, "/v2.1/os-hosts/"+hosts[3], "admin:admin", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusServiceUnavailable, r.String()
	})
	if !strings.HasPrefix(hosts[3], down+"@") || !strings.HasPrefix(hosts[2], down+"@") {
		t.Fatalf("hosts %v: want the last two in %s", hosts, down)
	}
	if _, err := aggregates.AddHost(ctx, sc, a.ID, aggregates.AddHostOpts{Host: hosts[3]}).Extract(); !gophercloud.ResponseCodeIs(err, 503) ||
		!strings.Contains(err.Error(), down) {
		t.Errorf("add %s with its cell down: %v, want a 503 naming %s", hosts[3], err, down)
	}
	if _, err := aggregates.RemoveHost(ctx, sc, a.ID, aggregates.RemoveHostOpts{Host: hosts[2]}).Extract(); !gophercloud.ResponseCodeIs(err, 503) {
		t.Errorf("remove %s with its cell down: %v, want a 503", hosts[2], err)
	}
	if a, err = aggregates.AddHost(ctx, sc, a.ID, aggregates.AddHostOpts{Host: hosts[0]}).Extract(); err != nil {
		t.Fatalf("add %s, its cell up: %v", hosts[0], err)
	}
	if _, err := aggregates.SetMetadata(ctx, sc, a.ID, aggregates.SetMetadataOpts{Metadata: map[string]any{"ssd": "true"}}).Extract(); err != nil {
		t.Errorf("set metadata with a host's cell down: %v", err)
	}
	if got, err := aggregates.Get(ctx, sc, a.ID).Extract(); err != nil || !slices.Equal(got.Hosts, []string{hosts[2], hosts[0]}) || got.Metadata["ssd"] != "true" {
		t.Errorf("the aggregate with %s down: %+v, %v", down, got, err)
	}
}
