package compute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// TestAttachAndDetachVolume: the agent attaches a volume to an instance
// on its host through the driver, and detaches it; it refuses a host the
// instance is not on; a destroy takes the disks with the VM.
func TestAttachAndDetachVolume(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{}, fake.Config{}, "h1", "h2")
	in := e.insert(t, uuidN(1), small, celldb.TaskNetworking)
	if err := e.svc.Spawn(ctx, "h1", in.UUID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AttachVolume(ctx, "h2", in.UUID, "/dev/vdb", "/v/1.raw"); err == nil {
		t.Error("attach on a host the instance is not on: no error")
	}
	if err := e.svc.AttachVolume(ctx, "h1", in.UUID, "/dev/vdb", "/v/1.raw"); err != nil {
		t.Fatalf("attach: %v", err)
	}
	if got := e.driver.Disks("h1", in.UUID); !maps.Equal(got, map[string]string{"/dev/vdb": "/v/1.raw"}) {
		t.Errorf("disks %v, want /dev/vdb", got)
	}
	if err := e.svc.DetachVolume(ctx, "h1", in.UUID, "/dev/vdb"); err != nil {
		t.Fatalf("detach: %v", err)
	}
	if got := e.driver.Disks("h1", in.UUID); len(got) != 0 {
		t.Errorf("disks after the detach %v, want none", got)
	}
	if err := e.svc.AttachVolume(ctx, "h1", in.UUID, "/dev/vdc", "/v/2.raw"); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Destroy(ctx, "h1", in.UUID); err != nil {
		t.Fatal(err)
	}
	if got := e.driver.Disks("h1", in.UUID); len(got) != 0 {
		t.Errorf("disks after the destroy %v, want none", got)
	}
}

// attachFails is the fake driver whose volume attach fails on the hosts
// in fail.
type attachFails struct {
	*fake.Driver
	fail map[string]bool
}

func (a attachFails) AttachVolume(ctx context.Context, host, uuid, device, path string) error {
	if a.fail[host] {
		return fmt.Errorf("injected attach failure on %s", host)
	}
	return a.Driver.AttachVolume(ctx, host, uuid, device, path)
}

// attached records uuid's volume n attached at device with backing
// path, as the volume manager leaves it.
func (e *env) attached(t *testing.T, uuid string, n int, device, path string) {
	t.Helper()
	ctx := context.Background()
	vol, att := fmt.Sprintf("00000000-0000-4000-8000-%012d", n), fmt.Sprintf("a7000000-0000-4000-8000-%012d", n)
	err := e.db.InTx(ctx, func(tx *db.Tx) error {
		if err := celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: fmt.Sprintf("bd000000-0000-4000-8000-%012d", n), InstanceUUID: uuid,
			VolumeID: vol, AttachmentID: att, DeviceName: device, BootIndex: -1, SourceType: "volume", DestinationType: "volume",
			CreatedAt: t0}); err != nil {
			return err
		}
		return celldb.InsertAttachment(ctx, tx, &celldb.VolumeAttachment{ID: att, VolumeID: vol, InstanceUUID: uuid,
			Status: "attached", Mode: "rw", Mountpoint: device, Backing: path, AttachedAt: t0})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSpawnAttachesVolumes: the spawn of an instance that has volumes
// attached already (an unshelve of an offloaded one) attaches them on
// the host before the instance is active; an attachment without a
// backing recorded is left out; a host that cannot attach them fails the
// spawn: its copy goes and its claim is released, so the caller tries
// another host.
func TestSpawnAttachesVolumes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := setupOn(t, d, compute.HostSpec{}, fake.Config{}, "h1", "h2")
		if err := e.svc.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		drv := attachFails{Driver: e.driver, fail: map[string]bool{"h2": true}}
		svc, err := compute.New(compute.Config{Cell: cell, DB: d, Sender: e.sent, Driver: drv, Hosts: []string{"h1", "h2"},
			Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return e.now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
		e.svc = svc

		in := e.insert(t, uuidN(1), small, celldb.TaskNetworking)
		// An unshelve: the instance is offloaded, not building (a first
		// build has no attachments but its mappings').
		if _, err := d.Exec(ctx, `UPDATE instances SET vm_state = ? WHERE uuid = ?`, vmstate.ShelvedOffloaded, in.UUID); err != nil {
			t.Fatal(err)
		}
		e.attached(t, in.UUID, 1, "/dev/vdb", "/vols/1.raw")
		e.attached(t, in.UUID, 2, "/dev/vdc", "")
		if err := svc.Spawn(ctx, "h2", in.UUID); err == nil {
			t.Fatal("spawn on a host that cannot attach: no error")
		}
		if slices.Contains(e.driver.List("h2"), in.UUID) {
			t.Error("the failed spawn's copy is still on h2")
		}
		e.noUse(t, "h2")
		if err := svc.Spawn(ctx, "h1", in.UUID); err != nil {
			t.Fatalf("spawn on h1: %v", err)
		}
		if got := e.driver.Disks("h1", in.UUID); !maps.Equal(got, map[string]string{"/dev/vdb": "/vols/1.raw"}) {
			t.Errorf("disks on h1 %v, want /dev/vdb (the one without a backing left out)", got)
		}
		if got := e.get(t, in.UUID); got.VMState != celldb.VMActive || got.Host != "h1" {
			t.Errorf("instance %s on %q, want active on h1", got.VMState, got.Host)
		}
	})
}

// TestSpawnAttachesABuildsVolumes: a boot from volume (the build's
// mappings recorded, their attachments attaching, as the volume role's
// PrepareBuild leaves them) is attached on the host in the spawn, and the
// transaction that makes the instance active makes the attachment
// attached and the volume in-use, its state sent up before the
// instance's: the API cell never shows the server ACTIVE with its boot
// volume still attaching. An attachment the instance's delete took
// meanwhile is left alone (the spawn's transaction then fails as the
// instance is gone).
func TestSpawnAttachesABuildsVolumes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		e := setupOn(t, d, compute.HostSpec{}, fake.Config{}, "h1")
		e.sent.takeAll()
		vol, att := "00000000-0000-4000-8000-000000000001", "a7000000-0000-4000-8000-000000000001"
		bd := []wire.BlockDevice{{UUID: "bd000000-0000-4000-8000-000000000001", SourceType: "image", DestinationType: "volume",
			VolumeID: vol, New: true, AttachmentID: att, BootIndex: 0, DeviceName: "/dev/vda"}}
		in := &celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: uuidN(1), Name: "bfv", ProjectID: "p", UserID: "u", CreatedAt: t0,
			BlockDevices: bd}, Build: celldb.BuildContext{BlockDevices: bd},
			Flavor: small, VMState: celldb.VMBuilding, TaskState: celldb.TaskNetworking, Version: 4, RequestID: "req-bfv"}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := celldb.Insert(ctx, tx, []celldb.Instance{*in}, t0); err != nil {
				return err
			}
			if _, err := celldb.InsertVolume(ctx, tx, &celldb.Volume{ID: vol, ProjectID: "p", UserID: "u", SizeGB: 1, Status: "attaching",
				Version: 2, CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
			if err := celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: "bd000000-0000-4000-8000-000000000001", InstanceUUID: in.UUID,
				VolumeID: vol, AttachmentID: att, DeviceName: "/dev/vda", BootIndex: 0, SourceType: "image", DestinationType: "volume",
				CreatedAt: t0}); err != nil {
				return err
			}
			return celldb.InsertAttachment(ctx, tx, &celldb.VolumeAttachment{ID: att, VolumeID: vol, InstanceUUID: in.UUID,
				Status: "attaching", Mode: "rw", Mountpoint: "/dev/vda", Backing: "/vols/1.raw", RequestID: in.RequestID})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Spawn(ctx, "h1", in.UUID); err != nil {
			t.Fatal(err)
		}
		if got := e.driver.Disks("h1", in.UUID); !maps.Equal(got, map[string]string{"/dev/vda": "/vols/1.raw"}) {
			t.Errorf("disks on h1 %v, want /dev/vda", got)
		}
		a, err := celldb.GetAttachment(ctx, d, att)
		if err != nil || a.Status != "attached" || a.Pending != "" {
			t.Errorf("the attachment after the spawn: %+v %v, want attached, nothing pending", a, err)
		}
		v, err := celldb.GetVolume(ctx, d, vol)
		if err != nil || v.Status != "in-use" || v.Version != 3 {
			t.Errorf("the volume after the spawn: %+v %v, want in-use at version 3", v, err)
		}
		var order []string
		for _, m := range e.sent.takeAll() {
			switch m.Method {
			case wire.MethodVolumeUpdate:
				var u wire.VolumeUpdate
				if err := json.Unmarshal(m.Payload, &u); err != nil || len(u.Volumes) != 1 || u.Volumes[0].Status != "in-use" ||
					len(u.Volumes[0].Attachments) != 1 || u.Volumes[0].Attachments[0].Status != "attached" {
					t.Errorf("volume_update %s", m.Payload)
				}
				order = append(order, "volume")
			case wire.MethodInstanceUpdate:
				order = append(order, "instance")
			}
		}
		if !slices.Equal(order, []string{"volume", "instance"}) {
			t.Errorf("sent %v, want the volume's state, then the instance's", order)
		}
		if got := e.get(t, in.UUID); got.VMState != celldb.VMActive {
			t.Errorf("instance %s, want active", got.VMState)
		}
	})
}
