package compute_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/secgroups"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// groupNames are the names a server view's security_groups lists (nil when
// the view has none).
func groupNames(t *testing.T, tr *testtree.Tree, token, id string) []string {
	t.Helper()
	r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, token, nil)
	if r.Status != http.StatusOK {
		t.Fatalf("show %s: %s", id, r)
	}
	var out struct {
		Server struct {
			SecurityGroups []struct{ Name string } `json:"security_groups"`
		}
	}
	r.JSON(t, &out)
	var names []string
	for _, g := range out.Server.SecurityGroups {
		names = append(names, g.Name)
	}
	return names
}

// faultMessage is the message of a Compute API fault answered with status.
func faultMessage(t *testing.T, r *testtree.Response, status int) string {
	t.Helper()
	if r.Status != status {
		t.Fatalf("want %d, got %s", status, r)
	}
	for _, v := range r.Map(t) {
		if f, ok := v.(map[string]any); ok {
			msg, _ := f["message"].(string)
			return msg
		}
	}
	t.Fatalf("no fault in %s", r)
	return ""
}

// TestServerSecurityGroups: a create names its security groups by name or
// id among its project's (none: the project's default group, made on
// first use); an unknown one, or another project's, is a 400 and nothing
// is created. The server view lists the groups' names; addSecurityGroup
// and removeSecurityGroup change them (Nova's errors: 404 for a group not
// found or not the server's); GET /servers/{id}/os-security-groups shows
// them in Nova's format. A group a live server is in cannot be deleted
// (Neutron's 409, the proxy's 400) until the server is deleted.
func TestServerSecurityGroups(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)

	web, err := secgroups.Create(ctx, sc, secgroups.CreateOpts{Name: "web", Description: "web servers"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := secgroups.Create(ctx, tr.Compute(other), secgroups.CreateOpts{Name: "theirs", Description: "theirs"}).Extract()
	if err != nil {
		t.Fatal(err)
	}

	// By name, with the create's answer echoing the request.
	byName, err := servers.Create(ctx, sc, servers.CreateOpts{Name: "a", FlavorRef: "1", ImageRef: imageID, SecurityGroups: []string{"web"}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if len(byName.SecurityGroups) != 1 || byName.SecurityGroups[0]["name"] != "web" {
		t.Errorf("create answered security_groups %v, want [web]", byName.SecurityGroups)
	}
	if got := groupNames(t, tr, demo, byName.ID); !slices.Equal(got, []string{"web"}) {
		t.Errorf("by name: groups %v, want [web]", got)
	}
	// The server's port (once it has an address) has its groups' ids.
	waitStatus(t, sc, byName.ID, "ACTIVE")
	var ports struct {
		Ports []struct {
			SecurityGroups []string `json:"security_groups"`
		} `json:"ports"`
	}
	tr.Do(t, http.MethodGet, "/networking/v2.0/ports?device_id="+byName.ID, demo, nil).JSON(t, &ports)
	if len(ports.Ports) != 1 || !slices.Equal(ports.Ports[0].SecurityGroups, []string{web.ID}) {
		t.Errorf("ports of %s: %+v, want one with [%s]", byName.ID, ports.Ports, web.ID)
	}
	// By id, twice in one request (once), with default.
	byID := create(t, tr, demo, map[string]any{"name": "b", "flavorRef": "1", "imageRef": imageID,
		"security_groups": []map[string]any{{"name": web.ID}, {"name": "web"}, {"name": "default"}, {}}})
	if got := groupNames(t, tr, demo, byID); !slices.Equal(got, []string{"default", "web"}) {
		t.Errorf("by id and default: groups %v, want [default web]", got)
	}
	// None asked for: the default group; max_count 2: both.
	r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "c", "flavorRef": "1", "imageRef": imageID, "max_count": 2, "return_reservation_id": true}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("create 2: %s", r)
	}
	var plain []string
	for _, s := range listAll(t, tr, demo, "?name=^c-") {
		plain = append(plain, s["id"].(string))
		if got := groupNames(t, tr, demo, s["id"].(string)); !slices.Equal(got, []string{"default"}) {
			t.Errorf("no groups asked: groups %v, want [default]", got)
		}
	}
	if len(plain) != 2 {
		t.Fatalf("max_count 2 made %d servers", len(plain))
	}
	// A detailed list shows them too.
	for _, s := range listAll(t, tr, demo, "") {
		if s["id"] == byID {
			if sg, _ := s["security_groups"].([]any); len(sg) != 2 {
				t.Errorf("list: security_groups %v, want two", s["security_groups"])
			}
		}
	}

	// Unknown, another project's (by id and name): 400, nothing created.
	before := len(listAll(t, tr, admin, "?all_tenants=1"))
	for _, name := range []string{"nope", theirs.ID, "theirs"} {
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
			"name": "x", "flavorRef": "1", "imageRef": imageID, "security_groups": []map[string]any{{"name": "web"}, {"name": name}}}})
		if msg := faultMessage(t, r, http.StatusBadRequest); msg != "Unable to find security_group with name or id '"+name+"'" {
			t.Errorf("create with group %q: message %q", name, msg)
		}
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "x", "flavorRef": "1", "imageRef": imageID, "security_groups": []map[string]any{{"id": "web"}}}}); r.Status != http.StatusBadRequest {
		t.Errorf("security_groups entry with an id key: %s", r)
	}
	if after := len(listAll(t, tr, admin, "?all_tenants=1")); after != before {
		t.Errorf("refused creates made servers: %d before, %d after", before, after)
	}
	// Two groups of one name: 409 by name, fine by id.
	dup, err := secgroups.Create(ctx, sc, secgroups.CreateOpts{Name: "web", Description: "another"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	r = tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": map[string]any{
		"name": "x", "flavorRef": "1", "imageRef": imageID, "security_groups": []map[string]any{{"name": "web"}}}})
	if msg := faultMessage(t, r, http.StatusConflict); !strings.Contains(msg, "Multiple security_group matches found for name 'web'") {
		t.Errorf("ambiguous name: %q", msg)
	}
	if err := secgroups.Delete(ctx, sc, dup.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}

	// addSecurityGroup and removeSecurityGroup.
	action := func(id string, body map[string]any) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", demo, body)
	}
	if err := secgroups.AddServer(ctx, sc, byName.ID, "default").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := secgroups.AddServer(ctx, sc, byName.ID, "default").ExtractErr(); err != nil {
		t.Errorf("adding a group twice: %v", err)
	}
	if got := groupNames(t, tr, demo, byName.ID); !slices.Equal(got, []string{"default", "web"}) {
		t.Errorf("after add: groups %v, want [default web]", got)
	}
	if msg := faultMessage(t, action(byName.ID, map[string]any{"addSecurityGroup": map[string]any{"name": "theirs"}}), http.StatusNotFound); msg != "Security group theirs is not found for project demo" {
		t.Errorf("add another project's group: %q", msg)
	}
	if msg := faultMessage(t, action(byName.ID, map[string]any{"addSecurityGroup": map[string]any{"name": "  "}}), http.StatusBadRequest); msg != "Security group name cannot be empty" {
		t.Errorf("add blank name: %q", msg)
	}
	if r := action(byName.ID, map[string]any{"addSecurityGroup": map[string]any{}}); r.Status != http.StatusBadRequest {
		t.Errorf("add without a name: %s", r)
	}
	if err := secgroups.RemoveServer(ctx, sc, byName.ID, "web").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if msg := faultMessage(t, action(byName.ID, map[string]any{"removeSecurityGroup": map[string]any{"name": "web"}}), http.StatusNotFound); msg != "Security group web not associated with the instance "+byName.ID {
		t.Errorf("remove a group the server is not in: %q", msg)
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/servers/"+byName.ID+"/action", other, map[string]any{"addSecurityGroup": map[string]any{"name": "theirs"}}); r.Status != http.StatusNotFound {
		t.Errorf("add to another project's server: %s", r)
	}

	// GET /servers/{id}/os-security-groups: Nova's format, ingress rules only.
	if _, err := secgroups.CreateRule(ctx, sc, secgroups.CreateRuleOpts{ParentGroupID: web.ID, IPProtocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "10.0.0.0/8"}).Extract(); err != nil {
		t.Fatal(err)
	}
	pages, err := secgroups.ListByServer(sc, byID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listed, err := secgroups.ExtractSecurityGroups(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 || listed[0].Name != "default" || listed[1].Name != "web" {
		t.Fatalf("os-security-groups of %s: %+v", byID, listed)
	}
	if rules := listed[1].Rules; len(rules) != 1 || rules[0].FromPort != 22 || rules[0].IPRange.CIDR != "10.0.0.0/8" || rules[0].IPProtocol != "tcp" {
		t.Errorf("web's rules: %+v", rules)
	}
	// The default group's ingress rules are from the group itself.
	for _, rl := range listed[0].Rules {
		if rl.Group.Name != "default" || rl.Group.TenantID != "demo" {
			t.Errorf("default's rule: %+v", rl)
		}
	}

	// In use: Neutron's 409, the proxy's 400; gone with the servers.
	r = tr.Do(t, http.MethodDelete, "/networking/v2.0/security-groups/"+web.ID, demo, nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "SecurityGroupInUse") {
		t.Errorf("delete a group in use: %s", r)
	}
	if err := secgroups.Delete(ctx, sc, web.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Errorf("proxy delete of a group in use: %v", err)
	}
	deleteAll(t, tr, demo, []string{byID})
	if r := tr.Do(t, http.MethodDelete, "/networking/v2.0/security-groups/"+web.ID, demo, nil); r.Status != http.StatusNoContent {
		t.Errorf("delete a group no live server is in: %s", r)
	}
	deleteAll(t, tr, demo, append(plain, byName.ID))
}
