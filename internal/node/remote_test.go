package node

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"reflect"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	computerole "github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/computecell/scheduler"
	"github.com/cellcloud/cellcloud/internal/computecell/virt/fake"
	"github.com/cellcloud/cellcloud/internal/computecell/volume"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/rpc"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

const testCell = "api!cell1"

var quietLog = slog.New(slog.DiscardHandler)

// The remote adapters are what the conductor is given when a role runs in
// another process.
var (
	_ conductor.HostScheduler = remoteScheduler{}
	_ conductor.Network       = remoteNetwork{}
	_ conductor.Compute       = remoteCompute{}
)

type nopSender struct{}

func (nopSender) Send(context.Context, *db.Tx, string, string, string, any) error { return nil }

// roles is a compute cell whose scheduler, network and compute roles are
// served over an embedded broker, with both the local roles and the
// remote adapters that reach them.
type roles struct {
	db     *db.DB
	sched  *scheduler.Service
	net    *network.Service
	comp   *computerole.Service
	rSched remoteScheduler
	rNet   remoteNetwork
	rComp  remoteCompute
	hosts  []string
	drv    *fake.Driver
}

func startRoles(t *testing.T) *roles {
	t.Helper()
	ctx := context.Background()
	d := dbtest.Open(t, "sqlite")
	for _, s := range schemas(false) {
		if err := d.Migrate(ctx, s.set, s.ms); err != nil {
			t.Fatalf("migrate %s: %v", s.set, err)
		}
	}
	r := &roles{db: d, hosts: []string{"h1", "h2", "h3"}}
	drv, err := fake.New(fake.Config{})
	if err != nil {
		t.Fatal(err)
	}
	r.drv = drv
	// Three hosts of 4 vCPUs and 4 GB each, ratios 1.
	r.comp, err = computerole.New(computerole.Config{Cell: testCell, DB: d, Sender: nopSender{}, Driver: drv, Hosts: r.hosts,
		Spec: computerole.HostSpec{VCPUs: 4, RAMMB: 4096, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.comp.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.comp.Shutdown(context.Background()) })
	// h3 is bigger, so the hosts weigh differently.
	if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: "h3", AvailabilityZone: "nova", HypervisorType: "fake", VCPUs: 8,
		RAMMB: 8192, DiskGB: 100, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r.sched, err = scheduler.New(d, nil, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Each selection reads the database, so the local and the remote
	// answer from the same state (the in-memory counting of choices
	// between reads is the scheduler package's to test).
	r.sched.Refresh = 0
	if r.net, err = network.New(network.Config{Cell: testCell, DB: d, Sender: nopSender{}, Logger: quietLog}); err != nil {
		t.Fatal(err)
	}
	if err := network.Grant(context.Background(), d, network.SubnetBlocks("private", "sub-1", "10.0.1.0/24")); err != nil {
		t.Fatal(err)
	}

	b, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: testCell, Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	connect := func(name string) *nats.Conn {
		nc, err := broker.Connect(ctx, b.URL(), name, quietLog)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := broker.WaitConnected(wctx, nc); err != nil {
			t.Fatal(err)
		}
		return nc
	}
	srv, cli := connect("roles"), connect("conductor")
	rs := rpc.NewServer(srv, quietLog)
	t.Cleanup(func() { _ = rs.Shutdown(context.Background()) })
	for _, f := range []func() error{
		func() error { return serveScheduler(rs, testCell, r.sched) },
		func() error { return serveNetwork(rs, testCell, r.net) },
		func() error { return serveCompute(rs, testCell, r.hosts, r.comp) },
	} {
		if err := f(); err != nil {
			t.Fatalf("serve: %v", err)
		}
	}
	if n := rs.Subjects(); n != 1+2+10*len(r.hosts) {
		t.Errorf("%d subscriptions, want one for the scheduler, two for the network and ten per host", n)
	}
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}
	r.rSched = remoteScheduler{nc: cli, cell: testCell}
	r.rNet = remoteNetwork{nc: cli, cell: testCell}
	r.rComp = remoteCompute{nc: cli, cell: testCell}
	return r
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (r *roles) insert(t *testing.T, uuid, task string, f wire.Flavor) {
	t.Helper()
	ctx := context.Background()
	in := celldb.Instance{InstanceSpec: wire.InstanceSpec{UUID: uuid, Name: "vm", ProjectID: "p", UserID: "u", ImageRef: "i"},
		Flavor: f, VMState: celldb.VMBuilding, TaskState: task}
	if err := r.db.InTx(ctx, func(tx *db.Tx) error { return celldb.Insert(ctx, tx, []celldb.Instance{in}, time.Now()) }); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteSchedulerAnswersAsTheLocalOne(t *testing.T) {
	r := startRoles(t)
	for _, tc := range []struct {
		name    string
		req     hostsched.Request
		wantErr bool
	}{
		{"one", hostsched.Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}, NumInstances: 1}, false},
		{"several with alternates", hostsched.Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 1024, DiskGB: 10}, NumInstances: 5}, false},
		{"ignore hosts", hostsched.Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 1024}, NumInstances: 2, IgnoreHosts: []string{"h3"}}, false},
		{"too big", hostsched.Request{Flavor: capacity.Flavor{VCPUs: 64, RAMMB: 1024}, NumInstances: 1}, true},
		{"partial", hostsched.Request{Flavor: capacity.Flavor{VCPUs: 4, RAMMB: 4096, DiskGB: 10}, NumInstances: 6}, true},
		{"no such zone", hostsched.Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 512}, NumInstances: 1, AvailabilityZone: "elsewhere"}, true},
	} {
		req := tc.req
		local, lerr := r.sched.Select(context.Background(), &req)
		req = tc.req
		remote, rerr := r.rSched.Select(ctx5(t), &req)
		if tc.wantErr {
			if !errors.Is(lerr, hostsched.ErrNoValidHost) {
				t.Fatalf("%s: local error %v, want ErrNoValidHost", tc.name, lerr)
			}
			if !errors.Is(rerr, hostsched.ErrNoValidHost) {
				t.Errorf("%s: remote error %v, want one that is ErrNoValidHost", tc.name, rerr)
			} else if rerr.Error() != lerr.Error() {
				t.Errorf("%s: remote error %q, want the local one %q", tc.name, rerr, lerr)
			}
		} else if lerr != nil || rerr != nil {
			t.Fatalf("%s: local error %v, remote error %v", tc.name, lerr, rerr)
		}
		if len(local) != len(remote) || (len(local) > 0 && !reflect.DeepEqual(local, remote)) {
			t.Errorf("%s: remote selections %+v, want the local %+v", tc.name, remote, local)
		}
	}
	// The answers above had something to compare: a partial placement
	// selects some hosts and says there was no room for the rest.
	part, err := r.rSched.Select(ctx5(t), &hostsched.Request{Flavor: capacity.Flavor{VCPUs: 4, RAMMB: 4096}, NumInstances: 6})
	if len(part) != 4 || !errors.Is(err, hostsched.ErrNoValidHost) {
		t.Errorf("partial remote Select = %d selections, %v; want 4 and ErrNoValidHost", len(part), err)
	}
}

func TestRemoteNetworkAnswersAsTheLocalOne(t *testing.T) {
	r := startRoles(t)
	const a, b = "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b"
	local, err := r.net.Allocate(context.Background(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	remote, err := r.rNet.Allocate(ctx5(t), a, nil)
	if err != nil {
		t.Fatalf("remote Allocate: %v", err)
	}
	if !reflect.DeepEqual(local, remote) {
		t.Errorf("remote Allocate = %+v, want the local %+v", remote, local)
	}
	remoteB, err := r.rNet.Allocate(ctx5(t), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	localB, err := r.net.Allocate(context.Background(), b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(localB, remoteB) || len(remoteB) != 1 || remoteB[0].Addr == local[0].Addr {
		t.Errorf("second instance: remote %+v local %+v, want one new address, the same both ways", remoteB, localB)
	}
	if err := r.rNet.Deallocate(ctx5(t), b); err != nil {
		t.Fatalf("remote Deallocate: %v", err)
	}
	if got, _ := celldb.Addresses(context.Background(), r.db, b); len(got) != 0 {
		t.Errorf("after remote Deallocate %s holds %v", b, got)
	}
	// Freeing again is fine both ways.
	if err := r.rNet.Deallocate(ctx5(t), b); err != nil {
		t.Errorf("second remote Deallocate: %v", err)
	}
	if err := r.net.Deallocate(context.Background(), b); err != nil {
		t.Errorf("local Deallocate: %v", err)
	}
	// A request without an instance is refused by the server.
	if _, err := r.rNet.Allocate(ctx5(t), "", nil); !errors.Is(err, wire.ErrBadMessage) {
		t.Errorf("remote Allocate without a uuid = %v, want ErrBadMessage", err)
	}
	// The NICs travel, and a build that must wait for address blocks
	// learns it across the process boundary.
	if _, err := r.rNet.Allocate(ctx5(t), "00000000-0000-0000-0000-00000000000c", []wire.NIC{{NetworkID: "net-x", NetworkName: "x"}}); !errors.Is(err, wire.ErrAddressesPending) {
		t.Errorf("remote Allocate on a network without blocks = %v, want ErrAddressesPending", err)
	}
}

func TestRemoteComputeAnswersAsTheLocalOne(t *testing.T) {
	r := startRoles(t)
	ctx := context.Background()
	small := wire.Flavor{ID: "1", VCPUs: 1, RAMMB: 1024, RootGB: 10}
	const u1, u2, u3 = "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003"

	r.insert(t, u1, celldb.TaskNetworking, small)
	if err := r.rComp.Spawn(ctx5(t), "h2", u1); err != nil {
		t.Fatalf("remote Spawn: %v", err)
	}
	in, err := celldb.Get(ctx, r.db, u1)
	if err != nil {
		t.Fatal(err)
	}
	if in.VMState != celldb.VMActive || in.Host != "h2" {
		t.Errorf("after remote Spawn: %s on %q, want active on h2", in.VMState, in.Host)
	}
	if err := r.rComp.Destroy(ctx5(t), "h2", u1); err != nil {
		t.Fatalf("remote Destroy: %v", err)
	}
	for _, n := range mustNodes(t, r.db) {
		if n.Instances != 0 || n.UsedVCPUs != 0 {
			t.Errorf("after remote Destroy %s counts %d instances", n.Host, n.Instances)
		}
	}

	// An instance being deleted is gone, both ways.
	r.insert(t, u2, celldb.TaskDeleting, small)
	lerr := r.comp.Spawn(ctx, "h1", u2)
	rerr := r.rComp.Spawn(ctx5(t), "h1", u2)
	if !errors.Is(lerr, celldb.ErrGone) {
		t.Fatalf("local Spawn of a deleting instance = %v, want ErrGone", lerr)
	}
	if !errors.Is(rerr, celldb.ErrGone) || !errors.Is(rerr, wire.ErrGone) {
		t.Errorf("remote Spawn of a deleting instance = %v, want ErrGone", rerr)
	}

	// A spawn that fails fails both ways.
	big := wire.Flavor{ID: "9", VCPUs: 16, RAMMB: 1024}
	r.insert(t, u3, celldb.TaskNetworking, big)
	if lerr := r.comp.Spawn(ctx, "h1", u3); !errors.Is(lerr, celldb.ErrClaimFailed) {
		t.Fatalf("local Spawn on a full host = %v", lerr)
	}
	if rerr := r.rComp.Spawn(ctx5(t), "h1", u3); rerr == nil {
		t.Error("remote Spawn on a full host succeeded")
	}

	// A host nobody serves fails at once, not at the deadline.
	start := time.Now()
	if err := r.rComp.Spawn(ctx5(t), "h9", u1); err == nil {
		t.Error("remote Spawn on a host nobody serves succeeded")
	}
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("remote Spawn on a host nobody serves took %v", took)
	}
}

func mustNodes(t *testing.T, d *db.DB) []celldb.Node {
	t.Helper()
	ns, err := celldb.ListNodes(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// TestRemoteComputeAttachesVolumes: the volume role reaches the compute
// agent of an instance's host over the broker to attach a volume (the
// driver's disks show it) and detach it; a host the instance is not on
// refuses.
func TestRemoteComputeAttachesVolumes(t *testing.T) {
	r := startRoles(t)
	const u1 = "00000000-0000-0000-0000-000000000001"
	r.insert(t, u1, celldb.TaskNetworking, wire.Flavor{ID: "1", VCPUs: 1, RAMMB: 1024, RootGB: 10})
	if err := r.rComp.Spawn(ctx5(t), "h2", u1); err != nil {
		t.Fatal(err)
	}
	var hosts volume.Hosts = r.rComp
	if err := hosts.AttachVolume(ctx5(t), "h1", u1, "/dev/vdb", "/v/1.raw"); err == nil {
		t.Error("remote attach on a host the instance is not on succeeded")
	}
	if err := hosts.AttachVolume(ctx5(t), "h2", u1, "/dev/vdb", "/v/1.raw"); err != nil {
		t.Fatalf("remote attach: %v", err)
	}
	if got := r.drv.Disks("h2", u1); !maps.Equal(got, map[string]string{"/dev/vdb": "/v/1.raw"}) {
		t.Errorf("disks %v, want /dev/vdb", got)
	}
	if err := hosts.DetachVolume(ctx5(t), "h2", u1, "/dev/vdb"); err != nil {
		t.Fatalf("remote detach: %v", err)
	}
	if got := r.drv.Disks("h2", u1); len(got) != 0 {
		t.Errorf("disks after the detach %v, want none", got)
	}
}
