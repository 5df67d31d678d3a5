package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/openrc"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
)

const statusUsage = `usage:
  cellcloud status [--data-dir DIR | --openrc FILE | --url URL --token TOKEN]
  cellcloud status --config FILE [--openrc FILE]

Without --config it prints the cell tree as the API cell sees it
(os-cells), signed in as an administrator: with DATA_DIR/openrc-admin
(cellcloud up writes it), --openrc FILE, the OS_* environment, or a
noauth --url and --token.

With --config it checks one cell from its configuration, on its own
machine: its database (reachable, its cells table), its broker (reachable
as the cell's own user) and each neighbour's last report; for an API cell
it then prints the tree, signed in with --openrc, DATA_DIR/openrc-admin
(cellcloud serve writes it with CELLCLOUD_ADMIN_PASSWORD) or the OS_*
environment. It exits 1 when the database or the broker cannot be reached.

`

// cmdStatus prints the cell tree as the API cell sees it (os-cells): each
// cell, whether it is up, its hosts and instances. It signs in as an
// administrator with an openrc file (default DATA_DIR/openrc-admin) or
// the OS_* environment, as the openstack CLI does. With --config it first
// checks one cell's own database and broker.
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, statusUsage); fs.PrintDefaults() }
	cfgPath := fs.String("config", "", "a cell's configuration file: check its database, broker and neighbours (and, for an API cell, print the tree)")
	dataDir := fs.String("data-dir", "./data", "the data directory of `cellcloud up` (its openrc-admin signs in)")
	rc := fs.String("openrc", "", "an openrc file of an administrator (default: DATA_DIR/openrc-admin, else the OS_* environment)")
	url := fs.String("url", "", "the Compute API URL, with --token (for auth noauth)")
	token := fs.String("token", "", "a token to send as is (noauth: USER:PROJECT)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *cfgPath != "" {
		explicitDataDir := false
		fs.Visit(func(f *flag.Flag) { explicitDataDir = explicitDataDir || f.Name == "data-dir" })
		if explicitDataDir {
			return usageError{errors.New("--config and --data-dir exclude each other: the config names the data directory")}
		}
		return cellStatus(ctx, *cfgPath, *rc, *url, *token, stdout)
	}
	sc, err := statusClient(ctx, *dataDir, *rc, *url, *token)
	if err != nil {
		return err
	}
	return printTree(ctx, sc, stdout)
}

// cellStatus checks one cell from its configuration: its database, its
// broker, its neighbours; for an API cell with credentials, the tree.
func cellStatus(ctx context.Context, path, rc, url, token string, stdout io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	kind := "compute cell"
	switch {
	case cfg.IsRoot():
		kind = "API cell"
	case !cfg.Has(config.RoleCompute) && !cfg.Has(config.RoleScheduler):
		kind = "cell"
	}
	fmt.Fprintf(stdout, "cell %s (%s; roles %s; config %s)\n", cfg.Cell, kind, strings.Join(cfg.Roles, " "), path)
	var failed []string

	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var d *db.DB
	if p, ok := sqlitePath(cfg.Database); ok && !fileExists(p) {
		fmt.Fprintf(stdout, "database  %s: no database yet (made at the cell's first start, or by cellcloud cell add)\n", p)
		failed = append(failed, "database")
	} else if d, err = node.OpenDBAsIs(cctx, cfg); err != nil {
		fmt.Fprintf(stdout, "database  %s: NOT REACHABLE: %v\n", redactDSN(cfg.Database), err)
		failed = append(failed, "database")
	} else {
		defer d.Close()
		schema, ok, err := node.SchemaStatus(cctx, d, cfg.IsRoot())
		if err != nil {
			schema = "schema unreadable: " + err.Error()
		}
		fmt.Fprintf(stdout, "database  %s (%s): ok, %s\n", redactDSN(cfg.Database), d.Dialect, schema)
		if !ok {
			d.Close()
			d = nil
		}
	}

	bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
	defer bcancel()
	pr := node.ProbeBroker(bctx, cfg)
	switch {
	case pr.Err != nil:
		fmt.Fprintf(stdout, "broker    %s: NOT REACHABLE: %v\n", pr.URL, pr.Err)
		failed = append(failed, "broker")
	default:
		fmt.Fprintf(stdout, "broker    %s: ok (JetStream %s, round trip %s)\n", pr.URL, pr.JetStream, pr.RTT.Round(time.Microsecond))
	}

	if d != nil && !cfg.IsRoot() {
		printServices(ctx, stdout, d, cfg.Cells.ServiceDownTime.D())
	}
	if d != nil {
		fmt.Fprintln(stdout)
		if err := printNeighbours(ctx, stdout, cfg.Cell, d, false); err != nil {
			return err
		}
	}

	if cfg.IsRoot() && cfg.Has(config.RoleAPI) {
		fmt.Fprintln(stdout)
		if rc == "" && url == "" {
			if p := filepath.Join(cfg.DataDir, "openrc-admin"); fileExists(p) {
				rc = p
			}
		}
		if cfg.API.Auth == config.AuthNoAuth && url == "" && rc == "" {
			url, token = "http://"+cfg.API.Listen+"/v2.1", "admin:admin"
			if strings.HasPrefix(cfg.API.Listen, ":") || strings.HasPrefix(cfg.API.Listen, "0.0.0.0:") || strings.HasPrefix(cfg.API.Listen, "[::]:") {
				_, port, _ := strings.Cut(strings.TrimPrefix(cfg.API.Listen, "[::]"), ":")
				url = "http://127.0.0.1:" + port + "/v2.1"
			}
		}
		sc, err := statusClient(ctx, filepath.Join(cfg.DataDir, "none"), rc, url, token)
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "the tree: not shown: %v\n", err)
		default:
			if err := printTree(ctx, sc, stdout); err != nil {
				fmt.Fprintf(stdout, "the tree: %v\n", err)
				failed = append(failed, "the Compute API")
			}
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("cell %s: %s not reachable", cfg.Cell, strings.Join(failed, " and "))
	}
	return nil
}

// printServices prints a compute cell's controller services with their
// last heartbeats, and how many of its compute hosts are up: whether the
// cell's processes run, as its own database records it.
func printServices(ctx context.Context, w io.Writer, d *db.DB, downAfter time.Duration) {
	svcs, err := celldb.ListServices(ctx, d, celldb.ServiceFilter{})
	if err != nil {
		fmt.Fprintf(w, "services  (unreadable: %v)\n", err)
		return
	}
	var parts []string
	hosts, up := 0, 0
	for _, sv := range svcs {
		age := time.Since(sv.LastSeen)
		if sv.Binary == celldb.BinaryCompute {
			hosts++
			if !sv.LastSeen.IsZero() && age <= downAfter {
				up++
			}
			continue
		}
		seen := "never"
		if !sv.LastSeen.IsZero() {
			seen = age.Round(time.Second).String() + " ago"
			if age > downAfter {
				seen += " (down)"
			}
		}
		parts = append(parts, fmt.Sprintf("%s@%s %s", sv.Binary, sv.Host, seen))
	}
	if hosts > 0 {
		parts = append(parts, fmt.Sprintf("%s: %d of %d hosts up", celldb.BinaryCompute, up, hosts))
	}
	if len(parts) == 0 {
		parts = []string{"none registered yet"}
	}
	fmt.Fprintf(w, "services  %s (last heartbeats)\n", strings.Join(parts, ", "))
}

// sqlitePath is the file of a SQLite database DSN.
func sqlitePath(dsn string) (string, bool) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return "", false
	}
	return strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "sqlite:"), true
}

// redactDSN is a database URL without its password.
func redactDSN(dsn string) string {
	if _, ok := sqlitePath(dsn); ok {
		return dsn
	}
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				return dsn[:i+3+colon] + ":xxxxx" + dsn[at:]
			}
		}
	}
	return dsn
}

// printTree prints the tree from os-cells.
func printTree(ctx context.Context, sc *gophercloud.ServiceClient, stdout io.Writer) error {
	var body struct {
		Cells []struct {
			Name      string `json:"name"`
			State     string `json:"state"`
			Hosts     int    `json:"hosts"`
			Instances int    `json:"instances"`
			RPCHost   string `json:"rpc_host"`
			RPCPort   int    `json:"rpc_port"`
		} `json:"cells"`
	}
	resp, err := sc.Get(ctx, sc.ServiceURL("os-cells", "detail"), &body, &gophercloud.RequestOpts{OkCodes: []int{http.StatusOK}})
	if err != nil {
		return fmt.Errorf("os-cells: %w", err)
	}
	root := "api"
	if len(body.Cells) > 0 {
		root = cellpath.Root(body.Cells[0].Name)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t(API cell)\n", root)
	for _, c := range body.Cells {
		indent := strings.Repeat("  ", cellpath.Depth(c.Name)-1)
		if c.State != "up" {
			fmt.Fprintf(tw, "%s%s\tDOWN\t\t\t(cannot receive, or did not answer)\n", indent, c.Name)
			continue
		}
		fmt.Fprintf(tw, "%s%s\tup\t%d hosts\t%d instances\tbroker %s:%d\n", indent, c.Name, c.Hosts, c.Instances, c.RPCHost, c.RPCPort)
	}
	if missing := resp.Header.Get("X-Cellcloud-Missing-Cells"); missing != "" {
		fmt.Fprintf(tw, "\nmissing from this answer: %s\n", missing)
	}
	return tw.Flush()
}

// statusClient signs in to the Compute API.
func statusClient(ctx context.Context, dataDir, rc, url, token string) (*gophercloud.ServiceClient, error) {
	if url != "" || token != "" {
		if url == "" || token == "" {
			return nil, usageError{errors.New("--url and --token go together")}
		}
		pc := &gophercloud.ProviderClient{}
		pc.SetToken(token)
		u := strings.TrimSuffix(url, "/") + "/"
		return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: u, ResourceBase: u, Type: "compute"}, nil
	}
	env := map[string]string{}
	if rc == "" {
		if p := filepath.Join(dataDir, "openrc-admin"); fileExists(p) {
			rc = p
		}
	}
	if rc != "" {
		var err error
		if env, err = openrc.Read(rc); err != nil {
			return nil, err
		}
	}
	get := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	if get("OS_AUTH_URL") == "" {
		return nil, usageError{errors.New("no credentials: give --openrc FILE (cellcloud up writes DATA_DIR/openrc-admin, cellcloud serve of the API cell with CELLCLOUD_ADMIN_PASSWORD too), set OS_AUTH_URL and the other OS_* variables, or --url and --token")}
	}
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: get("OS_AUTH_URL"), Username: get("OS_USERNAME"), Password: get("OS_PASSWORD"),
		DomainName: get("OS_USER_DOMAIN_NAME"), TenantName: get("OS_PROJECT_NAME"),
	})
	if err != nil {
		return nil, fmt.Errorf("signing in at %s: %w", get("OS_AUTH_URL"), err)
	}
	return openstack.NewComputeV2(pc, gophercloud.EndpointOpts{Region: get("OS_REGION_NAME")})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
