package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/policy"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// bfvSender records the messages of the transactions that commit.
type bfvSender struct {
	mu   sync.Mutex
	msgs []bfvMsg
}

type bfvMsg struct {
	to, method string
	payload    any
}

func (s *bfvSender) Send(_ context.Context, tx *db.Tx, to, method, _ string, p any) error {
	tx.AfterCommit(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.msgs = append(s.msgs, bfvMsg{to, method, p})
	})
	return nil
}

func (s *bfvSender) all() []bfvMsg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// The volumes and snapshots of these tests, in the demo project unless
// named otherwise.
const (
	bfvCell1      = "api!cell1"
	bfvCell2      = "api!cell2"
	bfvBoot       = "00000000-0000-4000-8000-0000000b0001" // bootable, cell1, az1, image metadata
	bfvData       = "00000000-0000-4000-8000-0000000b0002" // not bootable, cell1, az1
	bfvFar        = "00000000-0000-4000-8000-0000000b0003" // cell2, az2
	bfvBusy       = "00000000-0000-4000-8000-0000000b0004" // in-use
	bfvTheirs     = "00000000-0000-4000-8000-0000000b0005" // project other
	bfvMulti      = "00000000-0000-4000-8000-0000000b0006" // multiattach, bootable
	bfvSnap       = "00000000-0000-4000-8000-0000000b0101" // of bfvBoot, 4 GiB, available
	bfvSnapFar    = "00000000-0000-4000-8000-0000000b0102" // of bfvFar, cell2
	bfvMissing    = "00000000-0000-4000-8000-0000000bffff"
	bfvSSD        = "00000000-0000-4000-8000-0000000c0001"
	bfvVolumeSize = 2
)

type bfvEnv struct {
	t      *testing.T
	d      *db.DB
	a      *API
	sender *bfvSender
	types  *voltypes.Store
}

func newBFVEnv(t *testing.T, d *db.DB) *bfvEnv {
	t.Helper()
	ctx := context.Background()
	for _, m := range []struct {
		set string
		ms  []db.Migration
	}{{"api", apidb.Migrations}, {imagedb.MigrationSet, imagedb.Migrations}, {netdb.MigrationSet, netdb.Migrations},
		{voldb.MigrationSet, voldb.Migrations}, {voltypes.MigrationSet, voltypes.Migrations}} {
		if err := d.Migrate(ctx, m.set, m.ms); err != nil {
			t.Fatal(err)
		}
	}
	if err := apidb.SeedFlavors(ctx, d); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.NewFromRules(slices.Concat(policy.Base, Rules, image.Rules), nil)
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := image.New(image.Config{DB: d, StoreDir: filepath.Join(t.TempDir(), "images"), Auth: authn.NoAuth{}, Policy: pol,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := imgs.Seed(ctx, image.Cirros()); err != nil {
		t.Fatal(err)
	}
	types, err := voltypes.New(voltypes.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 11, 0, 0, 0, time.UTC)
	err = d.InTx(ctx, func(tx *db.Tx) error {
		if _, err := types.Create(ctx, tx, voltypes.NewType{ID: bfvSSD, Name: "ssd", IsPublic: true}); err != nil {
			return err
		}
		for _, v := range []struct {
			id, project, zone string
			bootable, multi   bool
		}{{bfvBoot, "demo", "az1", true, false}, {bfvData, "demo", "az1", false, false}, {bfvFar, "demo", "az2", true, false},
			{bfvBusy, "demo", "az1", true, false}, {bfvTheirs, "other", "az1", true, false}, {bfvMulti, "demo", "az1", true, true}} {
			vol := &voldb.Volume{ID: v.id, ProjectID: v.project, UserID: v.project, SizeGB: 1, Status: voldb.StatusCreating,
				AvailabilityZone: v.zone, Bootable: v.bootable, Multiattach: v.multi, TypeID: voltypes.DefaultTypeID,
				TypeName: voltypes.DefaultTypeName, CreatedAt: now}
			if v.id == bfvFar {
				vol.ImageMetadata = map[string]string{"min_ram": "100000"}
			}
			if v.id == bfvBoot {
				vol.ImageMetadata = map[string]string{"image_id": image.CirrosID, "hw_disk_bus": "virtio", "min_ram": "0", "min_disk": "2"}
				vol.TypeID, vol.TypeName = bfvSSD, "ssd"
			}
			if err := voldb.Create(ctx, tx, vol); err != nil {
				return err
			}
		}
		states := []wire.VolumeState{}
		for _, id := range []string{bfvBoot, bfvData, bfvTheirs, bfvMulti} {
			states = append(states, wire.VolumeState{ID: id, Cell: bfvCell1, Version: 1, Status: "available", SizeGB: 1})
		}
		states = append(states, wire.VolumeState{ID: bfvFar, Cell: bfvCell2, Version: 1, Status: "available", SizeGB: 1},
			wire.VolumeState{ID: bfvBusy, Cell: bfvCell1, Version: 1, Status: "in-use", SizeGB: 1})
		if _, err := voldb.Apply(ctx, tx, states, nil, now); err != nil {
			return err
		}
		for _, s := range []struct{ id, vol, cell string }{{bfvSnap, bfvBoot, bfvCell1}, {bfvSnapFar, bfvFar, bfvCell2}} {
			if err := voldb.CreateSnapshot(ctx, tx, &voldb.Snapshot{ID: s.id, VolumeID: s.vol, ProjectID: "demo", UserID: "demo",
				SizeGB: 4, Status: voldb.StatusAvailable, Cell: s.cell, CreatedAt: now}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &bfvEnv{t: t, d: d, sender: &bfvSender{}, types: types}
	e.a, err = New(Config{Cell: "api", DB: d, Sender: e.sender, Caller: noCaller{}, Auth: authn.NoAuth{}, Policy: pol,
		VolumeTypes: types, VolumeQuotas: types, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type bfvResp struct {
	code int
	body map[string]any
	raw  string
}

func (r bfvResp) msg() string {
	for _, v := range r.body {
		if m, ok := v.(map[string]any); ok {
			s, _ := m["message"].(string)
			return s
		}
	}
	return ""
}

func (e *bfvEnv) do(token, method, path, version string, body any) bfvResp {
	e.t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	r := httptest.NewRequest(method, path, rd)
	r.Header.Set("X-Auth-Token", token)
	r.Header.Set("Content-Type", "application/json")
	if version != "" {
		r.Header.Set("OpenStack-API-Version", "compute "+version)
	}
	w := httptest.NewRecorder()
	e.a.ServeHTTP(w, r)
	out := bfvResp{code: w.Code, raw: w.Body.String()}
	_ = json.Unmarshal(w.Body.Bytes(), &out.body)
	return out
}

// create posts a server of flavor 1 with no network at version (2.67
// when ""), the fields of server added.
func (e *bfvEnv) create(version string, server map[string]any) bfvResp {
	e.t.Helper()
	s := map[string]any{"name": "bfv", "flavorRef": "1", "networks": "none"}
	for k, v := range server {
		s[k] = v
	}
	if version == "" {
		version = "2.67"
	}
	return e.do("demo:demo", http.MethodPost, "/v2.1/servers", version, map[string]any{"server": s})
}

// builds are the build_instances messages sent.
func (e *bfvEnv) builds() []*wire.BuildInstances {
	var out []*wire.BuildInstances
	for _, m := range e.sender.all() {
		if m.method == wire.MethodBuildInstances {
			out = append(out, m.payload.(*wire.BuildInstances))
		}
	}
	return out
}

// state is what a 4xx must leave as it was: instances, volume rows and
// statuses, messages.
func (e *bfvEnv) state() string {
	e.t.Helper()
	var b strings.Builder
	var n int
	if err := e.d.QueryRow(context.Background(), `SELECT COUNT(*) FROM instances`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(&b, "instances %d;", n)
	rows, err := e.d.Query(context.Background(), `SELECT id, status, version, deleted FROM volumes ORDER BY id`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, status string
		var version, deleted int64
		if err := rows.Scan(&id, &status, &version, &deleted); err != nil {
			e.t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s=%s/%d/%d;", id, status, version, deleted)
	}
	fmt.Fprintf(&b, "msgs %d", len(e.sender.all()))
	return b.String()
}

func vbdm(source, id string, boot any, extra ...any) map[string]any {
	m := map[string]any{"source_type": source, "destination_type": "volume"}
	if id != "" {
		m["uuid"] = id
	}
	if boot != nil {
		m["boot_index"] = boot
	}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func imageBoot() map[string]any {
	return map[string]any{"source_type": "image", "destination_type": "local", "boot_index": 0, "uuid": image.CirrosID}
}

// TestBootFromVolumeRefusals: every rule of Nova's create that a volume
// mapping meets (from_api, _check_and_transform_bdm,
// _validate_vol_az_for_create, _validate_bdm, get_bdm_image_metadata),
// with Nova's status and text; nothing is written and nothing is sent.
func TestBootFromVolumeRefusals(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newBFVEnv(t, d)
		before := e.state()
		list := func(m ...map[string]any) map[string]any { return map[string]any{"block_device_mapping_v2": m} }
		withImage := func(m map[string]any) map[string]any { m["imageRef"] = image.CirrosID; return m }
		cases := []struct {
			name    string
			version string
			server  map[string]any
			status  int
			want    string
		}{
			{"no imageRef and no mapping", "", map[string]any{}, 400, "Missing imageRef attribute"},
			{"no source_type", "", list(map[string]any{"uuid": bfvBoot, "destination_type": "volume", "boot_index": 0}), 400,
				"Block Device Mapping is Invalid: Some required fields are missing"},
			// The boot volume is read first (get_bdm_image_metadata), the
			// others after (_get_volumes_for_bdms).
			{"boot volume not found", "", list(vbdm("volume", bfvMissing, 0)), 400, "Block Device Mapping is Invalid: failed to get volume " + bfvMissing + "."},
			{"another project's boot volume", "", list(vbdm("volume", bfvTheirs, 0)), 400, "Block Device Mapping is Invalid: failed to get volume " + bfvTheirs + "."},
			{"data volume not found", "", withImage(list(imageBoot(), vbdm("volume", bfvMissing, nil))), 400, "Volume " + bfvMissing + " could not be found."},
			{"another project's data volume", "", withImage(list(imageBoot(), vbdm("volume", bfvTheirs, nil))), 400, "Volume " + bfvTheirs + " could not be found."},
			{"boot volume not bootable", "", list(vbdm("volume", bfvData, 0)), 400, "Block Device " + bfvData + " is not bootable."},
			{"volume in use", "", list(vbdm("volume", bfvBusy, 0)), 400,
				"Invalid volume: Invalid input received: Invalid volume: Volume " + bfvBusy + " status must be available or downloading to reserve, but the current status is in-use. (HTTP 400) (Request-ID: req-"},
			{"multiattach below 2.60", "2.59", list(vbdm("volume", bfvMulti, 0)), 400,
				"Multiattach volumes are only supported starting with compute API version 2.60."},
			{"volume for several instances", "", map[string]any{"max_count": 2, "block_device_mapping_v2": []any{vbdm("volume", bfvBoot, 0)}}, 400,
				"Cannot attach one or more volumes to multiple instances"},
			{"volumes in two cells", "", list(vbdm("volume", bfvBoot, 0), vbdm("volume", bfvFar, 1)), 400,
				"The availability zone between the server and its attached volumes do not match: Volumes are in different availability zones: az1,az2."},
			{"volume and snapshot in two cells", "", list(vbdm("volume", bfvBoot, 0), vbdm("snapshot", bfvSnapFar, 1)), 400,
				"The availability zone between the server and its attached volumes do not match: Volumes are in different availability zones: az1,az2."},
			{"zone asked for not the volumes'", "", map[string]any{"availability_zone": "nova", "block_device_mapping_v2": []any{vbdm("volume", bfvBoot, 0)}}, 400,
				"The availability zone between the server and its attached volumes do not match: Server and volumes are not in the same availability zone. Server is in: nova. Volumes are in: az1."},
			{"no boot device", "", list(vbdm("blank", "", nil, "volume_size", 1)), 400,
				"Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."},
			{"boot indexes with a gap", "", withImage(list(imageBoot(), vbdm("blank", "", 2, "volume_size", 1))), 400,
				"Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid."},
			{"image to volume without a size", "", list(vbdm("image", image.CirrosID, 0)), 400,
				"Images with destination_type 'volume' need to have a non-zero size specified"},
			{"image not found", "", list(vbdm("image", bfvMissing, 0, "volume_size", 1)), 400,
				"Block Device Mapping is Invalid: failed to get image " + bfvMissing + "."},
			{"blank volume without a size", "", withImage(list(imageBoot(), vbdm("blank", "", nil))), 400,
				"Blank volumes (source: 'blank', dest: 'volume') need to have non-zero size"},
			{"root volume below the image's min_disk", "", list(vbdm("snapshot", bfvSnap, 0, "volume_size", 1)), 400,
				"Volume is smaller than the minimum size specified in image metadata. Volume size is 1073741824 bytes, minimum size is 2147483648 bytes."},
			{"boot volume's image needs more memory", "", list(vbdm("volume", bfvFar, 0)), 400, "Flavor's memory is too small for requested image."},
			{"snapshot not found", "", list(vbdm("snapshot", bfvMissing, 0)), 400,
				"Block Device Mapping is Invalid: failed to get snapshot " + bfvMissing + "."},
			{"volume type not found", "", list(vbdm("image", image.CirrosID, 0, "volume_size", 1, "volume_type", "gold")), 400,
				"Volume type gold could not be found."},
			{"volume type of an existing volume", "", list(vbdm("volume", bfvBoot, 0, "volume_type", "ssd")), 400,
				"Block Device Mapping is Invalid: Specifying volume type to existing volume is not supported."},
			{"volume type at 2.66", "2.66", list(vbdm("image", image.CirrosID, 0, "volume_size", 1, "volume_type", "ssd")), 400,
				"Additional properties are not allowed ('volume_type' was unexpected)"},
			{"root device name taken", "", withImage(list(imageBoot(), vbdm("blank", "", nil, "volume_size", 1, "device_name", "/dev/vda"))), 400,
				"The volume cannot be assigned the same device name as the root device vda"},
			{"unknown disk bus", "", list(vbdm("volume", bfvBoot, 0, "disk_bus", "floppy")), 400, "Block Device Mapping is Invalid."},
			{"blank with a uuid", "", list(vbdm("blank", bfvBoot, 0, "volume_size", 1)), 400, "Block Device Mapping is Invalid: Invalid device UUID."},
			{"volume without a uuid", "", list(vbdm("volume", "", 0)), 400, "Block Device Mapping is Invalid: Missing device UUID."},
			{"image to local without imageRef", "", list(imageBoot()), 400, "Block Device Mapping is Invalid: Mapping image to local is not supported."},
		}
		for _, c := range cases {
			r := e.create(c.version, c.server)
			if r.code != c.status || !strings.Contains(r.msg(), c.want) {
				t.Errorf("%s: %d %q, want %d %q", c.name, r.code, r.msg(), c.status, c.want)
			}
		}
		// An admin's target_cell elsewhere than the volumes.
		r := e.do("admin:admin", http.MethodPost, "/v2.1/servers", "2.67", map[string]any{
			"server":             map[string]any{"name": "bfv", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": []any{vbdm("volume", bfvBoot, 0)}},
			"os:scheduler_hints": map[string]any{"target_cell": bfvCell2}})
		if want := "The availability zone between the server and its attached volumes do not match: Server and volumes are not in the same availability zone. Server is in: " +
			bfvCell2 + ". Volumes are in: az1."; r.code != 400 || r.msg() != want {
			t.Errorf("target_cell away from the volumes: %d %q, want 400 %q", r.code, r.msg(), want)
		}
		if after := e.state(); after != before {
			t.Errorf("refused creates wrote or sent something:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// TestBootFromVolumeCreates: the served mappings build as Nova's would:
// the instance has no image of its own ("image": "" in its view), the
// build's block devices say what to attach and make, existing volumes
// are reserved (their version unchanged: the cell's next state replaces
// it) and pin the build to their cell, the volumes to make have copies
// (creating, their size, type, zone and bootable) and the build may go
// to any cell.
func TestBootFromVolumeCreates(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newBFVEnv(t, d)
		ctx := context.Background()
		accepted := func(r bfvResp) string {
			t.Helper()
			if r.code != http.StatusAccepted {
				t.Fatalf("create: %d %s", r.code, r.raw)
			}
			s, _ := r.body["server"].(map[string]any)
			id, _ := s["id"].(string)
			return id
		}
		lastBuild := func() *wire.BuildInstances {
			t.Helper()
			bs := e.builds()
			if len(bs) == 0 {
				t.Fatal("no build sent")
			}
			return bs[len(bs)-1]
		}

		// A source volume at boot_index 0, tagged, deleted with the server.
		id := accepted(e.create("", map[string]any{"block_device_mapping_v2": []any{
			vbdm("volume", bfvBoot, "0", "delete_on_termination", true, "tag", "root", "device_name", "vda")}}))
		b := lastBuild()
		if b.TargetCell != bfvCell1 || len(b.Instances) != 1 || b.Instances[0].UUID != id || b.Instances[0].ImageRef != "" {
			t.Fatalf("build of a source volume: target %q, %+v", b.TargetCell, b.Instances)
		}
		if b.ImageProperties["hw_disk_bus"] != "virtio" || b.ImageProperties["image_id"] != "" {
			t.Errorf("image properties of a volume-backed build: %v, want the volume's image metadata", b.ImageProperties)
		}
		bd := b.Instances[0].BlockDevices
		if len(bd) != 1 || bd[0].VolumeID != bfvBoot || bd[0].New || bd[0].BootIndex != 0 || bd[0].SourceType != "volume" ||
			bd[0].DestinationType != "volume" || bd[0].UUID == "" || bd[0].AttachmentID == "" || !bd[0].DeleteOnTermination ||
			bd[0].Tag != "root" || bd[0].DeviceName != "vda" || bd[0].VolumeSize != 1 {
			t.Errorf("block devices of a source volume: %+v", bd)
		}
		if v, _ := voldb.Get(ctx, d, bfvBoot); v.Status != "reserved" || v.Version != 1 {
			t.Errorf("the boot volume after the create: %s at version %d, want reserved at 1", v.Status, v.Version)
		}
		in, err := apidb.Get(ctx, d, id)
		if err != nil || in.ImageRef != "" {
			t.Fatalf("instance copy %+v %v, want no image", in, err)
		}
		show := e.do("demo:demo", http.MethodGet, "/v2.1/servers/"+id, "2.67", nil)
		if s, _ := show.body["server"].(map[string]any); s == nil || s["image"] != "" {
			t.Errorf("a volume-backed server's view: %s, want \"image\": \"\"", show.raw)
		}
		// The same volume again: reserved now, refused, nothing written.
		before := e.state()
		if r := e.create("", map[string]any{"block_device_mapping_v2": []any{vbdm("volume", bfvBoot, 0)}}); r.code != 400 ||
			!strings.Contains(r.msg(), "the current status is reserved.") {
			t.Errorf("a reserved volume again: %d %s", r.code, r.raw)
		}
		if e.state() != before {
			t.Error("the refused repeat wrote something")
		}

		// An admin's target_cell above the volumes' cell: pinned to theirs.
		r := e.do("admin:admin", http.MethodPost, "/v2.1/servers", "2.67", map[string]any{
			"server":             map[string]any{"name": "bfv", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": []any{vbdm("volume", bfvData, 1), vbdm("snapshot", bfvSnap, 0)}},
			"os:scheduler_hints": map[string]any{"target_cell": "api"}})
		accepted(r)
		if b = lastBuild(); b.TargetCell != bfvCell1 || len(b.Instances[0].BlockDevices) != 2 || b.Instances[0].BlockDevices[0].VolumeID != bfvData ||
			!b.Instances[0].BlockDevices[1].New || b.Instances[0].BlockDevices[1].BootIndex != 0 {
			t.Errorf("a build with target_cell above the volumes: target %q, %+v", b.TargetCell, b.Instances[0].BlockDevices)
		}

		// An image to a 2 GiB ssd volume at 2.67: a new bootable copy; any cell.
		id = accepted(e.create("", map[string]any{"block_device_mapping_v2": []any{
			vbdm("image", image.CirrosID, 0, "volume_size", bfvVolumeSize, "volume_type", "ssd")}}))
		b = lastBuild()
		bd = b.Instances[0].BlockDevices
		if b.TargetCell != "" || b.Instances[0].ImageRef != "" || len(bd) != 1 || !bd[0].New || bd[0].VolumeID == "" ||
			bd[0].ImageID != image.CirrosID || bd[0].ImageSize == 0 || bd[0].VolumeSize != bfvVolumeSize ||
			bd[0].VolumeTypeID != bfvSSD || bd[0].VolumeType != "ssd" || bd[0].AttachmentID == "" {
			t.Fatalf("build of an image to volume: target %q, %+v", b.TargetCell, bd)
		}
		v, err := voldb.Get(ctx, d, bd[0].VolumeID)
		if err != nil || v.Status != voldb.StatusCreating || v.Cell != "" || v.SizeGB != bfvVolumeSize || v.TypeName != "ssd" ||
			!v.Bootable || v.ImageID != image.CirrosID || v.ProjectID != "demo" || v.ImageMetadata["image_id"] != image.CirrosID ||
			v.AvailabilityZone != "nova" {
			t.Errorf("the new volume's copy: %+v %v", v, err)
		}
		if _, err := apidb.Get(ctx, d, id); err != nil {
			t.Error(err)
		}

		// An image boot with a blank 1 GiB data volume: the default type,
		// Nova's name, not bootable; the image boot's own mapping is not a
		// block device.
		accepted(e.create("", map[string]any{"imageRef": image.CirrosID, "block_device_mapping_v2": []any{
			imageBoot(), vbdm("blank", "", nil, "volume_size", 1, "device_name", "/dev/vdb")}}))
		b = lastBuild()
		bd = b.Instances[0].BlockDevices
		if b.Instances[0].ImageRef != image.CirrosID || len(bd) != 1 || !bd[0].New || bd[0].BootIndex != -1 || bd[0].SourceType != "blank" ||
			bd[0].VolumeTypeID != voltypes.DefaultTypeID || bd[0].DeviceName != "/dev/vdb" {
			t.Fatalf("build of an image boot with a blank volume: %+v", b.Instances[0])
		}
		if v, err := voldb.Get(ctx, d, bd[0].VolumeID); err != nil || v.Name != b.Instances[0].UUID+"-blank-vol" || v.Bootable ||
			v.TypeName != voltypes.DefaultTypeName || v.SizeGB != 1 {
			t.Errorf("the blank volume's copy: %+v %v", v, err)
		}

		// A snapshot to a volume: the snapshot's size and its volume's type;
		// the build goes to the snapshot's cell.
		accepted(e.create("", map[string]any{"block_device_mapping_v2": []any{vbdm("snapshot", bfvSnap, 0)}}))
		b = lastBuild()
		bd = b.Instances[0].BlockDevices
		if b.TargetCell != bfvCell1 || len(bd) != 1 || !bd[0].New || bd[0].SnapshotID != bfvSnap || bd[0].VolumeSize != 4 || bd[0].VolumeType != "ssd" {
			t.Fatalf("build of a snapshot to volume: target %q, %+v", b.TargetCell, bd)
		}
		if v, err := voldb.Get(ctx, d, bd[0].VolumeID); err != nil || v.SnapshotID != bfvSnap || v.SizeGB != 4 || !v.Bootable ||
			v.AvailabilityZone != "az1" || v.Status != voldb.StatusCreating {
			t.Errorf("the snapshot's volume's copy: %+v %v", v, err)
		}

		// Two instances from one image to volume mapping, with OSC's imageRef "" (--boot-from-volume): a volume each.
		accepted(e.create("", map[string]any{"max_count": 2, "imageRef": "", "block_device_mapping_v2": []any{vbdm("image", image.CirrosID, 0, "volume_size", 1)}}))
		b = lastBuild()
		if len(b.Instances) != 2 || len(b.Instances[0].BlockDevices) != 1 || len(b.Instances[1].BlockDevices) != 1 ||
			b.Instances[0].BlockDevices[0].VolumeID == b.Instances[1].BlockDevices[0].VolumeID {
			t.Errorf("a multi-create's volumes: %+v", b.Instances)
		}
	})
}

// TestBootFromVolumeQuota: the volumes a boot makes count against the
// project's volume quota, checked under its lock in the create's
// transaction; Cinder's OverLimit reaches the client as Nova's create
// answers OverQuota (403 with Cinder's text), and nothing is written.
func TestBootFromVolumeQuota(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		e := newBFVEnv(t, d)
		ctx := context.Background()
		set := func(l map[string]int64) {
			t.Helper()
			if err := d.InTx(ctx, func(tx *db.Tx) error { return e.types.SetLimits(ctx, tx, "demo", l) }); err != nil {
				t.Fatal(err)
			}
		}
		// demo holds 5 volumes of 1 GiB (1 ssd) and 2 snapshots of 4 GiB
		// (1 of the ssd volume): 13 GiB, 5 of them ssd.
		before := e.state()
		for _, c := range []struct {
			limits map[string]int64
			size   int
			count  int
			want   string
		}{
			{map[string]int64{"gigabytes": 16}, 4, 1, "Requested volume or snapshot exceeds allowed gigabytes quota. Requested 4G, quota is 16G and 13G has been consumed."},
			{map[string]int64{"gigabytes": -1, "volumes": 5}, 1, 1, "Maximum number of volumes allowed (5) exceeded for quota 'volumes'."},
			{map[string]int64{"volumes": 6}, 1, 2, "Maximum number of volumes allowed (6) exceeded for quota 'volumes'."},
			{map[string]int64{"volumes": -1, "per_volume_gigabytes": 3}, 4, 1, "Requested volume size 4G is larger than maximum allowed limit 3G."},
			{map[string]int64{"per_volume_gigabytes": -1, "gigabytes_ssd": 5}, 1, 1, "Requested volume or snapshot exceeds allowed gigabytes_ssd quota. Requested 1G, quota is 5G and 5G has been consumed."},
		} {
			set(c.limits)
			r := e.create("", map[string]any{"max_count": c.count, "block_device_mapping_v2": []any{
				vbdm("image", image.CirrosID, 0, "volume_size", c.size, "volume_type", "ssd")}})
			if r.code != http.StatusForbidden || r.msg() != c.want {
				t.Errorf("limits %v, %d × %d GiB: %d %q, want 403 %q", c.limits, c.count, c.size, r.code, r.msg(), c.want)
			}
		}
		if after := e.state(); after != before {
			t.Errorf("refused creates wrote something:\nbefore %s\nafter  %s", before, after)
		}
		// Within the limits it goes.
		set(map[string]int64{"gigabytes_ssd": -1, "volumes": 6})
		if r := e.create("", map[string]any{"block_device_mapping_v2": []any{vbdm("image", image.CirrosID, 0, "volume_size", 1)}}); r.code != http.StatusAccepted {
			t.Errorf("a create within the quota: %d %s", r.code, r.raw)
		}
		if use, _ := voldb.Usage(ctx, d, "demo"); use["volumes"] != 6 {
			t.Errorf("volumes used: %v, want 6", use)
		}
	})
}
