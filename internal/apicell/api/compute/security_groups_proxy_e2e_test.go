package compute_test

import (
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/secgroups"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestSecurityGroupProxyAPIs: os-security-groups and os-security-group-rules
// below 2.36, in Nova's format; 404 from 2.36.
func TestSecurityGroupProxyAPIs(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)

	g, err := secgroups.Create(ctx, sc, secgroups.CreateOpts{Name: "db", Description: "databases"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "db" || g.Description != "databases" || g.TenantID != "demo" || len(g.Rules) != 0 {
		t.Errorf("created %+v", g)
	}
	if _, err := secgroups.Create(ctx, sc, secgroups.CreateOpts{Name: "default", Description: "d"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Errorf("create a group named default: %v", err)
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/os-security-groups", demo, map[string]any{"security_group": map[string]any{"name": "x"}}); r.Status != http.StatusBadRequest {
		t.Errorf("create without a description: %s", r)
	}
	pages, err := secgroups.List(sc).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := secgroups.ExtractSecurityGroups(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Name != "db" || all[1].Name != "default" {
		t.Errorf("list: %+v", all)
	}
	if _, err := secgroups.Update(ctx, sc, g.ID, secgroups.UpdateOpts{Name: "db2", Description: new("")}).Extract(); err != nil {
		t.Errorf("update: %v", err)
	}
	got, err := secgroups.Get(ctx, sc, g.ID).Extract()
	if err != nil || got.Name != "db2" || got.Description != "" {
		t.Errorf("get after update: %+v, %v", got, err)
	}
	if r := tr.Do(t, http.MethodGet, "/v2.1/os-security-groups/not-a-uuid", demo, nil); faultMessage(t, r, http.StatusBadRequest) != "Security group id should be uuid" {
		t.Errorf("show a bad id: %s", r)
	}
	if _, err := secgroups.Get(ctx, tr.Compute(other), g.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("another project's group: %v", err)
	}

	// Rules: a port range from a CIDR, all TCP from a group; Nova's checks.
	rl, err := secgroups.CreateRule(ctx, sc, secgroups.CreateRuleOpts{ParentGroupID: g.ID, IPProtocol: "TCP", FromPort: 5432, ToPort: 5433, CIDR: "192.168.0.0/16"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if rl.FromPort != 5432 || rl.ToPort != 5433 || rl.IPProtocol != "tcp" || rl.IPRange.CIDR != "192.168.0.0/16" || rl.ParentGroupID != g.ID {
		t.Errorf("rule %+v", rl)
	}
	fromGroup := tr.Do(t, http.MethodPost, "/v2.1/os-security-group-rules", demo, map[string]any{"security_group_rule": map[string]any{
		"parent_group_id": g.ID, "group_id": g.ID, "ip_protocol": "udp"}})
	if fromGroup.Status != http.StatusOK {
		t.Fatalf("rule from a group: %s", fromGroup)
	}
	var fg struct {
		Rule struct {
			FromPort int               `json:"from_port"`
			ToPort   int               `json:"to_port"`
			Group    map[string]string `json:"group"`
		} `json:"security_group_rule"`
	}
	fromGroup.JSON(t, &fg)
	if fg.Rule.FromPort != 1 || fg.Rule.ToPort != 65535 || fg.Rule.Group["name"] != "db2" {
		t.Errorf("rule from a group: %s", fromGroup.Body)
	}
	for _, c := range []struct {
		rule map[string]any
		want string
	}{
		{map[string]any{"ip_protocol": "TCP", "from_port": 5432, "to_port": 5433, "cidr": "192.168.0.0/16"}, "This rule already exists in group " + g.ID},
		{map[string]any{"ip_protocol": "tcp", "from_port": 90, "to_port": 80}, "Invalid port range 90:80. Former value cannot be greater than the later"},
		{map[string]any{"ip_protocol": "gre", "from_port": 1, "to_port": 2}, "Invalid IP protocol gre."},
		{map[string]any{"ip_protocol": "tcp"}, "Not enough parameters to build a valid rule."},
		{map[string]any{"ip_protocol": "tcp", "from_port": 1, "to_port": 2, "cidr": "bogus"}, "bogus is not a valid IP network."},
	} {
		c.rule["parent_group_id"] = g.ID
		r := tr.Do(t, http.MethodPost, "/v2.1/os-security-group-rules", demo, map[string]any{"security_group_rule": c.rule})
		if msg := faultMessage(t, r, http.StatusBadRequest); msg != c.want {
			t.Errorf("rule %v: %q, want %q", c.rule, msg, c.want)
		}
	}
	if err := secgroups.DeleteRule(ctx, sc, rl.ID).ExtractErr(); err != nil {
		t.Errorf("delete rule: %v", err)
	}
	if err := secgroups.DeleteRule(ctx, sc, rl.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("delete a deleted rule: %v", err)
	}

	// From 2.36 the proxy APIs are gone; a server's groups are not.
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v2.1/os-security-groups"}, {http.MethodGet, "/v2.1/os-security-groups/" + g.ID},
		{http.MethodDelete, "/v2.1/os-security-groups/" + g.ID}, {http.MethodDelete, "/v2.1/os-security-group-rules/" + rl.ID},
	} {
		if r := tr.Do(t, c.method, c.path, demo, nil, atVersion("2.36")...); r.Status != http.StatusNotFound {
			t.Errorf("%s %s at 2.36: %s", c.method, c.path, r)
		}
		if r := tr.Do(t, c.method, c.path, demo, nil, atVersion("2.35")...); r.Status == http.StatusNotFound && c.method == http.MethodGet {
			t.Errorf("%s %s at 2.35: %s", c.method, c.path, r)
		}
	}
	if err := secgroups.Delete(ctx, sc, g.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("delete after the 2.35 delete: %v", err)
	}
}

// TestSecurityGroupProxyQuota: the proxies are held to the Networking
// quotas, as Nova's calls to Neutron are: over a project's security group
// or rule limit, Nova's SecurityGroupLimitExceeded (403) with Neutron's
// message, and nothing written.
func TestSecurityGroupProxyQuota(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(other)
	// The default group (made on first use: 1 group, 4 rules) and one more
	// group with its 2 egress rules, and one rule more.
	if r := tr.Do(t, http.MethodPut, "/networking/v2.0/quotas/other", admin, map[string]any{"quota": map[string]any{
		"security_group": 2, "security_group_rule": 7}}); r.Status != http.StatusOK {
		t.Fatalf("set the quota: %s", r)
	}
	g, err := secgroups.Create(ctx, sc, secgroups.CreateOpts{Name: "web", Description: "w"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	_, err = secgroups.Create(ctx, sc, secgroups.CreateOpts{Name: "db", Description: "d"}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("a group over quota: %v, want 403", err)
	}
	if r := tr.Do(t, http.MethodPost, "/v2.1/os-security-groups", other, map[string]any{"security_group": map[string]any{"name": "db", "description": "d"}}); faultMessage(t, r, http.StatusForbidden) != "Quota exceeded for resources: ['security_group']." {
		t.Errorf("over quota: %s", r)
	}
	if _, err := secgroups.CreateRule(ctx, sc, secgroups.CreateRuleOpts{ParentGroupID: g.ID, IPProtocol: "tcp", FromPort: 22, ToPort: 22, CIDR: "0.0.0.0/0"}).Extract(); err != nil {
		t.Fatalf("the last rule the quota allows: %v", err)
	}
	r := tr.Do(t, http.MethodPost, "/v2.1/os-security-group-rules", other, map[string]any{"security_group_rule": map[string]any{
		"parent_group_id": g.ID, "ip_protocol": "tcp", "from_port": 80, "to_port": 80, "cidr": "0.0.0.0/0"}})
	if faultMessage(t, r, http.StatusForbidden) != "Quota exceeded for resources: ['security_group_rule']." {
		t.Errorf("a rule over quota: %s", r)
	}
	pages, err := secgroups.List(sc).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := secgroups.ExtractSecurityGroups(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Errorf("%d groups after the refusals, want 2: %+v", len(all), all)
	}
	for _, x := range all {
		if x.ID == g.ID && len(x.Rules) != 1 {
			t.Errorf("group web has %d rules (ingress, as Nova shows them), want 1", len(x.Rules))
		}
	}
}
