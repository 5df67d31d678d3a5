package compute_test

import (
	"context"
	"maps"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
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
