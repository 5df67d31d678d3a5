package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/config"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/archive"
	"github.com/cellcloud/cellcloud/internal/node"
)

const dbUsage = `usage:
  cellcloud db archive --config FILE ... [--older-than DAYS | --before DATE] [--max-rows N]
                       [--until-complete] [--purge] [--task-log] [--verbose]
  cellcloud db purge   --config FILE ... (--older-than DAYS | --before DATE | --all) [--max-rows N] [--verbose]

archive moves the cell's deleted rows (deleted before the cutoff; all of
them without one) to its shadow tables, with the rows that depend on them,
in batches of --max-rows (each batch one transaction). Without
--until-complete it stops after --max-rows rows, as nova-manage db
archive_deleted_rows does. Exit status: 0 nothing archived, 1 rows
archived, 2 bad --max-rows or flags, 3 the cell's database cannot be
opened, 4 bad --before or --older-than, 255 another error.

purge deletes the shadow rows deleted before the cutoff (or all of them
with --all). Exit status: 0 rows purged, 1 no --before, --older-than or
--all, 2 bad --before, --older-than or --max-rows (or flags), 3 nothing purged, 4 the cell's
database cannot be opened, 255 another error.

Each cell's database is archived on its own, by its own configuration
file: give --config once per cell (as nova-manage's --all-cells), the API
cells are archived first; every database is opened before anything is
done (docs/operations.md, Housekeeping).
`

// exitStatus ends a command with a status of its own (nova-manage's
// statuses); err, if set, is printed.
type exitStatus struct {
	code int
	err  error
}

func (e exitStatus) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func cmdDB(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "archive" && args[0] != "purge") {
		fmt.Fprint(stderr, dbUsage)
		if len(args) == 0 {
			return usageError{errors.New("a subcommand is required: archive or purge")}
		}
		if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
			return flag.ErrHelp
		}
		return usageError{fmt.Errorf("unknown subcommand %q", args[0])}
	}
	sub := args[0]
	fs := flag.NewFlagSet("db "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, dbUsage, "\nflags:\n")
		fs.PrintDefaults()
	}
	var cfgPaths multiFlag
	fs.Var(&cfgPaths, "config", "a cell's configuration file, whose database is archived (repeatable: several cells, the API cells first)")
	before := fs.String("before", "", "the cutoff date: rows deleted before it (YYYY-MM-DD [HH:MM:SS], RFC 3339, or as date(1) prints it; UTC unless it says)")
	olderThan := fs.String("older-than", "", "the cutoff in days: rows deleted more than DAYS days ago")
	maxRows := fs.Int("max-rows", 1000, "the rows of one table a batch (one transaction) takes, with their dependents")
	until := fs.Bool("until-complete", false, "archive: run batches until nothing is left")
	purge := fs.Bool("purge", false, "archive: purge every shadow row once rows were archived")
	taskLog := fs.Bool("task-log", false, "archive: archive the usage audit's task log too, by its last update")
	all := fs.Bool("all", false, "purge: purge every shadow row")
	verbose := fs.Bool("verbose", false, "print the rows per table")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if len(cfgPaths) == 0 {
		return usageError{errors.New("--config is required")}
	}
	badDate := 4
	if sub == "purge" {
		badDate = 2
	}
	cutoff, err := parseCutoff(*before, *olderThan, time.Now())
	if err != nil {
		return exitStatus{badDate, err}
	}
	if *maxRows < 1 || *maxRows > archive.MaxRowsLimit {
		return exitStatus{2, fmt.Errorf("--max-rows %d must be 1 to %d", *maxRows, archive.MaxRowsLimit)}
	}
	if sub == "archive" {
		if *all {
			return usageError{errors.New("--all is purge's: archive takes --older-than or --before")}
		}
	} else {
		if slices.ContainsFunc([]bool{*until, *purge, *taskLog}, func(b bool) bool { return b }) {
			return usageError{errors.New("--until-complete, --purge and --task-log are archive's")}
		}
		if cutoff.IsZero() && !*all {
			return exitStatus{1, errors.New("either --older-than, --before or --all is required")}
		}
		if !cutoff.IsZero() && *all {
			return usageError{errors.New("--all purges every shadow row: give it without --older-than or --before")}
		}
	}
	noDB := 3
	if sub == "purge" {
		noDB = 4
	}
	// Every cell's database is opened first: a bad configuration stops
	// the run before anything is archived. The API cells go first (see
	// docs/operations.md: a server leaves the API before its cell's rows).
	type cellDB struct {
		cfg *config.Config
		d   *db.DB
	}
	var cells []cellDB
	defer func() {
		for _, c := range cells {
			c.d.Close()
		}
	}()
	for _, p := range cfgPaths {
		cfg, d, err := openCellDB(ctx, p)
		if err != nil {
			return exitStatus{noDB, err}
		}
		cells = append(cells, cellDB{cfg, d})
	}
	slices.SortStableFunc(cells, func(a, b cellDB) int {
		if a.cfg.IsRoot() == b.cfg.IsRoot() {
			return 0
		}
		if a.cfg.IsRoot() {
			return -1
		}
		return 1
	})
	total := archive.Counts{}
	add := func(cell string, c archive.Counts) {
		for k, v := range c {
			total[cell+"."+k] += v
		}
	}
	if sub == "purge" {
		for _, c := range cells {
			var got archive.Counts
			got, err = archive.Purge(ctx, c.d, node.ArchivePlan(c.cfg.IsRoot()), archive.PurgeOptions{Before: cutoff, All: *all, MaxRows: *maxRows})
			add(c.cfg.Cell, got)
			if err != nil {
				err = fmt.Errorf("cell %s: %w", c.cfg.Cell, err)
				break
			}
		}
		if *verbose {
			printCounts(stdout, total, "Number of Rows Purged", "Nothing was purged.")
		}
		if err != nil {
			return exitStatus{255, err}
		}
		if total.Total() == 0 {
			return exitStatus{code: 3}
		}
		return nil
	}
	o := archive.Options{MaxRows: *maxRows, Before: cutoff, UntilComplete: *until}
	if *taskLog {
		o.Include = []string{"task_log"}
	}
	if *until && *verbose {
		fmt.Fprint(stdout, "Archiving..")
		o.AfterBatch = func(archive.Counts) { fmt.Fprint(stdout, ".") }
	}
	for _, c := range cells {
		var got archive.Counts
		got, err = archive.Archive(ctx, c.d, node.ArchivePlan(c.cfg.IsRoot()), o)
		add(c.cfg.Cell, got)
		if err != nil {
			err = fmt.Errorf("cell %s: %w", c.cfg.Cell, err)
			break
		}
	}
	if *until && *verbose {
		if err != nil {
			fmt.Fprintln(stdout, ".stopped")
		} else {
			fmt.Fprintln(stdout, ".complete")
		}
	}
	if *verbose {
		printCounts(stdout, total, "Number of Rows Archived", "Nothing was archived.")
	}
	if err != nil {
		return exitStatus{255, err}
	}
	if total.Total() == 0 {
		return nil
	}
	if *purge {
		if *verbose {
			fmt.Fprintln(stdout, "Rows were archived, running purge...")
		}
		purged := archive.Counts{}
		for _, c := range cells {
			got, err := archive.Purge(ctx, c.d, node.ArchivePlan(c.cfg.IsRoot()), archive.PurgeOptions{All: true, MaxRows: *maxRows})
			for k, v := range got {
				purged[c.cfg.Cell+"."+k] += v
			}
			if err != nil {
				if *verbose {
					printCounts(stdout, purged, "Number of Rows Purged", "Nothing was purged.")
				}
				return exitStatus{255, fmt.Errorf("cell %s: %w", c.cfg.Cell, err)}
			}
		}
		if *verbose {
			printCounts(stdout, purged, "Number of Rows Purged", "Nothing was purged.")
		}
	}
	return exitStatus{code: 1}
}

// openCellDB opens the database of the cell a configuration file names,
// which must exist: an archive never creates a database (a SQLite path
// that names no file is a configuration that is not the cell's).
func openCellDB(ctx context.Context, path string) (*config.Config, *db.DB, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if !strings.HasPrefix(cfg.Database, "postgres://") && !strings.HasPrefix(cfg.Database, "postgresql://") {
		p := strings.TrimPrefix(strings.TrimPrefix(cfg.Database, "sqlite://"), "sqlite:")
		if _, err := os.Stat(p); err != nil {
			return nil, nil, fmt.Errorf("cell %s: no database at %s (the configuration's database, or data_dir/cell.db): %w", cfg.Cell, p, err)
		}
	}
	d, err := node.OpenDB(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cell %s: %w", cfg.Cell, err)
	}
	return cfg, d, nil
}

// parseCutoff reads --before or --older-than (at most one); the zero time
// is no cutoff.
func parseCutoff(before, olderThan string, now time.Time) (time.Time, error) {
	switch {
	case before != "" && olderThan != "":
		return time.Time{}, errors.New("--before and --older-than are two cutoffs: give one")
	case olderThan != "":
		days, err := strconv.ParseFloat(olderThan, 64)
		if err != nil || days < 0 || math.IsInf(days, 0) || math.IsNaN(days) || days > 1e6 {
			return time.Time{}, fmt.Errorf("invalid value for --older-than: %q is not a number of days", olderThan)
		}
		return now.Add(-time.Duration(days * float64(24*time.Hour))), nil
	case before != "":
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02",
			time.UnixDate, time.ANSIC, "Mon Jan _2 03:04:05 PM MST 2006", time.RFC1123, time.RFC1123Z} {
			if t, err := time.ParseInLocation(layout, before, time.UTC); err == nil {
				return t, nil
			}
		}
		return time.Time{}, fmt.Errorf("invalid value for --before: %q is not a date (YYYY-MM-DD [HH:MM:SS], RFC 3339, or as date(1) prints it)", before)
	}
	return time.Time{}, nil
}

// printCounts prints rows per table (CELL.TABLE) as nova-manage does.
func printCounts(w io.Writer, c archive.Counts, head, none string) {
	if c.Total() == 0 {
		fmt.Fprintln(w, none)
		return
	}
	var names []string
	for k, v := range c {
		if v > 0 {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	w1, w2 := len("Table"), len(head)
	for _, n := range names {
		w1, w2 = max(w1, len(n)), max(w2, len(fmt.Sprint(c[n])))
	}
	line := "+" + strings.Repeat("-", w1+2) + "+" + strings.Repeat("-", w2+2) + "+"
	fmt.Fprintln(w, line)
	fmt.Fprintf(w, "| %-*s | %-*s |\n", w1, "Table", w2, head)
	fmt.Fprintln(w, line)
	for _, n := range names {
		fmt.Fprintf(w, "| %-*s | %-*d |\n", w1, n, w2, c[n])
	}
	fmt.Fprintln(w, line)
}
