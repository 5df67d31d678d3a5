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
	"errors"
	"fmt"
	"github.com/cellcloud/cellcloud/internal/apicell/voldb"
	"github.com/cellcloud/cellcloud/internal/apicell/voltypes"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/apicell/api/authn"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/identity"
	"github.com/cellcloud/cellcloud/internal/apicell/imagedb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	computerole "github.com/cellcloud/cellcloud/internal/computecell/compute"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/openrc"
	"github.com/cellcloud/cellcloud/internal/privfs"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/outbox"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Node is one cell process.
type Node struct {
	cfg *config.Config
	log *slog.Logger

	DB       *db.DB
	embedded *broker.Embedded
	creds    *broker.Credentials
	// linkOpts are the options of every connection to a broker of the
	// tree (the CA to verify it against).
	linkOpts []nats.Option
	nc       *nats.Conn

	// Cells is the cells service, when this process runs it.
	Cells *cells.Service
	// Identity is the API cell's identity store (auth mode local).
	Identity   *identity.Store
	tokenCache *authn.Cache
	api        *apiRole
	// compute is the compute agent of this process's hosts (nil: none).
	compute *computerole.Service

	// running is what Start started, for Shutdown to stop in reverse.
	// brokerWait is how long Start waits for the cell's own broker
	// (brokerWaitDefault when zero; tests shorten it).
	brokerWait time.Duration

	running  components
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
	for _, w := range cfg.Warnings() {
		log.Warn(w, "cell", cfg.Cell)
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
// read the instances), or a compute cell's own data; last the shadow
// tables of the archive (housekeeping.go), made from the tables before.
func schemas(root bool) []schema {
	all := []schema{{"outbox", outbox.Migrations}, {"cells", cells.Migrations}}
	if !root {
		return append(all, schema{"compute", celldb.Migrations}, schema{celldb.ShadowMigrationSet, celldb.ShadowMigrations})
	}
	return append(all, schema{"api", apidb.Migrations}, schema{identity.MigrationSet, identity.Migrations},
		schema{imagedb.MigrationSet, imagedb.Migrations}, schema{netdb.MigrationSet, netdb.Migrations},
		schema{voldb.MigrationSet, voldb.Migrations}, schema{voltypes.MigrationSet, voltypes.Migrations},
		schema{apidb.ShadowMigrationSet, apidb.ShadowMigrations}, schema{voldb.ShadowMigrationSet, voldb.ShadowMigrations})
}

// OpenDB opens a cell's database and runs the migrations of every schema
// of its kind: the one place migrations run.
func OpenDB(ctx context.Context, cfg *config.Config) (*db.DB, error) {
	p := cfg.DatabasePool
	d, err := db.OpenPool(ctx, cfg.Database, db.Pool{MaxOpen: p.MaxOpen, MaxIdle: p.MaxIdle, MaxLifetime: p.MaxLifetime.D()})
	if err != nil {
		return nil, err
	}
	for _, s := range schemas(cfg.IsRoot()) {
		if err := d.Migrate(ctx, s.set, s.ms); err != nil {
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
		if err := n.writeAdminOpenRC(); err != nil {
			return err
		}
	}
	n.log.Info("cell started", "cell", n.cfg.Cell, "roles", n.cfg.Roles, "database", dbKind(n.DB), "broker", n.BrokerURL())
	return nil
}

// AdminOpenRC is the openrc file an API cell process writes when it
// bootstraps the admin user (api.auth local, CELLCLOUD_ADMIN_PASSWORD):
// DATA_DIR/openrc-admin; "" when it writes none.
func (n *Node) AdminOpenRC() string {
	if n.api == nil || n.cfg.API.Auth != config.AuthLocal || n.cfg.API.AdminPassword == "" {
		return ""
	}
	p := filepath.Join(n.cfg.DataDir, "openrc-admin")
	if abs, err := filepath.Abs(p); err == nil {
		p = abs
	}
	return p
}

// IdentityURL is the Identity v3 endpoint of the API cell's listener,
// as its clients reach it ("" without the api role or local identity).
func (n *Node) IdentityURL() string {
	if n.api == nil || n.cfg.API.Auth != config.AuthLocal {
		return ""
	}
	return openrc.AuthURL(n.api.addr, n.cfg.Host)
}

// writeAdminOpenRC writes DATA_DIR/openrc-admin (0600) when the process
// bootstrapped the admin user, as `cellcloud up` does, and logs the
// Identity endpoint either way.
func (n *Node) writeAdminOpenRC() error {
	if u := n.IdentityURL(); u != "" {
		n.log.Info("identity API listening", "cell", n.cfg.Cell, "url", u)
	}
	path := n.AdminOpenRC()
	if path == "" {
		return nil
	}
	f := openrc.File{Path: path, User: "admin", Password: n.cfg.API.AdminPassword, Project: "admin",
		AuthURL: n.IdentityURL(), Region: n.cfg.API.Region}
	if err := openrc.Write(f); err != nil {
		return fmt.Errorf("openrc: %w", err)
	}
	n.log.Info("wrote the admin's openrc", "cell", n.cfg.Cell, "path", path)
	return nil
}

// openDB opens the cell's database, migrated.
func (n *Node) openDB(ctx context.Context) error {
	// Private (0700, files 0600), and tightened when an older version
	// left it readable by others.
	if err := privfs.MkdirAll(n.cfg.DataDir); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if err := privfs.Tighten(n.cfg.DataDir); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	d, err := OpenDB(ctx, n.cfg)
	if err != nil {
		return err
	}
	n.DB = d
	n.running.add(role{"database", closer(func(context.Context) error { return d.Close() })})
	// PostgreSQL's planner statistics of the tables while they are young
	// (db.StatsKeeper); nothing on SQLite.
	keeper, err := db.NewStatsKeeper(d, 0, n.log.With("cell", n.cfg.Cell))
	if err != nil {
		return err
	}
	return n.running.start(ctx, role{"database statistics", keeper})
}

// connectBroker starts the embedded broker (unless the configuration names
// an external one) and connects to it.
func (n *Node) connectBroker(ctx context.Context) error {
	cfg := n.cfg
	url := cfg.Broker.URL
	if cfg.Broker.CA != "" {
		// This cell's broker and its neighbours' are verified against the
		// tree CA (and reached only with TLS).
		n.linkOpts = []nats.Option{nats.RootCAs(cfg.Broker.CA)}
	}
	opts := slices.Clone(n.linkOpts)
	switch {
	case url == "":
		creds, err := broker.LoadOrCreateCredentials(cfg.Broker.Credentials)
		if err != nil {
			return err
		}
		pub, sub := cells.LinkPermissions(cfg.Broker.Prefix, cfg.Cell)
		ecfg := broker.EmbeddedConfig{Name: cfg.Cell, Listen: cfg.Broker.Listen, StoreDir: filepath.Join(cfg.DataDir, "broker"),
			Auth: &broker.Auth{Credentials: *creds, LinkPublish: pub, LinkSubscribe: sub}}
		if cfg.Broker.TLSCert != "" {
			if ecfg.TLS, err = (broker.TLSFiles{Cert: cfg.Broker.TLSCert, Key: cfg.Broker.TLSKey}).ServerTLS(); err != nil {
				return err
			}
		}
		e, err := broker.StartEmbedded(ecfg)
		if err != nil {
			return err
		}
		n.embedded, n.creds = e, creds
		n.running.add(role{"broker", closer(func(context.Context) error { e.Shutdown(); return nil })})
		url = e.URL()
		opts = append(opts, nats.UserInfo(creds.Cell.Name, creds.Cell.Password))
	default:
		user, err := brokerUser(cfg, url)
		if err != nil {
			return err
		}
		opts = append(opts, user...)
	}
	log := n.log.With("cell", cfg.Cell)
	w := newBrokerWaiter(url, log)
	nc, err := broker.Connect(ctx, url, "cellcloud "+cfg.Cell, log, append(opts, w.option())...)
	if err != nil {
		return err
	}
	n.nc = nc
	n.running.add(role{"broker connection", closer(func(context.Context) error {
		_ = nc.Drain()
		nc.Close()
		return nil
	})})
	timeout := n.brokerWait
	if timeout <= 0 {
		timeout = brokerWaitDefault
	}
	return w.wait(ctx, nc, timeout)
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
	// RoundTrips is the exchanges with the database: statements, begins,
	// commits, rollbacks, savepoints.
	RoundTrips int64
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
		st.RoundTrips = n.DB.RoundTrips()
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

// BrokerURL is the URL of the cell's broker (without a password).
func (n *Node) BrokerURL() string {
	if n.embedded != nil {
		return n.embedded.URL()
	}
	return broker.Redact(n.cfg.Broker.URL)
}

// LinkURL is the URL the cell's neighbours record in their cells tables to
// reach its embedded broker: with the broker's Link user, which may only
// send to this cell. With an external broker it is the configured URL.
func (n *Node) LinkURL() string {
	if n.embedded == nil {
		return n.cfg.Broker.URL
	}
	u, err := broker.WithUser(n.embedded.URL(), n.creds.Link)
	if err != nil {
		return n.embedded.URL()
	}
	return u
}

// CachedImages are the images the hypervisor of host, one of this
// process's compute hosts, has cached (image pre-caching, 2.81); none for
// a host it does not run. For operators' checks and tests: the Compute API
// shows nothing of it, as Nova's does not.
func (n *Node) CachedImages(host string) []string {
	if n.compute == nil {
		return nil
	}
	return n.compute.CachedImages(host)
}

// VolumeDisks are the volumes the hypervisor of host, one of this
// process's compute hosts, has attached to the instance: device to
// backing path (none for a host it does not run). For operators' checks
// and tests.
func (n *Node) VolumeDisks(host, uuid string) map[string]string {
	if n.compute == nil {
		return nil
	}
	return n.compute.VolumeDisks(host, uuid)
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

// brokerUser is how a process signs in to its cell's broker reached by
// url (not one it runs): with broker.creds_file; with the user in the URL;
// or with the cell's user from the credentials file that the process
// running the embedded broker shares through the data directory. An
// external broker without users has no such file; for the embedded broker
// of another process (no broker.url) the file must be there.
func brokerUser(cfg *config.Config, url string) ([]nats.Option, error) {
	switch {
	case cfg.Broker.CredsFile != "":
		return []nats.Option{nats.UserCredentials(cfg.Broker.CredsFile)}, nil
	case broker.HasUser(url):
		return nil, nil
	}
	creds, err := broker.LoadCredentials(cfg.Broker.Credentials)
	switch {
	case err == nil:
		return []nats.Option{nats.UserInfo(creds.Cell.Name, creds.Cell.Password)}, nil
	case errors.Is(err, fs.ErrNotExist) && cfg.Broker.URL != "":
		return nil, nil
	}
	return nil, err
}
