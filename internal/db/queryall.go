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

// Answer is what one query of QueryAll answered: its first row, read with
// Scan as a *sql.Row's, or its error.
type Answer struct {
	row []driver.Value
	err error
}

// Scan copies the answer's first row into dest, as (*sql.Row).Scan: the
// query's error, or sql.ErrNoRows when it returned none.
func (a Answer) Scan(dest ...any) error {
	if a.err != nil {
		return a.err
	}
	if len(dest) != len(a.row) {
		return fmt.Errorf("database: %d destinations for %d columns", len(dest), len(a.row))
	}
	for i, d := range dest {
		if err := assign(d, a.row[i]); err != nil {
			return fmt.Errorf("database: column %d: %w", i, err)
		}
	}
	return nil
}

// QueryAll runs queries that each return at most one row, in order, after
// the statements queued before them, and answers each. On PostgreSQL they
// all go in one round trip, so no query's arguments can come from an
// earlier one's answer (its effects it sees: the server runs them in
// turn). An error of one is its answer's, as QueryRow's would be, and on
// PostgreSQL, which it aborts the transaction on, also that of those after
// it (a caller that goes on without rolling back to a savepoint has its
// commit fail with ErrRolledBack); an error of a queued statement is every
// answer's and the transaction's. On SQLite each runs in turn.
func (t *Tx) QueryAll(ctx context.Context, qs []Query) []Answer {
	answers := make([]Answer, len(qs))
	if t.pg == nil {
		for i, q := range qs {
			answers[i] = firstRow(t.Query(ctx, q.SQL, q.Args...))
		}
		return answers
	}
	for range qs {
		count(t.statements)
	}
	count(t.roundTrips)
	stmts := t.pg.take()
	fail := func(err error) {
		for i := range answers {
			if answers[i].err == nil && answers[i].row == nil {
				answers[i].err = err
			}
		}
	}
	err := t.pg.conn.Raw(func(dc any) error {
		c, ok := dc.(*pgConn)
		if !ok {
			return fmt.Errorf("database: a PostgreSQL connection of type %T", dc)
		}
		b := &pgx.Batch{}
		for _, s := range stmts {
			b.Queue(s.q, s.args...)
		}
		for _, q := range qs {
			b.Queue(t.binds.of(t.Dialect, q.SQL), q.Args...)
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
				answers[i] = readFirst(rows, m)
				err = answers[i].err
			}
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
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
		fail(err)
		if t.pg.failed == nil {
			t.pg.failed = err
		}
	}
	return answers
}

// readFirst reads a batch query's first row and drains the rest.
func readFirst(rows pgx.Rows, m *pgtype.Map) Answer {
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Answer{err: err}
		}
		return Answer{err: sql.ErrNoRows}
	}
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
	rows.Close() // the rest of its rows, read and dropped
	if err := rows.Err(); err != nil {
		return Answer{err: err}
	}
	return Answer{row: row}
}

// firstRow is a query's first row as an Answer (SQLite).
func firstRow(rows *sql.Rows, err error) Answer {
	if err != nil {
		return Answer{err: err}
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Answer{err: err}
		}
		return Answer{err: sql.ErrNoRows}
	}
	cols, err := rows.Columns()
	if err != nil {
		return Answer{err: err}
	}
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
	return Answer{row: row}
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
		if v == nil {
			*d = nil
			return nil
		}
		var s string
		if err := assign(&s, v); err != nil {
			return err
		}
		*d = &s
		return nil
	case **int64:
		if v == nil {
			*d = nil
			return nil
		}
		var n int64
		if err := assign(&n, v); err != nil {
			return err
		}
		*d = &n
		return nil
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
