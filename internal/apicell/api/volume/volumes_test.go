package volume_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/volume"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
)

// TestVolumeCreateBlank: a blank volume is written as the copy
// (creating, no cell, version 0) and volume_create goes to the API cell's
// own path in the same transaction; the cell's first state makes it
// available in its cell. The view is Cinder's for each version.
func TestVolumeCreateBlank(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	r := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": map[string]any{
		"size": 2, "name": " data ", "description": "d", "metadata": map[string]string{"k": "v"}}})
	v := r.json(t, 202)["volume"].(map[string]any)
	id := v["id"].(string)
	for k, want := range map[string]any{"status": "creating", "size": float64(2), "name": "data", "description": "d",
		"bootable": "false", "volume_type": "__DEFAULT__", "availability_zone": "nova", "encrypted": false,
		"multiattach": false, "os-vol-tenant-attr:tenant_id": e.demoProject, "snapshot_id": nil, "source_volid": nil} {
		if fmt.Sprint(v[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, v[k], want)
		}
	}
	for _, k := range []string{"os-vol-host-attr:host", "migration_status", "group_id", "shared_targets"} {
		if _, ok := v[k]; ok {
			t.Errorf("a member at 3.0 sees %s: %v", k, v)
		}
	}
	if md := v["metadata"].(map[string]any); md["k"] != "v" {
		t.Errorf("metadata %v", md)
	}
	if l := v["links"].([]any)[0].(map[string]any)["href"]; l != e.srv.URL+"/volume/v3/"+e.demoProject+"/volumes/"+id {
		t.Errorf("self link %v", l)
	}
	sent := e.sent.all()
	if len(sent) != 1 || sent[0].target != rootCell || sent[0].method != wire.MethodVolumeCreate {
		t.Fatalf("sent %+v", sent)
	}
	c := sent[0].payload.(*wire.VolumeCreate)
	if c.Volume.ID != id || c.Volume.SizeGB != 2 || c.Volume.TypeName != "__DEFAULT__" || c.Volume.AvailabilityZone != "nova" || c.TargetCell != "" {
		t.Errorf("volume_create %+v", c)
	}
	if row := e.volumeRow(id); row.Cell != "" || row.Version != 0 || row.Status != "creating" {
		t.Errorf("copy %+v", row)
	}
	e.cellSays([]wire.VolumeState{{ID: id, Cell: cell1, Version: 1, Status: "available", SizeGB: 2}}, nil)
	got := e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil).json(t, 200)["volume"].(map[string]any)
	if got["status"] != "available" {
		t.Errorf("after the cell's state: %v", got)
	}
	// A member at 3.48 sees the newer fields but not the admin's.
	member := e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil, "OpenStack-API-Version", "volume 3.48").json(t, 200)["volume"].(map[string]any)
	if _, ok := member["provider_id"]; ok || member["shared_targets"] != true || member["group_id"] != nil {
		t.Errorf("member at 3.48: %v", member)
	}
	if _, ok := member["os-vol-host-attr:host"]; ok {
		t.Errorf("member sees the host: %v", member)
	}
	// An admin at 3.48 sees the host (the cell), the newer fields.
	admin := e.send("GET", e.adminPath("/volumes/"+id), e.admin, nil, "OpenStack-API-Version", "volume 3.48").json(t, 200)["volume"].(map[string]any)
	for k, want := range map[string]any{"os-vol-host-attr:host": cell1, "migration_status": nil, "group_id": nil,
		"provider_id": nil, "shared_targets": true, "service_uuid": nil} {
		if got, ok := admin[k]; !ok || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("admin at 3.48: %s = %v (present %v), want %v", k, got, ok, want)
		}
	}
}

// TestVolumeCreateRefusals: each refusal is Cinder's status and text, and
// writes nothing (no row, no message).
func TestVolumeCreateRefusals(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	snapVol := e.available(map[string]any{"size": 4})
	snap := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": map[string]any{"volume_id": snapVol}}).json(t, 202)["snapshot"].(map[string]any)["id"].(string)
	e.cellSays(nil, []wire.SnapshotState{{ID: snap, VolumeID: snapVol, Cell: cell1, Version: 1, Status: "available", SizeGB: 4}})
	creating := e.createVolume(map[string]any{"size": 1})
	e.images.images["0f0e0d0c-0000-4000-8000-000000000001"] = &volume.Image{ID: "0f0e0d0c-0000-4000-8000-000000000001", Name: "queued", Status: "queued", Size: 1}
	e.images.images["0f0e0d0c-0000-4000-8000-000000000002"] = &volume.Image{ID: "0f0e0d0c-0000-4000-8000-000000000002", Name: "big", Status: "active", Size: 3<<30 + 1}
	e.images.images["0f0e0d0c-0000-4000-8000-000000000003"] = &volume.Image{ID: "0f0e0d0c-0000-4000-8000-000000000003", Name: "mindisk", Status: "active", Size: 1, MinDisk: 5}
	e.images.images["0f0e0d0c-0000-4000-8000-000000000004"] = &volume.Image{ID: "0f0e0d0c-0000-4000-8000-000000000004", Name: "twin", Status: "active"}
	e.images.images["0f0e0d0c-0000-4000-8000-000000000005"] = &volume.Image{ID: "0f0e0d0c-0000-4000-8000-000000000005", Name: "twin", Status: "active"}
	e.quotas.set("per_volume_gigabytes", 50)
	vols0, snaps0 := e.rows()
	sent0 := len(e.sent.all())
	for _, tc := range []struct {
		name   string
		vol    map[string]any
		status int
		msg    string
	}{
		{"size missing", map[string]any{}, 400, "Invalid input received: Volume size 'None' must be an integer and greater than 0"},
		{"size 0", map[string]any{"size": 0}, 400, "Invalid input received: Volume size '0' must be an integer and greater than 0"},
		{"size negative", map[string]any{"size": -1}, 400, "Invalid input received: Invalid volume size provided for create request: -1 (size argument must be an integer (or string representation of an integer) and greater than zero)."},
		{"size not an integer", map[string]any{"size": "abc"}, 400, "Invalid input received: Invalid volume size provided for create request: abc (size argument must be an integer (or string representation of an integer) and greater than zero)."},
		{"size a fraction", map[string]any{"size": 1.5}, 400, "Invalid input received: Invalid volume size provided for create request: 1.5 (size argument must be an integer (or string representation of an integer) and greater than zero)."},
		{"unknown type by name", map[string]any{"size": 1, "volume_type": "silver"}, 404, "Volume type with name silver could not be found."},
		{"unknown type by id", map[string]any{"size": 1, "volume_type": "5d1a8e8e-2f7c-4d1e-8a0b-5b9f1e0c2d3a"}, 404, "Volume type 5d1a8e8e-2f7c-4d1e-8a0b-5b9f1e0c2d3a could not be found."},
		{"unknown zone", map[string]any{"size": 1, "availability_zone": "mars"}, 400, "Availability zone 'mars' is invalid."},
		{"unknown snapshot", map[string]any{"snapshot_id": "nope"}, 404, "Snapshot nope could not be found."},
		{"unknown source", map[string]any{"source_volid": "nope"}, 404, "Volume nope could not be found."},
		{"two sources", map[string]any{"snapshot_id": snap, "source_volid": snapVol}, 400, "Invalid input received: May specify only one of imageRef, snapshot, source volume"},
		{"smaller than the snapshot", map[string]any{"snapshot_id": snap, "size": 2}, 400, "Invalid input received: Volume size '2'GB cannot be smaller than the snapshot size 4GB. They must be >= original snapshot size."},
		{"smaller than the source", map[string]any{"source_volid": snapVol, "size": 3}, 400, "Invalid input received: Volume size '3'GB cannot be smaller than original volume size  4GB. They must be >= original volume size."},
		{"source with no cell yet", map[string]any{"source_volid": creating}, 400, "Invalid volume: Originating source volume status must be one of 'available, in-use' values"},
		{"zone other than the source's", map[string]any{"source_volid": snapVol, "availability_zone": "zone2"}, 400, "Invalid input received: Volume must be in the same availability zone as the source volume"},
		{"type other than the source's", map[string]any{"source_volid": snapVol, "volume_type": "gold"}, 400, "Invalid input received: Invalid volume_type provided: " + goldType.ID + " (requested type is not compatible; either match source volume, or omit type argument)."},
		{"image not active", map[string]any{"size": 1, "imageRef": "0f0e0d0c-0000-4000-8000-000000000001"}, 400, "Invalid input received: Image 0f0e0d0c-0000-4000-8000-000000000001 is not active."},
		{"image larger than the volume", map[string]any{"size": 3, "imageRef": "0f0e0d0c-0000-4000-8000-000000000002"}, 400, "Invalid input received: Size of specified image 4GB is larger than volume size 3GB."},
		{"below the image's min_disk", map[string]any{"size": 4, "imageRef": "0f0e0d0c-0000-4000-8000-000000000003"}, 400, "Invalid input received: Volume size 4GB cannot be smaller than the image minDisk size 5GB."},
		{"unknown image", map[string]any{"size": 1, "imageRef": "nothing"}, 400, "Invalid image identifier or unable to access requested image."},
		{"ambiguous image name", map[string]any{"size": 1, "imageRef": "twin"}, 409, "Multiple matches found for 'twin', use an ID to be more specific."},
		{"above per_volume_gigabytes", map[string]any{"size": 51}, 413, "Requested volume size 51G is larger than maximum allowed limit 50G."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": tc.vol})
			name := map[int]string{400: "badRequest", 404: "itemNotFound", 409: "conflictingRequest", 413: "overLimit"}[tc.status]
			if msg := r.fault(t, tc.status, name); msg != tc.msg {
				t.Errorf("message\n %q\nwant\n %q", msg, tc.msg)
			}
			if tc.status == 413 && r.header.Get("Retry-After") != "0" {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		})
	}
	if v, s := e.rows(); v != vols0 || s != snaps0 || len(e.sent.all()) != sent0 {
		t.Errorf("a refused create wrote: volumes %d→%d, snapshots %d→%d, messages %d→%d", vols0, v, snaps0, s, sent0, len(e.sent.all()))
	}
	// Bad bodies.
	for _, tc := range []struct {
		body    string
		status  int
		message string
	}{
		{`{"volume": `, 400, "Malformed message body: cannot understand JSON"},
		{`{"size": 1}`, 400, "Invalid input for field/attribute None. Value: {\"size\":1}. Additional properties are not allowed ('size' was unexpected)"},
		{`{}`, 400, "Missing required element 'volume' in request body."},
	} {
		r := e.raw("POST", e.demoPath("/volumes"), e.demo, tc.body)
		if msg := r.fault(t, tc.status, "badRequest"); msg != tc.message {
			t.Errorf("body %s: %q, want %q", tc.body, msg, tc.message)
		}
	}
}

// raw sends a body as is.
func (e *volEnv) raw(method, path, token, body string) *response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// empty checks that the answer has status and no body.
func (r *response) empty(t *testing.T, status int) {
	t.Helper()
	if r.status != status || len(r.body) != 0 {
		t.Fatalf("status %d, want %d with no body: %s", r.status, status, r.body)
	}
}

// TestVolumeQuotas: Cinder's 413s for the count and the GiB, of the
// project and of the type, in Cinder's order.
func TestVolumeQuotas(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	e.quotas.set("volumes", 2)
	e.quotas.set("gigabytes", 10)
	e.quotas.set("volumes_gold", 1)
	e.quotas.set("gigabytes_gold", 3)
	e.createVolume(map[string]any{"size": 2, "volume_type": "gold"})
	for _, tc := range []struct {
		name string
		vol  map[string]any
		msg  string
	}{
		{"gigabytes", map[string]any{"size": 9}, "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 9G, quota is 10G and 2G has been consumed."},
		{"volumes of the type", map[string]any{"size": 1, "volume_type": "gold"}, "Maximum number of volumes allowed (1) exceeded for quota 'volumes_gold'."},
	} {
		r := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": tc.vol})
		if msg := r.fault(t, 413, "overLimit"); msg != tc.msg {
			t.Errorf("%s: %q, want %q", tc.name, msg, tc.msg)
		}
	}
	e.createVolume(map[string]any{"size": 1})
	r := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": map[string]any{"size": 1}})
	if msg := r.fault(t, 413, "overLimit"); msg != "Maximum number of volumes allowed (2) exceeded for quota 'volumes'." {
		t.Errorf("volumes: %q", msg)
	}
}

// TestVolumeQuotaUnderConcurrency: N creates at once against a limit of
// K volumes: exactly K are accepted (the project's lock serialises the
// checks), on every engine.
func TestVolumeQuotaUnderConcurrency(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newVolEnv(t, d)
		const n, limit = 8, 3
		e.quotas.set("volumes", limit)
		statuses := make([]int, n)
		done := make(chan struct{})
		for i := range n {
			go func() {
				defer func() { done <- struct{}{} }()
				statuses[i] = e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": map[string]any{"size": 1}}).status
			}()
		}
		for range n {
			<-done
		}
		accepted, over := 0, 0
		for _, s := range statuses {
			switch s {
			case 202:
				accepted++
			case 413:
				over++
			default:
				t.Errorf("status %d", s)
			}
		}
		if accepted != limit || over != n-limit {
			t.Errorf("%d accepted, %d over quota; want %d and %d", accepted, over, limit, n-limit)
		}
		if v, _ := e.rows(); v != limit {
			t.Errorf("%d rows, want %d", v, limit)
		}
	})
}

// TestVolumeCreateFromSources: from a snapshot or a volume the create
// goes to the source's cell (TargetCell), with the source's type and
// zone; from an image to the API cell's path, bootable, with the image's
// metadata.
func TestVolumeCreateFromSources(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	src := e.available(map[string]any{"size": 2, "volume_type": "gold", "availability_zone": "zone2"})
	snap := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": map[string]any{"volume_id": src}}).json(t, 202)["snapshot"].(map[string]any)["id"].(string)
	e.cellSays(nil, []wire.SnapshotState{{ID: snap, VolumeID: src, Cell: cell1, Version: 1, Status: "available", SizeGB: 2}})
	for _, tc := range []struct {
		name string
		vol  map[string]any
		spec func(wire.VolumeSpec) bool
	}{
		{"from a snapshot", map[string]any{"snapshot_id": snap}, func(s wire.VolumeSpec) bool { return s.SnapshotID == snap }},
		{"from a volume", map[string]any{"source_volid": src, "size": 3}, func(s wire.VolumeSpec) bool { return s.SourceVolumeID == src && s.SizeGB == 3 }},
	} {
		v := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": tc.vol}).json(t, 202)["volume"].(map[string]any)
		if v["volume_type"] != "gold" || v["availability_zone"] != "zone2" || v["multiattach"] != true {
			t.Errorf("%s: %v", tc.name, v)
		}
		sent := e.sent.all()
		last := sent[len(sent)-1]
		c := last.payload.(*wire.VolumeCreate)
		if last.target != cell1 || c.TargetCell != cell1 || !tc.spec(c.Volume) || c.Volume.TypeName != "gold" || c.Volume.ExtraSpecs["multiattach"] != "<is> True" {
			t.Errorf("%s: sent to %s: %+v", tc.name, last.target, c)
		}
	}
	const img = "0f0e0d0c-0000-4000-8000-00000000000a"
	e.images.images[img] = &volume.Image{ID: img, Name: "cirros", Status: "active", Size: 1 << 20, DiskFormat: "qcow2", ContainerFormat: "bare",
		Properties: map[string]string{"hw_disk_bus": "virtio"}}
	v := e.send("POST", e.demoPath("/volumes"), e.demo, map[string]any{"volume": map[string]any{"size": 1, "imageRef": "cirros"}}).json(t, 202)["volume"].(map[string]any)
	md, _ := v["volume_image_metadata"].(map[string]any)
	if v["bootable"] != "true" || md["image_id"] != img || md["hw_disk_bus"] != "virtio" || md["disk_format"] != "qcow2" {
		t.Errorf("from an image: %v", v)
	}
	sent := e.sent.all()
	last := sent[len(sent)-1]
	if c := last.payload.(*wire.VolumeCreate); last.target != rootCell || c.Volume.ImageID != img || c.Volume.ImageSize != 1<<20 || c.TargetCell != "" {
		t.Errorf("from an image: sent to %s: %+v", last.target, c)
	}
}

// TestVolumeListing: summary and detail lists, the project's only, filters
// by the version's rules, sort, paging with the next link, with_count.
func TestVolumeListing(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	var ids []string
	for i := range 5 {
		ids = append(ids, e.available(map[string]any{"size": i + 1, "name": fmt.Sprintf("v%d", i%2), "metadata": map[string]string{"i": fmt.Sprint(i)}}))
	}
	adminVol := e.send("POST", e.adminPath("/volumes"), e.admin, map[string]any{"volume": map[string]any{"size": 1}}).json(t, 202)["volume"].(map[string]any)["id"].(string)
	list := func(path, token string, hdr ...string) map[string]any {
		t.Helper()
		return e.send("GET", path, token, nil, hdr...).json(t, 200)
	}
	names := func(m map[string]any, key string) string {
		var out []string
		for _, v := range m[key].([]any) {
			out = append(out, fmt.Sprint(v.(map[string]any)["size"]))
		}
		return strings.Join(out, " ")
	}
	sum := list(e.demoPath("/volumes"), e.demo)["volumes"].([]any)
	if len(sum) != 5 || len(sum[0].(map[string]any)) != 3 {
		t.Errorf("summary %v", sum)
	}
	for _, tc := range []struct {
		name, query string
		hdr         []string
		want        string
	}{
		{"default newest first", "", nil, "5 4 3 2 1"},
		{"by name", "?name=v1", nil, "4 2"},
		{"by metadata", "?metadata=" + url.QueryEscape("{'i': '3'}"), nil, "4"},
		{"sort", "?sort=size:asc", nil, "1 2 3 4 5"},
		{"sort_key and sort_dir", "?sort_key=size&sort_dir=asc", nil, "1 2 3 4 5"},
		{"limit", "?limit=2&sort=size:asc", nil, "1 2"},
		{"limit 0 is the maximum", "?limit=0&sort=size:asc", nil, "1 2 3 4 5"},
		{"marker", "?limit=2&sort=size:asc&marker=" + ids[1], nil, "3 4"},
		{"an unknown filter is dropped below 3.31", "?foo=bar", nil, "5 4 3 2 1"},
		{"name~ at 3.34", "?name~=1", []string{"OpenStack-API-Version", "volume 3.34"}, "4 2"},
		{"bootable loose below 3.2", "?bootable=nope", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := names(list(e.demoPath("/volumes/detail"+tc.query), e.demo, tc.hdr...), "volumes")
			if got != tc.want {
				t.Errorf("sizes %q, want %q", got, tc.want)
			}
		})
	}
	page := list(e.demoPath("/volumes/detail?limit=2&sort=size:asc"), e.demo)
	next := page["volumes_links"].([]any)[0].(map[string]any)
	if next["rel"] != "next" || !strings.Contains(next["href"].(string), "/volume/v3/"+e.demoProject+"/volumes?") ||
		!strings.Contains(next["href"].(string), "marker="+ids[1]) {
		t.Errorf("next link %v", next)
	}
	if _, ok := list(e.demoPath("/volumes/detail"), e.demo)["volumes_links"]; ok {
		t.Error("a next link on a page that is not full")
	}
	counted := list(e.demoPath("/volumes?with_count=true&limit=1"), e.demo, "OpenStack-API-Version", "volume 3.45")
	if counted["count"] != float64(5) || len(counted["volumes"].([]any)) != 1 {
		t.Errorf("with_count: %v", counted)
	}
	if _, ok := list(e.demoPath("/volumes?with_count=true"), e.demo, "OpenStack-API-Version", "volume 3.44")["count"]; ok {
		t.Error("count below 3.45")
	}
	all := list(e.adminPath("/volumes?all_tenants=1"), e.admin)["volumes"].([]any)
	if len(all) != 6 {
		t.Errorf("admin all_tenants: %d volumes", len(all))
	}
	if own := list(e.adminPath("/volumes"), e.admin)["volumes"].([]any); len(own) != 1 || own[0].(map[string]any)["id"] != adminVol {
		t.Errorf("admin without all_tenants: %v", own)
	}
	if n := len(list(e.demoPath("/volumes?all_tenants=1"), e.demo)["volumes"].([]any)); n != 5 {
		t.Errorf("a member's all_tenants: %d volumes", n)
	}
	for _, tc := range []struct {
		query string
		hdr   []string
		code  int
		msg   string
	}{
		{"?foo=bar", []string{"OpenStack-API-Version", "volume 3.31"}, 400, "Invalid filters foo are found in query options."},
		{"?bootable=maybe", []string{"OpenStack-API-Version", "volume 3.2"}, 400, "Invalid input received: bootable = maybe"},
		{"?limit=x", nil, 400, "limit param must be an integer"},
		{"?limit=-1", nil, 400, "limit param must be positive"},
		{"?sort=size&sort_key=name", nil, 400, "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter."},
		{"?sort=size:up", nil, 400, "Invalid input received: Unknown sort direction, must be 'desc' or 'asc'"},
		{"?sort=colour", nil, 400, "Invalid input received: Invalid sort key"},
		{"?marker=nope", nil, 404, "Marker nope could not be found."},
	} {
		r := e.send("GET", e.demoPath("/volumes/detail"+tc.query), e.demo, nil, tc.hdr...)
		name := map[int]string{400: "badRequest", 404: "itemNotFound"}[tc.code]
		if msg := r.fault(t, tc.code, name); msg != tc.msg {
			t.Errorf("%s: %q, want %q", tc.query, msg, tc.msg)
		}
	}
}

// TestVolumeUpdateAndShow: PUT changes name, description and replaces
// metadata; another project's volume is a 404; unknown keys a 400.
func TestVolumeUpdateAndShow(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	id := e.available(map[string]any{"size": 1, "metadata": map[string]string{"a": "1"}})
	v := e.send("PUT", e.demoPath("/volumes/"+id), e.demo, map[string]any{"volume": map[string]any{"name": "n", "description": "d",
		"metadata": map[string]string{"b": "2"}}}).json(t, 200)["volume"].(map[string]any)
	if v["name"] != "n" || v["description"] != "d" || fmt.Sprint(v["metadata"]) != "map[b:2]" {
		t.Errorf("updated %v", v)
	}
	if row := e.volumeRow(id); row.Version != 1 || row.Status != "available" {
		t.Errorf("an update changed what the cell owns: %+v", row)
	}
	r := e.send("PUT", e.demoPath("/volumes/"+id), e.demo, map[string]any{"volume": map[string]any{"size": 3}})
	if msg := r.fault(t, 400, "badRequest"); !strings.Contains(msg, "Additional properties are not allowed ('size' was unexpected)") {
		t.Errorf("unknown key: %q", msg)
	}
	if msg := e.send("GET", e.demoPath("/volumes/nope"), e.demo, nil).fault(t, 404, "itemNotFound"); msg != "Volume nope could not be found." {
		t.Errorf("unknown: %q", msg)
	}
	adminVol := e.send("POST", e.adminPath("/volumes"), e.admin, map[string]any{"volume": map[string]any{"size": 1}}).json(t, 202)["volume"].(map[string]any)["id"].(string)
	if msg := e.send("GET", e.demoPath("/volumes/"+adminVol), e.demo, nil).fault(t, 404, "itemNotFound"); msg != "Volume "+adminVol+" could not be found." {
		t.Errorf("another project's: %q", msg)
	}
}

// TestVolumeDelete: a volume with a cell goes to deleting and its cell is
// sent volume_action delete; the cell's deletion removes it. One with no
// cell (found none) is deleted here alone; one still creating is refused,
// as is one with snapshots (Cinder's text) unless cascade; force needs an
// admin and 3.23.
func TestVolumeDelete(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	const refused = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer."
	id := e.available(map[string]any{"size": 1})
	n0 := len(e.sent.all())
	if r := e.send("DELETE", e.demoPath("/volumes/"+id), e.demo, nil); r.status != 202 || len(r.body) != 0 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	sent := e.sent.all()
	if len(sent) != n0+1 || sent[n0].target != cell1 || sent[n0].method != wire.MethodVolumeAction ||
		*sent[n0].payload.(*wire.VolumeAction) != (wire.VolumeAction{VolumeID: id, Action: wire.VolumeDelete}) {
		t.Fatalf("sent %+v", sent[n0:])
	}
	if row := e.volumeRow(id); row.Status != "deleting" || row.Version != 1 {
		t.Errorf("copy %+v", row)
	}
	// Repeated: deleting is not a status a delete starts from.
	if msg := e.send("DELETE", e.demoPath("/volumes/"+id), e.demo, nil).fault(t, 400, "badRequest"); msg != refused {
		t.Errorf("second delete: %q", msg)
	}
	e.cellSays([]wire.VolumeState{{ID: id, Cell: cell1, Version: 2, Deleted: true}}, nil)
	e.send("GET", e.demoPath("/volumes/"+id), e.demo, nil).fault(t, 404, "itemNotFound")

	// No cell: still creating is refused; found no cell (error) is deleted here.
	lost := e.createVolume(map[string]any{"size": 1})
	if msg := e.send("DELETE", e.demoPath("/volumes/"+lost), e.demo, nil).fault(t, 400, "badRequest"); msg != refused {
		t.Errorf("creating: %q", msg)
	}
	e.cellSays([]wire.VolumeState{{ID: lost, Version: 1, Status: "error"}}, nil)
	n1 := len(e.sent.all())
	if r := e.send("DELETE", e.demoPath("/volumes/"+lost), e.demo, nil); r.status != 202 {
		t.Fatalf("delete of a volume with no cell: %d %s", r.status, r.body)
	}
	if len(e.sent.all()) != n1 || !e.volumeRow(lost).Deleted {
		t.Errorf("a volume with no cell: sent %v, row %+v", e.sent.all()[n1:], e.volumeRow(lost))
	}

	// With a snapshot: refused; cascade sets both to deleting.
	vs := e.available(map[string]any{"size": 1})
	snap := e.send("POST", e.demoPath("/snapshots"), e.demo, map[string]any{"snapshot": map[string]any{"volume_id": vs}}).json(t, 202)["snapshot"].(map[string]any)["id"].(string)
	e.cellSays(nil, []wire.SnapshotState{{ID: snap, VolumeID: vs, Cell: cell1, Version: 1, Status: "available", SizeGB: 1}})
	if msg := e.send("DELETE", e.demoPath("/volumes/"+vs), e.demo, nil).fault(t, 400, "badRequest"); msg != refused {
		t.Errorf("with a snapshot: %q", msg)
	}
	e.send("DELETE", e.demoPath("/volumes/"+vs+"?cascade=true"), e.demo, nil).empty(t, 202)
	sent = e.sent.all()
	if a := sent[len(sent)-1].payload.(*wire.VolumeAction); !a.Cascade || a.Action != wire.VolumeDelete {
		t.Errorf("cascade: %+v", a)
	}
	if s := e.send("GET", e.demoPath("/snapshots/"+snap), e.demo, nil).json(t, 200)["snapshot"].(map[string]any); s["status"] != "deleting" {
		t.Errorf("cascade snapshot: %v", s)
	}

	// force: 3.23 and an admin.
	fv := e.available(map[string]any{"size": 1})
	e.send("POST", e.demoPath("/volumes/"+fv+"/action"), e.demo, map[string]any{"os-extend": map[string]any{"new_size": 2}}).empty(t, 202)
	if msg := e.send("DELETE", e.demoPath("/volumes/"+fv+"?force=true"), e.demo, nil, "OpenStack-API-Version", "volume 3.23").fault(t, 403, "forbidden"); msg != "Policy doesn't allow volume:force_delete to be performed." {
		t.Errorf("member force: %q", msg)
	}
	if msg := e.send("DELETE", e.adminPath("/volumes/"+fv+"?force=true"), e.admin, nil).fault(t, 400, "badRequest"); msg != refused {
		t.Errorf("force below 3.23 is ignored: %q", msg)
	}
	e.send("DELETE", e.adminPath("/volumes/"+fv+"?force=true"), e.admin, nil, "OpenStack-API-Version", "volume 3.23").empty(t, 202)
}

// TestVolumesWithGophercloud drives create, get, list, update, extend and
// delete with gophercloud's Block Storage v3 client.
func TestVolumesWithGophercloud(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	ctx := context.Background()
	c := e.gc("demo", "pw-demo", "demo")
	v, err := volumes.Create(ctx, c, volumes.CreateOpts{Size: 1, Name: "gc", Metadata: map[string]string{"a": "b"}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != "creating" || v.Name != "gc" || v.Bootable != "false" || v.VolumeType != "__DEFAULT__" || v.CreatedAt.IsZero() {
		t.Errorf("created %+v", v)
	}
	e.cellSays([]wire.VolumeState{{ID: v.ID, Cell: cell1, Version: 1, Status: "available", SizeGB: 1}}, nil)
	got, err := volumes.Get(ctx, c, v.ID).Extract()
	if err != nil || got.Status != "available" || got.Metadata["a"] != "b" || got.TenantID != e.demoProject {
		t.Errorf("get %+v %v", got, err)
	}
	pages, err := volumes.List(c, volumes.ListOpts{Name: "gc"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := volumes.ExtractVolumes(pages)
	if err != nil || len(all) != 1 || all[0].ID != v.ID {
		t.Errorf("list %+v %v", all, err)
	}
	name := "renamed"
	if u, err := volumes.Update(ctx, c, v.ID, volumes.UpdateOpts{Name: &name}).Extract(); err != nil || u.Name != name {
		t.Errorf("update %+v %v", u, err)
	}
	if err := volumes.ExtendSize(ctx, c, v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := volumes.Delete(ctx, c, v.ID, nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Errorf("delete while extending: %v, want a 400", err)
	}
	e.cellSays([]wire.VolumeState{{ID: v.ID, Cell: cell1, Version: 2, Status: "available", SizeGB: 2}}, nil)
	if err := volumes.Delete(ctx, c, v.ID, nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

// TestZonesListed: os-availability-zone lists the configured storage zone
// and those the cells report.
func TestZonesListed(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	zs := e.send("GET", e.demoPath("/os-availability-zone"), e.demo, nil).json(t, 200)["availabilityZoneInfo"].([]any)
	var names []string
	for _, z := range zs {
		names = append(names, z.(map[string]any)["zoneName"].(string))
	}
	if strings.Join(names, ",") != "nova,zone2" {
		t.Errorf("zones %v", names)
	}
}

// TestVolumeSummary: from 3.12 the count and size of the project's
// volumes, from 3.36 their metadata; below 3.12 there is no such route.
func TestVolumeSummary(t *testing.T) {
	e := newVolEnv(t, dbtest.Open(t, "sqlite"))
	e.createVolume(map[string]any{"size": 2, "metadata": map[string]string{"k": "a"}})
	e.createVolume(map[string]any{"size": 3, "metadata": map[string]string{"k": "b"}})
	e.send("GET", e.demoPath("/volumes/summary"), e.demo, nil).fault(t, 404, "itemNotFound")
	s := e.send("GET", e.demoPath("/volumes/summary"), e.demo, nil, "OpenStack-API-Version", "volume 3.12").json(t, 200)["volume-summary"].(map[string]any)
	if s["total_size"] != float64(5) || s["total_count"] != float64(2) || s["metadata"] != nil {
		t.Errorf("3.12: %v", s)
	}
	s = e.send("GET", e.demoPath("/volumes/summary?name=nope"), e.demo, nil, "OpenStack-API-Version", "volume 3.36").json(t, 200)["volume-summary"].(map[string]any)
	if s["total_count"] != float64(0) {
		t.Errorf("filtered: %v", s)
	}
	s = e.send("GET", e.demoPath("/volumes/summary"), e.demo, nil, "OpenStack-API-Version", "volume 3.36").json(t, 200)["volume-summary"].(map[string]any)
	if fmt.Sprint(s["metadata"]) != "map[k:[a b]]" {
		t.Errorf("3.36: %v", s)
	}
}
