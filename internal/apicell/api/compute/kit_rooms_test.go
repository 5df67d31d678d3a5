package compute

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// registered is a router with every room's routes on it.
func registered(t *testing.T) *router {
	t.Helper()
	rt := registerRooms(http.NewServeMux(), &base{})
	if len(rt.rules) == 0 {
		t.Fatal("no room registered a route")
	}
	return rt
}

// TestRoomRulesExist: every policy rule a room names (a route's and a
// server action's) is one of Rules, or every call to it would be a 403.
func TestRoomRulesExist(t *testing.T) {
	known := map[string]bool{}
	for _, r := range Rules {
		known[r.Name] = true
	}
	for pattern, rule := range registered(t).rules {
		if rule != "" && !known[rule] {
			t.Errorf("%s names rule %q, which is not in Rules (policies.go)", pattern, rule)
		}
	}
	for key, rule := range actionRules {
		if !known[rule] {
			t.Errorf("server action %s names rule %q, which is not in Rules (policies.go)", key, rule)
		}
	}
}

// wildcard is a route pattern's {name} or {name...} or {$}.
var wildcard = regexp.MustCompile(`\{[^}]*\}`)

// TestRoomSegmentsAreResources: the first path segment under /v2.1 of every
// registered route is a resource, never read as a project id, with or
// without a project id before it; and the segments the API took as
// resources before they were derived from the rooms still are.
func TestRoomSegmentsAreResources(t *testing.T) {
	rt := registered(t)
	for pattern := range rt.rules {
		seg := firstSegment(pattern)
		if seg == "" {
			continue
		}
		if !rt.resources[seg] {
			t.Errorf("%s: first segment %q is not a resource", pattern, seg)
		}
		_, p, _ := strings.Cut(pattern, " ")
		p = wildcard.ReplaceAllString(p, "x")
		if got, project := splitProject(p, rt.resources); got != p || project != "" {
			t.Errorf("splitProject(%q) = %q, %q; want the path and no project", p, got, project)
		}
		withProject := "/v2.1/p1/" + p[len("/v2.1/"):]
		if got, project := splitProject(withProject, rt.resources); got != p || project != "p1" {
			t.Errorf("splitProject(%q) = %q, %q; want %q, \"p1\"", withProject, got, project, p)
		}
	}
	// The hand-kept list the derived set replaced: behaviour unchanged.
	for _, seg := range []string{
		"servers", "flavors", "images", "limits", "extensions", "os-keypairs",
		"os-hypervisors", "os-services", "os-hosts", "os-quota-sets", "os-availability-zone",
		"os-aggregates", "os-server-groups", "os-simple-tenant-usage", "os-instance-usage-audit-log", "os-instance_usage_audit_log",
		"os-cells", "os-migrations", "os-security-groups", "os-volumes", "os-quota-class-sets",
	} {
		if !rt.resources[seg] {
			t.Errorf("%q is no longer a resource", seg)
		}
	}
	if got, project := splitProject("/v2.1/p1", rt.resources); got != "/v2.1/" || project != "p1" {
		t.Errorf("splitProject(/v2.1/p1) = %q, %q", got, project)
	}
}

// TestReservedResourcesHaveNoRoom: a reserved segment is one no room
// serves yet; once a room registers it, it leaves reservedResources.
func TestReservedResourcesHaveNoRoom(t *testing.T) {
	rt := registered(t)
	for pattern := range rt.rules {
		if seg := firstSegment(pattern); slices.Contains(reservedResources, seg) {
			t.Errorf("%s is served by a room: remove %q from reservedResources", pattern, seg)
		}
	}
}

// TestFirstSegment: a pattern's first segment under /v2.1.
func TestFirstSegment(t *testing.T) {
	for pattern, want := range map[string]string{
		"GET /v2.1/servers":                 "servers",
		"GET /v2.1/os-hosts/{host}/reboot":  "os-hosts",
		"/v2.1/flavors/{id}":                "flavors",
		"GET /v2.1/{$}":                     "",
		"GET /v2.1":                         "",
		"GET /{$}":                          "",
		"PUT /v2.1/os-quota-sets/{project}": "os-quota-sets",
	} {
		if got := firstSegment(pattern); got != want {
			t.Errorf("firstSegment(%q) = %q, want %q", pattern, got, want)
		}
	}
}
