package fake_test

import (
	"context"
	"maps"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
)

var _ virt.VolumeAttacher = (*fake.Driver)(nil)

// TestVolumes: a VM keeps the volumes attached to it (device to backing
// path); attaching the same again does nothing, another path at a taken
// device is an error, detaching a device it has not is not; a VM not on
// the host, or a failing host, cannot attach; a destroyed or shelved VM
// forgets its disks.
func TestVolumes(t *testing.T) {
	ctx := context.Background()
	d := newDriver(t, fake.Config{FailHosts: []string{"bad"}})
	vm := inst(1)
	if err := d.AttachVolume(ctx, "h1", vm.UUID, "/dev/vdb", "/v/1.raw"); err == nil {
		t.Error("attach to a VM not on the host: no error")
	}
	if err := d.Spawn(ctx, "h1", vm); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.AttachVolume(ctx, "h1", vm.UUID, "/dev/vdb", "/v/1.raw"); err != nil {
			t.Fatalf("attach: %v", err)
		}
	}
	if err := d.AttachVolume(ctx, "h1", vm.UUID, "/dev/vdc", "/v/2.raw"); err != nil {
		t.Fatal(err)
	}
	if err := d.AttachVolume(ctx, "h1", vm.UUID, "/dev/vdb", "/v/3.raw"); err == nil {
		t.Error("another volume at a taken device: no error")
	}
	if got, want := d.Disks("h1", vm.UUID), map[string]string{"/dev/vdb": "/v/1.raw", "/dev/vdc": "/v/2.raw"}; !maps.Equal(got, want) {
		t.Errorf("disks %v, want %v", got, want)
	}
	if err := d.DetachVolume(ctx, "h1", vm.UUID, "/dev/vdb"); err != nil {
		t.Fatal(err)
	}
	if err := d.DetachVolume(ctx, "h1", vm.UUID, "/dev/vdz"); err != nil {
		t.Errorf("detach of a device the VM has not: %v", err)
	}
	if got, want := d.Disks("h1", vm.UUID), map[string]string{"/dev/vdc": "/v/2.raw"}; !maps.Equal(got, want) {
		t.Errorf("disks after the detach %v, want %v", got, want)
	}
	if err := d.Destroy(ctx, "h1", vm.UUID); err != nil {
		t.Fatal(err)
	}
	if err := d.Spawn(ctx, "h1", vm); err != nil {
		t.Fatal(err)
	}
	if got := d.Disks("h1", vm.UUID); len(got) != 0 {
		t.Errorf("disks after a destroy and a spawn %v, want none", got)
	}
	if err := d.AttachVolume(ctx, "h1", vm.UUID, "/dev/vdb", "/v/1.raw"); err != nil {
		t.Fatal(err)
	}
	if err := d.Operate(ctx, "h1", vm.UUID, "shelve"); err != nil {
		t.Fatal(err)
	}
	if got := d.Disks("h1", vm.UUID); len(got) != 0 {
		t.Errorf("disks after a shelve %v, want none", got)
	}
	// A failing host's spawn fails, so no VM can be there: the attach
	// fails too.
	if err := d.AttachVolume(ctx, "bad", inst(2).UUID, "/dev/vdb", "/v/1.raw"); err == nil {
		t.Error("attach on a failing host: no error")
	}
}
