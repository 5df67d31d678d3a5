package network_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
)

func listGroups(t *testing.T, sc *gophercloud.ServiceClient, opts groups.ListOpts) []groups.SecGroup {
	t.Helper()
	pages, err := groups.List(sc, opts).AllPages(context.Background())
	if err != nil {
		t.Fatalf("list security groups %+v: %v", opts, err)
	}
	out, err := groups.ExtractGroups(pages)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// groupsOf counts a project's groups, and its default ones, in the
// database.
func (e *env) groupsOf(project string) (all, defaults int) {
	e.t.Helper()
	ctx := context.Background()
	if err := e.d.QueryRow(ctx, `SELECT COUNT(*) FROM security_groups WHERE project_id = ?`, project).Scan(&all); err != nil {
		e.t.Fatal(err)
	}
	if err := e.d.QueryRow(ctx, `SELECT COUNT(*) FROM security_groups WHERE project_id = ? AND is_default = 1`, project).Scan(&defaults); err != nil {
		e.t.Fatal(err)
	}
	return all, defaults
}

// neutronError checks that err is a gophercloud error with status and
// Neutron's fault type and message.
func neutronError(t *testing.T, err error, status int, typ, msg string) {
	t.Helper()
	if !gophercloud.ResponseCodeIs(err, status) {
		t.Fatalf("error %v; want status %d", err, status)
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	if !asUnexpected(err, &ue) {
		t.Fatalf("error %T %v", err, err)
	}
	r := &response{status: ue.Actual, body: ue.Body}
	gotType, gotMsg := r.fault(t, status)
	if gotType != typ || gotMsg != msg {
		t.Fatalf("fault %s %q; want %s %q", gotType, gotMsg, typ, msg)
	}
}

func asUnexpected(err error, ue *gophercloud.ErrUnexpectedResponseCode) bool {
	for err != nil {
		if u, ok := err.(gophercloud.ErrUnexpectedResponseCode); ok {
			*ue = u
			return true
		}
		if u, ok := err.(*gophercloud.ErrUnexpectedResponseCode); ok {
			*ue = *u
			return true
		}
		w, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = w.Unwrap()
	}
	return false
}

func TestDefaultSecurityGroupOnFirstUse(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		sc := e.client(demo)
		if all, _ := e.groupsOf("demo"); all != 0 {
			t.Fatalf("demo has %d groups before any use", all)
		}
		// The first list makes the default group, with Neutron's rules.
		gs := listGroups(t, sc, groups.ListOpts{})
		if len(gs) != 1 {
			t.Fatalf("groups = %+v", gs)
		}
		g := gs[0]
		if g.Name != "default" || g.Description != "Default security group" || !g.Stateful || g.ProjectID != "demo" ||
			g.TenantID != "demo" || g.RevisionNumber != 1 || len(g.Rules) != 4 || g.CreatedAt.IsZero() {
			t.Fatalf("default group = %+v", g)
		}
		var got []string
		for _, r := range g.Rules {
			if r.SecGroupID != g.ID || r.ProjectID != "demo" || r.Protocol != "" || r.PortRangeMin != 0 || r.RemoteIPPrefix != "" {
				t.Errorf("default rule %+v", r)
			}
			got = append(got, r.Direction+"/"+r.EtherType+"/"+r.RemoteGroupID)
		}
		slices.Sort(got)
		want := []string{"egress/IPv4/", "egress/IPv6/", "ingress/IPv4/" + g.ID, "ingress/IPv6/" + g.ID}
		if !slices.Equal(got, want) {
			t.Fatalf("default rules = %v; want %v", got, want)
		}
		// Raw: the fields gophercloud does not parse.
		var out struct {
			Rules []map[string]any `json:"security_group_rules"`
		}
		e.do(http.MethodGet, "/networking/v2.0/security-group-rules?direction=ingress", demo, nil).json(t, &out)
		if len(out.Rules) != 2 || out.Rules[0]["belongs_to_default_sg"] != true || out.Rules[0]["normalized_cidr"] != nil ||
			out.Rules[0]["remote_address_group_id"] != nil {
			t.Fatalf("ingress rules = %v", out.Rules)
		}

		// Later uses make no other.
		listGroups(t, sc, groups.ListOpts{})
		if _, err := rules.List(sc, rules.ListOpts{}).AllPages(context.Background()); err != nil {
			t.Fatal(err)
		}
		if all, defaults := e.groupsOf("demo"); all != 1 || defaults != 1 {
			t.Fatalf("demo has %d groups, %d default", all, defaults)
		}

		// Listing rules first makes it too.
		pages, err := rules.List(e.client("u:p2"), rules.ListOpts{}).AllPages(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rs, _ := rules.ExtractRules(pages); len(rs) != 4 {
			t.Fatalf("p2's first rules = %+v", rs)
		}

		// An admin listing every project's makes only its own; with a
		// project filter, that project's (as Neutron). A member naming
		// another project makes none.
		listGroups(t, e.client(admin), groups.ListOpts{})
		if all, _ := e.groupsOf("p3"); all != 0 {
			t.Fatal("admin's list made a default group for another project")
		}
		listGroups(t, sc, groups.ListOpts{ProjectID: "p3"})
		if all, _ := e.groupsOf("p3"); all != 0 {
			t.Fatal("demo's list made p3's default group")
		}
		if gs := listGroups(t, e.client(admin), groups.ListOpts{ProjectID: "p3"}); len(gs) != 1 || gs[0].Name != "default" {
			t.Fatalf("admin's list of p3 = %+v", gs)
		}
		if all, _ := e.groupsOf("admin"); all != 1 {
			t.Fatalf("admin has %d groups", all)
		}
	})
}

func TestDefaultSecurityGroupConcurrentFirstUse(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		const n = 8
		var wg sync.WaitGroup
		statuses := make([]int, 2*n)
		for i := range 2 * n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				path := "/networking/v2.0/security-groups"
				if i%2 == 1 {
					path = "/networking/v2.0/security-group-rules"
				}
				statuses[i] = e.send(t, http.MethodGet, path, "u:racer", nil).status
			}()
		}
		wg.Wait()
		for i, s := range statuses {
			if s != http.StatusOK {
				t.Errorf("request %d: status %d", i, s)
			}
		}
		if all, defaults := e.groupsOf("racer"); all != 1 || defaults != 1 {
			t.Fatalf("racer has %d groups, %d default; want one", all, defaults)
		}
		if got := e.count("security_group_rules"); got != 4 {
			t.Fatalf("%d rules; want the default group's 4", got)
		}
	})
}

func TestSecurityGroupCRUD(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		g, err := groups.Create(ctx, sc, groups.CreateOpts{Name: "web", Description: "web servers"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if g.Name != "web" || g.Description != "web servers" || !g.Stateful || g.ProjectID != "demo" || g.RevisionNumber != 1 ||
			len(g.Rules) != 2 || len(g.Tags) != 0 {
			t.Fatalf("created %+v", g)
		}
		for _, r := range g.Rules {
			if r.Direction != "egress" || r.RemoteGroupID != "" {
				t.Errorf("a new group's rule %+v; want egress only", r)
			}
		}
		// The create made the project's default group first.
		if all, defaults := e.groupsOf("demo"); all != 2 || defaults != 1 {
			t.Fatalf("demo has %d groups, %d default", all, defaults)
		}

		got, err := groups.Get(ctx, sc, g.ID).Extract()
		if err != nil || got.ID != g.ID || len(got.Rules) != 2 {
			t.Fatalf("get = %+v, %v", got, err)
		}

		// Update with the right revision, then with a stale one.
		one, desc, stateless := 1, "front", false
		u, err := groups.Update(ctx, sc, g.ID, groups.UpdateOpts{Name: "www", Description: &desc, Stateful: &stateless, RevisionNumber: &one}).Extract()
		if err != nil || u.Name != "www" || u.Description != "front" || u.Stateful || u.RevisionNumber != 2 {
			t.Fatalf("update = %+v, %v", u, err)
		}
		_, err = groups.Update(ctx, sc, g.ID, groups.UpdateOpts{Name: "x", RevisionNumber: &one}).Extract()
		neutronError(t, err, http.StatusPreconditionFailed, "HTTPPreconditionFailed", "Constrained to 1, but current revision is 2")
		if got, _ := groups.Get(ctx, sc, g.ID).Extract(); got.Name != "www" {
			t.Fatalf("a refused update wrote: %+v", got)
		}
		// An update that changes nothing keeps the revision.
		if u, err := groups.Update(ctx, sc, g.ID, groups.UpdateOpts{Name: "www"}).Extract(); err != nil || u.RevisionNumber != 2 {
			t.Fatalf("no-op update = %+v, %v", u, err)
		}
		// Bad If-Match values.
		r := e.doHeader(http.MethodPut, "/networking/v2.0/security-groups/"+g.ID, demo, map[string]any{"security_group": map[string]any{}},
			"If-Match", "revision_number=x")
		if typ, msg := r.fault(t, http.StatusBadRequest); typ != "BadRequest" ||
			msg != "Bad if-match request: Revision number etag must be in the format of revision_number=<int>" {
			t.Fatalf("bad if-match: %s %s", typ, msg)
		}
		r = e.doHeader(http.MethodPut, "/networking/v2.0/security-groups/"+g.ID, demo, map[string]any{"security_group": map[string]any{}},
			"If-Match", `"revision_number=2", "revision_number=2"`)
		if typ, _ := r.fault(t, http.StatusBadRequest); typ != "BadRequest" {
			t.Fatalf("two revision etags: %s", typ)
		}
		// Quoted, and a delete's.
		r = e.doHeader(http.MethodDelete, "/networking/v2.0/security-groups/"+g.ID, demo, nil, "If-Match", `"revision_number=1"`)
		r.fault(t, http.StatusPreconditionFailed)

		// The default group: not renamed, not deleted by its project; no
		// other group is called default.
		def := listGroups(t, sc, groups.ListOpts{Name: "default"})[0]
		_, err = groups.Update(ctx, sc, def.ID, groups.UpdateOpts{Name: "mine"}).Extract()
		neutronError(t, err, http.StatusConflict, "SecurityGroupCannotUpdateDefault", "Updating default security group not allowed.")
		newDesc := "ours"
		if u, err := groups.Update(ctx, sc, def.ID, groups.UpdateOpts{Description: &newDesc}).Extract(); err != nil || u.Description != "ours" {
			t.Fatalf("describe default = %+v, %v", u, err)
		}
		err = groups.Delete(ctx, sc, def.ID).ExtractErr()
		neutronError(t, err, http.StatusConflict, "SecurityGroupCannotRemoveDefault", "Insufficient rights for removing default security group.")
		_, err = groups.Create(ctx, sc, groups.CreateOpts{Name: "Default"}).Extract()
		neutronError(t, err, http.StatusConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")
		_, err = groups.Update(ctx, sc, g.ID, groups.UpdateOpts{Name: "default"}).Extract()
		neutronError(t, err, http.StatusConflict, "SecurityGroupDefaultAlreadyExists", "Default security group already exists.")

		if err := groups.Delete(ctx, sc, g.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		_, err = groups.Get(ctx, sc, g.ID).Extract()
		neutronError(t, err, http.StatusNotFound, "SecurityGroupNotFound", fmt.Sprintf("Security group %s does not exist", g.ID))
		if all, _ := e.groupsOf("demo"); all != 1 || e.count("security_group_rules") != 4 {
			t.Fatalf("after delete: %d groups, %d rules", all, e.count("security_group_rules"))
		}

		// An admin may delete a project's default group; the project's
		// next use makes a new one.
		if err := groups.Delete(ctx, e.client(admin), def.ID).ExtractErr(); err != nil {
			t.Fatalf("admin deletes default: %v", err)
		}
		if gs := listGroups(t, sc, groups.ListOpts{}); len(gs) != 1 || gs[0].ID == def.ID || gs[0].Name != "default" {
			t.Fatalf("after the default's delete: %+v", gs)
		}

		// Bad bodies.
		for _, c := range []struct {
			body      any
			status    int
			typ, msg  string
			method, p string
		}{
			{map[string]any{"security_group": map[string]any{"name": "a", "rules": 1}}, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'rules'", "", ""},
			{map[string]any{"security_group": map[string]any{"name": 5}}, 400, "HTTPBadRequest", "Invalid input for name. Reason: '5' is not a valid string.", "", ""},
			{map[string]any{"security_group": map[string]any{"stateful": "maybe"}}, 400, "InvalidInput", "Invalid input for stateful. Reason: 'maybe' cannot be converted to boolean.", "", ""},
			{map[string]any{"security_group": map[string]any{"id": "x"}}, 400, "HTTPBadRequest", "Attribute 'id' not allowed in POST", "", ""},
			{map[string]any{"security_group": map[string]any{"project_id": "other"}}, 400, "HTTPBadRequest", "Specifying 'project_id' other than the authenticated project in request is not allowed for the current user.", "", ""},
			{map[string]any{"security_group": map[string]any{"project_id": "demo"}}, 400, "HTTPBadRequest", "Cannot update read-only attribute project_id", "PUT", "/" + gs0(t, sc)},
			{map[string]any{"security_groups": []any{}}, 400, "HTTPBadRequest", "Bulk operation not supported", "", ""},
		} {
			before := e.count("security_groups")
			method, path := http.MethodPost, "/networking/v2.0/security-groups"
			if c.method != "" {
				method, path = c.method, path+c.p
			}
			typ, msg := e.do(method, path, demo, c.body).fault(t, c.status)
			if typ != c.typ || msg != c.msg {
				t.Errorf("%v: %s %q; want %s %q", c.body, typ, msg, c.typ, c.msg)
			}
			if e.count("security_groups") != before {
				t.Errorf("%v: a group was written", c.body)
			}
		}
	})
}

// gs0 is the caller's first group's id.
func gs0(t *testing.T, sc *gophercloud.ServiceClient) string {
	return listGroups(t, sc, groups.ListOpts{})[0].ID
}

func TestSecurityGroupProjectIsolation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		demoC, otherC := e.client(demo), e.client(other)
		g, err := groups.Create(ctx, demoC, groups.CreateOpts{Name: "mine"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		gs := listGroups(t, otherC, groups.ListOpts{})
		if len(gs) != 1 || gs[0].ProjectID != "other" {
			t.Fatalf("other sees %+v", gs)
		}
		nf := fmt.Sprintf("Security group %s does not exist", g.ID)
		_, err = groups.Get(ctx, otherC, g.ID).Extract()
		neutronError(t, err, http.StatusNotFound, "SecurityGroupNotFound", nf)
		_, err = groups.Update(ctx, otherC, g.ID, groups.UpdateOpts{Name: "theirs"}).Extract()
		neutronError(t, err, http.StatusNotFound, "SecurityGroupNotFound", nf)
		neutronError(t, groups.Delete(ctx, otherC, g.ID).ExtractErr(), http.StatusNotFound, "SecurityGroupNotFound", nf)
		if _, err := attributestags.List(ctx, otherC, "security-groups", g.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("other lists demo's tags: %v", err)
		}

		// Rules: not in demo's group, not naming it as remote; nothing
		// written.
		before := e.count("security_group_rules")
		_, err = rules.Create(ctx, otherC, rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: g.ID}).Extract()
		neutronError(t, err, http.StatusNotFound, "SecurityGroupNotFound", nf)
		own := listGroups(t, otherC, groups.ListOpts{})[0]
		_, err = rules.Create(ctx, otherC, rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4, SecGroupID: own.ID,
			RemoteGroupID: g.ID}).Extract()
		neutronError(t, err, http.StatusNotFound, "SecurityGroupNotFound", nf)
		if e.count("security_group_rules") != before {
			t.Fatal("a refused rule was written")
		}
		demoRule := g.Rules[0].ID
		_, err = rules.Get(ctx, otherC, demoRule).Extract()
		neutronError(t, err, http.StatusNotFound, "SecurityGroupRuleNotFound", fmt.Sprintf("Security group rule %s does not exist", demoRule))
		neutronError(t, rules.Delete(ctx, otherC, demoRule).ExtractErr(), http.StatusNotFound, "SecurityGroupRuleNotFound",
			fmt.Sprintf("Security group rule %s does not exist", demoRule))
		pages, err := rules.List(otherC, rules.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := rules.ExtractRules(pages)
		for _, r := range rs {
			if r.ProjectID != "other" {
				t.Fatalf("other sees rule %+v", r)
			}
		}

		// Admins see every project's, and may add a rule to demo's group,
		// which demo then sees.
		all := listGroups(t, e.client(admin), groups.ListOpts{})
		if len(all) != 4 { // demo's two, other's and admin's default
			t.Fatalf("admin sees %d groups", len(all))
		}
		ar, err := rules.Create(ctx, e.client(admin), rules.CreateOpts{Direction: rules.DirIngress, EtherType: rules.EtherType4,
			SecGroupID: g.ID, Protocol: rules.ProtocolTCP, PortRangeMin: 443, PortRangeMax: 443}).Extract()
		if err != nil || ar.ProjectID != "admin" {
			t.Fatalf("admin's rule = %+v, %v", ar, err)
		}
		if got, err := rules.Get(ctx, demoC, ar.ID).Extract(); err != nil || got.ID != ar.ID {
			t.Fatalf("demo gets the rule in its group: %+v, %v", got, err)
		}
	})
}

func TestSecurityGroupTagsAndFilters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		sc := e.client(demo)
		var ids []string
		for _, name := range []string{"b", "a", "c"} {
			g, err := groups.Create(ctx, sc, groups.CreateOpts{Name: name}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, g.ID)
		}
		tags, err := attributestags.ReplaceAll(ctx, sc, "security-groups", ids[0], attributestags.ReplaceAllOpts{Tags: []string{"red", "blue"}}).Extract()
		if err != nil || !slices.Equal(tags, []string{"red", "blue"}) {
			t.Fatalf("replace = %v, %v", tags, err)
		}
		if err := attributestags.Add(ctx, sc, "security-groups", ids[1], "red").ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if ok, err := attributestags.Confirm(ctx, sc, "security-groups", ids[1], "red").Extract(); err != nil || !ok {
			t.Fatalf("confirm = %v, %v", ok, err)
		}
		if ok, _ := attributestags.Confirm(ctx, sc, "security-groups", ids[1], "blue").Extract(); ok {
			t.Fatal("confirm of a tag it lacks")
		}
		if g, _ := groups.Get(ctx, sc, ids[0]).Extract(); g.RevisionNumber != 2 || len(g.Tags) != 2 {
			t.Fatalf("tagged group = %+v", g)
		}
		for _, c := range []struct {
			opts groups.ListOpts
			want []string
		}{
			{groups.ListOpts{Tags: "red"}, []string{"a", "b"}},
			{groups.ListOpts{Tags: "red,blue"}, []string{"b"}},
			{groups.ListOpts{TagsAny: "blue,green"}, []string{"b"}},
			{groups.ListOpts{NotTags: "red,blue"}, []string{"a", "c", "default"}},
			{groups.ListOpts{NotTagsAny: "red"}, []string{"c", "default"}},
			{groups.ListOpts{Name: "c"}, []string{"c"}},
			{groups.ListOpts{SortKey: "name", SortDir: "desc"}, []string{"default", "c", "b", "a"}},
			{groups.ListOpts{SortKey: "name", SortDir: "asc", Limit: 1}, []string{"a", "b", "c", "default"}},
			{groups.ListOpts{SortKey: "name", SortDir: "desc", Limit: 3}, []string{"default", "c", "b", "a"}},
		} {
			var got []string
			for _, g := range listGroups(t, sc, c.opts) {
				got = append(got, g.Name)
			}
			if c.opts.SortKey == "" {
				slices.Sort(got)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("list %+v = %v; want %v", c.opts, got, c.want)
			}
		}
		if err := attributestags.Delete(ctx, sc, "security-groups", ids[0], "red").ExtractErr(); err != nil {
			t.Fatal(err)
		}
		err = attributestags.Delete(ctx, sc, "security-groups", ids[0], "red").ExtractErr()
		neutronError(t, err, http.StatusNotFound, "TagNotFound", "Tag red could not be found.")
		if err := attributestags.DeleteAll(ctx, sc, "security-groups", ids[1]).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if tags, err := attributestags.List(ctx, sc, "security-groups", ids[1]).Extract(); err != nil || len(tags) != 0 {
			t.Fatalf("after delete all: %v, %v", tags, err)
		}
		r := e.do(http.MethodPut, "/networking/v2.0/security-groups/"+ids[2]+"/tags", demo, map[string]any{"tags": []string{"x", "x"}})
		if typ, msg := r.fault(t, http.StatusBadRequest); typ != "InvalidInput" || msg != "Invalid input for operation: Duplicate items in the list: 'x'." {
			t.Fatalf("duplicate tags: %s %q", typ, msg)
		}

		// Filters on the other attributes, and fields=.
		var out struct {
			Groups []map[string]any `json:"security_groups"`
		}
		e.do(http.MethodGet, "/networking/v2.0/security-groups?stateful=true&name=a&fields=id&fields=name", demo, nil).json(t, &out)
		if len(out.Groups) != 1 || len(out.Groups[0]) != 2 || out.Groups[0]["name"] != "a" {
			t.Fatalf("fields = %v", out.Groups)
		}
		if typ, msg := e.do(http.MethodGet, "/networking/v2.0/security-groups?color=red", demo, nil).fault(t, http.StatusBadRequest); typ != "HTTPBadRequest" ||
			msg != "['color'] is invalid attribute for filtering" {
			t.Fatalf("unknown filter: %s %q", typ, msg)
		}
	})
}

// Updates racing at the same If-Match revision: one wins, the others are
// 412s (the group's row is held from the check to the write).
func TestSecurityGroupIfMatchRace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		g, err := groups.Create(ctx, e.client(demo), groups.CreateOpts{Name: "g"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		const n = 6
		statuses := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = e.sendHeader(t, http.MethodPut, "/networking/v2.0/security-groups/"+g.ID, demo,
					map[string]any{"security_group": map[string]any{"description": fmt.Sprint("writer ", i)}},
					http.Header{"If-Match": {"revision_number=1"}}).status
			}()
		}
		wg.Wait()
		won := 0
		for _, s := range statuses {
			switch s {
			case http.StatusOK:
				won++
			case http.StatusPreconditionFailed:
			default:
				t.Errorf("status %d", s)
			}
		}
		if got, _ := groups.Get(ctx, e.client(demo), g.ID).Extract(); won != 1 || got.RevisionNumber != 2 {
			t.Fatalf("%d updates won, revision %d; want 1 and 2", won, got.RevisionNumber)
		}
	})
}
