package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/node"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

const cellUsage = `usage:
  cellcloud cell add    --config FILE --name PATH --relation child|parent --broker-url nats://HOST:PORT
                        [--weight-offset N] [--weight-scale N] [--capability KEY=V1;V2 ...]
  cellcloud cell list   --config FILE [--json]
  cellcloud cell remove --config FILE --name PATH
  cellcloud cell link-url --config FILE [--broker-url nats://HOST:PORT]
  cellcloud cell cert   --config FILE --ca-key FILE [--host NAME_OR_IP ...]

link-url prints the URL, with the user its neighbours may use (which may
only send to the cell), that this cell's neighbours give to "cell add
--broker-url"; it creates the cell's broker credentials file if missing.
Its host and port are the configured broker.listen unless --broker-url
names the address neighbours reach.

cert writes the cell's broker certificate and key (broker.tls_cert and
broker.tls_key) signed by the tree CA (broker.ca, whose key is --ca-key),
valid for broker.listen's host, loopback and each --host; it makes the CA
first when neither broker.ca nor --ca-key exists.

Each cell keeps its own cells table (its parent and its children); a running
cell process picks up changes within its refresh interval.
`

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// openCell opens the cell database named by a config file (running the
// migrations, so a cell can be configured before its first start).
func openCell(ctx context.Context, path string) (*config.Config, *db.DB, error) {
	if path == "" {
		return nil, nil, usageError{fmt.Errorf("--config is required")}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	d, err := node.OpenDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, d, nil
}

func cmdCell(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, cellUsage)
		return usageError{fmt.Errorf("a subcommand is required")}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, cellUsage)
		return nil
	}
	fs := flag.NewFlagSet("cell "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the cell's configuration file")
	name := fs.String("name", "", "the neighbour's cell path")
	rel := fs.String("relation", "child", "child or parent")
	url := fs.String("broker-url", "", "the neighbour's broker URL")
	off := fs.Float64("weight-offset", 0, "added to the cell's weight when scheduling")
	scale := fs.Float64("weight-scale", 1, "multiplies the cell's weight when scheduling")
	asJSON := fs.Bool("json", false, "print JSON")
	var caps, hosts multiFlag
	fs.Var(&caps, "capability", "a capability KEY=V1;V2 (repeatable)")
	fs.Var(&hosts, "host", "cert: a host name or address neighbours reach the broker at (repeatable)")
	caKey := fs.String("ca-key", "", "cert: the tree CA's key")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "add":
		cfg, d, err := openCell(ctx, *cfgPath)
		if err != nil {
			return err
		}
		defer d.Close()
		n := cells.Neighbour{Path: *name, Relation: cells.Relation(*rel), BrokerURL: *url, WeightOffset: *off, WeightScale: *scale}
		for _, c := range caps {
			k, v, ok := strings.Cut(c, "=")
			if !ok || k == "" {
				return usageError{fmt.Errorf("--capability %q must be KEY=V1;V2", c)}
			}
			if n.Capabilities == nil {
				n.Capabilities = map[string][]string{}
			}
			n.Capabilities[k] = strings.Split(v, ";")
		}
		if err := cells.AddNeighbour(ctx, d, cfg.Cell, n); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cell %s: %s %s at %s\n", cfg.Cell, n.Relation, n.Path, broker.Redact(n.BrokerURL))
		return nil
	case "remove":
		_, d, err := openCell(ctx, *cfgPath)
		if err != nil {
			return err
		}
		defer d.Close()
		if *name == "" {
			return usageError{fmt.Errorf("--name is required")}
		}
		if err := cells.RemoveNeighbour(ctx, d, *name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", *name)
		return nil
	case "link-url":
		if *cfgPath == "" {
			return usageError{fmt.Errorf("--config is required")}
		}
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		u, err := linkURL(cfg, *url)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, u)
		return nil
	case "cert":
		if *cfgPath == "" || *caKey == "" {
			return usageError{fmt.Errorf("--config and --ca-key are required")}
		}
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		if cfg.Broker.TLSCert == "" || cfg.Broker.CA == "" {
			return usageError{fmt.Errorf("cell %s: its configuration names no broker.tls_cert, tls_key and ca to write", cfg.Cell)}
		}
		ca, err := broker.LoadOrCreateCA(cfg.Broker.CA, *caKey, cellpath.Root(cfg.Cell))
		if err != nil {
			return err
		}
		if host, _, err := net.SplitHostPort(cfg.Broker.Listen); err == nil && host != "" && host != "0.0.0.0" && host != "::" {
			hosts = append(hosts, host)
		}
		if err := ca.Issue(cfg.Broker.TLSCert, cfg.Broker.TLSKey, cfg.Cell, hosts); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "cell %s: broker certificate %s for %s, signed by %s\n", cfg.Cell, cfg.Broker.TLSCert, strings.Join(append([]string{"loopback"}, hosts...), ", "), cfg.Broker.CA)
		return nil
	case "list":
		cfg, d, err := openCell(ctx, *cfgPath)
		if err != nil {
			return err
		}
		defer d.Close()
		return printNeighbours(ctx, stdout, cfg.Cell, d, *asJSON)
	default:
		fmt.Fprint(stderr, cellUsage)
		return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
	}
}

// linkURL is the URL of cfg's embedded broker with its Link user, at addr
// (nats://HOST:PORT) or else at broker.listen.
func linkURL(cfg *config.Config, addr string) (string, error) {
	if cfg.Broker.URL != "" {
		return "", fmt.Errorf("cell %s uses the broker at broker.url: give its neighbours a URL with a user of that broker", cfg.Cell)
	}
	if addr == "" {
		host, port, err := net.SplitHostPort(cfg.Broker.Listen)
		if err != nil || port == "0" {
			return "", usageError{fmt.Errorf("broker.listen %q names no fixed port: give --broker-url nats://HOST:PORT", cfg.Broker.Listen)}
		}
		if host == "" || host == "0.0.0.0" || host == "::" {
			return "", usageError{fmt.Errorf("broker.listen %q names no host neighbours can reach: give --broker-url nats://HOST:PORT", cfg.Broker.Listen)}
		}
		scheme := "nats://"
		if cfg.Broker.TLSCert != "" {
			scheme = "tls://"
		}
		addr = scheme + net.JoinHostPort(host, port)
	}
	creds, err := broker.LoadOrCreateCredentials(cfg.Broker.Credentials)
	if err != nil {
		return "", err
	}
	return broker.WithUser(addr, creds.Link)
}

func printNeighbours(ctx context.Context, w io.Writer, self string, d *db.DB, asJSON bool) error {
	ns, err := cells.ListNeighbours(ctx, d)
	if err != nil {
		return err
	}
	for i := range ns {
		ns[i].BrokerURL = broker.Redact(ns[i].BrokerURL)
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ns)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CELL %s\nNEIGHBOUR\tRELATION\tBROKER\tWEIGHT\tHOSTS\tINSTANCES\tFREE RAM MB\tLAST HEARD\n", self)
	for _, n := range ns {
		hosts, insts, ram, seen := "-", "-", "-", "never"
		if n.Report != nil {
			hosts, insts, ram = fmt.Sprint(n.Report.Hosts), fmt.Sprint(n.Report.Instances), fmt.Sprint(n.Report.FreeRAMMB)
		}
		if !n.LastSeen.IsZero() {
			seen = time.Since(n.LastSeen).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%+g×%g\t%s\t%s\t%s\t%s\n", n.Path, n.Relation, n.BrokerURL, n.WeightOffset, n.WeightScale, hosts, insts, ram, seen)
	}
	return tw.Flush()
}
