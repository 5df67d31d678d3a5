package compute

import (
	"context"
	"net/http"
	"strconv"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// imageWith adds an active image of the demo project with props (min
// disk minDisk) and gives its id.
func (e *bfvEnv) imageWith(id string, minDisk int, props map[string]string) string {
	e.t.Helper()
	img := &imagedb.Image{ID: id, Name: "snap", Status: imagedb.StatusActive, Visibility: imagedb.Private, Owner: "demo",
		DiskFormat: "raw", ContainerFormat: "bare", MinDisk: minDisk, Properties: props, Tags: []string{}}
	ctx := context.Background()
	if err := e.d.InTx(ctx, func(tx *db.Tx) error { return (&imagedb.Store{}).Create(ctx, tx, img) }); err != nil {
		e.t.Fatal(err)
	}
	return id
}

// snapMapping is one mapping of a volume-backed snapshot image, as Nova
// writes it (null fields left out of the JSON the test writes).
func snapMapping(snap, dev string, boot string, size int, dot bool) string {
	d := "false"
	if dot {
		d = "true"
	}
	return `{"source_type": "snapshot", "destination_type": "volume", "snapshot_id": "` + snap + `", "device_name": "` + dev +
		`", "boot_index": ` + boot + `, "volume_size": ` + strconv.Itoa(size) + `, "delete_on_termination": ` + d +
		`, "device_type": "disk", "disk_bus": null, "volume_id": null, "image_id": null, "no_device": null, "tag": null, "volume_type": null}`
}

// TestBootFromImageMappings: Nova's _get_image_defined_bdms and the merge
// of _check_and_transform_bdm. An image whose mappings (bdm_v2) are
// snapshots boots volume-backed from imageRef alone: each snapshot a new
// volume (creating, from the snapshot, in its cell: the build pinned
// there), with the mapping's size and delete_on_termination; the server
// keeps the image as its image_ref and shows it. The request's image boot
// mapping is dropped (the image has a boot device), and its mapping of a
// device name replaces the image's. The image's min_disk is checked
// against the boot volume's size, not the flavor's disk (Nova's
// VolumeSmallerThanMinDisk; a min_disk over the flavor's is no refusal).
// Legacy mappings (no bdm_v2) boot from the one on the root device name.
// A refusal writes and sends nothing.
func TestBootFromImageMappings(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newBFVEnv(t, d)
		ctx := context.Background()
		// min_disk 3 is over flavor 1's disk (1 GiB): no refusal, the root
		// is a 5 GiB volume.
		v2 := e.imageWith("00000000-0000-4000-8000-0000000d0001", 3, map[string]string{"bdm_v2": "True", "root_device_name": "/dev/vda",
			"hw_disk_bus": "virtio", "block_device_mapping": "[" + snapMapping(bfvSnap, "/dev/vda", "0", 5, false) + ", " +
				snapMapping(bfvSnap, "/dev/vdb", "null", 4, true) + "]"})
		accepted := func(r bfvResp) string {
			t.Helper()
			if r.code != http.StatusAccepted {
				t.Fatalf("create: %d %s", r.code, r.raw)
			}
			s, _ := r.body["server"].(map[string]any)
			id, _ := s["id"].(string)
			return id
		}
		id := accepted(e.create("", map[string]any{"imageRef": v2}))
		bs := e.builds()
		b := bs[len(bs)-1]
		if b.TargetCell != bfvCell1 || len(b.Instances) != 1 || b.Instances[0].ImageRef != v2 || b.ImageProperties["hw_disk_bus"] != "virtio" {
			t.Fatalf("build: target %q, image properties %v, instances %+v", b.TargetCell, b.ImageProperties, b.Instances)
		}
		bd := b.Instances[0].BlockDevices
		if len(bd) != 2 || bd[0].SourceType != "snapshot" || bd[0].SnapshotID != bfvSnap || !bd[0].New || bd[0].BootIndex != 0 ||
			bd[0].VolumeSize != 5 || bd[0].DeleteOnTermination || bd[0].DeviceName != "/dev/vda" ||
			bd[1].BootIndex != -1 || bd[1].VolumeSize != 4 || !bd[1].DeleteOnTermination || bd[1].DeviceName != "/dev/vdb" {
			t.Fatalf("block devices: %+v", bd)
		}
		for _, x := range bd {
			v, err := voldb.Get(ctx, d, x.VolumeID)
			if err != nil || v.Status != voldb.StatusCreating || v.SnapshotID != bfvSnap || v.SizeGB != x.VolumeSize || v.AvailabilityZone != "az1" {
				t.Errorf("new volume %s: %+v %v", x.VolumeID, v, err)
			}
		}
		if in, err := apidb.Get(ctx, d, id); err != nil || in.ImageRef != v2 {
			t.Fatalf("instance copy %+v %v, want image_ref %s", in, err, v2)
		}
		show := e.do("demo:demo", http.MethodGet, "/v2.1/servers/"+id, "2.67", nil)
		if s, _ := show.body["server"].(map[string]any); s == nil || s["image"].(map[string]any)["id"] != v2 {
			t.Errorf("the server's view: %s, want its image", show.raw)
		}

		// The request's image boot mapping dropped; its /dev/vdb (a blank
		// volume) replaces the image's.
		accepted(e.create("", map[string]any{"imageRef": v2, "block_device_mapping_v2": []any{
			map[string]any{"source_type": "image", "destination_type": "local", "boot_index": 0, "uuid": v2},
			vbdm("blank", "", nil, "volume_size", 2, "device_name", "/dev/vdb")}}))
		bs = e.builds()
		bd = bs[len(bs)-1].Instances[0].BlockDevices
		if len(bd) != 2 || bd[0].SourceType != "blank" || bd[0].VolumeSize != 2 || bd[1].SourceType != "snapshot" || bd[1].BootIndex != 0 {
			t.Errorf("merged block devices: %+v", bd)
		}

		// Legacy mappings: the one on the root device name boots.
		legacy := e.imageWith("00000000-0000-4000-8000-0000000d0002", 0, map[string]string{
			"block_device_mapping": `[{"snapshot_id": "` + bfvSnap + `", "device_name": "/dev/vda", "delete_on_termination": true, "volume_size": 6}]`})
		accepted(e.create("", map[string]any{"imageRef": legacy}))
		bs = e.builds()
		bd = bs[len(bs)-1].Instances[0].BlockDevices
		if len(bd) != 1 || bd[0].SnapshotID != bfvSnap || bd[0].BootIndex != 0 || bd[0].VolumeSize != 6 || !bd[0].DeleteOnTermination {
			t.Errorf("legacy image mapping: %+v", bd)
		}

		before := e.state()
		small := e.imageWith("00000000-0000-4000-8000-0000000d0003", 6, map[string]string{"bdm_v2": "True",
			"block_device_mapping": "[" + snapMapping(bfvSnap, "/dev/vda", "0", 5, true) + "]"})
		r := e.create("", map[string]any{"imageRef": small})
		if r.code != 400 || r.msg() != "Volume is smaller than the minimum size specified in image metadata. Volume size is 5368709120 bytes, minimum size is 6442450944 bytes." {
			t.Errorf("min_disk over the volume: %d %s", r.code, r.raw)
		}
		far := e.imageWith("00000000-0000-4000-8000-0000000d0004", 0, map[string]string{"bdm_v2": "True",
			"block_device_mapping": "[" + snapMapping(bfvSnapFar, "/dev/vda", "0", 5, true) + "]"})
		r = e.create("", map[string]any{"imageRef": far, "availability_zone": "nova"})
		if r.code != 400 || r.msg() != "The availability zone between the server and its attached volumes do not match: Server and volumes are not in the same availability zone. Server is in: nova. Volumes are in: az2." {
			t.Errorf("a snapshot of another zone: %d %s", r.code, r.raw)
		}
		if after := e.state(); after != before {
			t.Errorf("a refusal changed the state:\n%s\n%s", before, after)
		}
	})
}

// TestBootFromLegacyMappings: the legacy block_device_mapping (v1), read
// as Nova's from_legacy and from_legacy_mapping: the volume or snapshot
// on the root device (vda) boots (a server without an image, its boot
// image metadata that of the device whose letter is a); with an imageRef
// and no volume there, the image boots and the volumes are attached
// (delete_on_termination a string, as oslo reads it). The two syntaxes in
// one request, no boot device, a swap disk (not served) and a mapping
// naming nothing are Nova's 400s, and nothing is written or sent.
func TestBootFromLegacyMappings(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newBFVEnv(t, d)
		legacy := func(m ...map[string]any) map[string]any { return map[string]any{"block_device_mapping": m} }
		lastBuild := func(r bfvResp) *wire.BuildInstances {
			t.Helper()
			if r.code != http.StatusAccepted {
				t.Fatalf("create: %d %s", r.code, r.raw)
			}
			bs := e.builds()
			return bs[len(bs)-1]
		}
		before := e.state()
		for _, c := range []struct {
			name   string
			server map[string]any
			want   string
		}{
			{"both syntaxes", map[string]any{"block_device_mapping": []any{map[string]any{"volume_id": bfvBoot, "device_name": "vda"}},
				"block_device_mapping_v2": []any{vbdm("volume", bfvBoot, 0)}}, "Using different block_device_mapping syntaxes is not allowed in the same request."},
			{"no root device", legacy(map[string]any{"volume_id": bfvBoot, "device_name": "vdb"}),
				"Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."},
			{"the a device not bootable", legacy(map[string]any{"volume_id": bfvData, "device_name": "/dev/sda"}), "Block Device " + bfvData + " is not bootable."},
			{"swap", map[string]any{"imageRef": image.CirrosID, "block_device_mapping": []any{map[string]any{"virtual_name": "swap", "device_name": "vdb"}}},
				"Block Device Mapping is Invalid: a blank local disk (ephemeral or swap) is not supported: a server gets the flavor's disks only"},
			{"naming nothing", map[string]any{"imageRef": image.CirrosID, "block_device_mapping": []any{map[string]any{"device_name": "vdb"}}},
				"Block Device Mapping is Invalid: Unrecognized legacy format."},
		} {
			if r := e.create("", c.server); r.code != 400 || r.msg() != c.want {
				t.Errorf("%s: %d %s, want 400 %q", c.name, r.code, r.raw, c.want)
			}
		}
		if after := e.state(); after != before {
			t.Errorf("a refusal changed the state:\n%s\n%s", before, after)
		}

		b := lastBuild(e.create("", legacy(map[string]any{"volume_id": bfvBoot, "device_name": "vda", "delete_on_termination": "true"})))
		bd := b.Instances[0].BlockDevices
		if b.TargetCell != bfvCell1 || b.Instances[0].ImageRef != "" || b.ImageProperties["hw_disk_bus"] != "virtio" || len(bd) != 1 ||
			bd[0].VolumeID != bfvBoot || bd[0].SourceType != "volume" || bd[0].BootIndex != 0 || !bd[0].DeleteOnTermination || bd[0].DeviceName != "vda" {
			t.Errorf("legacy boot volume: target %q, %+v, image properties %v", b.TargetCell, b.Instances[0], b.ImageProperties)
		}
		b = lastBuild(e.create("", legacy(map[string]any{"snapshot_id": bfvSnap, "device_name": "/dev/vda", "volume_size": "5"})))
		bd = b.Instances[0].BlockDevices
		if len(bd) != 1 || bd[0].SnapshotID != bfvSnap || !bd[0].New || bd[0].VolumeSize != 5 || bd[0].BootIndex != 0 || bd[0].DeleteOnTermination {
			t.Errorf("legacy boot snapshot: %+v", bd)
		}
		b = lastBuild(e.create("", map[string]any{"imageRef": image.CirrosID, "block_device_mapping": []any{
			map[string]any{"volume_id": bfvData, "device_name": "/dev/vdb"}}}))
		bd = b.Instances[0].BlockDevices
		if b.Instances[0].ImageRef != image.CirrosID || len(bd) != 1 || bd[0].VolumeID != bfvData || bd[0].BootIndex != -1 {
			t.Errorf("legacy data volume of an image boot: %+v", b.Instances[0])
		}
	})
}
