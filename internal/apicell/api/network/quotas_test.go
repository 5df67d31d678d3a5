package network_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"

	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// setQuota sets limits of project as the admin, failing the test unless
// it is a 200.
func (e *env) setQuota(t testing.TB, project string, limits map[string]any) {
	t.Helper()
	if r := e.send(t, http.MethodPut, "/networking/v2.0/quotas/"+project, admin, map[string]any{"quota": limits}); r.status != http.StatusOK {
		t.Fatalf("set quota of %s: %d %s", project, r.status, r.body)
	}
}

// unlimited lifts every limit of project (tests that create many things).
func (e *env) unlimited(t testing.TB, project string) {
	t.Helper()
	e.setQuota(t, project, map[string]any{"network": -1, "subnet": -1, "port": -1, "security_group": -1, "security_group_rule": -1})
}

type quotaDetails struct {
	Quota map[string]struct {
		Limit    int `json:"limit"`
		Used     int `json:"used"`
		Reserved int `json:"reserved"`
	} `json:"quota"`
}

func (e *env) details(t testing.TB, project, token string) quotaDetails {
	t.Helper()
	var d quotaDetails
	r := e.send(t, http.MethodGet, "/networking/v2.0/quotas/"+project+"/details", token, nil)
	if r.status != http.StatusOK {
		t.Fatalf("details of %s: %d %s", project, r.status, r.body)
	}
	r.json(t, &d)
	return d
}

// TestQuotaShowUpdateReset: a project reads Neutron's defaults; an admin
// sets some limits (gophercloud's Update), which show, list and details
// then give while the defaults stay; Delete resets them, and a second
// Delete is a 404 TenantQuotaNotFound.
func TestQuotaShowUpdateReset(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	q, err := quotas.Get(ctx, e.client(demo), "demo").Extract()
	if err != nil {
		t.Fatal(err)
	}
	want := quotas.Quota{FloatingIP: 50, Network: 100, Port: 500, RBACPolicy: 10, Router: 10, SecurityGroup: 10, SecurityGroupRule: 100,
		Subnet: 100, SubnetPool: -1}
	if *q != want {
		t.Fatalf("defaults = %+v, want %+v", *q, want)
	}
	var raw struct {
		Quota map[string]any `json:"quota"`
	}
	e.do(http.MethodGet, "/networking/v2.0/quotas/demo", demo, nil).json(t, &raw)
	if len(raw.Quota) != 9 {
		t.Fatalf("resources shown: %v", raw.Quota)
	}

	five, unl := 5, -1
	q, err = quotas.Update(ctx, e.client(admin), "demo", quotas.UpdateOpts{Network: &five, Port: &unl}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	want.Network, want.Port = 5, -1
	if *q != want {
		t.Fatalf("updated = %+v, want %+v", *q, want)
	}
	if q, err = quotas.Get(ctx, e.client(demo), "demo").Extract(); err != nil || *q != want {
		t.Fatalf("shown after update = %+v, %v", q, err)
	}
	det, err := quotas.GetDetail(ctx, e.client(demo), "demo").Extract()
	if err != nil {
		t.Fatal(err)
	}
	if det.Network.Limit != 5 || det.Network.Used != 0 || det.Port.Limit != -1 || det.Subnet.Limit != 100 || det.SecurityGroup.Reserved != 0 {
		t.Fatalf("details = %+v", det)
	}
	// Old clients' ".json" paths (openstacksdk's details).
	if r := e.do(http.MethodGet, "/networking/v2.0/quotas/demo/details.json", demo, nil); r.status != http.StatusOK {
		t.Fatalf("details.json: %d %s", r.status, r.body)
	}
	// The defaults are still the defaults.
	var def struct {
		Quota map[string]int `json:"quota"`
	}
	e.do(http.MethodGet, "/networking/v2.0/quotas/demo/default", demo, nil).json(t, &def)
	if def.Quota["network"] != 100 || def.Quota["port"] != 500 || len(def.Quota) != 9 {
		t.Fatalf("defaults after update = %v", def.Quota)
	}
	// The list names the projects with limits of their own.
	var list struct {
		Quotas []map[string]any `json:"quotas"`
	}
	e.do(http.MethodGet, "/networking/v2.0/quotas", admin, nil).json(t, &list)
	if len(list.Quotas) != 1 || list.Quotas[0]["project_id"] != "demo" || list.Quotas[0]["tenant_id"] != "demo" ||
		list.Quotas[0]["network"] != float64(5) || list.Quotas[0]["subnet"] != float64(100) {
		t.Fatalf("list = %v", list.Quotas)
	}

	if err := quotas.Delete(ctx, e.client(admin), "demo").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	want.Network, want.Port = 100, 500
	if q, err = quotas.Get(ctx, e.client(demo), "demo").Extract(); err != nil || *q != want {
		t.Fatalf("shown after reset = %+v, %v", q, err)
	}
	e.do(http.MethodGet, "/networking/v2.0/quotas", admin, nil).json(t, &list)
	if len(list.Quotas) != 0 {
		t.Fatalf("list after reset = %v", list.Quotas)
	}
	r := e.do(http.MethodDelete, "/networking/v2.0/quotas/demo", admin, nil)
	if typ, msg := r.fault(t, http.StatusNotFound); typ != "TenantQuotaNotFound" || msg != "Quota for project demo could not be found." {
		t.Fatalf("second reset: %s %q", typ, msg)
	}
}

// TestQuotaPolicy: a member reads its own project's quota, defaults and
// details, and none of another's (403, as Neutron's get_quota and
// quotasv2_detail answer); only an admin lists, updates and resets; the
// refused update writes nothing.
func TestQuotaPolicy(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/networking/v2.0/quotas/demo", "/networking/v2.0/quotas/demo/default", "/networking/v2.0/quotas/demo/details"} {
		if r := e.do(http.MethodGet, p, demo, nil); r.status != http.StatusOK {
			t.Fatalf("own %s: %d %s", p, r.status, r.body)
		}
		if r := e.do(http.MethodGet, p, other, nil); r.status != http.StatusForbidden {
			t.Fatalf("another's %s: %d %s", p, r.status, r.body)
		}
		if r := e.do(http.MethodGet, p, admin, nil); r.status != http.StatusOK {
			t.Fatalf("admin's read of %s: %d %s", p, r.status, r.body)
		}
	}
	for _, c := range []struct{ method, path, typ, msg string }{
		{http.MethodGet, "/networking/v2.0/quotas/demo", "PolicyNotAuthorized", "(rule:get_quota) is disallowed by policy"},
		{http.MethodGet, "/networking/v2.0/quotas/demo/default", "PolicyNotAuthorized", "(rule:get_quota) is disallowed by policy"},
		{http.MethodGet, "/networking/v2.0/quotas/demo/details", "AdminRequired",
			"User does not have admin privileges: Only admin is authorized to access quotas for another project."},
		{http.MethodGet, "/networking/v2.0/quotas", "PolicyNotAuthorized", "(rule:get_quota) is disallowed by policy"},
		{http.MethodPut, "/networking/v2.0/quotas/other", "PolicyNotAuthorized", "(rule:update_quota) is disallowed by policy"},
		{http.MethodPut, "/networking/v2.0/quotas/demo", "PolicyNotAuthorized", "(rule:update_quota) is disallowed by policy"},
		{http.MethodDelete, "/networking/v2.0/quotas/other", "PolicyNotAuthorized", "(rule:delete_quota) is disallowed by policy"},
	} {
		var body any
		if c.method == http.MethodPut {
			body = map[string]any{"quota": map[string]any{"network": 1000}}
		}
		r := e.do(c.method, c.path, other, body)
		if typ, msg := r.fault(t, http.StatusForbidden); typ != c.typ || msg != c.msg {
			t.Errorf("%s %s as a member: %s %q", c.method, c.path, typ, msg)
		}
	}
	if n := e.count("network_quotas"); n != 0 {
		t.Fatalf("refused updates wrote %d limits", n)
	}
	// gophercloud sees the 403s as such.
	five := 5
	_, err := quotas.Update(context.Background(), e.client(demo), "demo", quotas.UpdateOpts{Network: &five}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("member's update: %v", err)
	}
	// The caller's project, and POST, which Neutron does not have.
	var p struct {
		Project map[string]string `json:"project"`
	}
	e.do(http.MethodGet, "/networking/v2.0/quotas/project", demo, nil).json(t, &p)
	if p.Project["project_id"] != "demo" {
		t.Fatalf("quotas/project = %v", p)
	}
	r := e.do(http.MethodPost, "/networking/v2.0/quotas", admin, map[string]any{"quota": map[string]any{"network": 1}})
	if typ, msg := r.fault(t, http.StatusNotImplemented); typ != "HTTPNotImplemented" || msg != "POST requests are not supported on this resource." {
		t.Fatalf("POST: %s %q", typ, msg)
	}
}

// TestQuotaUpdateBadBodies: Neutron's 400s and messages for a bad update,
// and nothing written; values Python's int() takes are taken.
func TestQuotaUpdateBadBodies(t *testing.T) {
	e := newEnv(t)
	// Two groups and six rules used: the default group and "a".
	e.do(http.MethodPost, "/networking/v2.0/security-groups", demo, map[string]any{"security_group": map[string]any{"name": "a"}})
	for _, c := range []struct {
		body     any
		typ, msg string
	}{
		{`{"quota": {"network": "abc"}}`, "InvalidInput", "Invalid input for operation: 'abc' is not an integer."},
		{`{"quota": {"network": null}}`, "InvalidInput", "Invalid input for operation: 'None' is not an integer."},
		{`{"quota": {"network": "1.5"}}`, "InvalidInput", "Invalid input for operation: '1.5' is not an integer."},
		{`{"quota": {"subnet": -2}}`, "HTTPBadRequest", "Invalid input for subnet. Reason: '-2' is too small - must be at least '-1'."},
		{`{"quota": {"port": 2147483648}}`, "HTTPBadRequest", "Invalid input for port. Reason: '2147483648' is too large - must be no larger than '2147483647'."},
		{`{"quota": {"networks": 5}}`, "HTTPBadRequest", "Unrecognized attribute(s) 'networks'"},
		{`{"quota": {"network": 5, "trunk": 1, "instances": 2}}`, "HTTPBadRequest", "Unrecognized attribute(s) 'instances, trunk'"},
		{`{"quota": {"project_id": "demo"}}`, "HTTPBadRequest", "Unrecognized attribute(s) 'project_id, tenant_id'"},
		{`{"network": 5}`, "HTTPBadRequest", "Unable to find 'quota' in request body"},
		{`{"quota": 5}`, "HTTPBadRequest", "Object 'quota' contains invalid data"},
		{`{"quotas": [{"network": 5}]}`, "HTTPBadRequest", "Bulk operation not supported"},
		{``, "HTTPBadRequest", "Resource body required"},
		{`{"quota": {"network": 5`, "HTTPBadRequest", "Body contains invalid data"},
		// Below what is used, checked in the request's order.
		{`{"quota": {"network": 7, "security_group_rule": 5, "security_group": 1}}`, "HTTPBadRequest",
			"Quota limit 5 for security_group_rule must be greater than or equal to already used 6"},
		{`{"quota": {"security_group": 1, "security_group_rule": 5}}`, "HTTPBadRequest",
			"Quota limit 1 for security_group must be greater than or equal to already used 2"},
		{`{"quota": {"security_group": 1, "force": false}}`, "HTTPBadRequest",
			"Quota limit 1 for security_group must be greater than or equal to already used 2"},
	} {
		r := e.do(http.MethodPut, "/networking/v2.0/quotas/demo", admin, c.body)
		if typ, msg := r.fault(t, http.StatusBadRequest); typ != c.typ || msg != c.msg {
			t.Errorf("%s: %s %q, want %s %q", c.body, typ, msg, c.typ, c.msg)
		}
		if n := e.count("network_quotas"); n != 0 {
			t.Fatalf("%s wrote %d limits", c.body, n)
		}
	}
	// Python's int(): strings of integers, numbers truncated, booleans; force
	// true sets a limit below the use; check_limit is ignored.
	var q struct {
		Quota map[string]int `json:"quota"`
	}
	r := e.do(http.MethodPut, "/networking/v2.0/quotas/demo", admin,
		`{"quota": {"network": " 7 ", "subnet": 3.9, "router": true, "security_group": 1, "force": true, "check_limit": true}}`)
	if r.status != http.StatusOK {
		t.Fatalf("good update: %d %s", r.status, r.body)
	}
	r.json(t, &q)
	if q.Quota["network"] != 7 || q.Quota["subnet"] != 3 || q.Quota["router"] != 1 || q.Quota["security_group"] != 1 || q.Quota["port"] != 500 {
		t.Fatalf("good update = %v", q.Quota)
	}
	if d := e.details(t, "demo", demo); d.Quota["security_group"].Used != 2 || d.Quota["security_group"].Limit != 1 {
		t.Fatalf("forced below use: %+v", d.Quota["security_group"])
	}
}

// TestOverQuota: a create past the limit is a 409 OverQuota naming the
// resource, and writes nothing: networks, subnets, security groups (also
// for the two rules a new group has) and rules, a bulk create counting all
// its rules. The default group is made on first use whatever the quota,
// and counts. Usage is the owner's (project_id), whoever creates.
func TestOverQuota(t *testing.T) {
	e := newEnv(t)
	over := func(r *response, resource string) {
		t.Helper()
		want := fmt.Sprintf("Quota exceeded for resources: ['%s'].", resource)
		if typ, msg := r.fault(t, http.StatusConflict); typ != "OverQuota" || msg != want {
			t.Fatalf("%s: %s %q", resource, typ, msg)
		}
	}
	created := func(r *response) string {
		t.Helper()
		if r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var out map[string]map[string]any
		r.json(t, &out)
		for _, v := range out {
			if id, ok := v["id"].(string); ok {
				return id
			}
		}
		return ""
	}
	e.setQuota(t, "demo", map[string]any{"network": 1, "subnet": 1, "security_group": 2, "security_group_rule": 7})

	// Networks: the admin's create for demo counts as demo's.
	net := created(e.do(http.MethodPost, "/networking/v2.0/networks", admin, map[string]any{"network": map[string]any{"name": "n1", "project_id": "demo"}}))
	nets := e.count("networks")
	over(e.do(http.MethodPost, "/networking/v2.0/networks", demo, map[string]any{"network": map[string]any{"name": "n2"}}), "network")
	if e.count("networks") != nets {
		t.Fatal("the refused network was written")
	}
	if r := e.do(http.MethodPost, "/networking/v2.0/networks", other, map[string]any{"network": map[string]any{"name": "n3"}}); r.status != http.StatusCreated {
		t.Fatalf("another project's network: %d %s", r.status, r.body)
	}

	// Subnets.
	subnet := func(cidr string) *response {
		return e.do(http.MethodPost, "/networking/v2.0/subnets", demo, map[string]any{"subnet": map[string]any{"network_id": net, "ip_version": 4, "cidr": cidr}})
	}
	created(subnet("192.168.1.0/24"))
	subnets := e.count("subnets")
	over(subnet("192.168.2.0/24"), "subnet")
	if e.count("subnets") != subnets {
		t.Fatal("the refused subnet was written")
	}

	// Security groups: the default (made by this first use) and "a" fill
	// the limit of 2, with 4 + 2 rules.
	group := func(name string) *response {
		return e.do(http.MethodPost, "/networking/v2.0/security-groups", demo, map[string]any{"security_group": map[string]any{"name": name}})
	}
	sg := created(group("a"))
	groups, rules := e.count("security_groups"), e.count("security_group_rules")
	over(group("b"), "security_group")
	if e.count("security_groups") != groups || e.count("security_group_rules") != rules {
		t.Fatal("the refused group was written")
	}

	// Rules: 6 used of 7; a bulk of two is refused whole, one fits, then
	// none.
	rule := func(port int) map[string]any {
		return map[string]any{"security_group_id": sg, "direction": "ingress", "protocol": "tcp", "port_range_min": port, "port_range_max": port}
	}
	over(e.do(http.MethodPost, "/networking/v2.0/security-group-rules", demo, map[string]any{"security_group_rules": []any{rule(22), rule(80)}}), "security_group_rule")
	if e.count("security_group_rules") != rules {
		t.Fatal("the refused bulk was written")
	}
	created(e.do(http.MethodPost, "/networking/v2.0/security-group-rules", demo, map[string]any{"security_group_rule": rule(22)}))
	over(e.do(http.MethodPost, "/networking/v2.0/security-group-rules", demo, map[string]any{"security_group_rule": rule(80)}), "security_group_rule")

	// A new group within the group quota is refused for its two rules.
	e.setQuota(t, "demo", map[string]any{"security_group": 3, "security_group_rule": 8})
	over(group("c"), "security_group_rule")
	if e.count("security_groups") != groups {
		t.Fatal("the group refused for its rules was written")
	}
	d := e.details(t, "demo", demo)
	if d.Quota["network"].Used != 1 || d.Quota["subnet"].Used != 1 || d.Quota["security_group"].Used != 2 || d.Quota["security_group_rule"].Used != 7 {
		t.Fatalf("details = %+v", d.Quota)
	}

	// The default group of a project allowed no groups and no rules is
	// made on its first use all the same, and counts.
	e.setQuota(t, "fresh", map[string]any{"security_group": 0, "security_group_rule": 0})
	if r := e.do(http.MethodGet, "/networking/v2.0/security-groups", "fresh:fresh", nil); r.status != http.StatusOK {
		t.Fatalf("first use under a zero quota: %d %s", r.status, r.body)
	}
	d = e.details(t, "fresh", "fresh:fresh")
	if d.Quota["security_group"].Used != 1 || d.Quota["security_group"].Limit != 0 || d.Quota["security_group_rule"].Used != 4 {
		t.Fatalf("fresh details = %+v", d.Quota)
	}
}

// TestPortsCountedInDetails: a project's ports are its live servers'
// fixed IPs; a limit below them is refused.
func TestPortsCountedInDetails(t *testing.T) {
	e := newEnv(t)
	e.boot("11111111-0000-0000-0000-000000000001", "demo", "active", "h1",
		wire.Address{Network: "private", Addr: "10.0.0.2"}, wire.Address{Network: "private", Addr: "10.0.0.3"})
	if d := e.details(t, "demo", demo); d.Quota["port"].Used != 2 || d.Quota["port"].Limit != 500 {
		t.Fatalf("ports = %+v", d.Quota["port"])
	}
	r := e.do(http.MethodPut, "/networking/v2.0/quotas/demo", admin, map[string]any{"quota": map[string]any{"port": 1}})
	if typ, msg := r.fault(t, http.StatusBadRequest); typ != "HTTPBadRequest" || msg != "Quota limit 1 for port must be greater than or equal to already used 2" {
		t.Fatalf("port limit below use: %s %q", typ, msg)
	}
}

// TestConcurrentCreatesNeverExceedTheLimit: a burst of network creates of
// one project at a limit of N makes exactly N; the others are 409
// OverQuota. Each create counts under the project's quota lock in its
// own transaction.
func TestConcurrentCreatesNeverExceedTheLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		const limit, burst = 3, 12
		e.setQuota(t, "demo", map[string]any{"network": limit})
		var wg sync.WaitGroup
		statuses := make([]int, burst)
		bodies := make([]string, burst)
		for i := range burst {
			wg.Go(func() {
				// No t.Fatal off the test's goroutine: the outcome is kept.
				body := fmt.Sprintf(`{"network": {"name": "burst-%d"}}`, i)
				req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/networking/v2.0/networks", strings.NewReader(body))
				if err != nil {
					bodies[i] = err.Error()
					return
				}
				req.Header.Set("X-Auth-Token", demo)
				req.Header.Set("Content-Type", "application/json")
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					bodies[i] = err.Error()
					return
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				statuses[i], bodies[i] = resp.StatusCode, string(raw)
			})
		}
		wg.Wait()
		made := 0
		for i, st := range statuses {
			switch {
			case st == http.StatusCreated:
				made++
			case st != http.StatusConflict || !strings.Contains(bodies[i], `"type":"OverQuota"`):
				t.Errorf("create %d: %d %s", i, st, bodies[i])
			}
		}
		var n int
		if err := e.d.QueryRow(context.Background(), `SELECT COUNT(*) FROM networks WHERE project_id = 'demo'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if made != limit || n != limit {
			t.Fatalf("%d created (%d stored), want %d: %v", made, n, limit, statuses)
		}
	})
}

// FuzzQuotaBodies sends arbitrary bodies to an admin's quota update: the
// answer is the project's limits or a Neutron-shaped 4xx, never a 500.
func FuzzQuotaBodies(f *testing.F) {
	for _, s := range []string{
		`{"quota": {"network": 5, "port": -1}}`, `{"quota": {"network": "7", "subnet": 3.5, "router": true}}`,
		`{"quota": {"network": -2}}`, `{"quota": {"network": 1e400}}`, `{"quota": {"network": 99999999999999999999999}}`,
		`{"quota": {"x": 1, "force": true}}`, `{"quota": {"security_group": 0, "force": "yes"}}`, `{"quota": null}`,
		`{"quota": []}`, `{"quotas": []}`, `[]`, ``, `{"quota": {"network": [1]}}`, `{"quota": {"network": {"a": 1}}}`,
	} {
		f.Add(s)
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, body string) {
		r := e.send(t, http.MethodPut, "/networking/v2.0/quotas/demo", admin, body)
		if r.status >= 500 {
			t.Fatalf("PUT %q: %d %s", body, r.status, r.body)
		}
		if r.status >= 400 {
			r.fault(t, r.status)
		}
	})
}
