// Package node runs the roles of one cell in one process: it opens the
// cell's database and runs its migrations, starts or connects to the cell's
// broker, and starts each role the configuration names, wiring roles that
// share the process directly and reaching the others over the broker.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
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
	"github.com/cellcloud/cellcloud/internal/capacity"
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

	Cells     *cells.Service
	Conductor *conductor.Conductor
	Ops       *instanceops.Ops
	Compute   *computerole.Service
	// Identity is the API cell's identity store (auth mode local).
	Identity   *identity.Store
	tokenCache *authn.Cache
	registrar  *hostops.Registrar
	httpSrv    *http.Server
	apiAddr    string
	subs       []*nats.Subscription
	cancel     context.CancelFunc

	stopOnce sync.Once
	done     chan struct{}
	serveErr chan error
}

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

// Start opens the database, the broker and every role.
func (n *Node) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			n.Shutdown(context.Background())
		}
	}()
	cfg := n.cfg
	log := n.log.With("cell", cfg.Cell)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if n.DB, err = OpenDB(ctx, cfg); err != nil {
		return err
	}
	url := cfg.Broker.URL
	if url == "" {
		n.embedded, err = broker.StartEmbedded(broker.EmbeddedConfig{Name: cfg.Cell, Listen: cfg.Broker.Listen, StoreDir: filepath.Join(cfg.DataDir, "broker")})
		if err != nil {
			return err
		}
		url = n.embedded.URL()
	}
	if n.nc, err = broker.Connect(ctx, url, "cellcloud "+cfg.Cell, log); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = broker.WaitConnected(wctx, n.nc)
	cancel()
	if err != nil {
		return err
	}
	rctx, rcancel := context.WithCancel(context.Background())
	n.cancel = rcancel
	// The roles' sender wakes the relay of the cells service directly
	// when it runs in this process (it is started after them), and through
	// the broker otherwise.
	var localCells atomic.Pointer[cells.Service]
	sender := cells.NewSender(cfg.Cell, func() {
		if c := localCells.Load(); c != nil {
			c.Wake()
			return
		}
		_ = n.nc.Publish(cells.NudgeSubject(cfg.Cell), nil)
	})
	now := time.Now

	// Compute-cell roles.
	var sched conductor.HostScheduler
	var netw conductor.Network
	var comp interface {
		conductor.Compute
		instanceops.Host
		instanceops.VMs
	}
	if cfg.Has(config.RoleScheduler) {
		hs := hostsched.Default()
		if m := cfg.Scheduler.RAMWeightMultiplier; m != nil {
			hs = hs.WithRAMMultiplier(*m)
		}
		s, err := scheduler.New(n.DB, hs, cfg.Scheduler.HostDownAfter.D())
		if err != nil {
			return err
		}
		subs, err := serveScheduler(rctx, n.nc, cfg.Cell, log, s)
		n.subs = append(n.subs, subs...)
		if err != nil {
			return err
		}
		sched = s
	} else {
		sched = remoteScheduler{n.nc, cfg.Cell}
	}
	if cfg.Has(config.RoleNetwork) {
		s, err := network.New(network.Config{Network: cfg.Network.Name, CIDR: cfg.Network.CIDR, DB: n.DB, Logger: log})
		if err != nil {
			return err
		}
		subs, err := serveNetwork(rctx, n.nc, cfg.Cell, log, s)
		n.subs = append(n.subs, subs...)
		if err != nil {
			return err
		}
		netw = s
	} else {
		netw = remoteNetwork{n.nc, cfg.Cell}
	}
	if cfg.Has(config.RoleCompute) {
		drv, err := fake.New(fake.Config{SpawnLatency: cfg.Compute.SpawnLatency.D(), FailRate: cfg.Compute.FailRate, FailHosts: cfg.Compute.FailHosts})
		if err != nil {
			return err
		}
		n.Compute, err = computerole.New(computerole.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Driver: drv,
			Hosts: cfg.HostNames(), Spec: cfg.Compute.Host, Logger: n.log, UsageAudit: *cfg.Compute.InstanceUsageAudit,
			AuditPeriod: cfg.InstanceUsageAuditPeriod, AuditInterval: cfg.Compute.UsageAuditInterval.D()})
		if err != nil {
			return err
		}
		if err := n.Compute.Start(ctx); err != nil {
			return err
		}
		subs, err := serveCompute(rctx, n.nc, cfg.Cell, cfg.HostNames(), log, n.Compute)
		n.subs = append(n.subs, subs...)
		if err != nil {
			return err
		}
		comp = n.Compute
	} else {
		comp = remoteCompute{n.nc, cfg.Cell}
	}

	// The API cell's image store serves the Image API and takes the data of
	// server snapshots that the cells send up.
	var images *image.API
	var pol *policy.Enforcer
	var auth authn.Authenticator
	if cfg.IsRoot() {
		if pol, err = policy.New(PolicyRules(), cfg.API.PolicyFile); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		if auth, err = n.authenticator(ctx); err != nil {
			return err
		}
		images, err = image.New(image.Config{DB: n.DB, StoreDir: filepath.Join(cfg.DataDir, "images"), Cell: cfg.Cell, Logger: n.log,
			Auth: auth, Policy: pol})
		if err != nil {
			return err
		}
	}

	if cfg.Has(config.RoleCells) {
		ccfg := cells.Config{
			Path: cfg.Cell, DB: n.DB, Conn: n.nc, Logger: n.log,
			ReportInterval: cfg.Cells.ReportInterval.D(), RefreshInterval: cfg.Cells.RefreshInterval.D(),
			MuteAfter: cfg.Cells.MuteAfter.D(), MaxBuildAttempts: cfg.Cells.MaxBuildAttempts, DownAfter: cfg.Cells.DownAfter.D(),
		}
		if cfg.IsRoot() {
			h := &apicell.Handlers{Sender: sender, Images: images, Logger: log, Now: now}
			ccfg.BuildError, ccfg.Placed = h.BuildError, h.Placed
			n.Cells, err = cells.New(ccfg)
			if err != nil {
				return err
			}
			n.Cells.HandleCast(wire.MethodInstanceUpdate, 1, 0, h.InstanceUpdate)
			n.Cells.HandleCast(wire.MethodSnapshotDone, 1, 0, h.SnapshotDone)
			n.Cells.HandleCast(wire.MethodHostMappings, 1, 0, h.HostMappings)
		} else {
			var cd *conductor.Conductor
			ccfg.Capacity = func(ctx context.Context, q cells.Querier) (capacity.Report, error) {
				return celldb.Capacity(ctx, q, time.Now(), 60*time.Second)
			}
			ccfg.AcceptBuild = func(ctx context.Context, tx *db.Tx, env *wire.Envelope, b *wire.BuildInstances) error {
				return cd.AcceptBuild(ctx, tx, env, b)
			}
			n.Cells, err = cells.New(ccfg)
			if err != nil {
				return err
			}
			cd, err = conductor.New(conductor.Config{Cell: cfg.Cell, DB: n.DB, Sender: n.Cells.Sender(), Scheduler: sched,
				Network: netw, Compute: comp, HealInterval: cfg.Cells.HealInterval.D(), HealWindow: cfg.Cells.HealWindow.D(),
				OnChange: n.Cells.ReportSoon, Logger: n.log})
			if err != nil {
				return err
			}
			n.Conductor = cd
			n.Cells.HandleCast(wire.MethodDeleteInstances, 1, 0, cd.DeleteInstances)
			n.Ops, err = instanceops.New(instanceops.Config{Cell: cfg.Cell, DB: n.DB, Sender: n.Cells.Sender(), Host: comp, VMs: comp, Scheduler: sched, Logger: n.log})
			if err != nil {
				return err
			}
			n.Cells.HandleCast(wire.MethodInstanceAction, 1, 0, n.Ops.HandleAction)
			n.Cells.HandleCall(wire.MethodConsoleOutput, 1, 0, n.Ops.ConsoleOutput)
			n.Cells.HandleCall(wire.MethodInstanceActions, 1, 0, n.Ops.InstanceActions)
			hops, err := hostops.New(hostops.Config{Cell: cfg.Cell, DB: n.DB, Sender: n.Cells.Sender(), DownAfter: cfg.Cells.ServiceDownTime.D(), Logger: n.log})
			if err != nil {
				return err
			}
			n.Cells.HandleCall(wire.MethodHypervisors, 1, 0, hops.Hypervisors)
			n.Cells.HandleCall(wire.MethodServices, 1, 0, hops.Services)
			n.Cells.HandleCall(wire.MethodServiceUpdate, 1, 0, hops.UpdateService)
			n.Cells.HandleCall(wire.MethodServiceDelete, 1, 0, hops.DeleteService)
			n.Cells.HandleCall(wire.MethodHostDescribe, 1, 0, hops.DescribeHost)
			n.Cells.HandleCall(wire.MethodHostAction, 1, 0, hops.HostAction)
			n.Cells.HandleCall(wire.MethodTenantUsage, 1, 0, hops.TenantUsage)
			n.Cells.HandleCall(wire.MethodUsageAudit, 1, 0, hops.UsageAudit)
		}
		n.Cells.HandleCall(wire.MethodCellInfo, 1, 0, n.cellInfo)
		sub, err := serveCellsCalls(rctx, n.nc, cfg.Cell, log, localCaller{n.Cells})
		if err != nil {
			return err
		}
		n.subs = append(n.subs, sub)
		if err := n.Cells.Start(ctx); err != nil {
			return err
		}
		localCells.Store(n.Cells)
		if n.Conductor != nil {
			if err := n.Conductor.Start(ctx); err != nil {
				return err
			}
			if err := n.Ops.Start(ctx); err != nil {
				return err
			}
		}
	}

	// The controller services this process runs in a compute cell, for
	// os-services.
	if !cfg.IsRoot() {
		var bins []string
		for role, bin := range map[string]string{config.RoleCells: celldb.BinaryConductor, config.RoleScheduler: celldb.BinaryScheduler,
			config.RoleNetwork: celldb.BinaryNetwork} {
			if cfg.Has(role) {
				bins = append(bins, bin)
			}
		}
		slices.Sort(bins)
		if len(bins) > 0 {
			reg, err := hostops.NewRegistrar(hostops.Config{Cell: cfg.Cell, DB: n.DB, Sender: sender, Logger: n.log}, cfg.Host, bins,
				cfg.Cells.ReportInterval.D())
			if err != nil {
				return err
			}
			if err := reg.Start(ctx); err != nil {
				return err
			}
			n.registrar = reg
		}
	}

	if cfg.Has(config.RoleAPI) {
		if err := apidb.SeedFlavors(ctx, n.DB); err != nil {
			return err
		}
		var calls compute.CellCaller = remoteCaller{n.nc, cfg.Cell}
		var apiSender compute.Sender = sender
		if n.Cells != nil {
			calls = localCaller{n.Cells}
			// Builds go to the cells service in the request's own
			// transaction, which schedules them across the cells at once.
			apiSender = n.Cells.Sender()
		}
		startAt := time.Now()
		downCells := func(ctx context.Context) ([]string, error) {
			return cells.DownCells(ctx, n.DB, time.Now(), cfg.Cells.DownAfter.D(), startAt)
		}
		api, err := compute.New(compute.Config{Cell: cfg.Cell, DB: n.DB, Sender: apiSender, Caller: calls, Logger: n.log, AuditPeriod: cfg.InstanceUsageAuditPeriod,
			DownCells: downCells,
			Auth:      auth, Policy: pol, Quota: cfg.API.Quota})
		if err != nil {
			return err
		}
		// One image that any fresh cloud can boot.
		if err := images.Seed(ctx, image.Cirros()); err != nil {
			return err
		}
		// The public APIs share the listener, under devstack's paths: the
		// Compute API at /v2.1, the Image API at /image, Networking at
		// /networking.
		if _, err := netdb.Seed(ctx, n.DB, "private", "10.0.0.0/8"); err != nil {
			return err
		}
		networks, err := networkapi.New(networkapi.Config{Cell: cfg.Cell, DB: n.DB, Logger: n.log, Auth: auth, Policy: pol})
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		if n.Identity != nil {
			ids, err := identityapi.New(identityapi.Config{Cell: cfg.Cell, Store: n.Identity, Policy: pol, Cache: n.tokenCache,
				Catalog: Catalog(), Region: cfg.API.Region, Logger: n.log})
			if err != nil {
				return err
			}
			// Keystone at /identity, as devstack puts it, and at /v3 for
			// clients given the bare host.
			mux.Handle("/identity/", http.StripPrefix("/identity", ids))
			mux.Handle("/identity", http.StripPrefix("/identity", ids))
			mux.Handle("/v3/", ids)
			mux.Handle("/v3", ids)
		}
		mux.Handle("/image/", http.StripPrefix("/image", images))
		mux.Handle("/image", http.StripPrefix("/image", images)) // version discovery asks without a slash
		mux.Handle("/networking/", http.StripPrefix("/networking", networks))
		mux.Handle("/networking", http.StripPrefix("/networking", networks))
		mux.Handle("/", api)
		ln, err := net.Listen("tcp", cfg.API.Listen)
		if err != nil {
			return fmt.Errorf("api: listen %s: %w", cfg.API.Listen, err)
		}
		n.apiAddr = ln.Addr().String()
		n.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := n.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.serveErr <- err
			}
		}()
		log.Info("compute API listening", "addr", n.apiAddr)
	}
	log.Info("cell started", "roles", cfg.Roles, "database", dbKind(n.DB), "broker", url)
	return nil
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
func (n *Node) APIAddr() string { return n.apiAddr }

// BrokerURL is the URL of the cell's broker.
func (n *Node) BrokerURL() string {
	if n.embedded != nil {
		return n.embedded.URL()
	}
	return n.cfg.Broker.URL
}

// Errors reports a failure of the HTTP server after Start.
func (n *Node) Errors() <-chan error { return n.serveErr }

// Shutdown stops every role and closes the broker and the database. It is
// idempotent.
func (n *Node) Shutdown(ctx context.Context) {
	n.stopOnce.Do(func() {
		if n.httpSrv != nil {
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_ = n.httpSrv.Shutdown(sctx)
			cancel()
		}
		for _, s := range n.subs {
			_ = s.Unsubscribe()
		}
		if n.Conductor != nil {
			_ = n.Conductor.Shutdown(ctx)
		}
		if n.Ops != nil {
			_ = n.Ops.Shutdown(ctx)
		}
		if n.Cells != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := n.Cells.Shutdown(sctx); err != nil {
				n.log.Warn("cells shutdown", "err", err)
			}
			cancel()
		}
		if n.Compute != nil {
			_ = n.Compute.Shutdown(ctx)
		}
		if n.registrar != nil {
			n.registrar.Shutdown()
		}
		if n.cancel != nil {
			n.cancel()
		}
		if n.nc != nil {
			_ = n.nc.Drain()
			n.nc.Close()
		}
		if n.embedded != nil {
			n.embedded.Shutdown()
		}
		if n.DB != nil {
			n.DB.Close()
		}
		close(n.done)
	})
}

// Done is closed after Shutdown.
func (n *Node) Done() <-chan struct{} { return n.done }
