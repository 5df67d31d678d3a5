package compute_test

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
	"github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const cell = "api!cell1"

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// small is 1 vCPU, 1 GB, 10 GB.
var small = wire.Flavor{ID: "1", Name: "m1.small", VCPUs: 1, RAMMB: 1024, RootGB: 10}

// message is one message a Sender was asked to send, kept only once the
// transaction that sent it committed (as the outbox would).
type message struct {
	To, Method, RequestID string
	Payload               json.RawMessage
}

type recorder struct {
	mu   sync.Mutex
	msgs []message
}

var _ compute.Sender = (*recorder)(nil)

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

// takeAll returns the messages sent so far and forgets them.
func (r *recorder) takeAll() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.msgs
	r.msgs = nil
	return out
}

func (r *recorder) messages() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

type env struct {
	db     *db.DB
	sent   *recorder
	driver *fake.Driver
	svc    *compute.Service
	now    time.Time
}

// setup starts a compute service for hosts over a fresh cell database.
func setup(t *testing.T, spec compute.HostSpec, drv fake.Config, hosts ...string) *env {
	t.Helper()
	return setupOn(t, dbtest.Open(t, "sqlite"), spec, drv, hosts...)
}

// setupOn is setup over the database d.
func setupOn(t *testing.T, d *db.DB, spec compute.HostSpec, drv fake.Config, hosts ...string) *env {
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
	driver, err := fake.New(drv)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{db: d, sent: &recorder{}, driver: driver, now: t0}
	svc, err := compute.New(compute.Config{Cell: cell, DB: d, Sender: e.sent, Driver: driver, Hosts: hosts, Spec: spec,
		Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return e.now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = svc.Shutdown(context.Background()) })
	e.svc = svc
	// Start told the API cell where each host's service and node are.
	mapped := map[string]int{}
	for _, m := range e.sent.takeAll() {
		var hm wire.HostMappings
		if m.Method != wire.MethodHostMappings || m.To != "api" || json.Unmarshal(m.Payload, &hm) != nil || hm.Cell != cell {
			t.Fatalf("Start sent %s to %s: %s", m.Method, m.To, m.Payload)
		}
		for _, x := range hm.Set {
			mapped[x.Host+" "+x.Kind]++
		}
	}
	for _, h := range hosts {
		if mapped[h+" service"] != 1 || mapped[h+" hypervisor"] != 1 {
			t.Fatalf("host mappings sent at Start: %v", mapped)
		}
	}
	return e
}

func uuidN(i int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", i) }

// insert adds an instance of flavor in task state task, as the conductor
// would have left it, and returns it as stored.
func (e *env) insert(t *testing.T, uuid string, flavor wire.Flavor, task string) *celldb.Instance {
	t.Helper()
	ctx := context.Background()
	in := celldb.Instance{
		InstanceSpec: wire.InstanceSpec{UUID: uuid, Name: "vm-" + uuid[len(uuid)-3:], ProjectID: "p", UserID: "u", ImageRef: "img", CreatedAt: t0},
		Flavor:       flavor, VMState: celldb.VMBuilding, TaskState: task, Version: 4, RequestID: "req-" + uuid,
	}
	if err := e.db.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, t0) }); err != nil {
		t.Fatalf("insert: %v", err)
	}
	return e.get(t, uuid)
}

func (e *env) get(t *testing.T, uuid string) *celldb.Instance {
	t.Helper()
	in, err := celldb.Get(context.Background(), e.db, uuid)
	if err != nil {
		t.Fatalf("get %s: %v", uuid, err)
	}
	return in
}

func (e *env) node(t *testing.T, host string) celldb.Node {
	t.Helper()
	ns, err := celldb.ListNodes(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		if n.Host == host {
			return n
		}
	}
	t.Fatalf("no compute node %s", host)
	return celldb.Node{}
}

func (e *env) claims(t *testing.T) map[string]string {
	t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT instance_uuid, host FROM claims`)
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

// noUse checks host has no claim and no resources in use.
func (e *env) noUse(t *testing.T, host string) {
	t.Helper()
	n := e.node(t, host)
	if n.UsedVCPUs != 0 || n.UsedRAMMB != 0 || n.UsedDiskGB != 0 || n.Instances != 0 {
		t.Errorf("host %s uses %d vCPUs, %d MB, %d GB, %d instances; want nothing", host, n.UsedVCPUs, n.UsedRAMMB, n.UsedDiskGB, n.Instances)
	}
	if c := e.claims(t); len(c) != 0 {
		t.Errorf("claims = %v, want none", c)
	}
}

func TestStartRegistersHosts(t *testing.T) {
	// The spec's zone is not used: a host is in the default zone until
	// the cell's aggregates put it in another.
	spec := compute.HostSpec{VCPUs: 8, RAMMB: 16384, DiskGB: 200, CPURatio: 2, RAMRatio: 1.5, DiskRatio: 1, AvailabilityZone: "az1"}
	e := setup(t, spec, fake.Config{}, "h2", "h1", "h3")
	ns, err := celldb.ListNodes(context.Background(), e.db)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, n := range ns {
		hosts = append(hosts, n.Host)
		if n.AvailabilityZone != "nova" || n.HypervisorType != "fake" || !n.Enabled || n.VCPUs != 8 || n.RAMMB != 16384 ||
			n.DiskGB != 200 || n.CPURatio != 2 || n.RAMRatio != 1.5 || n.DiskRatio != 1 || n.UsedVCPUs != 0 || n.Instances != 0 {
			t.Errorf("node %+v does not match the spec %+v", n, spec)
		}
		if !n.HeartbeatAt.Equal(t0) {
			t.Errorf("node %s heartbeat %v, want %v", n.Host, n.HeartbeatAt, t0)
		}
	}
	if !slices.Equal(hosts, []string{"h1", "h2", "h3"}) {
		t.Errorf("compute nodes = %v, want h1 h2 h3", hosts)
	}
	if got := e.svc.Hosts(); !slices.Equal(got, []string{"h2", "h1", "h3"}) {
		t.Errorf("Hosts() = %v", got)
	}

	// A second start (a restarted process) keeps the nodes' use.
	ctx := context.Background()
	in := e.insert(t, uuidN(1), small, celldb.TaskScheduling)
	if err := e.svc.Spawn(ctx, "h1", in.UUID); err != nil {
		t.Fatal(err)
	}
	again, err := compute.New(compute.Config{Cell: cell, DB: e.db, Sender: e.sent, Driver: e.driver, Hosts: []string{"h1"}, Spec: spec,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := again.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Shutdown(context.Background()) })
	if n := e.node(t, "h1"); n.UsedVCPUs != 1 || n.Instances != 1 {
		t.Errorf("after a restart h1 uses %d vCPUs and %d instances, want 1 and 1", n.UsedVCPUs, n.Instances)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	d := dbtest.Open(t, "sqlite")
	drv, _ := fake.New(fake.Config{})
	s := &recorder{}
	for name, cfg := range map[string]compute.Config{
		"no db":     {Cell: cell, Sender: s, Driver: drv, Hosts: []string{"h"}},
		"no sender": {Cell: cell, DB: d, Driver: drv, Hosts: []string{"h"}},
		"no driver": {Cell: cell, DB: d, Sender: s, Hosts: []string{"h"}},
		"no hosts":  {Cell: cell, DB: d, Sender: s, Driver: drv},
		"bad cell":  {Cell: "a!!b", DB: d, Sender: s, Driver: drv, Hosts: []string{"h"}},
	} {
		if _, err := compute.New(cfg); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

func TestSpawnClaimsActivatesAndReports(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{VCPUs: 4, RAMMB: 4096, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, fake.Config{}, "h1", "h2")
	before := e.insert(t, uuidN(1), small, celldb.TaskNetworking)
	e.now = t0.Add(time.Minute)

	if err := e.svc.Spawn(ctx, "h2", before.UUID); err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	in := e.get(t, before.UUID)
	if in.VMState != celldb.VMActive || in.TaskState != "" || in.PowerState != celldb.PowerRunning {
		t.Errorf("after Spawn: vm %q task %q power %d, want active, none, running", in.VMState, in.TaskState, in.PowerState)
	}
	if !in.LaunchedAt.Equal(e.now) {
		t.Errorf("launched_at = %v, want %v", in.LaunchedAt, e.now)
	}
	if in.Host != "h2" || in.Node != "h2" {
		t.Errorf("host %q node %q, want h2", in.Host, in.Node)
	}
	if in.Version <= before.Version {
		t.Errorf("version %d, want more than %d", in.Version, before.Version)
	}
	if c := e.claims(t); len(c) != 1 || c[in.UUID] != "h2" {
		t.Errorf("claims = %v, want the instance's on h2", c)
	}
	if n := e.node(t, "h2"); n.UsedVCPUs != 1 || n.UsedRAMMB != 1024 || n.UsedDiskGB != 10 || n.Instances != 1 {
		t.Errorf("h2 use = %+v, want one small instance", n)
	}
	e.noUseOnly(t, "h1")
	if got := e.driver.List("h2"); !slices.Equal(got, []string{in.UUID}) {
		t.Errorf("driver has %v on h2, want the instance", got)
	}

	msgs := e.sent.messages()
	if len(msgs) != 1 {
		t.Fatalf("sent %d messages, want exactly 1: %+v", len(msgs), msgs)
	}
	m := msgs[0]
	if m.To != "api" || m.Method != wire.MethodInstanceUpdate || m.RequestID != "req-"+in.UUID {
		t.Errorf("sent %s to %s (request %q), want instance_update to api with the instance's request id", m.Method, m.To, m.RequestID)
	}
	var u wire.InstanceUpdate
	if err := json.Unmarshal(m.Payload, &u); err != nil {
		t.Fatal(err)
	}
	if u.Heal || len(u.Instances) != 1 {
		t.Fatalf("update = %+v, want one instance, not a heal", u)
	}
	st := u.Instances[0]
	if st.UUID != in.UUID || st.Cell != cell || st.Version != in.Version || st.VMState != celldb.VMActive || st.TaskState != "" ||
		st.PowerState != celldb.PowerRunning || st.Host != "h2" || !st.LaunchedAt.Equal(e.now) || st.Deleted {
		t.Errorf("update state = %+v, want the instance as stored (%+v)", st, in)
	}

	// A repeated spawn on the same host (a retried request) succeeds and
	// keeps one claim.
	if err := e.svc.Spawn(ctx, "h2", in.UUID); err != nil {
		t.Errorf("repeated Spawn: %v", err)
	}
	if n := e.node(t, "h2"); n.Instances != 1 || n.UsedVCPUs != 1 {
		t.Errorf("after a repeated spawn h2 use = %+v, want still one instance", n)
	}
	if got := e.get(t, in.UUID); got.VMState != celldb.VMActive || got.TaskState != "" {
		t.Errorf("after a repeated spawn: vm %q task %q, want active and none", got.VMState, got.TaskState)
	}
}

// noUseOnly checks host has nothing in use (other hosts may).
func (e *env) noUseOnly(t *testing.T, host string) {
	t.Helper()
	n := e.node(t, host)
	if n.UsedVCPUs != 0 || n.UsedRAMMB != 0 || n.UsedDiskGB != 0 || n.Instances != 0 {
		t.Errorf("host %s is in use: %+v", host, n)
	}
	for u, h := range e.claims(t) {
		if h == host {
			t.Errorf("instance %s holds a claim on %s", u, host)
		}
	}
}

func TestSpawnOnFullHostFailsWithoutClaim(t *testing.T) {
	ctx := context.Background()
	// Room for one small instance.
	e := setup(t, compute.HostSpec{VCPUs: 1, RAMMB: 1024, DiskGB: 10, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, fake.Config{}, "h1")
	big := wire.Flavor{ID: "2", Name: "m1.big", VCPUs: 2, RAMMB: 2048, RootGB: 20}
	in := e.insert(t, uuidN(1), big, celldb.TaskNetworking)
	err := e.svc.Spawn(ctx, "h1", in.UUID)
	if !errors.Is(err, celldb.ErrClaimFailed) {
		t.Fatalf("Spawn on a full host = %v, want an error wrapping celldb.ErrClaimFailed", err)
	}
	e.noUse(t, "h1")
	if got := e.get(t, in.UUID); got.Version != in.Version || got.TaskState != celldb.TaskNetworking || got.Host != "" {
		t.Errorf("instance changed by a failed claim: %+v", got)
	}
	if got := e.driver.List("h1"); len(got) != 0 {
		t.Errorf("driver spawned %v on a full host", got)
	}
	if msgs := e.sent.messages(); len(msgs) != 0 {
		t.Errorf("sent %+v for a failed claim", msgs)
	}

	// The host fills up: a first instance fits, the second does not.
	a := e.insert(t, uuidN(2), small, celldb.TaskNetworking)
	b := e.insert(t, uuidN(3), small, celldb.TaskNetworking)
	if err := e.svc.Spawn(ctx, "h1", a.UUID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Spawn(ctx, "h1", b.UUID); !errors.Is(err, celldb.ErrClaimFailed) {
		t.Errorf("Spawn on a host just filled = %v, want ErrClaimFailed", err)
	}
	if c := e.claims(t); len(c) != 1 || c[a.UUID] != "h1" {
		t.Errorf("claims = %v, want only %s's", c, a.UUID)
	}
}

func TestSpawnDriverFailureReleasesClaim(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{}, fake.Config{FailHosts: []string{"bad"}}, "bad", "good")
	in := e.insert(t, uuidN(1), small, celldb.TaskNetworking)
	err := e.svc.Spawn(ctx, "bad", in.UUID)
	if err == nil {
		t.Fatal("Spawn on a failing host succeeded")
	}
	if errors.Is(err, celldb.ErrClaimFailed) || errors.Is(err, celldb.ErrGone) {
		t.Errorf("driver failure reported as %v", err)
	}
	e.noUse(t, "bad")
	if got := e.get(t, in.UUID); got.VMState == celldb.VMActive {
		t.Errorf("instance active after a failed spawn: %+v", got)
	}
	if msgs := e.sent.messages(); len(msgs) != 0 {
		t.Errorf("sent %+v for a failed spawn", msgs)
	}
	// The caller can then try another host.
	if err := e.svc.Spawn(ctx, "good", in.UUID); err != nil {
		t.Fatalf("Spawn on another host after a failure: %v", err)
	}
	if c := e.claims(t); len(c) != 1 || c[in.UUID] != "good" {
		t.Errorf("claims = %v, want one on good", c)
	}
	if got := e.get(t, in.UUID); got.VMState != celldb.VMActive || got.Host != "good" {
		t.Errorf("instance = %+v, want active on good", got)
	}
}

func TestSpawnOfDeletingInstanceIsGone(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{}, fake.Config{}, "h1")
	in := e.insert(t, uuidN(1), small, celldb.TaskDeleting)
	err := e.svc.Spawn(ctx, "h1", in.UUID)
	if !errors.Is(err, celldb.ErrGone) || !errors.Is(err, wire.ErrGone) {
		t.Fatalf("Spawn of a deleting instance = %v, want ErrGone", err)
	}
	e.noUse(t, "h1")
	if got := e.driver.List("h1"); len(got) != 0 {
		t.Errorf("driver spawned %v", got)
	}
	if got := e.get(t, in.UUID); got.Version != in.Version || got.TaskState != celldb.TaskDeleting {
		t.Errorf("instance changed: %+v", got)
	}
	if msgs := e.sent.messages(); len(msgs) != 0 {
		t.Errorf("sent %+v", msgs)
	}

	// A deleted instance is gone too; an unknown one is not found.
	del := e.insert(t, uuidN(2), small, celldb.TaskScheduling)
	if err := e.db.InTx(ctx, func(tx *db.Tx) error {
		_, err := celldb.Update(ctx, tx, del.UUID, nil, celldb.Change{Deleted: true}, t0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Spawn(ctx, "h1", del.UUID); !errors.Is(err, celldb.ErrGone) {
		t.Errorf("Spawn of a deleted instance = %v, want ErrGone", err)
	}
	if err := e.svc.Spawn(ctx, "h1", uuidN(99)); !errors.Is(err, celldb.ErrNotFound) {
		t.Errorf("Spawn of an unknown instance = %v, want ErrNotFound", err)
	}
	e.noUse(t, "h1")
}

func TestDestroyReleasesClaim(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{}, fake.Config{}, "h1")
	in := e.insert(t, uuidN(1), small, celldb.TaskNetworking)
	if err := e.svc.Spawn(ctx, "h1", in.UUID); err != nil {
		t.Fatal(err)
	}
	if n := e.node(t, "h1"); n.Instances != 1 {
		t.Fatalf("h1 has %d instances after Spawn, want 1", n.Instances)
	}
	if err := e.svc.Destroy(ctx, "h1", in.UUID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	e.noUse(t, "h1")
	if got := e.driver.List("h1"); len(got) != 0 {
		t.Errorf("driver still runs %v", got)
	}
	// Destroy is safe to repeat, and of an instance never spawned.
	if err := e.svc.Destroy(ctx, "h1", in.UUID); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if err := e.svc.Destroy(ctx, "h1", uuidN(42)); err != nil {
		t.Errorf("Destroy of an instance never spawned: %v", err)
	}
	e.noUse(t, "h1")
}

func TestStartRestoresActiveInstancesOnItsHosts(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{}, fake.Config{}, "h1", "h2")
	a := e.insert(t, uuidN(1), small, celldb.TaskNetworking)
	b := e.insert(t, uuidN(2), small, celldb.TaskNetworking)
	if err := e.svc.Spawn(ctx, "h1", a.UUID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Spawn(ctx, "h2", b.UUID); err != nil {
		t.Fatal(err)
	}
	// A new process with an empty hypervisor, running only h1.
	drv, _ := fake.New(fake.Config{})
	s2, err := compute.New(compute.Config{Cell: cell, DB: e.db, Sender: e.sent, Driver: drv, Hosts: []string{"h1"},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Shutdown(context.Background()) })
	// The restore runs in the background, after Start.
	testpoll.Eventually(t, 10*time.Second, "restored on h1", func() (bool, string) {
		got := drv.List("h1")
		return slices.Equal(got, []string{a.UUID}), fmt.Sprintf("restored on h1: %v, want [%s]", got, a.UUID)
	})
	if got := drv.List("h2"); len(got) != 0 {
		t.Errorf("restored on h2, a host this process does not run: %v", got)
	}
}

// TestStartRestoresTheSourceOfAnOpenResize: a resize waiting for confirm
// has a copy on its source host too; a restarted process brings it back,
// so a revert finds it.
func TestStartRestoresTheSourceOfAnOpenResize(t *testing.T) {
	ctx := context.Background()
	e := setup(t, compute.HostSpec{}, fake.Config{}, "h1", "h2")
	a := e.insert(t, uuidN(1), small, celldb.TaskNetworking)
	if err := e.svc.Spawn(ctx, "h1", a.UUID); err != nil {
		t.Fatal(err)
	}
	// Resized from h1 onto h2, not yet confirmed.
	err := e.db.InTx(ctx, func(tx *db.Tx) error {
		if _, err := celldb.CreateMigration(ctx, tx, celldb.Migration{InstanceUUID: a.UUID, Type: "resize", SourceHost: "h1", DestHost: "h2",
			OldFlavor: small, NewFlavor: small, OldVMState: "active", Status: "finished"}, time.Now()); err != nil {
			return err
		}
		h2 := "h2"
		_, err := celldb.Update(ctx, tx, a.UUID, nil, celldb.Change{Host: &h2}, time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	drv, _ := fake.New(fake.Config{})
	s2, err := compute.New(compute.Config{Cell: cell, DB: e.db, Sender: e.sent, Driver: drv, Hosts: []string{"h1", "h2"},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s2.Shutdown(context.Background()) })
	for _, h := range []string{"h1", "h2"} {
		testpoll.Eventually(t, 10*time.Second, "restored on "+h, func() (bool, string) {
			got := drv.List(h)
			return slices.Equal(got, []string{a.UUID}), fmt.Sprintf("restored on %s: %v, want [%s]", h, got, a.UUID)
		})
	}
}
