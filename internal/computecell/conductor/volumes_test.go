package conductor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/computecell/volume/backend"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// noImages is an image store the volumes of this test never reach.
type noImages struct{}

func (noImages) ReadImage(context.Context, string, int64, int) (wire.ImageChunk, error) {
	return wire.ImageChunk{}, errors.New("no images here")
}

func (noImages) WriteImage(context.Context, *wire.ImageWrite) (wire.ImageWritten, error) {
	return wire.ImageWritten{}, errors.New("no images here")
}

// TestDeleteDetachesVolumes: a server with two volumes attached (on its
// host, through the compute agent) is deleted: in the delete's
// transaction its attachments and mappings go; the volume without
// delete_on_termination is available again, the one with it is deleted
// (its file gone); each volume's versions strictly increase.
func TestDeleteDetachesVolumes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	var m *volume.Manager
	e := newCell(t, cellOpts{hosts: []string{"h1"}, volumes: func(e *cellEnv) conductor.Volumes {
		be, err := backend.NewFile(backend.FileConfig{Dir: dir, TotalGiB: 10})
		if err != nil {
			t.Fatal(err)
		}
		m, err = volume.New(volume.Config{Cell: cell, DB: e.db, Backend: be, Sender: e.sent, Images: noImages{},
			Hosts: e.compute, PollInterval: 50 * time.Millisecond, HealInterval: time.Hour, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown(context.Background()) })
		return m
	}})
	b := build(1, 0)
	u := b.Instances[0].UUID
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)
	testpoll.Eventually(t, wait, "the instance ACTIVE", func() (bool, string) {
		vm := get(t, e.db, u).VMState
		return vm == celldb.VMActive, fmt.Sprintf("vm %q", vm)
	})
	vol := func(n int) string { return fmt.Sprintf("00000000-0000-0000-0000-0000000000v%d", n) }
	status := func(id, want string) {
		t.Helper()
		testpoll.Eventually(t, wait, "volume "+id+" "+want, func() (bool, string) {
			v, err := celldb.GetVolume(ctx, e.db, id)
			if err != nil {
				return false, err.Error()
			}
			return v.Status == want && v.Action == "", fmt.Sprintf("%s, pending %q", v.Status, v.Action)
		})
	}
	for i := 1; i <= 2; i++ {
		spec := wire.VolumeSpec{ID: vol(i), ProjectID: "p", UserID: "u", SizeGB: 1, CreatedAt: time.Now()}
		if err := e.db.InTx(ctx, func(tx *db.Tx) error {
			return m.Create(ctx, tx, envelope(fmt.Sprintf("req-vol-%d", i), &wire.VolumeCreate{Volume: spec}))
		}); err != nil {
			t.Fatal(err)
		}
		status(vol(i), "available")
		if _, err := m.AttachVolume(ctx, envelope(fmt.Sprintf("req-attach-%d", i), &wire.AttachVolume{InstanceUUID: u,
			VolumeID: vol(i), AttachmentID: fmt.Sprintf("att-%d", i), BDMUUID: fmt.Sprintf("bdm-%d", i),
			DeleteOnTermination: i == 2})); err != nil {
			t.Fatalf("attach %d: %v", i, err)
		}
		status(vol(i), "in-use")
	}
	host := get(t, e.db, u).Host
	if got := e.driver.Disks(host, u); len(got) != 2 || got["/dev/vdb"] == "" || got["/dev/vdc"] == "" {
		t.Fatalf("disks on %s %v, want /dev/vdb and /dev/vdc", host, got)
	}

	if err := e.db.InTx(ctx, func(tx *db.Tx) error {
		return e.cd.DeleteInstances(ctx, tx, envelope("req-del", &wire.DeleteInstances{UUIDs: []string{u}}))
	}); err != nil {
		t.Fatal(err)
	}
	testpoll.Eventually(t, wait, "the instance deleted", func() (bool, string) {
		in := get(t, e.db, u)
		return in.Deleted, fmt.Sprintf("vm %q task %q", in.VMState, in.TaskState)
	})
	status(vol(1), "available")
	status(vol(2), "deleted")
	if _, err := os.Stat(filepath.Join(dir, "volumes", vol(2)+".raw")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deleted volume's file: %v, want it gone", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "volumes", vol(1)+".raw")); err != nil {
		t.Errorf("the kept volume's file: %v", err)
	}
	if bdms, err := celldb.InstanceBDMs(ctx, e.db, u); err != nil || len(bdms) != 0 {
		t.Errorf("mappings %v, %v: want none", bdms, err)
	}
	if got := e.driver.Disks(host, u); len(got) != 0 {
		t.Errorf("disks %v after the delete, want none", got)
	}
	// The updates: per volume, strictly rising versions; the last of the
	// kept one has no attachment, that of the other is its deletion.
	testpoll.Eventually(t, wait, "the deletion sent", func() (bool, string) {
		st := volumeStates(t, e.sent, vol(2))
		return len(st) > 0 && st[len(st)-1].Deleted, fmt.Sprintf("%d states", len(st))
	})
	for i := 1; i <= 2; i++ {
		st := volumeStates(t, e.sent, vol(i))
		for j := 1; j < len(st); j++ {
			if st[j].Version <= st[j-1].Version {
				t.Errorf("volume %d sent at version %d after %d", i, st[j].Version, st[j-1].Version)
			}
		}
		if last := st[len(st)-1]; len(last.Attachments) != 0 {
			t.Errorf("volume %d last sent %+v, want no attachment", i, last)
		}
	}
	if last := volumeStates(t, e.sent, vol(1)); last[len(last)-1].Status != "available" {
		t.Errorf("volume 1 last sent %+v, want available", last[len(last)-1])
	}
}

// volumeStates returns every state sent of volume id, in order.
func volumeStates(t *testing.T, r *recorder, id string) []wire.VolumeState {
	t.Helper()
	var out []wire.VolumeState
	for _, m := range r.messages() {
		if m.Method != wire.MethodVolumeUpdate {
			continue
		}
		var u wire.VolumeUpdate
		if err := json.Unmarshal(m.Payload, &u); err != nil {
			t.Fatal(err)
		}
		for _, s := range u.Volumes {
			if s.ID == id {
				out = append(out, s)
			}
		}
	}
	return out
}
