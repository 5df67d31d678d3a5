package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A PostgreSQL transaction pays a round trip to the server for each
// statement, and for its begin and commit. Here the transaction runs on a
// connection of its own (sql.Conn) and is begun and ended by statements:
// the begin waits to go with the first statement, and the statements that
// Tx.ExecLater queues go with the next one or with the commit, all in one
// pgx batch (one write, one round trip); a query whose rows the caller
// reads takes them along in its own batch (pgconn.go).

// execer is what a transaction's statements run on: a *sql.Tx (SQLite)
// or a *sql.Conn (PostgreSQL).
type execer interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// pipeline is a PostgreSQL transaction's connection and its queued
// statements.
type pipeline struct {
	conn   *sql.Conn
	queued []queuedStmt
	// begun is set once the begin has been sent: the transaction must
	// then be ended.
	begun bool
	// failed is the error of queued statements sent before a QueryRow,
	// which can only carry its own.
	failed error
}

type queuedStmt struct {
	q    string
	args []any
}

func (p *pipeline) queue(q string, args []any) { p.queued = append(p.queued, queuedStmt{q, args}) }

func (p *pipeline) pending() bool { return len(p.queued) > 0 }

// take takes the queued statements, to be sent: once the begin is among
// them, the transaction must be ended.
func (p *pipeline) take() []queuedStmt {
	stmts := p.queued
	p.queued = nil
	for _, s := range stmts {
		if s.q == "begin" {
			p.begun = true
		}
	}
	return stmts
}

// carry hands the queued statements to the connection, to go in one batch
// with the query database/sql sends next (pgconn.go). An error of theirs
// is the query's, and the transaction's (failed).
func (p *pipeline) carry() error {
	stmts := p.take()
	return onPgConn(p.conn, func(c *pgConn) error {
		c.carry(stmts, &p.failed)
		return nil
	})
}

// onPgConn runs f on the pgConn of conn.
func onPgConn(conn *sql.Conn, f func(*pgConn) error) error {
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*pgConn)
		if !ok {
			return fmt.Errorf("database: a PostgreSQL connection of type %T", dc)
		}
		return f(c)
	})
}

// batchOf is a batch of the statements, in order.
func batchOf(stmts []queuedStmt) *pgx.Batch {
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.q, s.args...)
	}
	return b
}

// send sends the queued statements and then last, in one batch, and
// answers last's result.
func (p *pipeline) send(ctx context.Context, last string, args []any) (sql.Result, error) {
	p.queue(last, args)
	stmts := p.take()
	var tag pgconn.CommandTag
	err := onPgConn(p.conn, func(c *pgConn) error {
		br := c.Conn.Conn().SendBatch(ctx, batchOf(stmts))
		var err error
		for i, s := range stmts {
			if tag, err = br.Exec(); err != nil {
				err = fmt.Errorf("%s: %w", firstLine(s.q), err)
				if i < len(stmts)-1 && p.failed == nil {
					// A queued statement's error is the transaction's,
					// whichever statement of the caller's it surfaced
					// in (one it may handle, as under a savepoint).
					p.failed = err
				}
				break
			}
		}
		return errors.Join(err, br.Close())
	})
	if err != nil {
		return nil, err
	}
	return pgResult(tag), nil
}

// pgResult is a statement's result.
type pgResult pgconn.CommandTag

func (r pgResult) RowsAffected() (int64, error) { return pgconn.CommandTag(r).RowsAffected(), nil }

func (r pgResult) LastInsertId() (int64, error) {
	return 0, errors.New("database: PostgreSQL has no last insert id: use RETURNING")
}

// ErrRolledBack is a commit that PostgreSQL turned into a rollback: a
// statement of the transaction had failed, and its caller went on.
var ErrRolledBack = errors.New("the transaction was rolled back: a statement in it failed")

// runPipelined is run on PostgreSQL.
func (d *DB) runPipelined(ctx context.Context, f func(*Tx) error) (after []func(), err error) {
	conn, err := d.DB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	p := &pipeline{conn: conn}
	p.queue("begin", nil)
	tx := &Tx{tx: conn, pg: p, Dialect: d.Dialect, statements: d.statements, roundTrips: d.roundTrips, binds: d.binds}
	committed := false
	defer func() {
		// Roll back if f fails or panics, or the commit fails: a
		// transaction left open would keep its connection for ever.
		if !committed && p.begun {
			count(d.roundTrips)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			if _, err := conn.ExecContext(rctx, "rollback"); err != nil {
				// The connection may still be in the transaction: it
				// must not go back to the pool for another caller to
				// find its statements inside it. Raw's ErrBadConn
				// makes database/sql close it instead.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			cancel()
		}
		conn.Close()
	}()
	if err := f(tx); err != nil {
		if p.failed != nil {
			return nil, p.failed
		}
		return nil, err
	}
	if p.failed != nil {
		return nil, p.failed
	}
	if !p.begun && len(p.queued) == 1 {
		// Nothing but the begin: nothing to commit.
		committed = true
	} else {
		count(d.roundTrips)
		res, err := p.send(ctx, "commit", nil)
		if err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		// PostgreSQL answers a commit of a transaction that a failed
		// statement aborted with "ROLLBACK" and no error: a statement
		// whose error its caller did not return (a unique violation it
		// handled, say) undid the whole transaction, and so must the
		// caller learn (as pgx's own Commit says ErrTxCommitRollback).
		if pgconn.CommandTag(res.(pgResult)).String() == "ROLLBACK" {
			committed = true // nothing left open to roll back
			return nil, fmt.Errorf("commit: %w", ErrRolledBack)
		}
		committed = true
	}
	if d.commits != nil {
		d.commits.Add(1)
	}
	return tx.after, nil
}
