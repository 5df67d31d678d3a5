package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerHostname is microversion 2.90 as Nova's: hostname on create
// (gophercloud), update (gophercloud) and rebuild (raw), each refused as
// an unexpected property at 2.89; a bad one, or one given to several
// servers, refused with Nova's 400 and nothing written; the hostname made
// from the name at create and kept by a rename; and
// OS-EXT-SRV-ATTR:hostname shown to a member from 2.90 only (show, the
// detailed list, update and rebuild answers), and filtered on.
func TestServerHostname(t *testing.T) {
	t.Parallel()
	v := needMicroversion(t, 90)
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	sc.Microversion = v

	// Below 2.90 hostname is no property of create, update or rebuild.
	body := map[string]any{"server": map[string]any{"name": "h", "flavorRef": "1", "imageRef": imageID, "hostname": "h1"}}
	faultHas(t, tr.Do(t, http.MethodPost, "/v2.1/servers", demo, body, atVersion("2.89")...), 400,
		"Invalid input for field/attribute server. Additional properties are not allowed ('hostname' was unexpected)")

	// Bad hostnames, and one for several servers: Nova's 400s.
	const pattern = "'^[a-zA-Z0-9]+[a-zA-Z0-9-]*[a-zA-Z0-9]+$'"
	long := strings.Repeat("h", 64)
	for _, c := range []struct {
		name  string
		extra map[string]any
		want  string
	}{
		{"leading hyphen", map[string]any{"hostname": "-ab"}, "Invalid input for field/attribute hostname. Value: -ab. '-ab' does not match " + pattern},
		{"one character", map[string]any{"hostname": "a"}, "Invalid input for field/attribute hostname. Value: a. 'a' does not match " + pattern},
		{"a dot", map[string]any{"hostname": "a.example"}, "Invalid input for field/attribute hostname. Value: a.example. 'a.example' does not match " + pattern},
		{"64 characters", map[string]any{"hostname": long}, "Invalid input for field/attribute hostname. Value: " + long + ". '" + long + "' is too long"},
		{"not a string", map[string]any{"hostname": 5}, "Invalid input for field/attribute hostname. Value: 5. 5 is not of type 'string'"},
		{"max_count 2", map[string]any{"hostname": "web", "max_count": 2}, "Unable to allocate a single hostname to multiple instances"},
		{"min_count 2", map[string]any{"hostname": "web", "min_count": 2}, "Unable to allocate a single hostname to multiple instances"},
	} {
		s := map[string]any{"name": "bad", "flavorRef": "1", "imageRef": imageID, "networks": "auto"}
		for k, x := range c.extra {
			s[k] = x
		}
		r := tr.Do(t, http.MethodPost, "/v2.1/servers", demo, map[string]any{"server": s}, atVersion(v)...)
		if msg := testtree.Fault(t, r, http.StatusBadRequest); msg != c.want {
			t.Errorf("%s: %q, want %q", c.name, msg, c.want)
		}
	}
	if got := listAll(t, tr, demo, ""); len(got) != 0 {
		t.Fatalf("refused creates left %d servers", len(got))
	}

	// A hostname given, with gophercloud.
	s, err := servers.Create(ctx, sc, servers.CreateOpts{Name: "Named Server", FlavorRef: "1", ImageRef: imageID, Networks: "auto", Hostname: "given-host"}, nil).Extract()
	if err != nil {
		t.Fatalf("create with a hostname: %v", err)
	}
	given := s.ID
	// None given: the name's (Nova's sanitize_hostname).
	s, err = servers.Create(ctx, sc, servers.CreateOpts{Name: "My Web_Server.1", FlavorRef: "1", ImageRef: imageID, Networks: "auto"}, nil).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	derived := s.ID
	waitStatus(t, sc, given, "ACTIVE")
	waitStatus(t, sc, derived, "ACTIVE")

	hostnameAt := func(id, ver string) (string, bool) {
		t.Helper()
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, demo, nil, atVersion(ver)...)
		var out struct {
			Server map[string]any `json:"server"`
		}
		if r.Status != http.StatusOK {
			t.Fatalf("show at %s: %s", ver, r)
		}
		r.JSON(t, &out)
		h, ok := out.Server["OS-EXT-SRV-ATTR:hostname"]
		hs, _ := h.(string)
		return hs, ok
	}
	if h, ok := hostnameAt(given, "2.89"); ok {
		t.Errorf("a member sees the hostname %q at 2.89", h)
	}
	if h, _ := hostnameAt(given, v); h != "given-host" {
		t.Errorf("hostname given: %q", h)
	}
	if h, _ := hostnameAt(derived, v); h != "my-web-server-1" {
		t.Errorf("hostname from the name: %q", h)
	}
	got, err := servers.Get(ctx, sc, derived).Extract()
	if err != nil || got.Hostname == nil || *got.Hostname != "my-web-server-1" {
		t.Errorf("gophercloud show at %s: hostname %v, %v", v, got.Hostname, err)
	}
	// The detailed list has it too.
	pages, err := servers.List(sc, servers.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	all, _ := servers.ExtractServers(pages)
	for _, x := range all {
		if x.Hostname == nil || *x.Hostname == "" {
			t.Errorf("detailed list: server %s without a hostname", x.ID)
		}
	}

	// A rename keeps the hostname (Nova's update changes display_name
	// only); an update with a hostname sets it and answers it.
	u, err := servers.Update(ctx, sc, derived, servers.UpdateOpts{Name: "renamed"}).Extract()
	if err != nil || u.Name != "renamed" || u.Hostname == nil || *u.Hostname != "my-web-server-1" {
		t.Errorf("rename: %+v, %v", u, err)
	}
	newHost := "set-by-update"
	u, err = servers.Update(ctx, sc, derived, servers.UpdateOpts{Hostname: &newHost}).Extract()
	if err != nil || u.Hostname == nil || *u.Hostname != newHost {
		t.Errorf("update with a hostname: %+v, %v", u, err)
	}
	put := func(ver string, server map[string]any) *testtree.Response {
		return tr.Do(t, http.MethodPut, "/v2.1/servers/"+derived, demo, map[string]any{"server": server}, atVersion(ver)...)
	}
	faultHas(t, put("2.89", map[string]any{"hostname": "x1"}), 400, "Additional properties are not allowed ('hostname' was unexpected)")
	if msg := testtree.Fault(t, put(v, map[string]any{"name": "not-written", "hostname": "bad_host"}), 400); msg !=
		"Invalid input for field/attribute hostname. Value: bad_host. 'bad_host' does not match "+pattern {
		t.Errorf("bad hostname on update: %q", msg)
	}
	if h, _ := hostnameAt(derived, v); h != newHost {
		t.Errorf("after refused updates the hostname is %q", h)
	}
	if got, err := servers.Get(ctx, sc, derived).Extract(); err != nil || got.Name != "renamed" {
		t.Errorf("after refused updates: %+v, %v", got, err)
	}

	// Rebuild: hostname from 2.90, in the 202's view.
	rebuild := func(ver string, reb map[string]any) *testtree.Response {
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+given+"/action", demo, map[string]any{"rebuild": reb}, atVersion(ver)...)
	}
	faultHas(t, rebuild("2.89", map[string]any{"imageRef": imageID, "hostname": "x1"}), 400,
		"Invalid input for field/attribute rebuild. Additional properties are not allowed ('hostname' was unexpected)")
	if msg := testtree.Fault(t, rebuild(v, map[string]any{"imageRef": imageID, "hostname": "x"}), 400); msg !=
		"Invalid input for field/attribute hostname. Value: x. 'x' does not match "+pattern {
		t.Errorf("bad hostname on rebuild: %q", msg)
	}
	if h, _ := hostnameAt(given, v); h != "given-host" {
		t.Errorf("after refused rebuilds the hostname is %q", h)
	}
	r := rebuild(v, map[string]any{"imageRef": imageID, "hostname": "rebuilt-host", "name": "also renamed"})
	if r.Status != http.StatusAccepted {
		t.Fatalf("rebuild with a hostname: %s", r)
	}
	var rb struct {
		Server map[string]any `json:"server"`
	}
	r.JSON(t, &rb)
	if rb.Server["OS-EXT-SRV-ATTR:hostname"] != "rebuilt-host" || rb.Server["name"] != "also renamed" {
		t.Errorf("rebuild view: hostname %v name %v", rb.Server["OS-EXT-SRV-ATTR:hostname"], rb.Server["name"])
	}
	waitStatus(t, sc, given, "ACTIVE")
	if h, _ := hostnameAt(given, v); h != "rebuilt-host" {
		t.Errorf("after the rebuild the hostname is %q", h)
	}

	// A member filters on hostname from 2.90 (before, Nova drops the
	// filter for a member).
	listAt := func(ver, query string) []map[string]any {
		t.Helper()
		r := tr.Do(t, http.MethodGet, "/v2.1/servers/detail"+query, demo, nil, atVersion(ver)...)
		var out struct {
			Servers []map[string]any `json:"servers"`
		}
		if r.Status != http.StatusOK {
			t.Fatalf("list at %s: %s", ver, r)
		}
		r.JSON(t, &out)
		return out.Servers
	}
	if got := listAt(v, "?hostname=^rebuilt"); len(got) != 1 || got[0]["id"] != given {
		t.Errorf("hostname filter at 2.90: %v", got)
	}
	if got := listAt("2.89", "?hostname=^rebuilt"); len(got) != 2 {
		t.Errorf("hostname filter of a member at 2.89 (dropped): %d servers", len(got))
	}
}

// TestServerHostnameMultiCreate: several servers made by one request have
// their name's hostname numbered as their names are (Nova's
// _populate_instance_names), and a name with nothing left of it gives
// "Server-{uuid}".
func TestServerHostnameMultiCreate(t *testing.T) {
	t.Parallel()
	v := needMicroversion(t, 90)
	tr := testtree.Start(t, testtree.Options{})
	create(t, tr, demo, map[string]any{"name": "Web", "flavorRef": "1", "imageRef": imageID, "min_count": 2})
	id := create(t, tr, demo, map[string]any{"name": "***", "flavorRef": "1", "imageRef": imageID})
	got := map[string]string{}
	r := tr.Do(t, http.MethodGet, "/v2.1/servers/detail", demo, nil, atVersion(v)...)
	var out struct {
		Servers []map[string]any `json:"servers"`
	}
	r.JSON(t, &out)
	for _, s := range out.Servers {
		got[s["name"].(string)], _ = s["OS-EXT-SRV-ATTR:hostname"].(string)
	}
	if got["Web-1"] != "web-1" || got["Web-2"] != "web-2" || got["***"] != "Server-"+id {
		t.Errorf("hostnames by name: %v", got)
	}
}
