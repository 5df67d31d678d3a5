// Package node runs the roles of one cell in one process: it opens the
// cell's database and runs its migrations, starts or connects to the cell's
// broker, and starts each role the configuration names, wiring roles that
// share the process directly and reaching the others over the broker.
//
// Node.Start, top-down:
//
//  1. openDB: the cell's database, every schema it needs migrated (OpenDB,
//     the one place migrations run).
//  2. connectBroker: the embedded broker (or the external one) and the
//     connection to it.
//  3. buildRoles: the roles this process runs, each wired to the others
//     through ports (ports.go: the role itself when it runs here, its NATS
//     adapter from remote.go when it runs in another process). The cells
//     service is built first: its Sender is the process's one sender, and
//     the roles it hosts offer it their handlers (cells.BuildAcceptor,
//     cells.Placer, cells.BuildErrorHandler, casts and calls) before it
//     starts.
//  4. the roles started in order: scheduler, network, compute, cells, then
//     in a compute cell the conductor and the instance operations (which
//     the cells service hosts) and the controller services' registrar, and
//     in the API cell the api role's HTTP listener.
//
// Each step records what it started; Shutdown stops those in reverse order.
package node

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/api/authn"
	"github.com/cellcloud/cellcloud/internal/api/compute"
	identityapi "github.com/cellcloud/cellcloud/internal/api/identity"
	"github.com/cellcloud/cellcloud/internal/api/image"
	networkapi "github.com/cellcloud/cellcloud/internal/api/network"
	"github.com/cellcloud/cellcloud/internal/apicell"
	"github.com/cellcloud/cellcloud/internal/apidb"
	"github.com/cellcloud/cellcloud/internal/broker"
	"github.com/cellcloud/cellcloud/internal/celldb"
	"github.com/cellcloud/cellcloud/internal/cells"
	computerole "github.com/cellcloud/cellcloud/internal/compute"
	"github.com/cellcloud/cellcloud/internal/conductor"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/hostops"
	"github.com/cellcloud/cellcloud/internal/hostsched"
	"github.com/cellcloud/cellcloud/internal/identity"
	"github.com/cellcloud/cellcloud/internal/imagedb"
	"github.com/cellcloud/cellcloud/internal/instanceops"
	"github.com/cellcloud/cellcloud/internal/netdb"
	"github.com/cellcloud/cellcloud/internal/network"
	"github.com/cellcloud/cellcloud/internal/outbox"
	"github.com/cellcloud/cellcloud/internal/policy"
	"github.com/cellcloud/cellcloud/internal/rpc"
	"github.com/cellcloud/cellcloud/internal/scheduler"
	"github.com/cellcloud/cellcloud/internal/virt/fake"
	"github.com/cellcloud/cellcloud/internal/wire"
)

// Node is one cell process.
type Node struct {
	cfg *config.Config
	log *slog.Logger

	DB       *db.DB
	embedded *broker.Embedded
	nc       *nats.Conn

	// Cells is the cells service, when this process runs it.
	Cells *cells.Service
	// Identity is the API cell's identity store (auth mode local).
	Identity   *identity.Store
	tokenCache *authn.Cache
	api        *apiRole

	// running is what Start started, for Shutdown to stop in reverse.
	running  components
	stopOnce sync.Once
	done     chan struct{}
	serveErr chan error
}

// component is a part of the node with a lifecycle: a role, or the
// process's broker or database.
type component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// role is a component under its name, for the log.
type role struct {
	name string
	c    component
}

// components is what the node started, in order.
type components struct {
	mu      sync.Mutex
	stopped []role
}

// start starts c and records it, also when it fails to start: a role that
// started halfway is shut down with the others.
func (cs *components) start(ctx context.Context, r role) error {
	cs.add(r)
	if err := r.c.Start(ctx); err != nil {
		return fmt.Errorf("%s: %w", r.name, err)
	}
	return nil
}

// add records something already running, to be stopped with the rest.
func (cs *components) add(r role) {
	cs.mu.Lock()
	cs.stopped = append(cs.stopped, r)
	cs.mu.Unlock()
}

// stop shuts down what was recorded, last first.
func (cs *components) stop(ctx context.Context, log *slog.Logger) {
	cs.mu.Lock()
	rs := cs.stopped
	cs.stopped = nil
	cs.mu.Unlock()
	for _, r := range slices.Backward(rs) {
		if err := r.c.Shutdown(ctx); err != nil {
			log.Warn(r.name+" shutdown", "err", err)
		}
	}
}

// closer is something that only stops (the broker, the database).
type closer func(ctx context.Context) error

func (closer) Start(context.Context) error          { return nil }
func (f closer) Shutdown(ctx context.Context) error { return f(ctx) }

// New validates the configuration; Start runs the node.
func New(cfg *config.Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	return &Node{cfg: cfg, log: log, done: make(chan struct{}), serveErr: make(chan error, 1)}, nil
}

// Config is the node's configuration.
func (n *Node) Config() *config.Config { return n.cfg }

// schema is one migration list of a cell's database, under its set name.
type schema struct {
	set string
	ms  []db.Migration
}

// schemas are the migration lists a cell's database needs, in the order
// they run: the outbox and the cells service's in every cell; then the API
// cell's copy of the instances, identity, images and networks (whose ports
// read the instances), or a compute cell's own data.
func schemas(root bool) []schema {
	all := []schema{{"outbox", outbox.Migrations}, {"cells", cells.Migrations}}
	if !root {
		return append(all, schema{"compute", celldb.Migrations})
	}
	return append(all, schema{"api", apidb.Migrations}, schema{identity.MigrationSet, identity.Migrations},
		schema{imagedb.MigrationSet, imagedb.Migrations}, schema{netdb.MigrationSet, netdb.Migrations})
}

// OpenDB opens a cell's database and runs the migrations of every schema
// of its kind: the one place migrations run.
func OpenDB(ctx context.Context, cfg *config.Config) (*db.DB, error) {
	d, err := db.Open(ctx, cfg.Database)
	if err != nil {
		return nil, err
	}
	for _, s := range schemas(cfg.IsRoot()) {
		if err := d.Migrate(ctx, s.set, s.ms); err != nil {
			d.Close()
			return nil, err
		}
	}
	if cfg.IsRoot() {
		if err := apidb.BackfillQuotaColumns(ctx, d); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// Start runs the cell: the steps of the package comment, in order. On an
// error it stops what it had started.
func (n *Node) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			n.Shutdown(context.Background())
		}
	}()
	if err := n.openDB(ctx); err != nil {
		return err
	}
	if err := n.connectBroker(ctx); err != nil {
		return err
	}
	roles, err := n.buildRoles(ctx)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if err := n.running.start(ctx, r); err != nil {
			return err
		}
	}
	if n.api != nil {
		n.log.Info("compute API listening", "cell", n.cfg.Cell, "addr", n.api.addr)
	}
	n.log.Info("cell started", "cell", n.cfg.Cell, "roles", n.cfg.Roles, "database", dbKind(n.DB), "broker", n.BrokerURL())
	return nil
}

// openDB opens the cell's database, migrated.
func (n *Node) openDB(ctx context.Context) error {
	if err := os.MkdirAll(n.cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	d, err := OpenDB(ctx, n.cfg)
	if err != nil {
		return err
	}
	n.DB = d
	n.running.add(role{"database", closer(func(context.Context) error { return d.Close() })})
	return nil
}

// connectBroker starts the embedded broker (unless the configuration names
// an external one) and connects to it.
func (n *Node) connectBroker(ctx context.Context) error {
	cfg := n.cfg
	url := cfg.Broker.URL
	if url == "" {
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: cfg.Cell, Listen: cfg.Broker.Listen, StoreDir: filepath.Join(cfg.DataDir, "broker")})
		if err != nil {
			return err
		}
		n.embedded = e
		n.running.add(role{"broker", closer(func(context.Context) error { e.Shutdown(); return nil })})
		url = e.URL()
	}
	nc, err := broker.Connect(ctx, url, "cellcloud "+cfg.Cell, n.log.With("cell", cfg.Cell))
	if err != nil {
		return err
	}
	n.nc = nc
	n.running.add(role{"broker connection", closer(func(context.Context) error {
		_ = nc.Drain()
		nc.Close()
		return nil
	})})
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return broker.WaitConnected(wctx, nc)
}

// buildRoles builds the roles this process runs, wired to one another
// through the ports, in the order they start.
func (n *Node) buildRoles(ctx context.Context) ([]role, error) {
	cfg := n.cfg
	var roles []role
	// The cells service comes first: the process's sender is its own.
	if cfg.Has(config.RoleCells) {
		svc, err := cells.New(cells.Config{
			Path: cfg.Cell, DB: n.DB, Conn: n.nc, Logger: n.log,
			ReportInterval: cfg.Cells.ReportInterval.D(), RefreshInterval: cfg.Cells.RefreshInterval.D(),
			MuteAfter: cfg.Cells.MuteAfter.D(), MaxBuildAttempts: cfg.Cells.MaxBuildAttempts, DownAfter: cfg.Cells.DownAfter.D(),
			Capacity: n.ownCapacity(),
		})
		if err != nil {
			return nil, err
		}
		n.Cells = svc
	}
	sender := senderPort(n.nc, cfg.Cell, n.Cells)

	// A compute cell's roles.
	var sched *scheduler.Service
	var netw *network.Service
	var comp *computerole.Service
	if cfg.Has(config.RoleScheduler) {
		hs := hostsched.Default()
		if m := cfg.Scheduler.RAMWeightMultiplier; m != nil {
			hs = hs.WithRAMMultiplier(*m)
		}
		var err error
		if sched, err = scheduler.New(n.DB, hs, cfg.Scheduler.HostDownAfter.D()); err != nil {
			return nil, err
		}
		roles = append(roles, role{"scheduler", &schedulerRole{svc: sched, srv: n.rpcServer(), cell: cfg.Cell}})
	}
	if cfg.Has(config.RoleNetwork) {
		var err error
		if netw, err = network.New(network.Config{Network: cfg.Network.Name, CIDR: cfg.Network.CIDR, DB: n.DB, Logger: n.log.With("cell", cfg.Cell)}); err != nil {
			return nil, err
		}
		roles = append(roles, role{"network", &networkRole{svc: netw, srv: n.rpcServer(), cell: cfg.Cell}})
	}
	if cfg.Has(config.RoleCompute) {
		drv, err := fake.New(fake.Config{SpawnLatency: cfg.Compute.SpawnLatency.D(), FailRate: cfg.Compute.FailRate, FailHosts: cfg.Compute.FailHosts})
		if err != nil {
			return nil, err
		}
		comp, err = computerole.New(computerole.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Driver: drv,
			Hosts: cfg.HostNames(), Spec: cfg.Compute.Host, Logger: n.log, UsageAudit: *cfg.Compute.InstanceUsageAudit,
			AuditPeriod: cfg.InstanceUsageAuditPeriod, AuditInterval: cfg.Compute.UsageAuditInterval.D()})
		if err != nil {
			return nil, err
		}
		roles = append(roles, role{"compute", &computeRole{svc: comp, srv: n.rpcServer(), cell: cfg.Cell, hosts: cfg.HostNames()}})
	}

	// The API cell's policy, authentication and image store: the Image API
	// serves the images, and the cells send server snapshots' data up to it.
	var api apiParts
	if cfg.IsRoot() {
		var err error
		if api, err = n.apiParts(ctx); err != nil {
			return nil, err
		}
	}

	if n.Cells != nil {
		roles = append(roles, role{"cells", &cellsRole{svc: n.Cells, srv: n.rpcServer(), cell: cfg.Cell}})
		n.Cells.HandleCall(wire.MethodCellInfo, 1, 0, n.cellInfo)
		if cfg.IsRoot() {
			n.offerAPICellHandlers(sender, api.images)
		} else {
			hosted, err := n.offerComputeCellHandlers(sender, schedulerPort(n.nc, cfg.Cell, sched),
				networkPort(n.nc, cfg.Cell, netw), computeHostsPort(n.nc, cfg.Cell, comp))
			if err != nil {
				return nil, err
			}
			roles = append(roles, hosted...)
		}
	}

	if reg, err := n.registrar(sender); err != nil {
		return nil, err
	} else if reg != nil {
		roles = append(roles, role{"registrar", reg})
	}

	if cfg.Has(config.RoleAPI) {
		a, err := n.newAPIRole(sender, api)
		if err != nil {
			return nil, err
		}
		n.api = a
		roles = append(roles, role{"api", a})
	}
	return roles, nil
}

// rpcServer is a server of the requests of other processes of the cell.
func (n *Node) rpcServer() *rpc.Server { return rpc.NewServer(n.nc, n.log.With("cell", n.cfg.Cell)) }

// ownCapacity is what the cells service reports of this cell's own hosts:
// a compute cell's, none in the API cell.
func (n *Node) ownCapacity() cells.CapacityReporter {
	if n.cfg.IsRoot() {
		return nil
	}
	return hostsCapacity{}
}

// offerAPICellHandlers registers the API cell's handlers with its cells
// service: what comes up from the cells (instance updates, snapshots' data,
// host mappings) and the record of the builds it sends down.
func (n *Node) offerAPICellHandlers(sender *cells.Sender, images *image.API) {
	h := &apicell.Handlers{Sender: sender, Images: images, Logger: n.log.With("cell", n.cfg.Cell), Now: time.Now}
	n.Cells.RecordPlacements(h)
	n.Cells.RecordBuildErrors(h)
	n.Cells.HandleCast(wire.MethodInstanceUpdate, 1, 0, h.InstanceUpdate)
	n.Cells.HandleCast(wire.MethodSnapshotDone, 1, 0, h.SnapshotDone)
	n.Cells.HandleCast(wire.MethodHostMappings, 1, 0, h.HostMappings)
}

// offerComputeCellHandlers builds what a compute cell's cells service
// hosts (the conductor, the instance operations and the host operations),
// registers their handlers with it, and returns the ones to start after it.
func (n *Node) offerComputeCellHandlers(sender *cells.Sender, sched conductor.HostScheduler, netw conductor.Network, comp computePort) ([]role, error) {
	cfg := n.cfg
	cd, err := conductor.New(conductor.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Scheduler: sched,
		Network: netw, Compute: comp, HealInterval: cfg.Cells.HealInterval.D(), HealWindow: cfg.Cells.HealWindow.D(),
		OnChange: n.Cells.ReportSoon, Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.Cells.AcceptBuilds(cd)
	n.Cells.HandleCast(wire.MethodDeleteInstances, 1, 0, cd.DeleteInstances)
	ops, err := instanceops.New(instanceops.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Host: comp, VMs: comp, Scheduler: sched, Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.Cells.HandleCast(wire.MethodInstanceAction, 1, 0, ops.HandleAction)
	n.Cells.HandleCall(wire.MethodConsoleOutput, 1, 0, ops.ConsoleOutput)
	n.Cells.HandleCall(wire.MethodInstanceActions, 1, 0, ops.InstanceActions)
	hops, err := hostops.New(hostops.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, DownAfter: cfg.Cells.ServiceDownTime.D(), Logger: n.log})
	if err != nil {
		return nil, err
	}
	n.Cells.HandleCall(wire.MethodHypervisors, 1, 0, hops.Hypervisors)
	n.Cells.HandleCall(wire.MethodServices, 1, 0, hops.Services)
	n.Cells.HandleCall(wire.MethodServiceUpdate, 1, 0, hops.UpdateService)
	n.Cells.HandleCall(wire.MethodServiceDelete, 1, 0, hops.DeleteService)
	n.Cells.HandleCall(wire.MethodHostDescribe, 1, 0, hops.DescribeHost)
	n.Cells.HandleCall(wire.MethodHostAction, 1, 0, hops.HostAction)
	n.Cells.HandleCall(wire.MethodTenantUsage, 1, 0, hops.TenantUsage)
	n.Cells.HandleCall(wire.MethodUsageAudit, 1, 0, hops.UsageAudit)
	return []role{{"conductor", cd}, {"instance operations", ops}}, nil
}

// registrar keeps the heartbeat of the controller services this process
// runs in a compute cell, for os-services; nil when it runs none.
func (n *Node) registrar(sender *cells.Sender) (component, error) {
	cfg := n.cfg
	if cfg.IsRoot() {
		return nil, nil
	}
	var bins []string
	for r, bin := range map[string]string{config.RoleCells: celldb.BinaryConductor, config.RoleScheduler: celldb.BinaryScheduler,
		config.RoleNetwork: celldb.BinaryNetwork} {
		if cfg.Has(r) {
			bins = append(bins, bin)
		}
	}
	if len(bins) == 0 {
		return nil, nil
	}
	slices.Sort(bins)
	reg, err := hostops.NewRegistrar(hostops.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Logger: n.log}, cfg.Host, bins,
		cfg.Cells.ReportInterval.D())
	if err != nil {
		return nil, err
	}
	return registrarRole{reg}, nil
}

// apiParts are the API cell's pieces that more than the api role uses.
type apiParts struct {
	images *image.API
	pol    *policy.Enforcer
	auth   authn.Authenticator
}

func (n *Node) apiParts(ctx context.Context) (apiParts, error) {
	var p apiParts
	var err error
	if p.pol, err = policy.New(PolicyRules(), n.cfg.API.PolicyFile); err != nil {
		return p, fmt.Errorf("policy: %w", err)
	}
	if p.auth, err = n.authenticator(ctx); err != nil {
		return p, err
	}
	p.images, err = image.New(image.Config{DB: n.DB, StoreDir: filepath.Join(n.cfg.DataDir, "images"), Cell: n.cfg.Cell, Logger: n.log,
		Auth: p.auth, Policy: p.pol})
	return p, err
}

// newAPIRole builds the public APIs. They share the listener, under
// devstack's paths: the Compute API at /v2.1, Identity at /identity (and
// /v3), the Image API at /image, Networking at /networking.
func (n *Node) newAPIRole(sender *cells.Sender, p apiParts) (*apiRole, error) {
	cfg := n.cfg
	startAt := time.Now()
	downCells := func(ctx context.Context) ([]string, error) {
		return cells.DownCells(ctx, n.DB, time.Now(), cfg.Cells.DownAfter.D(), startAt)
	}
	// Builds go through the sender in the request's own transaction: with
	// the cells service in this process, it schedules them across the
	// cells at once.
	api, err := compute.New(compute.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Caller: cellsCallPort(n.nc, cfg.Cell, n.Cells),
		Logger: n.log, AuditPeriod: cfg.InstanceUsageAuditPeriod, DownCells: downCells,
		Auth: p.auth, Policy: p.pol, Quota: cfg.API.Quota})
	if err != nil {
		return nil, err
	}
	networks, err := networkapi.New(networkapi.Config{Cell: cfg.Cell, DB: n.DB, Logger: n.log, Auth: p.auth, Policy: p.pol})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	if n.Identity != nil {
		ids, err := identityapi.New(identityapi.Config{Cell: cfg.Cell, Store: n.Identity, Policy: p.pol, Cache: n.tokenCache,
			Catalog: Catalog(), Region: cfg.API.Region, Logger: n.log})
		if err != nil {
			return nil, err
		}
		// Keystone at /identity, as devstack puts it, and at /v3 for
		// clients given the bare host.
		mux.Handle("/identity/", http.StripPrefix("/identity", ids))
		mux.Handle("/identity", http.StripPrefix("/identity", ids))
		mux.Handle("/v3/", ids)
		mux.Handle("/v3", ids)
	}
	mux.Handle("/image/", http.StripPrefix("/image", p.images))
	mux.Handle("/image", http.StripPrefix("/image", p.images)) // version discovery asks without a slash
	mux.Handle("/networking/", http.StripPrefix("/networking", networks))
	mux.Handle("/networking", http.StripPrefix("/networking", networks))
	mux.Handle("/", api)
	return &apiRole{db: n.DB, images: p.images, handler: mux, listen: cfg.API.Listen, errs: n.serveErr}, nil
}

func dbKind(d *db.DB) string { return d.Dialect.String() }

// cellInfo answers cell_info.
func (n *Node) cellInfo(ctx context.Context, _ *wire.Envelope) (any, error) {
	info := wire.CellInfo{Path: n.cfg.Cell, Roles: n.cfg.Roles, BrokerURL: n.BrokerURL()}
	if r, err := n.Cells.Report(ctx); err == nil {
		info.Capacity = &r
	} else {
		n.log.Warn("cell_info without capacity", "err", err)
	}
	for _, nb := range n.Cells.Neighbours() {
		if nb.Relation == cells.Child {
			info.Children = append(info.Children, nb.Path)
		}
	}
	if n.cfg.IsRoot() {
		var c int
		if err := n.DB.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE deleted = 0`).Scan(&c); err != nil {
			return nil, err
		}
		info.Instances = c
		return info, nil
	}
	c, err := celldb.CountInstances(ctx, n.DB)
	if err != nil {
		return nil, err
	}
	info.Instances = c
	nodes, err := celldb.ListNodes(ctx, n.DB)
	if err != nil {
		return nil, err
	}
	info.Hosts = len(nodes)
	return info, nil
}

// Stats are a cell process's counters since it started, for benchmarks.
type Stats struct {
	// Commits is the database transactions committed.
	Commits int64
	// Statements is the SQL statements run.
	Statements int64
	// Durable and Calls are the envelopes its cells service published.
	Durable, Calls int64
	// BrokerIn is every message published to its embedded broker (zero
	// with an external broker), JetStream's own traffic included.
	BrokerIn int64
}

// Stats reads the counters.
func (n *Node) Stats() Stats {
	var st Stats
	if n.DB != nil {
		st.Commits = n.DB.Commits()
		st.Statements = n.DB.Statements()
	}
	if n.Cells != nil {
		st.Durable, st.Calls = n.Cells.Published()
	}
	if n.embedded != nil {
		st.BrokerIn = n.embedded.InMsgs()
	}
	return st
}

// APIAddr is the address the Compute API listens on ("" without the api role).
func (n *Node) APIAddr() string {
	if n.api == nil {
		return ""
	}
	return n.api.addr
}

// BrokerURL is the URL of the cell's broker.
func (n *Node) BrokerURL() string {
	if n.embedded != nil {
		return n.embedded.URL()
	}
	return n.cfg.Broker.URL
}

// Errors reports a failure of the HTTP server after Start.
func (n *Node) Errors() <-chan error { return n.serveErr }

// Shutdown stops what Start started, in reverse order: the roles, then the
// broker, then the database. It is idempotent.
func (n *Node) Shutdown(ctx context.Context) {
	n.stopOnce.Do(func() {
		n.running.stop(ctx, n.log)
		close(n.done)
	})
}

// Done is closed after Shutdown.
func (n *Node) Done() <-chan struct{} { return n.done }
