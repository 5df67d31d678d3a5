package instanceops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

const testCell = "api!cell1"

var t0 = time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)

// sent is a message sent in a transaction that committed.
type sent struct {
	method  string
	payload any
}

type recorder struct {
	mu   sync.Mutex
	msgs []sent
}

func (r *recorder) Send(_ context.Context, tx *db.Tx, _, method, _ string, p any) error {
	tx.AfterCommit(func() {
		r.mu.Lock()
		r.msgs = append(r.msgs, sent{method, p})
		r.mu.Unlock()
	})
	return nil
}

// snapshots are the snapshot_done messages sent.
func (r *recorder) snapshots() []wire.SnapshotDone {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.SnapshotDone
	for _, m := range r.msgs {
		if m.method == wire.MethodSnapshotDone {
			out = append(out, *m.payload.(*wire.SnapshotDone))
		}
	}
	return out
}

// vms is a hypervisor whose operations in fail fail; it records the
// operations (op@host) and spawns (spawn@host).
type vms struct {
	mu   sync.Mutex
	ops  []string
	fail map[string]bool
	d    *db.DB
	o    *Ops
}

func (v *vms) record(s string) {
	v.mu.Lock()
	v.ops = append(v.ops, s)
	v.mu.Unlock()
}

func (v *vms) VMSpawn(_ context.Context, host, _ string, _ wire.Flavor) error {
	v.record("vmspawn@" + host)
	return nil
}
func (v *vms) VMDestroy(_ context.Context, host, _ string) error {
	v.record("destroy@" + host)
	return nil
}

func (v *vms) VMOp(_ context.Context, host, _ string, op string) error {
	v.record(op + "@" + host)
	if v.fail[op] {
		return fmt.Errorf("injected %s failure", op)
	}
	return nil
}

// Spawn ends the instance ACTIVE on host, as the compute role's does.
func (v *vms) Spawn(ctx context.Context, host, uuid string) error {
	v.record("spawn@" + host)
	active, none, running := vmstate.Active, "", vmstate.Running
	return v.d.InTx(ctx, func(tx *db.Tx) error {
		_, err := v.o.state.Transition(ctx, tx, uuid, nil, celldb.Change{Host: &host, VMState: &active, TaskState: &none, PowerState: &running})
		return err
	})
}

func (v *vms) done() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.ops)
}

type noHost struct{}

func (noHost) Act(context.Context, string, string, string) error { return errors.New("not used") }
func (noHost) ConsoleOutput(context.Context, string, string) (string, error) {
	return "", errors.New("not used")
}

type oneHost string

func (h oneHost) Select(context.Context, *hostsched.Request) ([]hostsched.Selection, error) {
	return []hostsched.Selection{{Host: string(h)}}, nil
}

// shelveCell is a cell database with one ACTIVE running instance on h1,
// and its operations, whose clock the test moves.
type shelveCell struct {
	t    *testing.T
	d    *db.DB
	o    *Ops
	vms  *vms
	rec  *recorder
	now  time.Time
	uuid string
}

func newShelveCell(t *testing.T, d *db.DB, offloadTime time.Duration) *shelveCell {
	t.Helper()
	ctx := context.Background()
	if err := d.Migrate(ctx, "compute", celldb.Migrations); err != nil {
		t.Fatal(err)
	}
	c := &shelveCell{t: t, d: d, rec: &recorder{}, now: t0, uuid: "55555555-0000-4000-8000-000000000001"}
	c.vms = &vms{fail: map[string]bool{}, d: d}
	o, err := New(Config{Cell: testCell, DB: d, Sender: c.rec, Host: noHost{}, VMs: c.vms, Scheduler: oneHost("h2"),
		ShelvedOffloadTime: offloadTime, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return c.now }})
	if err != nil {
		t.Fatal(err)
	}
	c.o, c.vms.o = o, o
	in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: c.uuid, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
		Flavor: wire.Flavor{ID: "1", Name: "small", VCPUs: 1, RAMMB: 512, RootGB: 1}, Host: "h1", VMState: vmstate.Active,
		PowerState: vmstate.Running, RequestID: "req-0"}
	if err := d.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, t0) }); err != nil {
		t.Fatal(err)
	}
	return c
}

// act hands the cell an instance_action, as the API cell sends it.
func (c *shelveCell) act(action, requestID string, params *wire.ActionParams) {
	c.t.Helper()
	var raw json.RawMessage
	if params != nil {
		raw, _ = json.Marshal(params)
	}
	payload, _ := json.Marshal(&wire.InstanceAction{UUID: c.uuid, Action: action, Params: raw, UserID: "u", ProjectID: "p"})
	env := &wire.Envelope{ID: "m-" + requestID, Method: wire.MethodInstanceAction, RequestID: requestID, Payload: payload}
	ctx := context.Background()
	if err := c.d.InTx(ctx, func(tx *db.Tx) error { return c.o.HandleAction(ctx, tx, env) }); err != nil {
		c.t.Fatalf("%s: %v", action, err)
	}
}

// work carries out the pending actions, as the worker does.
func (c *shelveCell) work() {
	c.t.Helper()
	ps, err := celldb.PendingActions(context.Background(), c.d, 10)
	if err != nil {
		c.t.Fatal(err)
	}
	for _, p := range ps {
		c.o.run(context.Background(), p)
	}
}

func (c *shelveCell) instance() *celldb.Instance {
	c.t.Helper()
	in, err := celldb.Get(context.Background(), c.d, c.uuid)
	if err != nil {
		c.t.Fatal(err)
	}
	return in
}

// is checks the instance's states and host.
func (c *shelveCell) is(what, vm, task string, power int, host string) {
	c.t.Helper()
	in := c.instance()
	if in.VMState != vm || in.TaskState != task || in.PowerState != power || in.Host != host || in.Action != "" && task == "" {
		c.t.Errorf("%s: %s/%q power %d on %q (action %q), want %s/%q power %d on %q", what, in.VMState, in.TaskState, in.PowerState,
			in.Host, in.Action, vm, task, power, host)
	}
}

// TestShelveSnapshotFails: a snapshot that fails tells the API cell
// (snapshot_done failed: it deletes the queued image) and leaves the
// instance as it was, running on its host, with the action recorded as
// an error.
func TestShelveSnapshotFails(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newShelveCell(t, d, 0)
		c.vms.fail["snapshot"] = true
		c.act("shelve", "req-1", &wire.ActionParams{ImageRef: "img-1"})
		c.work()
		c.is("after a failed snapshot", vmstate.Active, "", vmstate.Running, "h1")
		if got, want := c.vms.done(), []string{"power_off@h1", "snapshot@h1", "power_on@h1"}; !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}
		if s := c.rec.snapshots(); len(s) != 1 || !s[0].Failed || s[0].ImageID != "img-1" || s[0].UUID != c.uuid {
			t.Errorf("snapshot_done sent: %+v, want one failed for img-1", s)
		}
		acts, err := celldb.ListActions(context.Background(), d, c.uuid, "req-1")
		if err != nil || len(acts) != 1 || acts[0].Action != "shelve" || acts[0].Message != "Error" {
			t.Errorf("instance actions %+v (%v), want shelve with Error", acts, err)
		}
	})
}

// TestShelveKeepsTheHostUntilTheOffload: with an offload time above zero
// the shelve snapshots (one snapshot_done with data, in the transaction
// that makes the instance SHELVED) and keeps the host; the same action
// delivered twice is refused the second time (the instance is busy) and
// makes no second snapshot. The offload periodic queues nothing before the
// time has passed, then a shelve_offload once (a second round finds it
// busy), which takes it off its host; unshelve boots it on the host the
// scheduler picks.
func TestShelveKeepsTheHostUntilTheOffload(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		c := newShelveCell(t, d, time.Hour)
		c.act("shelve", "req-1", &wire.ActionParams{ImageRef: "img-1"})
		c.act("shelve", "req-1", &wire.ActionParams{ImageRef: "img-1"})
		c.work()
		c.is("shelved", vmstate.Shelved, "", vmstate.Shutdown, "h1")
		if s := c.rec.snapshots(); len(s) != 1 || s[0].Failed || s[0].ImageID != "img-1" || len(s[0].Data) == 0 {
			t.Errorf("snapshot_done sent: %+v, want one with data for img-1", s)
		}
		c.now = c.now.Add(59 * time.Minute)
		if n, err := c.o.OffloadShelved(ctx); err != nil || n != 0 {
			t.Errorf("offload before the time: %d queued (%v)", n, err)
		}
		c.now = c.now.Add(2 * time.Minute)
		for i, want := range []int{1, 0} {
			if n, err := c.o.OffloadShelved(ctx); err != nil || n != want {
				t.Errorf("offload round %d after the time: %d queued (%v), want %d", i, n, err, want)
			}
		}
		c.is("offload queued", vmstate.Shelved, "shelving_offloading", vmstate.Shutdown, "h1")
		c.work()
		c.is("offloaded", vmstate.ShelvedOffloaded, "", vmstate.Shutdown, "")
		c.act("unshelve", "req-2", &wire.ActionParams{ImageRef: "img-1"})
		c.work()
		c.is("unshelved", vmstate.Active, "", vmstate.Running, "h2")
		if got, want := c.vms.done(), []string{"power_off@h1", "snapshot@h1", "shelve@h1", "spawn@h2"}; !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}
	})
}

// TestUnshelveAShelvedServer: a SHELVED instance (never offloaded) is
// powered on where it is, with or without its image (it needs none); the
// shelveOffload action is refused on an ACTIVE one.
func TestUnshelveAShelvedServer(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		c := newShelveCell(t, d, -1)
		c.act("shelve", "req-1", &wire.ActionParams{ImageRef: "img-1"})
		c.work()
		c.is("shelved", vmstate.Shelved, "", vmstate.Shutdown, "h1")
		c.act("unshelve", "req-2", &wire.ActionParams{ImageRef: "img-1", ImageMissing: true})
		c.work()
		c.is("unshelved", vmstate.Active, "", vmstate.Running, "h1")
		c.act("shelve_offload", "req-3", nil)
		c.work()
		c.is("offload of an active instance", vmstate.Active, "", vmstate.Running, "h1")
		if got, want := c.vms.done(), []string{"power_off@h1", "snapshot@h1", "power_on@h1"}; !slices.Equal(got, want) {
			t.Errorf("operations %v, want %v", got, want)
		}
	})
}
