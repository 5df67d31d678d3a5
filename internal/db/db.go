// Package db opens a cell's database (SQLite by default, PostgreSQL in
// production), runs versioned migrations, and runs transactions with the
// retries each engine needs. SQL is written by hand with "?" placeholders and
// rebound for PostgreSQL.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"

	"github.com/cellcloud/cellcloud/internal/privfs"
)

// Dialect names the SQL engine.
type Dialect int

// The supported engines.
const (
	SQLite Dialect = iota
	Postgres
)

func (d Dialect) String() string {
	if d == Postgres {
		return "postgres"
	}
	return "sqlite"
}

// DB is a cell's database handle.
type DB struct {
	*sql.DB
	Dialect Dialect
	// DSN is what the database was opened with (for logs; secrets kept).
	DSN string
	// commits counts the transactions committed through InTx.
	commits *atomic.Int64
	// statements counts the statements run through Exec, Query and
	// QueryRow, of a DB or of its transactions.
	statements *atomic.Int64
	// roundTrips counts the exchanges with the server: every statement,
	// begin, commit, rollback and savepoint operation is one.
	roundTrips *atomic.Int64
	// group gathers concurrent transactions of Group (SQLite only).
	group *groupCommit
	// writer is SQLite's one write lock as this process sees it: held
	// from the start of a transaction to its commit, so that writers of
	// this process queue in order and wake at once, rather than polling
	// SQLite's lock in the busy handler's growing sleeps.
	writer chan struct{}
	// binds keeps the PostgreSQL form of the statements run (nil on
	// SQLite, whose statements are run as written).
	binds *rebinder
}

// Commits is how many transactions InTx has committed since Open.
func (d *DB) Commits() int64 {
	if d.commits == nil {
		return 0
	}
	return d.commits.Load()
}

// Statements is how many statements Exec, Query and QueryRow have run,
// on the DB or in its transactions, since Open (savepoints and commits
// are not counted).
func (d *DB) Statements() int64 {
	if d.statements == nil {
		return 0
	}
	return d.statements.Load()
}

// RoundTrips is how many exchanges with the database server the DB has
// had since Open: every statement (as Statements counts them), begin,
// commit, rollback and savepoint operation is one. On SQLite, which has
// no server, it counts the same calls.
func (d *DB) RoundTrips() int64 {
	if d.roundTrips == nil {
		return 0
	}
	return d.roundTrips.Load()
}

// Pool sizes a process's pool of PostgreSQL connections (a SQLite
// database keeps its own small pool). Zero fields take the defaults.
type Pool struct {
	// MaxOpen bounds the connections open at once (default
	// DefaultMaxOpen).
	MaxOpen int
	// MaxIdle bounds the connections kept open while idle (default
	// MaxOpen).
	MaxIdle int
	// MaxLifetime closes a connection this long after it was opened
	// (default 0: never).
	MaxLifetime time.Duration
}

// DefaultMaxOpen is the PostgreSQL connections a process opens at most
// unless configured: twelve processes stay within PostgreSQL's default
// max_connections of 100 (16 before, which seven exceeded), and the bench
// boots no faster with 16 (docs/benchmarks.md).
const DefaultMaxOpen = 8

// connectTimeout bounds the wait for a PostgreSQL server that does not
// answer (a URL's own connect_timeout wins).
const connectTimeout = 5 * time.Second

// Open opens a database with the default pool. dsn is a PostgreSQL URL
// ("postgres://…" or "postgresql://…"), or a SQLite file given as
// "sqlite://PATH", "sqlite:PATH" or a bare path. A SQLite file's directory
// is created if missing.
func Open(ctx context.Context, dsn string) (*DB, error) {
	return OpenPool(ctx, dsn, Pool{})
}

// OpenPool is Open with a PostgreSQL pool of the given size.
func OpenPool(ctx context.Context, dsn string, pool Pool) (*DB, error) {
	if dsn == "" {
		return nil, errors.New("database: empty DSN")
	}
	var d *DB
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("database: open postgres %s: %w", Redact(dsn), err)
		}
		if cfg.ConnectTimeout == 0 {
			cfg.ConnectTimeout = connectTimeout
		}
		sdb := sql.OpenDB(pgConnector{stdlib.GetConnector(*cfg)})
		if pool.MaxOpen <= 0 {
			pool.MaxOpen = DefaultMaxOpen
		}
		if pool.MaxIdle <= 0 || pool.MaxIdle > pool.MaxOpen {
			pool.MaxIdle = pool.MaxOpen
		}
		sdb.SetMaxOpenConns(pool.MaxOpen)
		sdb.SetMaxIdleConns(pool.MaxIdle)
		sdb.SetConnMaxLifetime(pool.MaxLifetime)
		d = &DB{DB: sdb, Dialect: Postgres, DSN: dsn, binds: &rebinder{}, commits: new(atomic.Int64), statements: new(atomic.Int64), roundTrips: new(atomic.Int64),
			group: &groupCommit{}}
	default:
		path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite://"), "sqlite:")
		if path == "" {
			return nil, errors.New("database: empty SQLite path")
		}
		if err := privateFiles(path); err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		q := "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)&_pragma=temp_store(MEMORY)&_txlock=immediate"
		conn, err := sqlite.NewConnector("file:" + path + q)
		if err != nil {
			return nil, fmt.Errorf("database: open sqlite %s: %w", path, err)
		}
		sdb := sql.OpenDB(cachingConnector{conn})
		// SQLite takes one writer at a time; a small pool keeps readers
		// concurrent (WAL) without piling up writers on the busy handler.
		sdb.SetMaxOpenConns(4)
		sdb.SetMaxIdleConns(4)
		sdb.SetConnMaxIdleTime(0)
		d = &DB{DB: sdb, Dialect: SQLite, DSN: dsn, commits: new(atomic.Int64), statements: new(atomic.Int64), roundTrips: new(atomic.Int64),
			group: &groupCommit{}, writer: make(chan struct{}, 1)}
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.PingContext(pctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("database: connect to %s %s: %w", d.Dialect, Redact(dsn), err)
	}
	return d, nil
}

// Redact is a DSN fit for logs and errors: a PostgreSQL URL's password
// (in its user part or as a password parameter) is replaced by "xxxxx".
func Redact(dsn string) string {
	if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a PostgreSQL URL that does not parse)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// WithSearchPath is a PostgreSQL URL whose connections use schema: a
// schema of one server can hold a cell's database.
func WithSearchPath(base, schema string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("database URL %s: %w", Redact(base), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Rebind turns "?" placeholders into the dialect's form.
func (d *DB) Rebind(q string) string { return d.binds.of(d.Dialect, q) }

// rebinder keeps the rebound form of the statements a DB runs on
// PostgreSQL, by their text: a process runs the same few hundred texts
// over and over, and rebinding each (a copy of the text) cost 3 % of a
// bench's CPU. Texts past maxRebound (statements built with a varying
// number of placeholders) are rebound each time.
type rebinder struct {
	m sync.Map // string to string
	n atomic.Int32
}

const maxRebound = 4096

// of is Rebind(d, q), kept; a nil rebinder keeps nothing.
func (r *rebinder) of(d Dialect, q string) string {
	if r == nil || d != Postgres {
		return Rebind(d, q)
	}
	if b, ok := r.m.Load(q); ok {
		return b.(string)
	}
	b := Rebind(d, q)
	if r.n.Load() < maxRebound {
		if _, loaded := r.m.LoadOrStore(q, b); !loaded {
			r.n.Add(1)
		}
	}
	return b
}

// Rebind turns "?" placeholders into "$n" for PostgreSQL. It does not look
// inside string literals; queries here never put "?" in one.
func Rebind(d Dialect, q string) string {
	i := strings.IndexByte(q, '?')
	if d != Postgres || i < 0 {
		return q
	}
	// Copied a run of text at a time: every statement a process runs on
	// PostgreSQL comes through here.
	b := make([]byte, 0, len(q)+2*strings.Count(q[i:], "?"))
	for n := 1; i >= 0; n++ {
		b = append(b, q[:i]...)
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(n), 10)
		q = q[i+1:]
		i = strings.IndexByte(q, '?')
	}
	return string(append(b, q...))
}

// Tx wraps a transaction and rebinds every query.
type Tx struct {
	// tx is a SQLite transaction, or a PostgreSQL connection whose
	// transaction is begun and ended by statements (pipeline.go).
	tx      execer
	pg      *pipeline
	Dialect Dialect
	// statements and roundTrips are the DB's counters (nil: not counted).
	statements, roundTrips *atomic.Int64
	binds                  *rebinder
	after                  []func()
	marks                  map[string]int
	// alone is set while InTxEach runs its functions each under its own
	// savepoint (Alone).
	alone bool
	// memo is what Remember kept for the rest of the transaction.
	memo map[string]any
}

// Remember keeps v under key for the rest of the transaction, for the
// functions of a group (Group, InTxEach) that read or take the same thing
// (a lock held until the end, rows that lock keeps from changing):
// Recall finds it. A rollback to a savepoint forgets everything kept,
// since what was taken under the savepoint is undone with it.
func (t *Tx) Remember(key string, v any) {
	if t.memo == nil {
		t.memo = map[string]any{}
	}
	t.memo[key] = v
}

// Recall returns what Remember kept under key in this transaction.
func (t *Tx) Recall(key string) (any, bool) {
	v, ok := t.memo[key]
	return v, ok
}

// Alone reports whether the transaction is InTxEach's second attempt,
// which runs each function under its own savepoint: work its first
// attempt did once for all of them (a step that only adds rows, say)
// must then be done by each function for itself, so that a savepoint
// rolled back undoes it too.
func (t *Tx) Alone() bool { return t.alone }

// Savepoint starts a savepoint that RollbackTo can return to. On
// PostgreSQL it and Release go with the transaction's next statement, as
// ExecLater's do: they cost no round trip of their own.
func (t *Tx) Savepoint(ctx context.Context, name string) error {
	if err := t.mark(ctx, "SAVEPOINT "+name); err != nil {
		return err
	}
	if t.marks == nil {
		t.marks = map[string]int{}
	}
	t.marks[name] = len(t.after)
	return nil
}

// RollbackTo undoes what the transaction did since the savepoint, the
// functions registered with AfterCommit since then included.
func (t *Tx) RollbackTo(ctx context.Context, name string) error {
	// Sent at once: the transaction may be in PostgreSQL's aborted state,
	// where a batch's statements could not even be prepared.
	t.memo = nil // locks and reads made under the savepoint are undone
	if _, err := t.exec(ctx, "ROLLBACK TO SAVEPOINT "+name); err != nil {
		return err
	}
	if n, ok := t.marks[name]; ok && n <= len(t.after) {
		t.after = t.after[:n]
	}
	return nil
}

// Release ends a savepoint, keeping what was done since.
func (t *Tx) Release(ctx context.Context, name string) error {
	err := t.mark(ctx, "RELEASE SAVEPOINT "+name)
	delete(t.marks, name)
	return err
}

// mark runs a savepoint statement: queued on PostgreSQL, at once on
// SQLite.
func (t *Tx) mark(ctx context.Context, q string) error {
	if t.pg != nil {
		t.pg.queue(q, nil)
		return nil
	}
	_, err := t.exec(ctx, q)
	return err
}

// count adds one to a statement counter, if there is one.
func count(c *atomic.Int64) {
	if c != nil {
		c.Add(1)
	}
}

// Exec runs a statement.
func (t *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	count(t.statements)
	return t.exec(ctx, t.binds.of(t.Dialect, q), args...)
}

// ExecLater runs a statement whose result the caller does not need. On
// PostgreSQL it is sent with the transaction's next statement or its
// commit, in the same round trip, and an error of it is returned by that
// statement or by the commit (naming it), which fails the transaction.
// On SQLite it runs at once, as Exec. Use it where any error only fails
// the transaction: not for a statement whose error the caller inspects
// (a unique violation it handles, say).
func (t *Tx) ExecLater(ctx context.Context, q string, args ...any) error {
	count(t.statements)
	if t.pg != nil {
		t.pg.queue(t.binds.of(t.Dialect, q), args)
		return nil
	}
	_, err := t.exec(ctx, q, args...)
	return err
}

// exec runs a statement already rebound (one round trip; on PostgreSQL
// with the statements queued before it).
func (t *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	count(t.roundTrips)
	if t.pg != nil && t.pg.pending() {
		return t.pg.send(ctx, q, args)
	}
	return t.tx.ExecContext(ctx, q, args...)
}

// Query runs a query. On PostgreSQL the statements queued before it go
// in its round trip, and an error of theirs is its error.
func (t *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	count(t.statements)
	if err := t.carry(); err != nil {
		return nil, err
	}
	count(t.roundTrips)
	return t.tx.QueryContext(ctx, t.binds.of(t.Dialect, q), args...)
}

// QueryRow runs a query that returns at most one row. On PostgreSQL the
// statements queued before it go in its round trip, and an error of
// theirs is returned by its Scan (and by the transaction).
func (t *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	count(t.statements)
	if err := t.carry(); err != nil {
		// A *sql.Row carries only an error from database/sql itself:
		// run the query, which fails on a connection in that state too,
		// and keep the error for the commit.
		t.pg.failed = err
	}
	count(t.roundTrips)
	return t.tx.QueryRowContext(ctx, t.binds.of(t.Dialect, q), args...)
}

// carry has the statements queued on PostgreSQL sent with the next query.
func (t *Tx) carry() error {
	if t.pg == nil || !t.pg.pending() {
		return nil
	}
	return t.pg.carry()
}

// AfterCommit registers f to run once the transaction has committed (for
// example, to wake the outbox relay). It is not run on rollback.
func (t *Tx) AfterCommit(f func()) { t.after = append(t.after, f) }

// Exec runs a statement outside a transaction. On SQLite it takes this
// process's writer lock like a transaction does: a write that went around
// it would hold SQLite's lock while a transaction that holds the writer
// lock waits for it in the busy handler's sleeps.
func (d *DB) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	unlock, err := d.lockWriter(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	count(d.statements)
	count(d.roundTrips)
	return d.DB.ExecContext(ctx, d.Rebind(q), args...)
}

// Query runs a query outside a transaction.
func (d *DB) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	count(d.statements)
	count(d.roundTrips)
	return d.DB.QueryContext(ctx, d.Rebind(q), args...)
}

// QueryRow runs a single-row query outside a transaction.
func (d *DB) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	count(d.statements)
	count(d.roundTrips)
	return d.DB.QueryRowContext(ctx, d.Rebind(q), args...)
}

// InTx runs f in a transaction and commits it, retrying the whole function
// when the engine reports a conflict it expects callers to retry
// (PostgreSQL serialization failures and deadlocks, SQLite busy). f must be
// safe to run again.
func (d *DB) InTx(ctx context.Context, f func(*Tx) error) error {
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		err = d.once(ctx, f)
		if err == nil || !retryable(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
	return err
}

func (d *DB) once(ctx context.Context, f func(*Tx) error) error {
	unlock, err := d.lockWriter(ctx)
	if err != nil {
		return err
	}
	after, err := func() ([]func(), error) {
		defer unlock() // also when f panics
		return d.run(ctx, f)
	}()
	if err != nil {
		return err
	}
	for _, a := range after {
		a()
	}
	return nil
}

// writerWait bounds the wait for this process's writer lock; past it the
// transaction goes on to SQLite's own lock (and its busy timeout), so that
// a transaction opened inside another one fails as it did before rather
// than waiting for ever.
const writerWait = 10 * time.Second

// lockWriter takes the process's writer lock on SQLite.
func (d *DB) lockWriter(ctx context.Context) (func(), error) {
	if d.writer == nil {
		return func() {}, nil
	}
	select {
	case d.writer <- struct{}{}:
		return func() { <-d.writer }, nil
	default:
	}
	t := time.NewTimer(writerWait)
	defer t.Stop()
	select {
	case d.writer <- struct{}{}:
		return func() { <-d.writer }, nil
	case <-t.C:
		return func() {}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run runs f in a transaction and commits it; it returns the functions to
// run after the commit.
func (d *DB) run(ctx context.Context, f func(*Tx) error) ([]func(), error) {
	if d.Dialect == Postgres {
		return d.runPipelined(ctx, f)
	}
	count(d.roundTrips)
	stx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	// Roll back if f fails or panics: a transaction left open would keep its
	// connection, and on SQLite the write lock, for ever.
	committed := false
	defer func() {
		if !committed {
			count(d.roundTrips)
			_ = stx.Rollback()
		}
	}()
	tx := &Tx{tx: stx, Dialect: d.Dialect, statements: d.statements, roundTrips: d.roundTrips, binds: d.binds}
	if err := f(tx); err != nil {
		return nil, err
	}
	committed = true
	count(d.roundTrips)
	if err := stx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	if d.commits != nil {
		d.commits.Add(1)
	}
	return tx.after, nil
}

// ErrRetry, returned (or wrapped) by a transaction's function, rolls the
// transaction back and runs it again, as a serialization failure does:
// for a function that finds, under a lock, that it took the wrong one.
var ErrRetry = errors.New("database: run the transaction again")

func retryable(err error) bool {
	if errors.Is(err, ErrRetry) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 40001") || strings.Contains(s, "SQLSTATE 40P01") ||
		strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked")
}

// IsUniqueViolation reports whether err is a unique-constraint failure.
func IsUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	s := err.Error()
	return strings.Contains(s, "SQLSTATE 23505") || strings.Contains(s, "UNIQUE constraint failed")
}

// Micros is the storage form of a time: microseconds since the epoch, so
// that both engines sort and compare times the same way.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromMicros turns a stored time back into a time.Time (UTC); 0 is the zero time.
func FromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// Querier is a database or a transaction: code that may run inside a
// transaction reads through one, so it sees the transaction's writes and,
// on SQLite, never waits for a second connection behind its own lock.
type Querier interface {
	Query(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, q string, args ...any) *sql.Row
}

// Scanner is a row or a set of rows being read.
type Scanner interface{ Scan(dest ...any) error }

// Collect runs a query and scans every row with scan.
func Collect[T any](ctx context.Context, q Querier, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// privateFiles makes a SQLite database private to the user that runs the
// process: a missing directory is created 0700, a missing database file
// is created empty with mode 0600 (SQLite gives its -wal and -shm files
// the database file's mode), and an existing database, -wal and -shm lose
// the group's and others' permissions.
func privateFiles(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), privfs.DirMode); err != nil {
		return err
	}
	if err := privfs.CreateFile(path); err != nil {
		return err
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if err := privfs.TightenFile(f); err != nil {
			return err
		}
	}
	return nil
}
