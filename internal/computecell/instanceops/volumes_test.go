package instanceops

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// pickHost is a host scheduler that picks the first of its hosts the
// request does not ignore.
type pickHost struct {
	mu    sync.Mutex
	hosts []string
}

func (p *pickHost) set(hosts ...string) {
	p.mu.Lock()
	p.hosts = hosts
	p.mu.Unlock()
}

func (p *pickHost) Select(_ context.Context, req *hostsched.Request) ([]hostsched.Selection, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.hosts {
		if !slices.Contains(req.IgnoreHosts, h) {
			return []hostsched.Selection{{Host: h}}, nil
		}
	}
	return nil, hostsched.ErrNoValidHost
}

// failAttach is the compute agent as the moves reach it, whose attach on
// the hosts in fail fails.
type failAttach struct {
	VolumeHosts
	mu   sync.Mutex
	fail map[string]bool
}

func (f *failAttach) AttachVolume(ctx context.Context, host, uuid, device, path string) error {
	f.mu.Lock()
	fail := f.fail[host]
	f.mu.Unlock()
	if fail {
		return fmt.Errorf("injected attach failure on %s", host)
	}
	return f.VolumeHosts.AttachVolume(ctx, host, uuid, device, path)
}

// volCell is a cell with a real compute agent on the fake driver (hosts
// h1, h2, h3) and the operations, with one instance ACTIVE on h1 that
// has two volumes attached (/dev/vdb, /dev/vdc), as the volume manager
// leaves them: the rows attached with their backing, the disks on h1.
type volCell struct {
	t      *testing.T
	d      *db.DB
	drv    *fake.Driver
	svc    *compute.Service
	o      *Ops
	sched  *pickHost
	attach *failAttach
	uuid   string
	disks  map[string]string
}

func newVolCell(t *testing.T, d *db.DB) *volCell {
	t.Helper()
	ctx := context.Background()
	if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
		t.Fatal(err)
	}
	c := &volCell{t: t, d: d, sched: &pickHost{}, uuid: "77777777-0000-4000-8000-000000000001",
		disks: map[string]string{"/dev/vdb": "/vols/v1.raw", "/dev/vdc": "/vols/v2.raw"}}
	var err error
	if c.drv, err = fake.New(fake.Config{}); err != nil {
		t.Fatal(err)
	}
	c.svc = c.newCompute(c.drv)
	c.attach = &failAttach{VolumeHosts: c.svc, fail: map[string]bool{}}
	c.o, err = New(Config{Cell: testCell, DB: d, Sender: &recorder{}, Host: c.svc, VMs: c.svc, Scheduler: c.sched,
		Volumes: c.attach, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: c.uuid, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
		Flavor: wire.Flavor{ID: "1", Name: "small", VCPUs: 1, RAMMB: 512, RootGB: 1}, VMState: vmstate.Building,
		TaskState: celldb.TaskNetworking, RequestID: "req-0"}
	if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, t0) }); err != nil {
		t.Fatal(err)
	}
	if err := c.svc.Spawn(ctx, "h1", c.uuid); err != nil {
		t.Fatal(err)
	}
	n := 0
	for dev, path := range c.disks {
		n++
		vol := fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", n)
		att := fmt.Sprintf("a7000000-0000-4000-8000-00000000000%d", n)
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := celldb.InsertBDM(ctx, tx, &celldb.BDM{UUID: fmt.Sprintf("bd000000-0000-4000-8000-00000000000%d", n),
				InstanceUUID: c.uuid, VolumeID: vol, AttachmentID: att, DeviceName: dev, BootIndex: -1, SourceType: "volume",
				DestinationType: "volume", CreatedAt: t0}); err != nil {
				return err
			}
			return celldb.InsertAttachment(ctx, tx, &celldb.VolumeAttachment{ID: att, VolumeID: vol, InstanceUUID: c.uuid,
				Status: "attached", Mode: "rw", Mountpoint: dev, Backing: path, AttachedAt: t0})
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.svc.AttachVolume(ctx, "h1", c.uuid, dev, path); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// newCompute starts a compute agent of hosts h1..h3 on drv.
func (c *volCell) newCompute(drv *fake.Driver) *compute.Service {
	c.t.Helper()
	svc, err := compute.New(compute.Config{Cell: testCell, DB: c.d, Sender: &recorder{}, Driver: drv, Hosts: []string{"h1", "h2", "h3"},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		c.t.Fatal(err)
	}
	if err := svc.Start(context.Background()); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	return svc
}

// do hands the cell an instance action and carries it out, as the
// worker does; it returns the action's event result.
func (c *volCell) do(action, requestID string, params *wire.ActionParams) string {
	c.t.Helper()
	ctx := context.Background()
	var raw json.RawMessage
	if params != nil {
		raw, _ = json.Marshal(params)
	}
	payload, _ := json.Marshal(&wire.InstanceAction{UUID: c.uuid, Action: action, Params: raw, UserID: "u", ProjectID: "p"})
	env := &wire.Envelope{ID: "m-" + requestID, Method: wire.MethodInstanceAction, RequestID: requestID, Payload: payload}
	if err := c.d.InTx(ctx, func(tx *db.Tx) error { return c.o.HandleAction(ctx, tx, env) }); err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
	ps, err := celldb.PendingActions(ctx, c.d, 10)
	if err != nil || len(ps) != 1 {
		c.t.Fatalf("%s: pending %+v, %v", action, ps, err)
	}
	c.o.run(ctx, ps[0])
	acts, err := celldb.ListActions(ctx, c.d, c.uuid, requestID)
	if err != nil || len(acts) != 1 || len(acts[0].Events) == 0 {
		c.t.Fatalf("%s: actions %+v, %v", action, acts, err)
	}
	return acts[0].Events[0].Result
}

// on checks the instance's vm state and host, and the disks of its copy
// on each host (nil: none).
func (c *volCell) on(what, vm, host string, disks map[string]map[string]string) {
	c.t.Helper()
	in, err := celldb.Get(context.Background(), c.d, c.uuid)
	if err != nil {
		c.t.Fatal(err)
	}
	if in.VMState != vm || in.Host != host || in.TaskState != "" || in.Action != "" {
		c.t.Errorf("%s: %s/%q on %q (action %q), want %s on %q", what, in.VMState, in.TaskState, in.Host, in.Action, vm, host)
	}
	for _, h := range []string{"h1", "h2", "h3"} {
		if got := c.drv.Disks(h, c.uuid); !maps.Equal(got, disks[h]) {
			c.t.Errorf("%s: disks on %s %v, want %v", what, h, got, disks[h])
		}
	}
}

// attachmentsKept checks that the cell's rows still have both volumes
// attached.
func (c *volCell) attachmentsKept(what string) {
	c.t.Helper()
	atts, err := celldb.HostAttachments(context.Background(), c.d, c.uuid)
	if err != nil || len(atts) != 2 {
		c.t.Errorf("%s: attachments %+v, %v; want both attached", what, atts, err)
	}
}

func (c *volCell) running(host string) bool {
	return slices.Contains(c.drv.List(host), c.uuid)
}

// TestVolumesFollowResize: a resize attaches the server's volumes on the
// destination and detaches them from the source copy; a revert puts
// them back on the source (the destination copy goes with its disks); a
// migrate then confirm leaves them on the new host only, the source copy
// gone. The attachments stay attached throughout.
func TestVolumesFollowResize(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newVolCell(t, d)
		c.on("before", vmstate.Active, "h1", map[string]map[string]string{"h1": c.disks})
		c.sched.set("h1", "h2")
		bigger := wire.Flavor{ID: "2", Name: "medium", VCPUs: 2, RAMMB: 1024, RootGB: 2}
		if r := c.do("resize", "req-resize", &wire.ActionParams{Flavor: &bigger}); r != "Success" {
			t.Fatalf("resize: %s", r)
		}
		c.on("resized", vmstate.Resized, "h2", map[string]map[string]string{"h2": c.disks})
		if !c.running("h1") || !c.running("h2") {
			t.Errorf("copies on h1 %v, h2 %v; want both until confirm or revert", c.running("h1"), c.running("h2"))
		}
		if r := c.do("revert_resize", "req-revert", nil); r != "Success" {
			t.Fatalf("revert: %s", r)
		}
		c.on("reverted", vmstate.Active, "h1", map[string]map[string]string{"h1": c.disks})
		if c.running("h2") {
			t.Error("the destination copy is still on h2 after the revert")
		}
		c.attachmentsKept("after the revert")

		if r := c.do("migrate", "req-migrate", nil); r != "Success" {
			t.Fatalf("migrate: %s", r)
		}
		c.on("migrated", vmstate.Resized, "h2", map[string]map[string]string{"h2": c.disks})
		if r := c.do("confirm_resize", "req-confirm", nil); r != "Success" {
			t.Fatalf("confirm: %s", r)
		}
		c.on("confirmed", vmstate.Active, "h2", map[string]map[string]string{"h2": c.disks})
		if c.running("h1") {
			t.Error("the source copy is still on h1 after the confirm")
		}
		c.attachmentsKept("after the confirm")
	})
}

// TestResizeFailsWhenDestinationCannotAttach: a destination that cannot
// attach the volumes fails the resize: its copy goes, the instance stays
// on the source with its volumes, the migration is in error; a revert
// whose source cannot take them back fails and leaves the resize as it
// was, and succeeds once the source can.
func TestResizeFailsWhenDestinationCannotAttach(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newVolCell(t, d)
		c.sched.set("h2", "h3")
		c.attach.fail["h2"] = true
		if r := c.do("migrate", "req-migrate", nil); r != "Error" {
			t.Fatalf("migrate to a host that cannot attach: %s, want Error", r)
		}
		c.on("failed migrate", vmstate.Active, "h1", map[string]map[string]string{"h1": c.disks})
		if c.running("h2") {
			t.Error("the failed destination's copy is still on h2")
		}
		if _, err := celldb.ActiveMigration(context.Background(), d, c.uuid); err == nil {
			t.Error("the failed migration is still active")
		}

		c.attach.fail["h2"] = false
		if r := c.do("migrate", "req-migrate-2", nil); r != "Success" {
			t.Fatalf("migrate: %s", r)
		}
		c.attach.fail["h1"] = true
		if r := c.do("revert_resize", "req-revert", nil); r != "Error" {
			t.Fatalf("revert to a source that cannot attach: %s, want Error", r)
		}
		c.on("failed revert", vmstate.Resized, "h2", map[string]map[string]string{"h2": c.disks})
		if !c.running("h1") || !c.running("h2") {
			t.Error("a failed revert took a copy away")
		}
		c.attach.fail["h1"] = false
		if r := c.do("revert_resize", "req-revert-2", nil); r != "Success" {
			t.Fatalf("revert: %s", r)
		}
		c.on("reverted", vmstate.Active, "h1", map[string]map[string]string{"h1": c.disks})
	})
}

// TestVolumesFollowShelveAndUnshelve: a shelve that offloads detaches the
// volumes from the host (the VM leaves it) but keeps the attachments;
// the unshelve attaches them on the host it lands on before the server
// is active.
func TestVolumesFollowShelveAndUnshelve(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newVolCell(t, d)
		if r := c.do("shelve", "req-shelve", nil); r != "Success" {
			t.Fatalf("shelve: %s", r)
		}
		c.on("offloaded", vmstate.ShelvedOffloaded, "", nil)
		if c.running("h1") {
			t.Error("the offloaded instance is still on h1")
		}
		c.attachmentsKept("offloaded")
		c.sched.set("h3")
		if r := c.do("unshelve", "req-unshelve", nil); r != "Success" {
			t.Fatalf("unshelve: %s", r)
		}
		c.on("unshelved", vmstate.Active, "h3", map[string]map[string]string{"h3": c.disks})
		c.attachmentsKept("unshelved")
	})
}

// TestRestoreAttachesVolumes: a restarted compute agent (a new driver,
// its hypervisor empty) restores the instance with its volumes on the
// host it runs on, and the source copy of a resize waiting for confirm
// without them; a second restart does the same again.
func TestRestoreAttachesVolumes(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newVolCell(t, d)
		c.sched.set("h2")
		if r := c.do("migrate", "req-migrate", nil); r != "Success" {
			t.Fatalf("migrate: %s", r)
		}
		for i := range 2 {
			if err := c.svc.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			drv, err := fake.New(fake.Config{})
			if err != nil {
				t.Fatal(err)
			}
			c.drv, c.svc = drv, c.newCompute(drv)
			testpoll.Eventually(t, 10*time.Second, "the restore", func() (bool, string) {
				got := drv.Disks("h2", c.uuid)
				return len(got) == 2 && c.running("h1"), fmt.Sprintf("disks on h2 %v, copy on h1 %v", got, c.running("h1"))
			})
			c.on(fmt.Sprintf("restart %d", i+1), vmstate.Resized, "h2", map[string]map[string]string{"h2": c.disks})
		}
	})
}
