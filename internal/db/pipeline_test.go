package db_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// TestExecLaterRunsInOrderBeforeTheNextStatement: statements queued with
// ExecLater take effect in order, are seen by the transaction's next
// query, and commit with it; on PostgreSQL the begin, the queued
// statements and the commit cost one round trip when nothing else runs,
// and a query takes the statements queued before it along in its own
// round trip; SQLite runs each at once.
func TestExecLaterRunsInOrderBeforeTheNextStatement(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Exec(ctx, `CREATE TABLE later (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		stmts, trips := d.Statements(), d.RoundTrips()
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := tx.ExecLater(ctx, `INSERT INTO later (k, v) VALUES (?, ?)`, 1, "a"); err != nil {
				return err
			}
			return tx.ExecLater(ctx, `UPDATE later SET v = ? WHERE k = ?`, "b", 1)
		})
		if err != nil {
			t.Fatal(err)
		}
		wantTrips := int64(4) // begin, two statements, commit
		if d.Dialect == db.Postgres {
			wantTrips = 1
		}
		if s, r := d.Statements()-stmts, d.RoundTrips()-trips; s != 2 || r != wantTrips {
			t.Errorf("%d statements in %d round trips, want 2 in %d", s, r, wantTrips)
		}
		stmts, trips = d.Statements(), d.RoundTrips()
		var v string
		err = d.InTx(ctx, func(tx *db.Tx) error {
			if err := tx.ExecLater(ctx, `UPDATE later SET v = v || ? WHERE k = ?`, "c", 1); err != nil {
				return err
			}
			res, err := tx.Exec(ctx, `UPDATE later SET v = v || ? WHERE k = ?`, "d", 1)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Errorf("Exec after a queued statement: %d rows affected, want 1", n)
			}
			if err := tx.ExecLater(ctx, `UPDATE later SET v = v || ? WHERE k = ?`, "e", 1); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT v FROM later WHERE k = ?`, 1).Scan(&v)
		})
		if err != nil {
			t.Fatal(err)
		}
		if v != "bcde" {
			t.Errorf("the query read %q, want %q (every queued statement, in order)", v, "bcde")
		}
		wantTrips = 6 // begin, four statements, commit
		if d.Dialect == db.Postgres {
			wantTrips = 3 // begin+update+update, update+select, commit
		}
		if s, r := d.Statements()-stmts, d.RoundTrips()-trips; s != 4 || r != wantTrips {
			t.Errorf("%d statements in %d round trips, want 4 in %d", s, r, wantTrips)
		}
	})
}

// TestExecLaterFailureFailsTheTransaction: a queued statement that fails
// fails the transaction, whether a query or the commit comes next: its
// error reaches InTx's caller (a unique violation, named by the
// statement), and nothing of the transaction stays.
func TestExecLaterFailureFailsTheTransaction(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Exec(ctx, `CREATE TABLE dup (k INTEGER PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `INSERT INTO dup (k) VALUES (1)`); err != nil {
			t.Fatal(err)
		}
		for _, next := range []string{"commit", "query", "exec"} {
			err := d.InTx(ctx, func(tx *db.Tx) error {
				if err := tx.ExecLater(ctx, `INSERT INTO dup (k) VALUES (2)`); err != nil {
					return err
				}
				if err := tx.ExecLater(ctx, `INSERT INTO dup (k) VALUES (1)`); err != nil {
					return err
				}
				switch next {
				case "query":
					var n int
					return tx.QueryRow(ctx, `SELECT COUNT(*) FROM dup`).Scan(&n)
				case "exec":
					_, err := tx.Exec(ctx, `INSERT INTO dup (k) VALUES (3)`)
					return err
				}
				return nil
			})
			if !db.IsUniqueViolation(err) {
				t.Errorf("then %s: %v, want the queued insert's unique violation", next, err)
			}
			var n int
			if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM dup`).Scan(&n); err != nil || n != 1 {
				t.Errorf("then %s: %d rows (%v), want the 1 from before: the failed transaction was not undone", next, n, err)
			}
		}
		// The connection is fine afterwards.
		if err := d.InTx(ctx, func(tx *db.Tx) error { return tx.ExecLater(ctx, `INSERT INTO dup (k) VALUES (2)`) }); err != nil {
			t.Fatal(err)
		}
	})
}

// TestOpenUnreachablePostgresFailsFastNamingTheURL: a PostgreSQL URL at a
// closed port fails at once with the URL, its password redacted.
func TestOpenUnreachablePostgresFailsFastNamingTheURL(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = db.Open(ctx, "postgres://cell:s3cret@"+addr+"/cellcloud?sslmode=disable")
	if err == nil {
		t.Fatal("opened a database at a closed port")
	}
	if msg := err.Error(); !strings.Contains(msg, "postgres://cell:xxxxx@"+addr+"/cellcloud") || strings.Contains(msg, "s3cret") {
		t.Errorf("error %q: want the URL with its password redacted", msg)
	}
	if ctx.Err() != nil {
		t.Error("Open waited for the test's deadline")
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://u:pw@h:5432/d?sslmode=disable": "postgres://u:xxxxx@h:5432/d?sslmode=disable",
		"postgresql://h/d?password=pw&user=u":      "postgresql://h/d?password=xxxxx&user=u",
		"postgres://h/d":                           "postgres://h/d",
		"/var/lib/cellcloud/cell.db":               "/var/lib/cellcloud/cell.db",
	} {
		if got := db.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMigrateRefusesANewerSchema: a database that a newer binary migrated
// further than this one knows is refused, naming the database, the set
// and both versions; nothing is applied.
func TestMigrateRefusesANewerSchema(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		newer := []db.Migration{
			{Version: 1, Name: "one", SQL: `CREATE TABLE n1 (k INTEGER)`},
			{Version: 2, Name: "two", SQL: `CREATE TABLE n2 (k INTEGER)`},
		}
		if err := d.Migrate(ctx, "newer", newer); err != nil {
			t.Fatal(err)
		}
		err := d.Migrate(ctx, "newer", newer[:1])
		if err == nil {
			t.Fatal("an older binary's migrations were accepted on a newer schema")
		}
		msg := err.Error()
		for _, want := range []string{db.Redact(d.DSN), `"newer"`, "version 2", "version 1"} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not name %s", msg, want)
			}
		}
	})
}

// TestOpenPoolSizesThePostgreSQLPool: the configured pool bounds the
// connections; zero takes the default.
func TestOpenPoolSizesThePostgreSQLPool(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	if dsn == "" {
		t.Skipf("PostgreSQL not configured: set %s", dbtest.EnvPostgres)
	}
	ctx := context.Background()
	for _, c := range []struct {
		pool db.Pool
		want int
	}{{db.Pool{MaxOpen: 3, MaxIdle: 2, MaxLifetime: time.Minute}, 3}, {db.Pool{}, db.DefaultMaxOpen}} {
		d, err := db.OpenPool(ctx, dsn, c.pool)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Stats().MaxOpenConnections; got != c.want {
			t.Errorf("pool %+v: at most %d connections, want %d", c.pool, got, c.want)
		}
		d.Close()
	}
}

// TestConnectionKilledMidTransaction: the server ends a connection in the
// middle of a transaction (a PostgreSQL restart, an administrator's
// pg_terminate_backend): that transaction fails, nothing of it is kept, and
// the pool gives the next transactions working connections.
func TestConnectionKilledMidTransaction(t *testing.T) {
	d := dbtest.Open(t, "postgres")
	ctx := context.Background()
	if _, err := d.Exec(ctx, `CREATE TABLE killed (k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	err := d.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.ExecLater(ctx, `INSERT INTO killed (k) VALUES (1)`); err != nil {
			return err
		}
		var pid int
		if err := tx.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid); err != nil {
			return err
		}
		// From another connection: this one's server process ends.
		if _, err := d.Exec(ctx, `SELECT pg_terminate_backend(?)`, pid); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO killed (k) VALUES (2)`)
		return err
	})
	if err == nil {
		t.Fatal("a transaction whose connection was killed committed")
	}
	for i := range 20 { // more than the pool holds
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			_, err := tx.Exec(ctx, `INSERT INTO killed (k) VALUES (?)`, 10+i)
			return err
		}); err != nil {
			t.Fatalf("transaction %d after the kill: %v", i, err)
		}
	}
	var n int
	if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM killed WHERE k < 10`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d rows of the killed transaction kept (err %v)", n, err)
	}
}

// TestCommitOfAnAbortedTransactionFails: a statement fails and its caller
// goes on (as code written for SQLite may, after a unique violation it
// handles). PostgreSQL has aborted the transaction and answers its commit
// with ROLLBACK and no error: the transaction must fail, its AfterCommit
// functions not run, nothing of it kept. (A commit taken for a success
// acknowledged writes that never happened: the fault suite found a delete
// answered 204 and never made.)
func TestCommitOfAnAbortedTransactionFails(t *testing.T) {
	d := dbtest.Open(t, "postgres")
	ctx := context.Background()
	if _, err := d.Exec(ctx, `CREATE TABLE aborted (k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(ctx, `INSERT INTO aborted (k) VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	for _, later := range []bool{false, true} {
		ran := false
		err := d.InTx(ctx, func(tx *db.Tx) error {
			tx.AfterCommit(func() { ran = true })
			if later {
				if err := tx.ExecLater(ctx, `INSERT INTO aborted (k) VALUES (2)`); err != nil {
					return err
				}
			} else if _, err := tx.Exec(ctx, `INSERT INTO aborted (k) VALUES (2)`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO aborted (k) VALUES (1)`); !db.IsUniqueViolation(err) {
				t.Fatalf("duplicate insert: %v, want a unique violation", err)
			}
			return nil // the caller handled the violation and goes on
		})
		if !errors.Is(err, db.ErrRolledBack) {
			t.Errorf("later=%v: InTx = %v, want ErrRolledBack", later, err)
		}
		if ran {
			t.Errorf("later=%v: AfterCommit ran for a transaction that was rolled back", later)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM aborted`).Scan(&n); err != nil || n != 1 {
			t.Errorf("later=%v: %d rows (err %v), want the first alone", later, n, err)
		}
	}
}

// TestQueryAfterQueuedStatementsReadsAsAQueryAlone: a query that takes
// queued statements along (PostgreSQL reads its rows from their batch)
// gives database/sql the same values as the same query sent alone, for
// every type the schemas use and NULL, for one row, many and none.
func TestQueryAfterQueuedStatementsReadsAsAQueryAlone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Exec(ctx, `CREATE TABLE typed (k INTEGER PRIMARY KEY, i INTEGER, b BIGINT, s TEXT, raw `+blobType(d)+`, f REAL, yes BOOLEAN, n TEXT)`); err != nil {
			t.Fatal(err)
		}
		for k := 1; k <= 40; k++ {
			if _, err := d.Exec(ctx, `INSERT INTO typed (k, i, b, s, raw, f, yes, n) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`,
				k, -k, int64(k)<<40, strings.Repeat("é", k), []byte{0, byte(k), 255}, float64(k)+0.5, k%2 == 0); err != nil {
				t.Fatal(err)
			}
		}
		const one = `SELECT i, b, s, raw, f, yes, n, '' AS lit, CAST(? AS TEXT) AS p, (SELECT COUNT(*) FROM typed) AS c,
			(SELECT SUM(b) FROM typed) AS total FROM typed WHERE k = ?`
		type row struct {
			i      int
			b      int64
			s      string
			raw    []byte
			f      float64
			yes    bool
			n      *string
			lit, p string
			c      int
			total  int64
		}
		scan := func(sc interface{ Scan(...any) error }) (row, error) {
			var r row
			err := sc.Scan(&r.i, &r.b, &r.s, &r.raw, &r.f, &r.yes, &r.n, &r.lit, &r.p, &r.c, &r.total)
			return r, err
		}
		alone, err := scan(d.QueryRow(ctx, one, "x", 7))
		if err != nil {
			t.Fatal(err)
		}
		var carried row
		var many, none []int
		trips := d.RoundTrips()
		err = d.InTx(ctx, func(tx *db.Tx) error {
			if err := tx.ExecLater(ctx, `UPDATE typed SET n = NULL WHERE k = ?`, 1000); err != nil {
				return err
			}
			var err error
			if carried, err = scan(tx.QueryRow(ctx, one, "x", 7)); err != nil {
				return err
			}
			for _, dst := range []*[]int{&many, &none} {
				if err := tx.ExecLater(ctx, `UPDATE typed SET n = NULL WHERE k = ?`, 1000); err != nil {
					return err
				}
				limit := 40
				if dst == &none {
					limit = 0
				}
				rows, err := tx.Query(ctx, `SELECT k FROM typed ORDER BY k LIMIT ?`, limit)
				if err != nil {
					return err
				}
				for rows.Next() {
					var k int
					if err := rows.Scan(&k); err != nil {
						rows.Close()
						return err
					}
					*dst = append(*dst, k)
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		want := row{i: -7, b: 7 << 40, s: strings.Repeat("é", 7), raw: []byte{0, 7, 255}, f: 7.5, yes: false, lit: "", p: "x", c: 40, total: 820 << 40}
		for name, got := range map[string]row{"alone": alone, "after queued statements": carried} {
			if got.i != want.i || got.b != want.b || got.s != want.s || string(got.raw) != string(want.raw) || got.f != want.f ||
				got.yes != want.yes || got.n != nil || got.lit != want.lit || got.p != want.p || got.c != want.c || got.total != want.total {
				t.Errorf("%s: read %+v, want %+v", name, got, want)
			}
		}
		if len(many) != 40 || many[0] != 1 || many[39] != 40 || len(none) != 0 {
			t.Errorf("rows after queued statements: %v and %v, want 1…40 and none", many, none)
		}
		if d.Dialect == db.Postgres {
			// begin+update+query, update+query, update+query, commit
			if r := d.RoundTrips() - trips; r != 4 {
				t.Errorf("%d round trips, want 4: each query takes the statements queued before it along", r)
			}
		}
	})
}

func blobType(d *db.DB) string {
	if d.Dialect == db.Postgres {
		return "BYTEA"
	}
	return "BLOB"
}

// TestQueuedStatementsOfAQueryWhoseContextEndedStayUnsent: a query whose
// context has ended fails, with it the transaction and the statements
// queued before it; none of them is sent later with another transaction's
// query on that connection (a pool of one). (A connection also drops
// statements carried for a query database/sql never sent it, before it
// serves another caller.)
func TestQueuedStatementsOfAQueryWhoseContextEndedStayUnsent(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	if dsn == "" {
		t.Skipf("PostgreSQL not configured: set %s", dbtest.EnvPostgres)
	}
	ctx := context.Background()
	d, err := db.OpenPool(ctx, dsn, db.Pool{MaxOpen: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Exec(ctx, `CREATE TABLE dropped (k INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(ctx)
	err = d.InTx(ctx, func(tx *db.Tx) error {
		if err := tx.ExecLater(ctx, `INSERT INTO dropped (k) VALUES (1)`); err != nil {
			return err
		}
		cancel()
		var n int
		return tx.QueryRow(ended, `SELECT COUNT(*) FROM dropped`).Scan(&n)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the query with an ended context: %v", err)
	}
	for range 2 {
		var n int
		err := d.InTx(ctx, func(tx *db.Tx) error {
			return tx.QueryRow(ctx, `SELECT COUNT(*) FROM dropped`).Scan(&n)
		})
		if err != nil || n != 0 {
			t.Fatalf("a later transaction: %d rows (%v), want 0: the dropped insert was sent", n, err)
		}
	}
	var n int
	if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM dropped`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d rows (%v) after, want 0", n, err)
	}
}

// TestSavepointsGoWithTheNextStatement: on PostgreSQL savepoint
// statements cost no round trip of their own; a statement that fails under
// a savepoint is the caller's to handle (the transaction goes on after
// rolling back to it), while a queued statement that fails on PostgreSQL
// fails the transaction with its own error, whichever later statement it
// surfaced in (InTxEach: the member after it; SQLite ran it at once, and
// only its member fails).
func TestSavepointsGoWithTheNextStatement(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Exec(ctx, `CREATE TABLE marks (k INTEGER PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		trips := d.RoundTrips()
		err := d.InTx(ctx, func(tx *db.Tx) error {
			for _, k := range []int{1, 1, 2} {
				if err := tx.Savepoint(ctx, "m"); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `INSERT INTO marks (k) VALUES (?)`, k); err != nil {
					if !db.IsUniqueViolation(err) {
						return err
					}
					if err := tx.RollbackTo(ctx, "m"); err != nil {
						return err
					}
				}
				if err := tx.Release(ctx, "m"); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("a unique violation handled under a savepoint: %v", err)
		}
		trips = d.RoundTrips() - trips
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM marks`).Scan(&n); err != nil || n != 2 {
			t.Errorf("%d rows (%v), want 2", n, err)
		}
		if d.Dialect == db.Postgres {
			// begin+savepoint+insert, release+savepoint+insert (fails),
			// rollback, release+savepoint+insert, release+commit
			if trips != 5 {
				t.Errorf("%d round trips, want 5", trips)
			}
		}

		errs, err := d.InTxEach(ctx, []func(*db.Tx) error{
			func(tx *db.Tx) error { return tx.ExecLater(ctx, `INSERT INTO marks (k) VALUES (1)`) },
			func(tx *db.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO marks (k) VALUES (3)`)
				return err
			},
		})
		want := 2
		if d.Dialect == db.Postgres {
			// The insert went with the second member's statement: the
			// whole transaction fails, with the insert's error.
			if !db.IsUniqueViolation(err) {
				t.Errorf("a member's queued insert of a duplicate: transaction error %v (members %v), want its unique violation", err, errs)
			}
		} else {
			// SQLite ran it at once: that member alone fails.
			if err != nil || !db.IsUniqueViolation(errs[0]) || errs[1] != nil {
				t.Errorf("a member's insert of a duplicate: transaction error %v, members %v, want the first member's unique violation", err, errs)
			}
			want = 3
		}
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM marks`).Scan(&n); err != nil || n != want {
			t.Errorf("%d rows (%v) after, want %d", n, err, want)
		}
	})
}
