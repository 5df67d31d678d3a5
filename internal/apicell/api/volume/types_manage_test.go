package volume_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"

	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
)

// typeCount is how many live types there are (to show that a refusal
// wrote nothing).
func (e *env) typeCount() int {
	e.t.Helper()
	ts, err := e.types.List(context.Background(), e.d, "", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return len(ts)
}

// TestTypesManageWithGophercloud: an admin creates a private type with
// extra specs, gives the demo project access (which then sees it, and
// only its user-visible specs), updates and deletes it, through
// gophercloud's client; a repeat of the delete is a 404.
func TestTypesManageWithGophercloud(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client("admin", "pw-admin", "admin")
	demo := e.client("demo", "pw-demo", "demo")
	private := false
	gold, err := volumetypes.Create(ctx, admin, volumetypes.CreateOpts{Name: "gold", Description: "fast", IsPublic: &private,
		ExtraSpecs: map[string]string{"volume_backend_name": "lvm", "multiattach": "<is> True"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if gold.Name != "gold" || gold.Description != "fast" || gold.IsPublic || gold.PublicAccess || gold.ExtraSpecs["volume_backend_name"] != "lvm" {
		t.Fatalf("created %+v", gold)
	}
	visible := func(c *gophercloud.ServiceClient) []string {
		pages, err := volumetypes.List(c, volumetypes.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ts, err := volumetypes.ExtractVolumeTypes(pages)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, vt := range ts {
			names = append(names, vt.Name)
		}
		return names
	}
	if got := visible(demo); len(got) != 1 || got[0] != "__DEFAULT__" {
		t.Fatalf("demo sees %v before access", got)
	}
	if _, err := volumetypes.Get(ctx, demo, gold.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("demo gets gold before access: %v", err)
	}
	if err := volumetypes.AddAccess(ctx, admin, gold.ID, volumetypes.AddAccessOpts{Project: e.demoProject}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	pages, err := volumetypes.ListAccesses(admin, gold.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := volumetypes.ExtractAccesses(pages)
	if err != nil || len(acc) != 1 || acc[0].ProjectID != e.demoProject || acc[0].VolumeTypeID != gold.ID {
		t.Fatalf("access %+v, %v", acc, err)
	}
	if got := visible(demo); len(got) != 2 || got[0] != "gold" {
		t.Fatalf("demo sees %v with access", got)
	}
	seen, err := volumetypes.Get(ctx, demo, gold.ID).Extract()
	if err != nil || len(seen.ExtraSpecs) != 1 || seen.ExtraSpecs["multiattach"] != "<is> True" {
		t.Fatalf("demo's view of gold: %+v, %v", seen, err)
	}
	name, desc, public := "platinum", "", true
	up, err := volumetypes.Update(ctx, admin, gold.ID, volumetypes.UpdateOpts{Name: &name, Description: &desc, IsPublic: &public}).Extract()
	if err != nil || up.Name != "platinum" || up.Description != "" || !up.IsPublic || up.ID != gold.ID {
		t.Fatalf("updated %+v, %v", up, err)
	}
	if err := volumetypes.Delete(ctx, admin, gold.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := volumetypes.Delete(ctx, admin, gold.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if got := visible(admin); len(got) != 1 {
		t.Fatalf("admin sees %v after the delete", got)
	}
}

// TestTypesManageAnswers: the create, update and delete of types answer
// Cinder's bodies and codes; every refusal has Cinder's text and writes
// nothing.
func TestTypesManageAnswers(t *testing.T) {
	e := newEnv(t)
	base := "/volume/v3/" + e.adminProject + "/types"
	// A create's answer: 200, types_manage's view (extra specs and
	// description null) and the access field.
	created := e.send("POST", base, e.admin, `{"volume_type": {"name": "gold", "extra_specs": {"k": "v"}}}`).json(t, 200)["volume_type"].(map[string]any)
	if created["name"] != "gold" || created["description"] != nil || created["is_public"] != true ||
		created["os-volume-type-access:is_public"] != true || created["extra_specs"].(map[string]any)["k"] != "v" {
		t.Fatalf("created %v", created)
	}
	if _, ok := created["qos_specs_id"]; ok {
		t.Fatalf("the create's view has qos_specs_id: %v", created)
	}
	goldID := created["id"].(string)
	silver := e.send("POST", base, e.admin, `{"volume_type": {"name": "silver", "description": "slow", "os-volume-type-access:is_public": "False"}}`).json(t, 200)["volume_type"].(map[string]any)
	if silver["is_public"] != false || silver["description"] != "slow" {
		t.Fatalf("silver %v", silver)
	}
	demoBase := "/volume/v3/" + e.demoProject + "/types"
	for _, tc := range []struct {
		name, method, path, token, body string
		headers                         []string
		status                          int
		message                         string
	}{
		{name: "no volume_type", method: "POST", path: base, token: e.admin, body: `{}`, status: 400,
			message: "'volume_type' is a required property"},
		{name: "empty body", method: "POST", path: base, token: e.admin, status: 400,
			message: "None is not of type 'object'"},
		{name: "not an object", method: "POST", path: base, token: e.admin, body: `{"volume_type": "x"}`, status: 400,
			message: "Invalid input for field/attribute volume_type. Value: x. 'x' is not of type 'object'"},
		{name: "no name", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"description": "d"}}`, status: 400,
			message: "Invalid input for field/attribute volume_type. Value: {'description': 'd'}. 'name' is a required property"},
		{name: "blank name", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": "  "}}`, status: 400,
			message: "An invalid 'name' value was provided. The 'name' can not be empty."},
		{name: "empty name", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": ""}}`, status: 400,
			message: "Invalid input for field/attribute name. Value: . '' is too short"},
		{name: "name not a string", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": 5}}`, status: 400,
			message: "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string'"},
		{name: "long name", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": "` + strings.Repeat("n", 256) + `"}}`, status: 400,
			message: "Invalid input for field/attribute name. Value: " + strings.Repeat("n", 256) + ". '" + strings.Repeat("n", 256) + "' is too long"},
		{name: "unknown key", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": "x", "color": "red"}}`, status: 400,
			message: "Invalid input for field/attribute volume_type. Value: {'name': 'x', 'color': 'red'}. Additional properties are not allowed ('color' was unexpected)"},
		{name: "bad spec key", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": "x", "extra_specs": {"a!": "1"}}}`, status: 400,
			message: "Invalid input for field/attribute extra_specs. Value: {'a!': '1'}. 'a!' does not match any of the regexes: '^[a-zA-Z0-9-_:. /]{1,255}$'"},
		{name: "spec not a string", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": "x", "extra_specs": {"a": 1}}}`, status: 400,
			message: "Invalid input for field/attribute a. Value: 1. 1 is not of type 'string', 'null'"},
		{name: "bad is_public", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": "x", "os-volume-type-access:is_public": 3}}`, status: 400,
			message: "Invalid input for field/attribute os-volume-type-access:is_public. Value: 3. 3 is not of type 'boolean', 'string'"},
		{name: "taken name", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": "gold"}}`, status: 409,
			message: "Volume Type gold already exists."},
		{name: "malformed", method: "POST", path: base, token: e.admin, body: `{"volume_type": `, status: 400,
			message: "Malformed request body"},
		{name: "content type", method: "POST", path: base, token: e.admin, body: `{"volume_type": {"name": "x"}}`,
			headers: []string{"Content-Type", "text/plain"}, status: 415, message: "Unsupported Content-Type"},
		{name: "member creates", method: "POST", path: demoBase, token: e.demo, body: `{"volume_type": {"name": "x"}}`, status: 403,
			message: "Policy doesn't allow volume_extension:type_create to be performed."},
		{name: "update nothing", method: "PUT", path: base + "/" + goldID, token: e.admin, body: `{"volume_type": {}}`, status: 400,
			message: "Specify volume type name, description, is_public or a combination thereof."},
		{name: "update blank name", method: "PUT", path: base + "/" + goldID, token: e.admin, body: `{"volume_type": {"name": " "}}`, status: 400,
			message: "Volume type name can not be empty."},
		{name: "update bad key", method: "PUT", path: base + "/" + goldID, token: e.admin, body: `{"volume_type": {"extra_specs": {}}}`, status: 400,
			message: "Invalid input for field/attribute volume_type. Value: {'extra_specs': {}}. Additional properties are not allowed ('extra_specs' was unexpected)"},
		{name: "update onto a name", method: "PUT", path: base + "/" + goldID, token: e.admin, body: `{"volume_type": {"name": "silver"}}`, status: 409,
			message: "Volume Type silver already exists."},
		{name: "update unknown", method: "PUT", path: base + "/0b4d8c1e-6a79-4c55-9a0e-3f1b2d7e8c90", token: e.admin, body: `{"volume_type": {"name": "y"}}`, status: 404,
			message: "Volume type 0b4d8c1e-6a79-4c55-9a0e-3f1b2d7e8c90 could not be found."},
		{name: "update by name", method: "PUT", path: base + "/gold", token: e.admin, body: `{"volume_type": {"name": "y"}}`, status: 404,
			message: "Volume type gold could not be found."},
		{name: "member updates", method: "PUT", path: demoBase + "/" + goldID, token: e.demo, body: `{"volume_type": {"name": "y"}}`, status: 403,
			message: "Policy doesn't allow volume_extension:type_update to be performed."},
		{name: "delete the default", method: "DELETE", path: base + "/" + voltypes.DefaultTypeID, token: e.admin, status: 400,
			message: "The volume type " + voltypes.DefaultTypeID + " is a default volume type and cannot be deleted."},
		{name: "delete unknown", method: "DELETE", path: base + "/nope", token: e.admin, status: 404,
			message: "Volume type nope could not be found."},
		{name: "member deletes", method: "DELETE", path: demoBase + "/" + goldID, token: e.demo, status: 403,
			message: "Policy doesn't allow volume_extension:type_delete to be performed."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.typeCount()
			got := e.send(tc.method, tc.path, tc.token, tc.body, tc.headers...)
			name := map[int]string{400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest", 415: "badMediaType"}[tc.status]
			if msg := got.fault(t, tc.status, name); msg != tc.message {
				t.Errorf("message %q\nwant    %q", msg, tc.message)
			}
			if after := e.typeCount(); after != before {
				t.Errorf("%d types after a refusal, %d before", after, before)
			}
			if tc.method == "PUT" {
				if vt, err := e.types.Get(context.Background(), e.d, goldID, "", true); err != nil || vt.Name != "gold" || !vt.IsPublic {
					t.Errorf("gold after a refused update: %+v, %v", vt, err)
				}
			}
		})
	}
	// In use: Cinder's 400, and the type stays; out of use it goes (202,
	// no body).
	e.usage.use(goldID, true)
	if msg := e.do("DELETE", base+"/"+goldID, e.admin).fault(t, 400, "badRequest"); msg != "Target volume type is still in use." {
		t.Fatalf("delete in use: %q", msg)
	}
	if e.typeCount() != 3 {
		t.Fatal("the type in use went")
	}
	e.usage.use(goldID, false)
	if r := e.do("DELETE", base+"/"+goldID, e.admin); r.status != 202 || len(r.body) != 0 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	// The update's answer: 200, the view with the new values.
	up := e.send("PUT", base+"/"+silver["id"].(string), e.admin, `{"volume_type": {"name": "bronze", "is_public": "yes"}}`).json(t, 200)["volume_type"].(map[string]any)
	if up["name"] != "bronze" || up["is_public"] != true || up["description"] != "slow" {
		t.Fatalf("updated %v", up)
	}
}

// TestTypesListFilters: without a filter an admin sees the public types
// and those its project has access to; false the private ones; "none"
// all; a member always the public ones and its own.
func TestTypesListFilters(t *testing.T) {
	e := newEnv(t)
	base := "/volume/v3/" + e.adminProject + "/types"
	id := e.send("POST", base, e.admin, `{"volume_type": {"name": "hidden", "os-volume-type-access:is_public": false}}`).json(t, 200)["volume_type"].(map[string]any)["id"].(string)
	count := func(path, token string) int {
		return len(e.do("GET", path, token).json(t, 200)["volume_types"].([]any))
	}
	for path, want := range map[string]int{base: 1, base + "?is_public=false": 1, base + "?is_public=none": 2, base + "?is_public=true": 1} {
		if got := count(path, e.admin); got != want {
			t.Errorf("%s: %d types, want %d", path, got, want)
		}
	}
	demo := "/volume/v3/" + e.demoProject + "/types"
	if got := count(demo+"?is_public=false", e.demo); got != 1 {
		t.Errorf("member with is_public=false: %d", got)
	}
	if r := e.send("POST", base+"/"+id+"/action", e.admin, `{"addProjectAccess": {"project": "`+e.demoProject+`"}}`); r.status != 202 {
		t.Fatalf("add access: %d %s", r.status, r.body)
	}
	if got := count(demo, e.demo); got != 2 {
		t.Errorf("member with access: %d", got)
	}
	if got := e.do("GET", demo+"/hidden", e.demo).json(t, 200)["volume_type"].(map[string]any); got["id"] != id {
		t.Errorf("member gets hidden by name: %v", got)
	}
}
