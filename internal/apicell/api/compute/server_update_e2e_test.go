package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// TestServerUpdate renames a server and sets its access IPs with
// gophercloud, its description (2.19) raw, checks the answer is Nova's
// update view, and that each bad input is a 400 naming the field with
// nothing written.
func TestServerUpdate(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	ctx := ctxT(t)
	sc := tr.Compute(demo)
	id := create(t, tr, demo, map[string]any{"name": "before", "flavorRef": "1", "imageRef": imageID})
	waitStatus(t, sc, id, "ACTIVE")

	s, err := servers.Update(ctx, sc, id, servers.UpdateOpts{Name: "after", AccessIPv4: "192.0.2.10", AccessIPv6: "2001:db8::10"}).Extract()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if s.Name != "after" || s.AccessIPv4 != "192.0.2.10" || s.AccessIPv6 != "2001:db8::10" || s.ID != id || s.Status != "ACTIVE" {
		t.Errorf("update answered name %q access %q %q id %s status %s", s.Name, s.AccessIPv4, s.AccessIPv6, s.ID, s.Status)
	}
	got, err := servers.Get(ctx, sc, id).Extract()
	if err != nil || got.Name != "after" || got.AccessIPv4 != "192.0.2.10" || got.AccessIPv6 != "2001:db8::10" {
		t.Errorf("get after update: %+v, %v", got, err)
	}

	put := func(token, ver string, body any) *testtree.Response {
		return tr.Do(t, http.MethodPut, "/v2.1/servers/"+id, token, body, atVersion(ver)...)
	}
	view := func(r *testtree.Response) map[string]any {
		t.Helper()
		if r.Status != http.StatusOK {
			t.Fatalf("update: %s", r)
		}
		var out struct {
			Server map[string]any `json:"server"`
		}
		r.JSON(t, &out)
		return out.Server
	}

	// The update view before 2.75 leaves out the extended attributes and
	// shows plain addresses.
	v := view(put(demo, "2.1", map[string]any{"server": map[string]any{"name": "after"}}))
	for _, k := range []string{"OS-EXT-STS:vm_state", "OS-EXT-AZ:availability_zone", "key_name", "security_groups", "OS-SRV-USG:launched_at", "config_drive"} {
		if _, ok := v[k]; ok {
			t.Errorf("the update view has %s", k)
		}
	}
	for _, k := range []string{"locked", "description", "tags"} {
		if _, ok := v[k]; ok {
			t.Errorf("the update view at 2.1 has %s", k)
		}
	}
	if addrs, _ := v["addresses"].(map[string]any); len(addrs) != 1 || !strings.Contains(mustJSON(addrs), `"addr"`) || strings.Contains(mustJSON(addrs), "OS-EXT-IPS") {
		t.Errorf("update view addresses %s", mustJSON(v["addresses"]))
	}

	// description, from 2.19: set, shown, emptied, cleared.
	ver := needMicroversion(t, 26)
	v = view(put(demo, "2.19", map[string]any{"server": map[string]any{"description": "the db"}}))
	if v["description"] != "the db" || v["locked"] != false {
		t.Errorf("2.19 update view: description %#v locked %#v", v["description"], v["locked"])
	}
	if _, ok := v["tags"]; ok {
		t.Error("the update view at 2.19 has tags")
	}
	show := func(ver string) map[string]any {
		var out struct {
			Server map[string]any `json:"server"`
		}
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, demo, nil, atVersion(ver)...).JSON(t, &out)
		return out.Server
	}
	if d := show("2.19")["description"]; d != "the db" {
		t.Errorf("description at 2.19 = %#v", d)
	}
	if _, ok := show("2.18")["description"]; ok {
		t.Error("description shown at 2.18")
	}
	if v := view(put(demo, ver, map[string]any{"server": map[string]any{"description": ""}})); v["description"] != "" || v["tags"] == nil {
		t.Errorf("empty description: %#v, tags %#v", v["description"], v["tags"])
	}
	if v := view(put(demo, "2.19", map[string]any{"server": map[string]any{"description": nil}})); v["description"] != nil {
		t.Errorf("null description: %#v", v["description"])
	}
	if d, ok := show("2.19")["description"]; !ok || d != nil {
		t.Errorf("description after clearing = %#v (present %v), want null", d, ok)
	}

	// Bad input: a 400 naming the field, and nothing written.
	long := strings.Repeat("x", 256)
	for _, c := range []struct {
		ver  string
		body any
		want string
	}{
		{"2.1", map[string]any{"server": map[string]any{"name": ""}}, "name"},
		{"2.1", map[string]any{"server": map[string]any{"name": " padded"}}, "name"},
		{"2.1", map[string]any{"server": map[string]any{"name": long}}, "name"},
		{"2.1", map[string]any{"server": map[string]any{"name": 7}}, "Invalid input for field/attribute name. Value: 7. 7 is not of type 'string'"},
		{"2.1", map[string]any{"server": map[string]any{"accessIPv4": "300.1.2.3"}}, "Invalid input for field/attribute accessIPv4. Value: 300.1.2.3. '300.1.2.3' is not a 'ipv4'"},
		{"2.1", map[string]any{"server": map[string]any{"accessIPv4": "2001:db8::1"}}, "accessIPv4"},
		{"2.1", map[string]any{"server": map[string]any{"accessIPv6": "192.0.2.1"}}, "Invalid input for field/attribute accessIPv6. Value: 192.0.2.1. '192.0.2.1' is not a 'ipv6'"},
		{"2.1", map[string]any{"server": map[string]any{"OS-DCF:diskConfig": "SOMETIMES"}}, "OS-DCF:diskConfig"},
		{"2.1", map[string]any{"server": map[string]any{"description": "x"}}, "Additional properties are not allowed ('description' was unexpected)"},
		{"2.19", map[string]any{"server": map[string]any{"description": long}}, "Invalid input for field/attribute description"},
		{"2.19", map[string]any{"server": map[string]any{"description": "bell\a"}}, "Invalid input for field/attribute description"},
		{"2.19", map[string]any{"server": map[string]any{"description": 5}}, "Invalid input for field/attribute description"},
		{"2.1", map[string]any{"server": map[string]any{"name": "ok", "flavorRef": "2"}}, "Additional properties are not allowed ('flavorRef' was unexpected)"},
		{"2.1", map[string]any{"server": "after"}, "Invalid input for field/attribute server"},
		{"2.1", map[string]any{"name": "after"}, "'server' is a required property"},
		{"2.1", map[string]any{"server": map[string]any{}, "extra": 1}, "Additional properties are not allowed ('extra' was unexpected)"},
		{"2.1", "{not json", "Malformed request body"},
	} {
		faultHas(t, put(demo, c.ver, c.body), http.StatusBadRequest, c.want)
	}
	got, _ = servers.Get(ctx, sc, id).Extract()
	if got.Name != "after" || got.AccessIPv4 != "192.0.2.10" || got.AccessIPv6 != "2001:db8::10" {
		t.Errorf("bad updates wrote: name %q access %q %q", got.Name, got.AccessIPv4, got.AccessIPv6)
	}

	// Another project's server, and no server at all, are 404s.
	_, err = servers.Update(ctx, tr.Compute(other), id, servers.UpdateOpts{Name: "mine"}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Errorf("other project's update: %v, want a 404", err)
	}
	faultHas(t, tr.Do(t, http.MethodPut, "/v2.1/servers/00000000-0000-0000-0000-000000000000", demo,
		map[string]any{"server": map[string]any{"name": "x"}}), http.StatusNotFound, "could not be found")
}
