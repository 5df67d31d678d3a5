package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/node"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the cell's configuration file (JSON)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return usageError{fmt.Errorf("--config is required")}
	}
	log, err := newLogger(stderr, *level)
	if err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	// Like keystone-manage bootstrap --bootstrap-password: the admin user
	// of a local identity, from the environment rather than a file.
	cfg.API.AdminPassword = os.Getenv("CELLCLOUD_ADMIN_PASSWORD")
	n, err := node.New(cfg, log)
	if err != nil {
		return err
	}
	if err := n.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cell %s serving %v; broker %s", cfg.Cell, cfg.Roles, n.BrokerURL())
	if a := n.APIAddr(); a != "" {
		fmt.Fprintf(stdout, "; Compute API http://%s/v2.1", a)
	}
	if u := n.IdentityURL(); u != "" {
		fmt.Fprintf(stdout, "; Identity API %s", u)
	}
	if rc := n.AdminOpenRC(); rc != "" {
		fmt.Fprintf(stdout, "; admin credentials %s", rc)
	}
	fmt.Fprintln(stdout)
	select {
	case <-ctx.Done():
	case err := <-n.Errors():
		log.Error("compute API failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n.Shutdown(sctx)
	return nil
}
