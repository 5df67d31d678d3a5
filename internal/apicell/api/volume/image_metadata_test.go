package volume_test

import (
	"context"
	"maps"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestVolumeImageMetadata: Cinder's os-set_image_metadata (gophercloud's
// SetImageMetadata: merged, answered whole), os-show_image_metadata and
// os-unset_image_metadata (200, no body; an absent key is Cinder's 404);
// the volume's view shows volume_image_metadata only while it has some;
// bad bodies are Cinder's 400s and write nothing; no message goes to the
// cell (the API owns the image metadata).
func TestVolumeImageMetadata(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 1})
	n0 := len(e.sent.all())
	act := func(body map[string]any) *response {
		return e.send("POST", e.demoPath("/volumes/"+id+"/action"), e.demo, body)
	}
	show := func() map[string]any {
		t.Helper()
		return act(map[string]any{"os-show_image_metadata": nil}).json(t, 200)["metadata"].(map[string]any)
	}
	if md := show(); len(md) != 0 {
		t.Errorf("a blank volume's image metadata: %v, want none", md)
	}
	if _, ok := e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil).json(t, 200)["volume"].(map[string]any)["volume_image_metadata"]; ok {
		t.Error("a blank volume shows volume_image_metadata")
	}

	vc := e.gc("demo", "pw-demo", "demo")
	ctx := context.Background()
	if err := volumes.SetImageMetadata(ctx, vc, id, volumes.ImageMetadataOpts{Metadata: map[string]string{"hw_rescue_bus": "usb", "os_distro": "cirros"}}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	got := act(map[string]any{"os-set_image_metadata": map[string]any{"metadata": map[string]any{"os_distro": "debian", "a/b c": "x"}}}).json(t, 200)["metadata"]
	want := map[string]any{"hw_rescue_bus": "usb", "os_distro": "debian", "a/b c": "x"}
	if m, _ := got.(map[string]any); !maps.Equal(m, want) {
		t.Errorf("set answered %v, want %v", got, want)
	}
	if md := show(); !maps.Equal(md, want) {
		t.Errorf("show: %v, want %v", md, want)
	}
	v, err := volumes.Get(ctx, vc, id).Extract()
	if err != nil || v.VolumeImageMetadata["os_distro"] != "debian" || len(v.VolumeImageMetadata) != 3 {
		t.Errorf("the volume's view: %v %v", v.VolumeImageMetadata, err)
	}

	for _, tc := range []struct {
		name   string
		body   map[string]any
		status int
		msg    string
	}{
		{"no metadata", map[string]any{"os-set_image_metadata": map[string]any{}}, 400, "Invalid input for field/attribute os-set_image_metadata. Value: {}. 'metadata' is a required property"},
		{"bad key", map[string]any{"os-set_image_metadata": map[string]any{"metadata": map[string]any{"a*b": "x"}}}, 400, `Invalid input for field/attribute metadata. Value: {"a*b":"x"}. Additional properties are not allowed ('a*b' was unexpected)`},
		{"not a string", map[string]any{"os-set_image_metadata": map[string]any{"metadata": map[string]any{"k": 1}}}, 400, "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"},
		{"extra", map[string]any{"os-set_image_metadata": map[string]any{"metadata": map[string]any{}, "x": 1}}, 400, `Invalid input for field/attribute os-set_image_metadata. Value: {"metadata":{},"x":1}. Additional properties are not allowed ('x' was unexpected)`},
		{"unset no key", map[string]any{"os-unset_image_metadata": map[string]any{}}, 400, "Invalid input for field/attribute os-unset_image_metadata. Value: {}. 'key' is a required property"},
		{"unset absent", map[string]any{"os-unset_image_metadata": map[string]any{"key": "nope"}}, 404, "Glance metadata for volume/snapshot " + id + " cannot be found."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := map[int]string{400: "badRequest", 404: "itemNotFound"}[tc.status]
			if msg := act(tc.body).fault(t, tc.status, name); msg != tc.msg {
				t.Errorf("%q, want %q", msg, tc.msg)
			}
		})
	}
	if md := show(); !maps.Equal(md, want) {
		t.Errorf("refusals changed the image metadata: %v", md)
	}

	for _, k := range []string{"hw_rescue_bus", "os_distro", "a/b c"} {
		act(map[string]any{"os-unset_image_metadata": map[string]any{"key": k}}).empty(t, 200)
	}
	if md := show(); len(md) != 0 {
		t.Errorf("after unsetting every key: %v", md)
	}
	if _, ok := e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil).json(t, 200)["volume"].(map[string]any)["volume_image_metadata"]; ok {
		t.Error("a volume whose image metadata was all unset still shows volume_image_metadata")
	}
	if n := len(e.sent.all()); n != n0 {
		t.Errorf("image metadata actions sent %d messages to the cell, want none", n-n0)
	}
}
