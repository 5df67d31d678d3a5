package conductor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/computecell/scheduler"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The cell under test sits two levels below the root, so that "the root"
// and "the scheduling parent" are different paths.
const (
	cell   = "api!region!cell1"
	root   = "api"
	parent = "api!region"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

var small = wire.Flavor{ID: "1", Name: "m1.small", VCPUs: 1, RAMMB: 1024, RootGB: 10}

var quiet = slog.New(slog.DiscardHandler)

// message is one message the conductor (or compute) sent; it is recorded
// only when the transaction that sent it commits, as the outbox would.
type message struct {
	To, Method, RequestID string
	Payload               json.RawMessage
}

type recorder struct {
	mu   sync.Mutex
	msgs []message
}

var (
	_ conductor.Sender = (*recorder)(nil)
	_ compute.Sender   = (*recorder)(nil)
)

func (r *recorder) Send(_ context.Context, tx *db.Tx, to, method, requestID string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	m := message{To: to, Method: method, RequestID: requestID, Payload: b}
	tx.AfterCommit(func() {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	})
	return nil
}

func (r *recorder) messages() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

// updates decodes every instance_update sent.
func (r *recorder) updates(t *testing.T) []wire.InstanceUpdate {
	t.Helper()
	var out []wire.InstanceUpdate
	for _, m := range r.messages() {
		if m.Method != wire.MethodInstanceUpdate {
			continue
		}
		if m.To != root {
			t.Errorf("instance_update sent to %q, want the root %q", m.To, root)
		}
		var u wire.InstanceUpdate
		if err := json.Unmarshal(m.Payload, &u); err != nil {
			t.Fatalf("instance_update payload: %v", err)
		}
		out = append(out, u)
	}
	return out
}

// statesOf returns every state sent for uuid, in order.
func (r *recorder) statesOf(t *testing.T, uuid string) []wire.InstanceState {
	t.Helper()
	var out []wire.InstanceState
	for _, u := range r.updates(t) {
		for _, st := range u.Instances {
			if st.UUID == uuid {
				out = append(out, st)
			}
		}
	}
	return out
}

func (r *recorder) buildFailed(t *testing.T) []message {
	t.Helper()
	var out []message
	for _, m := range r.messages() {
		if m.Method == wire.MethodBuildFailed {
			out = append(out, m)
		}
	}
	return out
}

// openCellDB returns a fresh SQLite cell database with the outbox, cells
// and compute schemas.
func openCellDB(t *testing.T) *db.DB {
	t.Helper()
	return migrateCellDB(t, dbtest.Open(t, "sqlite"))
}

// migrateCellDB migrates d with the outbox, cells and compute schemas.
func migrateCellDB(t *testing.T, d *db.DB) *db.DB {
	t.Helper()
	ctx := context.Background()
	for _, s := range []struct {
		name string
		ms   []db.Migration
	}{{"outbox", outbox.Migrations}, {"cells", cells.Migrations}, {"compute", celldb.Migrations}} {
		if err := d.Migrate(ctx, s.name, s.ms); err != nil {
			t.Fatalf("migrate %s: %v", s.name, err)
		}
	}
	return d
}

// cellEnv is a compute cell with real roles: the scheduler, the network
// service and a compute service with a fake driver, over one database.
type cellEnv struct {
	db      *db.DB
	sent    *recorder
	driver  *fake.Driver
	compute *compute.Service
	network *network.Service
	sched   *scheduler.Service
	cd      *conductor.Conductor
	changes chan struct{}
}

type cellOpts struct {
	hosts  []string
	spec   compute.HostSpec
	driver fake.Config
	// noBlocks starts the cell without address blocks; addressWait is the
	// conductor's AddressWait.
	noBlocks    bool
	addressWait time.Duration
	// volumes, if set, makes the cell's volume role (after the compute
	// role, before the conductor, which is told of the deletes).
	volumes func(e *cellEnv) conductor.Volumes
	// db, if set, is the cell's database (migrated here; else a fresh
	// SQLite one).
	db *db.DB
}

func newCell(t *testing.T, o cellOpts) *cellEnv {
	t.Helper()
	ctx := context.Background()
	e := &cellEnv{sent: &recorder{}, changes: make(chan struct{}, 1000)}
	if o.db != nil {
		e.db = migrateCellDB(t, o.db)
	} else {
		e.db = openCellDB(t)
	}
	var err error
	if e.driver, err = fake.New(o.driver); err != nil {
		t.Fatal(err)
	}
	if len(o.hosts) == 0 {
		o.hosts = []string{"h1", "h2"}
	}
	e.compute, err = compute.New(compute.Config{Cell: cell, DB: e.db, Sender: e.sent, Driver: e.driver, Hosts: o.hosts, Spec: o.spec, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.compute.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.compute.Shutdown(context.Background()) })
	if e.network, err = network.New(network.Config{Cell: cell, DB: e.db, Sender: e.sent, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if !o.noBlocks {
		if err := network.Grant(ctx, e.db, network.SubnetBlocks("private", "sub-1", "10.0.1.0/24")); err != nil {
			t.Fatal(err)
		}
	}
	if e.sched, err = scheduler.New(e.db, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	var vols conductor.Volumes
	if o.volumes != nil {
		vols = o.volumes(e)
	}
	e.cd, err = conductor.New(conductor.Config{Cell: cell, DB: e.db, Sender: e.sent, Scheduler: e.sched, Network: e.network,
		Compute: e.compute, PollInterval: 100 * time.Millisecond, HealInterval: time.Hour, Logger: quiet,
		Capacity: changeNotifier(e.changes), AddressWait: o.addressWait, Volumes: vols})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *cellEnv) start(t *testing.T) {
	t.Helper()
	if err := e.cd.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = e.cd.Shutdown(context.Background()) })
}

func uuidN(i int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", i) }

// build is a multi-create of n small instances scheduled here by parent.
func build(n int, base int64) *wire.BuildInstances {
	b := &wire.BuildInstances{Flavor: small, Scheduler: parent, Attempts: 1, BaseVersion: base,
		Hints: map[string][]string{"group": {"g1"}}, ImageProperties: map[string]string{"hypervisor_type": "fake"}}
	for i := range n {
		b.Instances = append(b.Instances, wire.InstanceSpec{UUID: uuidN(i + 1), Name: fmt.Sprintf("vm-%d", i+1), ProjectID: "p1",
			UserID: "u1", ImageRef: "img", ReservationID: "r-1", LaunchIndex: i, CreatedAt: t0})
	}
	return b
}

func envelope(requestID string, payload any) *wire.Envelope {
	b, _ := json.Marshal(payload)
	return &wire.Envelope{ID: "m-" + requestID, Method: "test", Version: wire.V1, Kind: wire.Targeted, Target: cell,
		Sender: parent, Route: []string{parent}, RequestID: requestID, Payload: b}
}

// accept runs AcceptBuild in its own transaction, as the cells service does.
func accept(t *testing.T, d *db.DB, cd *conductor.Conductor, requestID string, b *wire.BuildInstances) {
	t.Helper()
	ctx := context.Background()
	if err := d.InTx(ctx, func(tx *db.Tx) error { return cd.AcceptBuild(ctx, tx, envelope(requestID, b), b) }); err != nil {
		t.Fatalf("AcceptBuild: %v", err)
	}
}

func get(t *testing.T, d *db.DB, uuid string) *celldb.Instance {
	t.Helper()
	in, err := celldb.Get(context.Background(), d, uuid)
	if err != nil {
		t.Fatalf("get %s: %v", uuid, err)
	}
	return in
}

// wait bounds every testpoll.Eventually of these tests.
const wait = 10 * time.Second

func claims(t *testing.T, d *db.DB) map[string]string {
	t.Helper()
	rows, err := d.Query(context.Background(), `SELECT instance_uuid, host FROM claims`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var u, h string
		if err := rows.Scan(&u, &h); err != nil {
			t.Fatal(err)
		}
		out[u] = h
	}
	return out
}

// used sums the instances the compute nodes count.
func used(t *testing.T, d *db.DB) (instances, vcpus int) {
	t.Helper()
	ns, err := celldb.ListNodes(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		instances += n.Instances
		vcpus += n.UsedVCPUs
	}
	return instances, vcpus
}

// Fakes for the conductor's unit tests.

type fakeScheduler struct {
	mu    sync.Mutex
	calls []hostsched.Request
	fn    func(req *hostsched.Request) ([]hostsched.Selection, error)
}

func (f *fakeScheduler) Select(_ context.Context, req *hostsched.Request) ([]hostsched.Selection, error) {
	f.mu.Lock()
	f.calls = append(f.calls, *req)
	fn := f.fn
	f.mu.Unlock()
	if fn == nil {
		return nil, hostsched.ErrNoValidHost
	}
	return fn(req)
}

func (f *fakeScheduler) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

type fakeNetwork struct{}

func (fakeNetwork) Allocate(context.Context, string, []wire.NIC) ([]wire.Address, error) {
	return nil, nil
}
func (fakeNetwork) Deallocate(context.Context, string) error { return nil }

type fakeCompute struct{}

func (fakeCompute) Spawn(context.Context, string, string) error   { return nil }
func (fakeCompute) Destroy(context.Context, string, string) error { return nil }

var (
	_ conductor.HostScheduler = (*fakeScheduler)(nil)
	_ conductor.Network       = fakeNetwork{}
	_ conductor.Compute       = fakeCompute{}
)

// changeNotifier signals each capacity change on its channel, without
// blocking when one is already pending.
type changeNotifier chan struct{}

func (c changeNotifier) ReportSoon() {
	select {
	case c <- struct{}{}:
	default:
	}
}
