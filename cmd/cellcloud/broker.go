package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/tree/broker"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
)

const brokerUsage = `usage:
  cellcloud broker drain --config FILE --from nats://USER:PASS@OLD:PORT [--from-creds FILE] [--to nats://NEW:PORT]
  cellcloud broker drain --config FILE --from-store DIR [--to nats://NEW:PORT]

drain moves what the cell's inbox stream on a broker it has left (--from)
still holds to its inbox on the broker it now uses, then deletes the old
stream (docs/operations.md, "Moving a cell to another broker"). Run it once
the cell runs on the new broker. The new broker is --to, else the
configuration's broker.url; it is reached as the configuration says (its
creds_file, or the cell's user from broker.credentials when the URL has no
user). The old broker is reached with the user in --from, or --from-creds (a
NATS credentials file). A cell that embedded its old broker left its store
behind (DATA_DIR/broker): --from-store runs a broker on it, on a free
loopback port, for the drain. Running it again, or on a broker without the
stream, does nothing.
`

func cmdBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "drain" {
		fmt.Fprint(stderr, brokerUsage)
		if len(args) == 0 {
			return usageError{errors.New("a subcommand is required")}
		}
		return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
	}
	fset := flag.NewFlagSet("broker drain", flag.ContinueOnError)
	fset.SetOutput(stderr)
	cfgPath := fset.String("config", "", "the moved cell's configuration file")
	from := fset.String("from", "", "the broker the cell has left")
	fromCreds := fset.String("from-creds", "", "a NATS credentials file for the old broker")
	fromStore := fset.String("from-store", "", "the store directory of the cell's old embedded broker")
	to := fset.String("to", "", "the cell's broker now (default broker.url)")
	timeout := fset.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fset.Parse(args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" || (*from == "") == (*fromStore == "") {
		return usageError{errors.New("--config and one of --from or --from-store are required")}
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	if *to == "" {
		*to = cfg.Broker.URL
	}
	if *to == "" {
		return usageError{fmt.Errorf("cell %s embeds its broker: give its URL with --to nats://HOST:PORT", cfg.Cell)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("cell", cfg.Cell)

	var common []nats.Option
	if cfg.Broker.CA != "" {
		common = append(common, nats.RootCAs(cfg.Broker.CA))
	}
	oldOpts := append([]nats.Option{}, common...)
	if *fromCreds != "" {
		oldOpts = append(oldOpts, nats.UserCredentials(*fromCreds))
	}
	newOpts := append([]nats.Option{}, common...)
	switch {
	case *to == cfg.Broker.URL && cfg.Broker.CredsFile != "":
		newOpts = append(newOpts, nats.UserCredentials(cfg.Broker.CredsFile))
	case !broker.HasUser(*to):
		creds, err := broker.LoadCredentials(cfg.Broker.Credentials)
		if err == nil {
			newOpts = append(newOpts, nats.UserInfo(creds.Cell.Name, creds.Cell.Password))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if *fromStore != "" {
		if _, err := os.Stat(filepath.Join(*fromStore, "jetstream")); err != nil {
			return fmt.Errorf("--from-store %s holds no JetStream store: %w", *fromStore, err)
		}
		e, err := broker.StartEmbedded(broker.EmbeddedConfig{Name: cfg.Cell, Listen: "127.0.0.1:0", StoreDir: *fromStore})
		if err != nil {
			return err
		}
		defer e.Shutdown()
		*from, oldOpts = e.URL(), nil
	}
	jsOld, closeOld, err := drainConn(ctx, *from, cfg.Cell, log, oldOpts)
	if err != nil {
		return err
	}
	defer closeOld()
	jsNew, closeNew, err := drainConn(ctx, *to, cfg.Cell, log, newOpts)
	if err != nil {
		return err
	}
	defer closeNew()
	moved, err := cells.DrainInbox(ctx, jsOld, jsNew, cells.Names{Prefix: cfg.Broker.Prefix}, cfg.Cell, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cell %s: moved %d messages from %s to %s; the old inbox stream %s is gone\n",
		cfg.Cell, moved, broker.Redact(*from), broker.Redact(*to), cells.Names{Prefix: cfg.Broker.Prefix}.Stream(cfg.Cell))
	return nil
}

// drainConn connects to a broker for the drain and waits until it is
// connected (a refused user is an error at once).
func drainConn(ctx context.Context, url, cell string, log *slog.Logger, opts []nats.Option) (jetstream.JetStream, func(), error) {
	nc, err := broker.Connect(ctx, url, "cellcloud broker drain "+cell, log, opts...)
	if err != nil {
		return nil, nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := broker.WaitConnected(wctx, nc); err != nil {
		nc.Close()
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}
