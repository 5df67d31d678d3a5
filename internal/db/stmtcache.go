package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync"
)

// The SQLite driver compiles every statement it is given anew, and a
// benchmark of the control plane spent a fifth of its CPU doing so
// (docs/benchmarks.md). A statementCache connection keeps each connection's
// compiled statements by their SQL text and hands them out again, so each
// statement is compiled once per connection. database/sql then prepares,
// runs and closes statements through it: the connection deliberately does
// not offer the driver's direct Query and Exec, which compile each time.

// maxCachedStmts bounds the statements a connection keeps; past it, new
// statements are compiled, used and finalized as before.
const maxCachedStmts = 512

// cachingConnector wraps a driver.Connector's connections.
type cachingConnector struct {
	driver.Connector
}

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &cachingConn{inner: conn, stmts: map[string]*cachedStmt{}}, nil
}

// cachingConn is one connection with its statements. database/sql uses a
// connection from one goroutine at a time, but a statement may still be in
// use (its rows open) when the same SQL is asked for again, so a busy
// statement is not handed out twice.
type cachingConn struct {
	inner driver.Conn
	mu    sync.Mutex
	stmts map[string]*cachedStmt
}

type cachedStmt struct {
	driver.Stmt
	conn *cachingConn
	busy bool
	// cached is false for a statement compiled past the bound or while
	// the cached one was busy: closing it finalizes it.
	cached bool
}

var (
	_ driver.ConnPrepareContext = (*cachingConn)(nil)
	_ driver.ConnBeginTx        = (*cachingConn)(nil)
	_ driver.Pinger             = (*cachingConn)(nil)
	_ driver.SessionResetter    = (*cachingConn)(nil)
	_ driver.Validator          = (*cachingConn)(nil)
	_ driver.StmtExecContext    = (*cachedStmt)(nil)
	_ driver.StmtQueryContext   = (*cachedStmt)(nil)
)

func (c *cachingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *cachingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	c.mu.Lock()
	if s, ok := c.stmts[query]; ok && !s.busy {
		s.busy = true
		c.mu.Unlock()
		return s, nil
	}
	_, known := c.stmts[query]
	room := len(c.stmts) < maxCachedStmts
	c.mu.Unlock()
	var si driver.Stmt
	var err error
	if p, ok := c.inner.(driver.ConnPrepareContext); ok {
		si, err = p.PrepareContext(ctx, query)
	} else {
		si, err = c.inner.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	s := &cachedStmt{Stmt: si, conn: c, busy: true}
	if !known && room {
		s.cached = true
		c.mu.Lock()
		c.stmts[query] = s
		c.mu.Unlock()
	}
	return s, nil
}

// Close gives a cached statement back to its connection; it finalizes one
// that is not cached.
func (s *cachedStmt) Close() error {
	if !s.cached {
		return s.Stmt.Close()
	}
	s.conn.mu.Lock()
	s.busy = false
	s.conn.mu.Unlock()
	return nil
}

func (s *cachedStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if e, ok := s.Stmt.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, errors.New("db: the driver's statements do not take a context")
}

func (s *cachedStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if q, ok := s.Stmt.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	return nil, errors.New("db: the driver's statements do not take a context")
}

// Close finalizes the cached statements and closes the connection.
func (c *cachingConn) Close() error {
	c.mu.Lock()
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.Stmt.Close())
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	errs = append(errs, c.inner.Close())
	return errors.Join(errs...)
}

// Begin is driver.Conn's; database/sql calls BeginTx.
func (c *cachingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if b, ok := c.inner.(driver.ConnBeginTx); ok {
		return b.BeginTx(ctx, opts)
	}
	//lint:ignore SA1019 a driver without BeginTx has only Begin
	return c.inner.Begin()
}

func (c *cachingConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}
