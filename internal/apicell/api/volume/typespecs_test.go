package volume_test

import (
	"context"
	"maps"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"
)

// TestExtraSpecsWithGophercloud: an admin sets, reads, updates and
// deletes extra specs; a member reads only the user-visible ones, and a
// key it may not read is not found.
func TestExtraSpecsWithGophercloud(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client("admin", "pw-admin", "admin")
	demo := e.client("demo", "pw-demo", "demo")
	gold, err := volumetypes.Create(ctx, admin, volumetypes.CreateOpts{Name: "gold"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	set, err := volumetypes.CreateExtraSpecs(ctx, admin, gold.ID, volumetypes.ExtraSpecsOpts{"volume_backend_name": "lvm", "multiattach": "<is> True"}).Extract()
	if err != nil || len(set) != 2 {
		t.Fatalf("created specs %v, %v", set, err)
	}
	all, err := volumetypes.ListExtraSpecs(ctx, admin, gold.ID).Extract()
	if err != nil || !maps.Equal(all, map[string]string{"volume_backend_name": "lvm", "multiattach": "<is> True"}) {
		t.Fatalf("admin's specs %v, %v", all, err)
	}
	mine, err := volumetypes.ListExtraSpecs(ctx, demo, gold.ID).Extract()
	if err != nil || !maps.Equal(mine, map[string]string{"multiattach": "<is> True"}) {
		t.Fatalf("member's specs %v, %v", mine, err)
	}
	if _, err := volumetypes.GetExtraSpec(ctx, demo, gold.ID, "volume_backend_name").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("member reads a sensitive spec: %v", err)
	}
	up, err := volumetypes.UpdateExtraSpec(ctx, admin, gold.ID, volumetypes.ExtraSpecsOpts{"volume_backend_name": "ceph"}).Extract()
	if err != nil || up["volume_backend_name"] != "ceph" {
		t.Fatalf("updated %v, %v", up, err)
	}
	one, err := volumetypes.GetExtraSpec(ctx, admin, gold.ID, "volume_backend_name").Extract()
	if err != nil || !maps.Equal(one, map[string]string{"volume_backend_name": "ceph"}) {
		t.Fatalf("one spec %v, %v", one, err)
	}
	if err := volumetypes.DeleteExtraSpec(ctx, admin, gold.ID, "volume_backend_name").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := volumetypes.DeleteExtraSpec(ctx, admin, gold.ID, "volume_backend_name").ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

// TestExtraSpecsAnswers: the extra specs routes' codes and Cinder's
// texts; a refusal changes no spec.
func TestExtraSpecsAnswers(t *testing.T) {
	e := newEnv(t)
	base := "/volume/v3/" + e.adminProject + "/types"
	id := e.send("POST", base, e.admin, `{"volume_type": {"name": "gold", "extra_specs": {"a": "1"}}}`).json(t, 200)["volume_type"].(map[string]any)["id"].(string)
	specs := base + "/" + id + "/extra_specs"
	// A create's answer is the body it was given.
	if got := e.send("POST", specs, e.admin, `{"extra_specs": {"b": "2"}}`).json(t, 200); !maps.Equal(got["extra_specs"].(map[string]any), map[string]any{"b": "2"}) {
		t.Fatalf("create answer %v", got)
	}
	if got := e.send("PUT", specs+"/b", e.admin, `{"b": "3"}`).json(t, 200); len(got) != 1 || got["b"] != "3" {
		t.Fatalf("update answer %v", got)
	}
	want := map[string]string{"a": "1", "b": "3"}
	demoSpecs := "/volume/v3/" + e.demoProject + "/types/" + id + "/extra_specs"
	for _, tc := range []struct {
		name, method, path, token, body string
		inUse                           bool
		status                          int
		message                         string
	}{
		{name: "no extra_specs", method: "POST", path: specs, token: e.admin, body: `{"specs": {}}`, status: 400,
			message: "'extra_specs' is a required property"},
		{name: "spaced key", method: "POST", path: specs, token: e.admin, body: `{"extra_specs": {"a b": "1"}}`, status: 400,
			message: "Invalid input for field/attribute extra_specs. Value: {'a b': '1'}. 'a b' does not match any of the regexes: '^[a-zA-Z0-9-_:.]{1,255}$'"},
		{name: "cacheable with multiattach", method: "POST", path: specs, token: e.admin, body: `{"extra_specs": {"cacheable": "<is> True", "multiattach": "<is> True"}}`, status: 400,
			message: "cacheable cannot be set with multiattach."},
		{name: "in use", method: "POST", path: specs, token: e.admin, body: `{"extra_specs": {"c": "1"}}`, inUse: true, status: 400,
			message: "Volume Type is currently in use."},
		{name: "unknown type", method: "POST", path: base + "/nope/extra_specs", token: e.admin, body: `{"extra_specs": {"c": "1"}}`, status: 404,
			message: "Volume type nope could not be found."},
		{name: "member sets", method: "POST", path: demoSpecs, token: e.demo, body: `{"extra_specs": {"c": "1"}}`, status: 403,
			message: "Policy doesn't allow volume_extension:types_extra_specs:create to be performed."},
		{name: "update mismatch", method: "PUT", path: specs + "/a", token: e.admin, body: `{"b": "1"}`, status: 400,
			message: "Request body and URI mismatch"},
		{name: "update two", method: "PUT", path: specs + "/a", token: e.admin, body: `{"a": "1", "b": "2"}`, status: 400,
			message: "{'a': '1', 'b': '2'} has too many properties"},
		{name: "update none", method: "PUT", path: specs + "/a", token: e.admin, body: `{}`, status: 400,
			message: "{} does not have enough properties"},
		{name: "update in use", method: "PUT", path: specs + "/a", token: e.admin, body: `{"a": "9"}`, inUse: true, status: 400,
			message: "Volume Type is currently in use."},
		{name: "show missing", method: "GET", path: specs + "/zz", token: e.admin, status: 404,
			message: "Volume Type " + id + " has no extra specs with key zz."},
		{name: "delete missing", method: "DELETE", path: specs + "/zz", token: e.admin, status: 404,
			message: "Volume Type " + id + " has no extra specs with key zz."},
		{name: "delete in use", method: "DELETE", path: specs + "/a", token: e.admin, inUse: true, status: 400,
			message: "Volume Type is currently in use."},
		{name: "member deletes", method: "DELETE", path: demoSpecs + "/a", token: e.demo, status: 403,
			message: "Policy doesn't allow volume_extension:types_extra_specs:delete to be performed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.usage.use(id, tc.inUse)
			defer e.usage.use(id, false)
			got := e.send(tc.method, tc.path, tc.token, tc.body)
			name := map[int]string{400: "badRequest", 403: "forbidden", 404: "itemNotFound"}[tc.status]
			if msg := got.fault(t, tc.status, name); msg != tc.message {
				t.Errorf("message %q\nwant    %q", msg, tc.message)
			}
			if now, err := e.types.Get(context.Background(), e.d, id, "", true); err != nil || !maps.Equal(now.ExtraSpecs, want) {
				t.Errorf("specs after a refusal %v, %v", now.ExtraSpecs, err)
			}
		})
	}
	if r := e.do("DELETE", specs+"/a", e.admin); r.status != 202 || len(r.body) != 0 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
}

// TestTypeAccessAnswers: access is listed for private types only, added
// and removed with 202 and no body, each repeat refused with Cinder's
// text; a public type's access does not change; an unknown action is a
// 400; each refusal leaves the list as it was.
func TestTypeAccessAnswers(t *testing.T) {
	e := newEnv(t)
	base := "/volume/v3/" + e.adminProject + "/types"
	id := e.send("POST", base, e.admin, `{"volume_type": {"name": "hidden", "os-volume-type-access:is_public": false}}`).json(t, 200)["volume_type"].(map[string]any)["id"].(string)
	action := base + "/" + id + "/action"
	add := `{"addProjectAccess": {"project": "p1"}}`
	if r := e.send("POST", action, e.admin, add); r.status != 202 || len(r.body) != 0 {
		t.Fatalf("add: %d %s", r.status, r.body)
	}
	list := e.do("GET", base+"/"+id+"/os-volume-type-access", e.admin).json(t, 200)["volume_type_access"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["project_id"] != "p1" || list[0].(map[string]any)["volume_type_id"] != id {
		t.Fatalf("access %v", list)
	}
	for _, tc := range []struct {
		name, method, path, token, body string
		status                          int
		message                         string
	}{
		{name: "add again", method: "POST", path: action, token: e.admin, body: add, status: 409,
			message: "Volume type access for " + id + " / p1 combination already exists."},
		{name: "remove missing", method: "POST", path: action, token: e.admin, body: `{"removeProjectAccess": {"project": "p2"}}`, status: 404,
			message: "Volume type access not found for " + id + " / p2 combination."},
		{name: "public type", method: "POST", path: base + "/" + "6b9f2c6e-3d0a-4f5e-9a51-0c7d8e2f4a10/action", token: e.admin, body: add, status: 400,
			message: "Invalid volume type: Type access modification is not applicable to public volume type."},
		{name: "public type's list", method: "GET", path: base + "/6b9f2c6e-3d0a-4f5e-9a51-0c7d8e2f4a10/os-volume-type-access", token: e.admin, status: 404,
			message: "Access list not available for public volume types."},
		{name: "unknown type", method: "POST", path: base + "/nope/action", token: e.admin, body: add, status: 404,
			message: "Volume type nope could not be found."},
		{name: "no project", method: "POST", path: action, token: e.admin, body: `{"addProjectAccess": {}}`, status: 400,
			message: "Invalid input for field/attribute addProjectAccess. Value: {}. 'project' is a required property"},
		{name: "empty project", method: "POST", path: action, token: e.admin, body: `{"addProjectAccess": {"project": ""}}`, status: 400,
			message: "Invalid input for field/attribute project. Value: . '' is too short"},
		{name: "unknown action", method: "POST", path: action, token: e.admin, body: `{"os-frobnicate": {}}`, status: 400,
			message: "There is no such action: os-frobnicate. Verify the request body and Content-Type header and try again."},
		{name: "member adds", method: "POST", path: "/volume/v3/" + e.demoProject + "/types/" + id + "/action", token: e.demo, body: add, status: 403,
			message: "Policy doesn't allow volume_extension:volume_type_access:addProjectAccess to be performed."},
		{name: "member lists", method: "GET", path: "/volume/v3/" + e.demoProject + "/types/" + id + "/os-volume-type-access", token: e.demo, status: 403,
			message: "Policy doesn't allow volume_extension:volume_type_access:get_all_for_type to be performed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := e.send(tc.method, tc.path, tc.token, tc.body)
			name := map[int]string{400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest"}[tc.status]
			if msg := got.fault(t, tc.status, name); msg != tc.message {
				t.Errorf("message %q\nwant    %q", msg, tc.message)
			}
			if ps, err := e.types.Access(context.Background(), e.d, id); err != nil || len(ps) != 1 || ps[0] != "p1" {
				t.Errorf("access after a refusal %v, %v", ps, err)
			}
		})
	}
	if r := e.send("POST", action, e.admin, `{"removeProjectAccess": {"project": "p1"}}`); r.status != 202 {
		t.Fatalf("remove: %d %s", r.status, r.body)
	}
	if list := e.do("GET", base+"/"+id+"/os-volume-type-access", e.admin).json(t, 200)["volume_type_access"].([]any); len(list) != 0 {
		t.Fatalf("access after the remove %v", list)
	}
}
