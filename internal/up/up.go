// Package up runs a whole cell tree in one process for the embedded
// default (`cellcloud up`): an API cell and N compute cells, each with its
// own SQLite file and its own embedded NATS server under the data directory.
// Nothing is shared between cells but the process.
package up

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/api/image"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/privfs"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

// Options configure the tree.
type Options struct {
	DataDir      string
	Cells        int
	HostsPerCell int
	// Depth is the tree's number of levels: 2 (the default) puts the
	// compute cells right below the API cell; 3 puts them below
	// ceil(√Cells) routing cells (cells role only, no hosts) named midN.
	Depth int
	// Listen is the Compute API's address (default "127.0.0.1:8774":
	// loopback only; exposure is a deliberate choice).
	Listen string
	Host   config.HostSpec
	// ReportInterval overrides the capacity report interval.
	ReportInterval time.Duration
	// SpawnLatency and OpLatency are how long the fake driver's spawns and
	// lifecycle operations (by name) take; zero, the tests' default, is at
	// once.
	SpawnLatency time.Duration
	OpLatency    map[string]time.Duration
	// CallTimeout overrides every cell's cells.call_timeout.
	CallTimeout time.Duration
	// Auth is the API's authentication mode (config.AuthLocal by default).
	Auth string
	// KeystoneURL is the external Keystone of auth mode keystone.
	KeystoneURL string
	// TokenCacheTTL is how long a validated token is remembered (zero: the
	// mode's default).
	TokenCacheTTL time.Duration
	// AdminPassword and DemoPassword are the bootstrap users' passwords in
	// auth mode local; empty keeps the password of an existing user (from
	// its openrc file) or generates one.
	AdminPassword, DemoPassword string
	// PolicyFile overrides policy rules.
	PolicyFile string
	// ReclaimInterval is the API's api.reclaim_instance_interval (0: deletes
	// are final).
	ReclaimInterval time.Duration
	// Quota is every project's default quota (zero fields: Nova's).
	Quota quota.Defaults
	// ShelvedOffloadTime and ShelvedPollInterval are every compute
	// cell's compute.shelved_offload_time (0: offload at once; negative:
	// never) and compute.shelved_poll_interval.
	ShelvedOffloadTime, ShelvedPollInterval time.Duration
	// Database, when set, names each cell's database by the cell's path
	// (a PostgreSQL URL, say); unset, each cell has a SQLite file in its
	// data directory. DatabasePool sizes each cell's PostgreSQL pool.
	Database     func(cell string) string
	DatabasePool config.DatabasePool
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.DataDir == "" {
		return errors.New("--data-dir must not be empty")
	}
	if o.Cells < 1 || o.Cells > 250 {
		return fmt.Errorf("--cells %d must be between 1 and 250", o.Cells)
	}
	if o.HostsPerCell < 1 || o.HostsPerCell > 100000 {
		return fmt.Errorf("--hosts-per-cell %d must be between 1 and 100000", o.HostsPerCell)
	}
	if o.Depth == 0 {
		o.Depth = 2
	}
	if o.Depth != 2 && o.Depth != 3 {
		return fmt.Errorf("--depth %d: 2 (compute cells below the API cell) or 3 (below routing cells) are built", o.Depth)
	}
	if o.Listen == "" {
		o.Listen = config.DefaultAPIListen
	}
	return nil
}

// Tree is a running tree.
type Tree struct {
	API   *node.Node
	Cells []*node.Node
	// OpenRC are the credentials files written for the bootstrap users
	// (auth mode local), by user name.
	OpenRC map[string]OpenRC
	log    *slog.Logger
	// ca is the tree CA that signs every cell's broker certificate.
	ca *broker.CA
}

// treeCA is the tree's CA in the data directory, made on the first run.
// The broker package writes its files private; a CA whose files were
// opened up since is tightened, like the rest of the data directory.
func treeCA(dir string) (*broker.CA, error) {
	if err := privfs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	cert, key := filepath.Join(dir, "tree-ca.pem"), filepath.Join(dir, "tree-ca-key.pem")
	ca, err := broker.LoadOrCreateCA(cert, key, Root)
	if err != nil {
		return nil, err
	}
	for _, f := range []string{cert, key} {
		if err := privfs.TightenFile(f); err != nil {
			return nil, fmt.Errorf("tree CA: %w", err)
		}
	}
	return ca, nil
}

// brokerConfig is a cell's embedded broker: on loopback, with a fresh
// certificate of the tree CA (its processes and its neighbours verify it
// against the CA).
func (t *Tree) brokerConfig(dataDir, cell string) (config.Broker, error) {
	b := config.Broker{Listen: "127.0.0.1:0", TLSCert: filepath.Join(dataDir, "broker-cert.pem"),
		TLSKey: filepath.Join(dataDir, "broker-key.pem"), CA: t.ca.CertFile}
	if err := t.ca.Issue(b.TLSCert, b.TLSKey, cell, nil); err != nil {
		return b, fmt.Errorf("cell %s: %w", cell, err)
	}
	return b, nil
}

// Root is the API cell's path.
const Root = "api"

// Start starts every cell and links them.
func Start(ctx context.Context, o Options, log *slog.Logger) (_ *Tree, err error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// The data directory holds every cell's data and the openrc files
	// (passwords): private, also when an older version made it 0755.
	if err := privfs.MkdirAll(o.DataDir); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	t := &Tree{log: log}
	defer func() {
		if err != nil {
			t.Shutdown(context.Background())
		}
	}()
	if t.ca, err = treeCA(o.DataDir); err != nil {
		return nil, err
	}
	apiBroker, err := t.brokerConfig(filepath.Join(o.DataDir, Root), Root)
	if err != nil {
		return nil, err
	}
	apiCfg := &config.Config{Cell: Root, DataDir: filepath.Join(o.DataDir, Root), Broker: apiBroker,
		API: config.API{Listen: o.Listen, Auth: o.Auth, KeystoneURL: o.KeystoneURL,
			TokenCacheTTL: config.Duration(o.TokenCacheTTL), PolicyFile: o.PolicyFile, Quota: o.Quota,
			ReclaimInstanceInterval: config.Duration(o.ReclaimInterval)}}
	apiCfg.Cells.ReportInterval = config.Duration(o.ReportInterval)
	apiCfg.Cells.CallTimeout = config.Duration(o.CallTimeout)
	o.setDatabase(apiCfg)
	if t.API, err = node.New(apiCfg, log); err != nil {
		return nil, err
	}
	if err := t.API.Start(ctx); err != nil {
		return nil, fmt.Errorf("cell %s: %w", Root, err)
	}
	if t.API.Identity != nil {
		if t.OpenRC, err = bootstrap(ctx, t.API.Identity, o, t.APIURL()); err != nil {
			return nil, err
		}
		// The admin project exists now: the default network is its.
		if err := t.API.OwnDefaultNetwork(ctx); err != nil {
			return nil, err
		}
	}
	// The routing cells of a tree of depth 3, then the compute cells.
	parents := []*node.Node{t.API}
	if o.Depth == 3 {
		parents = nil
		mids := int(math.Ceil(math.Sqrt(float64(o.Cells))))
		for j := 1; j <= mids; j++ {
			name := fmt.Sprintf("mid%d", j)
			br, err := t.brokerConfig(filepath.Join(o.DataDir, name), cellpath.Child(Root, name))
			if err != nil {
				return nil, err
			}
			c := &config.Config{Cell: cellpath.Child(Root, name), DataDir: filepath.Join(o.DataDir, name),
				Broker: br, Roles: []string{config.RoleCells}}
			c.Cells.ReportInterval = config.Duration(o.ReportInterval)
			c.Cells.CallTimeout = config.Duration(o.CallTimeout)
			o.setDatabase(c)
			n, err := t.startCell(ctx, c)
			if err != nil {
				return nil, err
			}
			parents = append(parents, n)
		}
	}
	for i := 1; i <= o.Cells; i++ {
		name := fmt.Sprintf("cell%d", i)
		parent := parents[(i-1)%len(parents)]
		dir := name
		if parent != t.API {
			dir = filepath.Join(filepath.Base(parent.Config().DataDir), name)
		}
		br, err := t.brokerConfig(filepath.Join(o.DataDir, dir), cellpath.Child(parent.Config().Cell, name))
		if err != nil {
			return nil, err
		}
		c := &config.Config{Cell: cellpath.Child(parent.Config().Cell, name), DataDir: filepath.Join(o.DataDir, dir),
			Broker: br}
		c.Compute.Hosts = o.HostsPerCell
		c.Compute.Host = o.Host
		c.Compute.SpawnLatency = config.Duration(o.SpawnLatency)
		for op, d := range o.OpLatency {
			if c.Compute.OpLatency == nil {
				c.Compute.OpLatency = map[string]config.Duration{}
			}
			c.Compute.OpLatency[op] = config.Duration(d)
		}
		c.Compute.ShelvedOffloadTime = config.Duration(o.ShelvedOffloadTime)
		c.Compute.ShelvedPollInterval = config.Duration(o.ShelvedPollInterval)
		c.Cells.ReportInterval = config.Duration(o.ReportInterval)
		c.Cells.CallTimeout = config.Duration(o.CallTimeout)
		o.setDatabase(c)
		if _, err := t.startCell(ctx, c); err != nil {
			return nil, err
		}
	}
	// Link the tree: each cell's own cells table names its neighbours,
	// with this run's broker URLs.
	want := map[string]bool{}
	for _, c := range t.Cells {
		if cellpath.Parent(c.Config().Cell) == Root {
			want[c.Config().Cell] = true
		}
	}
	old, err := cells.ListNeighbours(ctx, t.API.DB)
	if err != nil {
		return nil, err
	}
	for _, n := range old {
		if n.Relation == cells.Child && !want[n.Path] {
			log.Warn("removing a cell this run does not start from the cells table", "cell", n.Path)
			if err := cells.RemoveNeighbour(ctx, t.API.DB, n.Path); err != nil {
				return nil, err
			}
		}
	}
	byPath := map[string]*node.Node{Root: t.API}
	for _, c := range t.Cells {
		byPath[c.Config().Cell] = c
	}
	for _, c := range t.Cells {
		path := c.Config().Cell
		p := byPath[cellpath.Parent(path)]
		if err := cells.AddNeighbour(ctx, p.DB, p.Config().Cell, cells.Neighbour{Path: path, Relation: cells.Child, BrokerURL: c.LinkURL(), WeightScale: 1}); err != nil {
			return nil, err
		}
		if err := cells.AddNeighbour(ctx, c.DB, path, cells.Neighbour{Path: p.Config().Cell, Relation: cells.Parent, BrokerURL: p.LinkURL(), WeightScale: 1}); err != nil {
			return nil, err
		}
	}
	asked := time.Now()
	for _, n := range t.Nodes() {
		if err := n.Cells.RefreshNeighbours(ctx); err != nil {
			return nil, err
		}
		n.Cells.ReportSoon()
	}
	// Ready when the API cell has heard of every host, so the first build
	// finds room: from reports this start asked for. A data dir started
	// again holds each cell's last report of the run before, which counts
	// as down once cells.down_after has passed without a new one: ready
	// on those, a first build could find no cell up.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ns, err := cells.ListNeighbours(ctx, t.API.DB)
		if err != nil {
			return nil, err
		}
		heard := 0
		for _, n := range ns {
			if n.Relation == cells.Child && n.Report != nil && !n.LastSeen.Before(asked) {
				heard += n.Report.Hosts
			}
		}
		if heard >= o.Cells*o.HostsPerCell {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the cells reported %d of %d hosts within 30s", heard, o.Cells*o.HostsPerCell)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return t, nil
}

// setDatabase gives a cell's configuration the database of o.Database.
func (o *Options) setDatabase(c *config.Config) {
	if o.Database != nil {
		c.Database = o.Database(c.Cell)
	}
	c.DatabasePool = o.DatabasePool
}

// startCell starts a cell below the API cell and adds it to t.Cells.
func (t *Tree) startCell(ctx context.Context, c *config.Config) (*node.Node, error) {
	n, err := node.New(c, t.log)
	if err != nil {
		return nil, err
	}
	if err := n.Start(ctx); err != nil {
		return nil, fmt.Errorf("cell %s: %w", c.Cell, err)
	}
	t.Cells = append(t.Cells, n)
	return n, nil
}

// Nodes is every cell, the API cell first.
func (t *Tree) Nodes() []*node.Node {
	out := []*node.Node{}
	if t.API != nil {
		out = append(out, t.API)
	}
	return append(out, t.Cells...)
}

// APIURL is the Compute API endpoint.
func (t *Tree) APIURL() string {
	addr := t.API.APIAddr()
	if strings.HasPrefix(addr, "[::]:") || strings.HasPrefix(addr, "0.0.0.0:") {
		addr = "127.0.0.1" + addr[strings.LastIndex(addr, ":"):]
	}
	return "http://" + addr + "/v2.1"
}

// Shutdown stops every cell, compute cells first.
func (t *Tree) Shutdown(ctx context.Context) {
	for i := len(t.Cells) - 1; i >= 0; i-- {
		t.Cells[i].Shutdown(ctx)
	}
	if t.API != nil {
		t.API.Shutdown(ctx)
	}
}

// DefaultImageID is the image every cloud starts with (a small CirrOS
// image registered by the API cell), which `cellcloud up` suggests for a
// first boot.
const DefaultImageID = image.CirrosID
