package db

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Query is one of the queries QueryAll runs together.
type Query struct {
	SQL  string
	Args []any
}

// Answer is what one query of QueryAll answered: its rows, or its error.
type Answer struct {
	rows [][]driver.Value
	err  error
}

// Scan copies the answer's first row into dest, as (*sql.Row).Scan: the
// query's error, or sql.ErrNoRows when it returned none.
func (a Answer) Scan(dest ...any) error {
	if a.err != nil {
		return a.err
	}
	if len(a.rows) == 0 {
		return sql.ErrNoRows
	}
	return scanRow(a.rows[0], dest)
}

// Each calls f with each of the answer's rows in turn (none: f is not
// called), or returns the query's error.
func (a Answer) Each(f func(r Scanner) error) error {
	if a.err != nil {
		return a.err
	}
	for _, r := range a.rows {
		if err := f(rowScanner(r)); err != nil {
			return err
		}
	}
	return nil
}

type rowScanner []driver.Value

func (r rowScanner) Scan(dest ...any) error { return scanRow(r, dest) }

func scanRow(row []driver.Value, dest []any) error {
	if len(dest) != len(row) {
		return fmt.Errorf("database: %d destinations for %d columns", len(dest), len(row))
	}
	for i, d := range dest {
		if err := assign(d, row[i]); err != nil {
			return fmt.Errorf("database: column %d: %w", i, err)
		}
	}
	return nil
}

// QueryAll runs queries in order, after the statements queued before
// them, and answers each with its rows. On PostgreSQL they all go in one
// round trip, so no query's arguments can come from an earlier one's
// answer (its effects it sees: the server runs them in turn). An error of
// one is its answer's, as QueryRow's would be, and on PostgreSQL, which it
// aborts the transaction on, also that of those after it (a caller that
// goes on without rolling back to a savepoint has its commit fail with
// ErrRolledBack); an error of a queued statement is every answer's and
// the transaction's, and so is that of a query PostgreSQL cannot prepare
// (none of the batch then runs). On SQLite each runs in turn.
func (t *Tx) QueryAll(ctx context.Context, qs []Query) []Answer {
	if t.pg == nil {
		return queryEach(ctx, t, qs)
	}
	for range qs {
		count(t.statements)
	}
	count(t.roundTrips)
	answers, err := sendQueries(ctx, t.pg.conn, t.binds, t.pg.take(), qs)
	if err != nil && t.pg.failed == nil {
		t.pg.failed = err
	}
	return answers
}

// QueryAll is Tx.QueryAll outside a transaction, for reads: on PostgreSQL
// one round trip, on a connection of the pool.
func (d *DB) QueryAll(ctx context.Context, qs []Query) []Answer {
	if d.Dialect != Postgres {
		return queryEach(ctx, d, qs)
	}
	for range qs {
		count(d.statements)
	}
	count(d.roundTrips)
	conn, err := d.DB.Conn(ctx)
	if err != nil {
		return failAll(make([]Answer, len(qs)), err)
	}
	defer conn.Close()
	answers, _ := sendQueries(ctx, conn, d.binds, nil, qs)
	return answers
}

// queryEach runs the queries one after the other (SQLite).
func queryEach(ctx context.Context, q Querier, qs []Query) []Answer {
	answers := make([]Answer, len(qs))
	for i, x := range qs {
		answers[i] = allRows(q.Query(ctx, x.SQL, x.Args...))
	}
	return answers
}

// failAll gives err to every answer without one.
func failAll(answers []Answer, err error) []Answer {
	for i := range answers {
		if answers[i].err == nil && answers[i].rows == nil {
			answers[i].err = err
		}
	}
	return answers
}

// sendQueries sends stmts, then qs, in one batch on conn, and reads every
// query's rows. Its error is that of a statement of stmts, or of the
// exchange: every answer's then.
func sendQueries(ctx context.Context, conn *sql.Conn, binds *rebinder, stmts []queuedStmt, qs []Query) ([]Answer, error) {
	answers := make([]Answer, len(qs))
	err := onPgConn(conn, func(c *pgConn) error {
		b := batchOf(stmts)
		for _, q := range qs {
			b.Queue(binds.of(Postgres, q.SQL), q.Args...)
		}
		br := c.Conn.Conn().SendBatch(ctx, b)
		for _, s := range stmts {
			if _, err := br.Exec(); err != nil {
				return errors.Join(fmt.Errorf("%s: %w", firstLine(s.q), err), br.Close())
			}
		}
		m := c.Conn.Conn().TypeMap()
		queryFailed := false
		for i, q := range qs {
			rows, err := br.Query()
			if err == nil {
				answers[i] = readAll(rows, m)
				err = answers[i].err
			}
			if err != nil {
				answers[i].err = fmt.Errorf("%s: %w", firstLine(q.SQL), err)
				queryFailed = true
			}
		}
		// Closing the batch repeats the error of a query that failed,
		// which is that query's answer, not the transaction's.
		if err := br.Close(); err != nil && !queryFailed {
			return err
		}
		return nil
	})
	if err != nil {
		return failAll(answers, err), err
	}
	return answers, nil
}

// readAll reads a batch query's rows.
func readAll(rows pgx.Rows, m *pgtype.Map) Answer {
	defer rows.Close()
	a := Answer{rows: [][]driver.Value{}}
	for rows.Next() {
		fds := rows.FieldDescriptions()
		row := make([]driver.Value, len(fds))
		for i, raw := range rows.RawValues() {
			if raw == nil {
				continue
			}
			v, err := driverValue(m, fds[i].DataTypeOID, fds[i].Format, raw)
			if err != nil {
				return Answer{err: fmt.Errorf("convert field %d (%s): %w", i, fds[i].Name, err)}
			}
			row[i] = v
		}
		a.rows = append(a.rows, row)
	}
	if err := rows.Err(); err != nil {
		return Answer{err: err}
	}
	return a
}

// allRows is a query's rows as an Answer (SQLite).
func allRows(rows *sql.Rows, err error) Answer {
	if err != nil {
		return Answer{err: err}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return Answer{err: err}
	}
	a := Answer{rows: [][]driver.Value{}}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return Answer{err: err}
		}
		row := make([]driver.Value, len(cols))
		for i, v := range vals {
			row[i] = v
		}
		a.rows = append(a.rows, row)
	}
	if err := rows.Err(); err != nil {
		return Answer{err: err}
	}
	return a
}

// assign converts a column's value into dest as database/sql's Scan does,
// for the destinations the queries of QueryAll scan into.
func assign(dest any, v driver.Value) error {
	if s, ok := dest.(sql.Scanner); ok {
		return s.Scan(v)
	}
	switch d := dest.(type) {
	case *any:
		*d = v
		return nil
	case **string:
		return assignNullable(d, v)
	case **int64:
		return assignNullable(d, v)
	}
	if v == nil {
		return fmt.Errorf("NULL into %T", dest)
	}
	switch d := dest.(type) {
	case *string:
		switch x := v.(type) {
		case string:
			*d = x
		case []byte:
			*d = string(x)
		case int64:
			*d = strconv.FormatInt(x, 10)
		case bool:
			*d = strconv.FormatBool(x)
		default:
			return fmt.Errorf("%T into *string", v)
		}
	case *bool:
		b, err := driver.Bool.ConvertValue(v)
		if err != nil {
			return err
		}
		*d = b.(bool)
	case *int64:
		n, err := toInt64(v)
		if err != nil {
			return err
		}
		*d = n
	case *int:
		n, err := toInt64(v)
		if err != nil {
			return err
		}
		*d = int(n)
	case *float64:
		switch x := v.(type) {
		case float64:
			*d = x
		case int64:
			*d = float64(x)
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return err
			}
			*d = f
		default:
			return fmt.Errorf("%T into *float64", v)
		}
	case *[]byte:
		switch x := v.(type) {
		case []byte:
			*d = append([]byte(nil), x...)
		case string:
			*d = []byte(x)
		default:
			return fmt.Errorf("%T into *[]byte", v)
		}
	default:
		return fmt.Errorf("unsupported destination %T", dest)
	}
	return nil
}

// assignNullable sets *d to nil for NULL, else to a new value assigned v.
func assignNullable[T any](d **T, v driver.Value) error {
	if v == nil {
		*d = nil
		return nil
	}
	x := new(T)
	if err := assign(x, v); err != nil {
		return err
	}
	*d = x
	return nil
}

func toInt64(v driver.Value) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		return strconv.ParseInt(x, 10, 64)
	case []byte:
		return strconv.ParseInt(string(x), 10, 64)
	}
	return 0, fmt.Errorf("%T into an integer", v)
}
