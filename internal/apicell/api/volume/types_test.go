package volume_test

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"
)

func TestTypesWithGophercloud(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client("demo", "pw-demo", "demo")
	pages, err := volumetypes.List(c, volumetypes.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	types, err := volumetypes.ExtractVolumeTypes(pages)
	if err != nil {
		t.Fatal(err)
	}
	if len(types) != 1 || types[0].Name != "__DEFAULT__" || types[0].Description != "Default Volume Type" || !types[0].IsPublic || !types[0].PublicAccess {
		t.Fatalf("types %+v", types)
	}
	def := types[0]
	for _, id := range []string{def.ID, "__DEFAULT__", "default"} {
		got, err := volumetypes.Get(ctx, c, id).Extract()
		if err != nil || got.ID != def.ID || got.Name != "__DEFAULT__" {
			t.Errorf("get %s: %+v, %v", id, got, err)
		}
	}
}

func TestTypesView(t *testing.T) {
	e := newEnv(t)
	demo, admin := "/volume/v3/"+e.demoProject, "/volume/v3/"+e.adminProject
	// A member sees the user-visible extra specs only (none here) and not
	// the QoS specs id; an admin sees both.
	member := e.do("GET", demo+"/types/default", e.demo).json(t, 200)["volume_type"].(map[string]any)
	if specs, ok := member["extra_specs"].(map[string]any); !ok || len(specs) != 0 {
		t.Errorf("a member's extra_specs: %v", member)
	}
	if _, ok := member["qos_specs_id"]; ok {
		t.Errorf("a member sees qos_specs_id: %v", member)
	}
	byAdmin := e.do("GET", admin+"/types/default", e.admin).json(t, 200)["volume_type"].(map[string]any)
	if specs, ok := byAdmin["extra_specs"].(map[string]any); !ok || len(specs) != 0 {
		t.Errorf("an admin's view: %v", byAdmin)
	}
	if q, ok := byAdmin["qos_specs_id"]; !ok || q != nil {
		t.Errorf("an admin's view: %v", byAdmin)
	}

	for _, tc := range []struct {
		name, path, token string
		status, count     int
		message           string
	}{
		{name: "member list", path: demo + "/types", token: e.demo, status: 200, count: 1},
		{name: "member asks for private ones: ignored", path: demo + "/types?is_public=false", token: e.demo, status: 200, count: 1},
		{name: "member with a bad filter: ignored", path: demo + "/types?is_public=maybe", token: e.demo, status: 200, count: 1},
		{name: "admin private", path: admin + "/types?is_public=false", token: e.admin, status: 200, count: 0},
		{name: "admin public", path: admin + "/types?is_public=yes", token: e.admin, status: 200, count: 1},
		{name: "admin both", path: admin + "/types?is_public=None", token: e.admin, status: 200, count: 1},
		{name: "admin bad filter", path: admin + "/types?is_public=maybe", token: e.admin, status: 400, message: "Invalid is_public filter [maybe]"},
		{name: "unknown id", path: demo + "/types/0b4d8c1e-6a79-4c55-9a0e-3f1b2d7e8c90", token: e.demo, status: 404,
			message: "Volume type 0b4d8c1e-6a79-4c55-9a0e-3f1b2d7e8c90 could not be found."},
		{name: "unknown name", path: demo + "/types/gold", token: e.demo, status: 404,
			message: "Volume type with name gold could not be found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, tc.token)
			switch tc.status {
			case 200:
				if got := r.json(t, 200)["volume_types"].([]any); len(got) != tc.count {
					t.Errorf("%d types, want %d: %s", len(got), tc.count, r.body)
				}
			default:
				name := map[int]string{400: "badRequest", 404: "itemNotFound"}[tc.status]
				if msg := r.fault(t, tc.status, name); msg != tc.message {
					t.Errorf("message %q, want %q", msg, tc.message)
				}
			}
		})
	}
}
