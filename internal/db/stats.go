package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PostgreSQL plans a join from the statistics ANALYZE gathers. A table
// that has none (a new cell's, until autovacuum first visits its database:
// up to autovacuum_naptime, a minute by default, after its first rows) is
// planned blind: a join that should look each row up by its key scans a
// whole table instead, for every row, and the cost of a statement grows
// with the table (docs/benchmarks.md, "Statistics of a young database").
// Autovacuum then analyzes a table when a tenth of it changed, at its
// naptime; a table that grows from nothing to thousands of rows within
// that minute is planned from the statistics of its first rows, or none.
//
// A StatsKeeper closes that gap for the small tables of a young database:
// every interval it analyzes the tables of the database's schema that have
// fewer than YoungRows rows and grew or shrank by 50 rows plus a half of
// their size since they were last analyzed (autovacuum's rule counts rows
// changed, a tenth of the table, and is checked every minute: here the
// size, as a plan's shape follows the sizes of the tables it joins,
// checked every few seconds). Larger tables are left to autovacuum, which
// must be on: the keeper warns at its start when it is off. On SQLite,
// whose planner needs no statistics to use an index, it does nothing.
type StatsKeeper struct {
	db     *DB
	every  time.Duration
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// mu serializes rounds; tables are the oids of the schema's tables,
	// listed at the first round.
	mu     sync.Mutex
	tables string
}

// YoungRows is the size up to which StatsKeeper analyzes a table.
const YoungRows = 100000

// DefaultStatsInterval is how often a StatsKeeper looks.
const DefaultStatsInterval = 2 * time.Second

// NewStatsKeeper makes a keeper of d's statistics that looks every
// interval (DefaultStatsInterval when zero).
func NewStatsKeeper(d *DB, every time.Duration, log *slog.Logger) (*StatsKeeper, error) {
	if d == nil {
		return nil, errors.New("database statistics: a database is required")
	}
	if every <= 0 {
		every = DefaultStatsInterval
	}
	if log == nil {
		log = slog.Default()
	}
	return &StatsKeeper{db: d, every: every, log: log}, nil
}

// Start runs the keeper until Shutdown (PostgreSQL only).
func (k *StatsKeeper) Start(ctx context.Context) error {
	if k.db.Dialect != Postgres {
		return nil
	}
	var autovacuum string
	if err := k.db.QueryRow(ctx, `SELECT current_setting('autovacuum')`).Scan(&autovacuum); err != nil {
		return fmt.Errorf("database statistics: %w", err)
	}
	if autovacuum != "on" {
		k.log.Warn("PostgreSQL's autovacuum is off: this cell's tables are analyzed here only while they are young, and never vacuumed; turn it on (docs/operations.md)",
			"database", Redact(k.db.DSN))
	}
	run, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		t := time.NewTicker(k.every)
		defer t.Stop()
		for {
			select {
			case <-run.Done():
				return
			case <-t.C:
			}
			if _, err := k.Round(run); err != nil && run.Err() == nil {
				k.log.Warn("analyzing the tables of a young database", "err", err)
			}
		}
	}()
	return nil
}

// Shutdown stops the keeper and waits for its round to end.
func (k *StatsKeeper) Shutdown(context.Context) error {
	if k.cancel != nil {
		k.cancel()
	}
	k.wg.Wait()
	return nil
}

// Round analyzes the tables that need it now and names them.
func (k *StatsKeeper) Round(ctx context.Context) ([]string, error) {
	if k.db.Dialect != Postgres {
		return nil, nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.tables == "" {
		tables, err := k.ownTables(ctx)
		if err != nil || tables == "" {
			return nil, err
		}
		k.tables = tables
	}
	// reltuples is the rows the last ANALYZE (autovacuum's or this
	// keeper's) counted, -1 for a table never analyzed nor vacuumed;
	// n_live_tup (pg_stat_get_live_tuples) the rows now. A table whose
	// rows churn at a steady size (the outbox, the compute nodes' usage)
	// is not analyzed again. The tables are found by their oids, by
	// index, rather than by a scan of the catalog.
	tables, err := Collect(ctx, k.db, func(s Scanner) (string, error) {
		var name string
		return name, s.Scan(&name)
	}, `SELECT c.relname FROM pg_class c WHERE c.oid IN (`+k.tables+`) AND c.reltuples < ?
		AND abs(pg_stat_get_live_tuples(c.oid) - GREATEST(c.reltuples, 0)) >= 50 + 0.5 * GREATEST(c.reltuples, 0)
		ORDER BY c.relname`, YoungRows)
	if err != nil {
		return nil, fmt.Errorf("database statistics: %w", err)
	}
	var done []string
	for _, t := range tables {
		if _, err := k.db.ExecContext(ctx, `ANALYZE `+quoteIdent(t)); err != nil {
			return done, fmt.Errorf("database statistics: analyze %s: %w", t, err)
		}
		done = append(done, t)
	}
	return done, nil
}

// ownTables lists, as a list of oids for an IN, the tables of the
// database's schema that its user may analyze (their owner's): the
// migrations made them all before the keeper starts.
func (k *StatsKeeper) ownTables(ctx context.Context) (string, error) {
	oids, err := Collect(ctx, k.db, func(s Scanner) (string, error) {
		var oid int64
		err := s.Scan(&oid)
		return strconv.FormatInt(oid, 10), err
	}, `SELECT c.oid::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = current_schema() AND c.relkind = 'r' AND pg_has_role(c.relowner, 'USAGE')`)
	if err != nil {
		return "", fmt.Errorf("database statistics: the schema's tables: %w", err)
	}
	return strings.Join(oids, ", "), nil
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
