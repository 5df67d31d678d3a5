package compute_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cellcloud/cellcloud/internal/testtree"
)

// activeImage uploads a public image with properties and returns its id.
func activeImage(t *testing.T, tr *testtree.Tree, name string, props ...string) string {
	t.Helper()
	ctx := context.Background()
	root := strings.TrimSuffix(tr.APIURL(), "/v2.1")
	ic := &gophercloud.ServiceClient{ProviderClient: tr.Compute(admin).ProviderClient, Endpoint: root + "/image/v2/", ResourceBase: root + "/image/v2/", Type: "image"}
	vis := images.ImageVisibilityPublic
	properties := map[string]string{}
	for i := 0; i+1 < len(props); i += 2 {
		properties[props[i]] = props[i+1]
	}
	img, err := images.Create(ctx, ic, images.CreateOpts{Name: name, DiskFormat: "qcow2", ContainerFormat: "bare", Visibility: &vis,
		Properties: properties}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, ic, img.ID, bytes.NewReader([]byte("an image named "+name))).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	return img.ID
}

// TestRebuild: the rebuild action as Nova's — the fields of each
// microversion's schema, written at once (the 202 and a read right after
// show the new image), and the rebuild view of the microversion.
func TestRebuild(t *testing.T) {
	t.Parallel()
	tr := testtree.Start(t, testtree.Options{})
	sc := tr.Compute(demo)
	newImage := activeImage(t, tr, "other-os")
	for _, k := range []string{"k1", "k2"} {
		if r := tr.Do(t, http.MethodPost, "/v2.1/os-keypairs", demo, map[string]any{"keypair": map[string]any{"name": k}}); r.Status != http.StatusOK {
			t.Fatalf("create keypair %s: %s", k, r)
		}
	}
	id := create(t, tr, demo, map[string]any{"name": "r", "flavorRef": "1", "imageRef": imageID, "key_name": "k1",
		"user_data": base64.StdEncoding.EncodeToString([]byte("first"))})
	waitStatus(t, sc, id, "ACTIVE")

	rebuild := func(mv string, token string, body map[string]any) *testtree.Response {
		t.Helper()
		return tr.Do(t, http.MethodPost, "/v2.1/servers/"+id+"/action", token, map[string]any{"rebuild": body}, "X-OpenStack-Nova-API-Version", mv)
	}
	show := func() map[string]any {
		t.Helper()
		var out struct{ Server map[string]any }
		tr.Do(t, http.MethodGet, "/v2.1/servers/"+id, admin, nil, "X-OpenStack-Nova-API-Version", "2.57").JSON(t, &out)
		return out.Server
	}
	imageOf := func(s map[string]any) any {
		img, _ := s["image"].(map[string]any)
		return img["id"]
	}

	// 2.1, as an admin: the new image at once, the view without the
	// extensions (no OS-EXT-* even for an admin, no key_name).
	r := rebuild("2.1", admin, map[string]any{"imageRef": newImage, "name": "rebuilt", "adminPass": "s3cret",
		"accessIPv4": "192.0.2.4", "preserve_ephemeral": "true", "OS-DCF:diskConfig": "MANUAL",
		"personality": []any{map[string]any{"path": "/etc/motd", "contents": base64.StdEncoding.EncodeToString([]byte("hi"))}}})
	if r.Status != http.StatusAccepted {
		t.Fatalf("rebuild at 2.1: %s", r)
	}
	var rb struct{ Server map[string]any }
	r.JSON(t, &rb)
	v := rb.Server
	if imageOf(v) != newImage || v["name"] != "rebuilt" || v["adminPass"] != "s3cret" || v["accessIPv4"] != "192.0.2.4" {
		t.Errorf("rebuild view at 2.1: image %v name %v adminPass %v accessIPv4 %v", imageOf(v), v["name"], v["adminPass"], v["accessIPv4"])
	}
	for k := range v {
		if strings.HasPrefix(k, "OS-EXT-") || k == "key_name" || k == "security_groups" || k == "config_drive" ||
			strings.HasPrefix(k, "OS-SRV-USG") || k == "os-extended-volumes:volumes_attached" || k == "user_data" {
			t.Errorf("the rebuild view at 2.1 shows %s", k)
		}
	}
	for _, k := range []string{"id", "status", "tenant_id", "user_id", "metadata", "hostId", "image", "flavor", "created", "updated",
		"addresses", "accessIPv4", "accessIPv6", "links", "OS-DCF:diskConfig", "adminPass"} {
		if _, ok := v[k]; !ok {
			t.Errorf("the rebuild view at 2.1 has no %s", k)
		}
	}
	if s := show(); imageOf(s) != newImage || s["name"] != "rebuilt" {
		t.Errorf("right after the rebuild: image %v, name %v; want %s, rebuilt", imageOf(s), s["name"], newImage)
	}
	waitStatus(t, sc, id, "ACTIVE")
	if s := show(); imageOf(s) != newImage {
		t.Errorf("after the rebuild ended: image %v, want %s", imageOf(s), newImage)
	}

	// 2.57: key_name (2.54) and user_data (2.57) change; the view shows them.
	ud := base64.StdEncoding.EncodeToString([]byte("second"))
	r = rebuild("2.57", demo, map[string]any{"imageRef": imageID, "key_name": "k2", "user_data": ud, "description": "again"})
	if r.Status != http.StatusAccepted {
		t.Fatalf("rebuild at 2.57: %s", r)
	}
	r.JSON(t, &rb)
	if v := rb.Server; v["key_name"] != "k2" || v["user_data"] != ud || v["description"] != "again" || imageOf(v) != imageID {
		t.Errorf("rebuild view at 2.57: key_name %v user_data %v description %v image %v", v["key_name"], v["user_data"], v["description"], imageOf(v))
	}
	waitStatus(t, sc, id, "ACTIVE")
	// null takes the key pair and the user data away.
	r = rebuild("2.57", demo, map[string]any{"imageRef": imageID, "key_name": nil, "user_data": nil})
	if r.Status != http.StatusAccepted {
		t.Fatalf("rebuild at 2.57 with nulls: %s", r)
	}
	r.JSON(t, &rb)
	if v := rb.Server; v["key_name"] != nil || v["user_data"] != nil {
		t.Errorf("rebuild with null key_name and user_data: %v, %v", v["key_name"], v["user_data"])
	}
	waitStatus(t, sc, id, "ACTIVE")

	// Refused: each the 400 Nova's schema (or check) gives, and nothing
	// written.
	for _, c := range []struct {
		mv   string
		body map[string]any
		want string
	}{
		{"2.1", map[string]any{}, "'imageRef' is a required property"},
		{"2.1", map[string]any{"imageRef": "not-a-uuid"}, "'not-a-uuid' is not a 'uuid'"},
		{"2.1", map[string]any{"imageRef": newImage, "description": "x"}, "('description' was unexpected)"},
		{"2.53", map[string]any{"imageRef": newImage, "key_name": "k1"}, "('key_name' was unexpected)"},
		{"2.56", map[string]any{"imageRef": newImage, "user_data": ud}, "('user_data' was unexpected)"},
		{"2.57", map[string]any{"imageRef": newImage, "personality": []any{}}, "('personality' was unexpected)"},
		{"2.62", map[string]any{"imageRef": newImage, "trusted_image_certificates": nil}, "('trusted_image_certificates' was unexpected)"},
		{"2.63", map[string]any{"imageRef": newImage, "trusted_image_certificates": []string{"a"}}, "not supported"},
		{"2.54", map[string]any{"imageRef": newImage, "key_name": "nope"}, "Invalid key_name provided."},
		{"2.54", map[string]any{"imageRef": newImage, "key_name": ""}, "key_name"},
		{"2.57", map[string]any{"imageRef": newImage, "user_data": "not base64!"}, "is not a 'base64'"},
		{"2.1", map[string]any{"imageRef": newImage, "preserve_ephemeral": "maybe"}, "preserve_ephemeral"},
		{"2.1", map[string]any{"imageRef": newImage, "OS-DCF:diskConfig": "SOMETIMES"}, "OS-DCF:diskConfig"},
		{"2.1", map[string]any{"imageRef": newImage, "accessIPv4": "1.2.3"}, "'1.2.3' is not a 'ipv4'"},
		{"2.1", map[string]any{"imageRef": newImage, "accessIPv6": "1.2.3.4"}, "'1.2.3.4' is not a 'ipv6'"},
		{"2.1", map[string]any{"imageRef": newImage, "personality": []any{map[string]any{"path": "/x", "contents": "!!"}}}, "is not a 'base64'"},
		{"2.1", map[string]any{"imageRef": newImage, "personality": []any{map[string]any{"mode": "0644"}}}, "('mode' was unexpected)"},
		{"2.1", map[string]any{"imageRef": "11111111-2222-3333-4444-555555555555"}, "could not be found"},
	} {
		msg := testtree.Fault(t, rebuild(c.mv, demo, c.body), http.StatusBadRequest)
		if !strings.Contains(msg, c.want) {
			t.Errorf("rebuild at %s with %v: %q, want %q", c.mv, c.body, msg, c.want)
		}
	}
	if s := show(); imageOf(s) != imageID || s["name"] != "rebuilt" || s["key_name"] != nil || s["accessIPv4"] != "192.0.2.4" {
		t.Errorf("refused rebuilds changed the server: image %v name %v key_name %v accessIPv4 %v", imageOf(s), s["name"], s["key_name"], s["accessIPv4"])
	}
}
