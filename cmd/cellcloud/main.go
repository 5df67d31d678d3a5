// Command cellcloud is the cellcloud control plane: one binary, many roles.
//
//	cellcloud up                     run a whole tree in one process (embedded default)
//	cellcloud serve --config FILE    run the roles of one cell
//	cellcloud cell add|list|remove   manage a cell's cells table
//	cellcloud broker drain           move a cell's messages off a broker it has left
//	cellcloud status                 print the cell tree as the API cell sees it (os-cells)
//	cellcloud openrc --config FILE   print an openrc file for a user of the API cell
//	cellcloud bench                  measure boots, lists and deletes (docs/benchmarks.md)
//	cellcloud db archive|purge       archive a cell's deleted rows, purge its shadow tables
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: cellcloud <command> [flags]

commands:
  up        run an API cell and compute cells in one process (embedded default)
  serve     run the roles of one cell: cellcloud serve --config FILE
  cell      manage a cell's cells table: cellcloud cell add|list|remove --config FILE ...
  broker    move a moved cell's messages off its old broker: cellcloud broker drain --config FILE --from URL
  status    print the cell tree and which cells are up: cellcloud status [--data-dir DIR | --openrc FILE | --config FILE]
  openrc    print an openrc file for the openstack CLI: cellcloud openrc --config FILE [--user NAME --project NAME]
  bench     boot, list and delete instances through the API and report the figures: cellcloud bench -n 1000 -k 64
  db        archive a cell's deleted rows and purge its shadow tables: cellcloud db archive|purge --config FILE ...

Run "cellcloud <command> -h" for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "up":
		err = cmdUp(ctx, args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "cell":
		err = cmdCell(ctx, args[1:], stdout, stderr)
	case "broker":
		err = cmdBroker(ctx, args[1:], stdout, stderr)
	case "status":
		err = cmdStatus(ctx, args[1:], stdout, stderr)
	case "openrc":
		err = cmdOpenRC(args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "db":
		err = cmdDB(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "cellcloud: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var es exitStatus
		if errors.As(err, &es) {
			if es.err != nil {
				fmt.Fprintf(stderr, "cellcloud %s: %v\n", args[0], err)
			}
			return es.code
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "cellcloud %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "cellcloud %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q must be debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
