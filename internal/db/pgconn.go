package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// A query of a PostgreSQL transaction goes through database/sql, which
// sends it alone; the statements the transaction queued before it (its
// begin, Tx.ExecLater's) would need a round trip of their own first. A
// pgConn is pgx's database/sql connection that can be handed those
// statements (carry) to send in one batch with the next query: one round
// trip where there were two. The query's rows are then read from the
// batch (batchRows), converted as pgx's own database/sql rows convert
// them.

// pgConnector makes pgConns.
type pgConnector struct {
	driver.Connector
}

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("database: a PostgreSQL connection of type %T", conn)
	}
	return &pgConn{Conn: sc}, nil
}

// pgConn is a connection with the statements to send before its next
// query.
type pgConn struct {
	*stdlib.Conn
	carried []queuedStmt
	// failed is where an error of a carried statement is kept for the
	// transaction (the query fails with it too).
	failed *error
}

var (
	_ driver.QueryerContext    = (*pgConn)(nil)
	_ driver.ExecerContext     = (*pgConn)(nil)
	_ driver.SessionResetter   = (*pgConn)(nil)
	_ driver.ConnBeginTx       = (*pgConn)(nil)
	_ driver.NamedValueChecker = (*pgConn)(nil)
)

// carry hands the connection statements to send before its next query,
// and where to keep an error of theirs.
func (c *pgConn) carry(stmts []queuedStmt, failed *error) {
	c.carried, c.failed = stmts, failed
}

// ResetSession drops statements carried for a query that never ran (its
// context ended first, say) before the connection serves another caller:
// they belong to a transaction that is over.
func (c *pgConn) ResetSession(ctx context.Context) error {
	c.carried, c.failed = nil, nil
	return c.Conn.ResetSession(ctx)
}

// ExecContext runs a statement alone. Statements still carried then were
// for a query that never ran: they are dropped, not sent with a later one.
func (c *pgConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.carried, c.failed = nil, nil
	return c.Conn.ExecContext(ctx, query, args)
}

// QueryContext runs the query, after the carried statements in the same
// batch when there are any.
func (c *pgConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if len(c.carried) == 0 {
		return c.Conn.QueryContext(ctx, query, args)
	}
	stmts, failed := c.carried, c.failed
	c.carried, c.failed = nil, nil
	if c.Conn.Conn().IsClosed() {
		if failed != nil {
			*failed = fmt.Errorf("%s: %w", firstLine(stmts[0].q), driver.ErrBadConn)
		}
		return nil, driver.ErrBadConn
	}
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.q, s.args...)
	}
	qargs := make([]any, len(args))
	for i, a := range args {
		qargs[i] = a.Value
	}
	b.Queue(query, qargs...)
	br := c.Conn.Conn().SendBatch(ctx, b)
	for _, s := range stmts {
		if _, err := br.Exec(); err != nil {
			err = fmt.Errorf("%s: %w", firstLine(s.q), err)
			if failed != nil {
				*failed = err
			}
			return nil, errors.Join(err, br.Close())
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, errors.Join(err, br.Close())
	}
	r := &batchRows{br: br, rows: rows, m: c.Conn.Conn().TypeMap()}
	// As pgx's database/sql rows do: the first row is read now, so that
	// the columns are known and an error of the query is the query's.
	r.more = rows.Next()
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, errors.Join(err, br.Close())
	}
	r.first = true
	return r, nil
}

// batchRows are a query's rows read from a batch.
type batchRows struct {
	br    pgx.BatchResults
	rows  pgx.Rows
	m     *pgtype.Map
	first bool // the first row was read by QueryContext
	more  bool // and there was one
	cols  []string
}

func (r *batchRows) Columns() []string {
	if r.cols == nil {
		for _, fd := range r.rows.FieldDescriptions() {
			r.cols = append(r.cols, fd.Name)
		}
	}
	return r.cols
}

func (r *batchRows) Close() error {
	r.rows.Close()
	return errors.Join(r.rows.Err(), r.br.Close())
}

func (r *batchRows) Next(dest []driver.Value) error {
	more := r.more
	if r.first {
		r.first = false
	} else {
		more = r.rows.Next()
	}
	if !more {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	fds := r.rows.FieldDescriptions()
	for i, raw := range r.rows.RawValues() {
		if raw == nil {
			dest[i] = nil
			continue
		}
		v, err := driverValue(r.m, fds[i].DataTypeOID, fds[i].Format, raw)
		if err != nil {
			return fmt.Errorf("convert field %d (%s): %w", i, fds[i].Name, err)
		}
		dest[i] = v
	}
	return nil
}

// driverValue is a column's value as database/sql takes it, as pgx's own
// database/sql rows give it: the intrinsic types as int64, float64, bool,
// []byte or time.Time, everything else as its text. (A batch's columns
// come in the format pgx chooses for each type, binary where it can: the
// type map reads either.)
func driverValue(m *pgtype.Map, oid uint32, format int16, raw []byte) (driver.Value, error) {
	switch oid {
	case pgtype.BoolOID:
		var v bool
		err := m.Scan(oid, format, raw, &v)
		return v, err
	case pgtype.ByteaOID:
		var v []byte
		err := m.Scan(oid, format, raw, &v)
		return v, err
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		var v int64
		err := m.Scan(oid, format, raw, &v)
		return v, err
	case pgtype.Float4OID, pgtype.Float8OID:
		var v float64
		err := m.Scan(oid, format, raw, &v)
		return v, err
	case pgtype.TimestampOID:
		var v pgtype.Timestamp
		if err := m.Scan(oid, format, raw, &v); err != nil {
			return nil, err
		}
		return v.Value()
	case pgtype.TimestamptzOID:
		var v pgtype.Timestamptz
		if err := m.Scan(oid, format, raw, &v); err != nil {
			return nil, err
		}
		return v.Value()
	default:
		var v string
		err := m.Scan(oid, format, raw, &v)
		return v, err
	}
}
