package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/testpoll"
)

// eachGroupEngine runs a test on SQLite, and on PostgreSQL when
// CELLCLOUD_TEST_POSTGRES is set (dbtest's variable: dbtest itself
// imports this package).
func eachGroupEngine(t *testing.T, f func(t *testing.T, engine string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite") })
	if os.Getenv("CELLCLOUD_TEST_POSTGRES") == "" {
		t.Log("PostgreSQL run skipped: set CELLCLOUD_TEST_POSTGRES to a PostgreSQL URL to run it")
		return
	}
	t.Run("postgres", func(t *testing.T) { f(t, "postgres") })
}

// openEngine opens a fresh database: a SQLite file, or a schema of
// CELLCLOUD_TEST_POSTGRES dropped when the test ends.
func openEngine(t *testing.T, engine string) *DB {
	t.Helper()
	ctx := context.Background()
	if engine == "sqlite" {
		d, err := Open(ctx, filepath.Join(t.TempDir(), "group.db"))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	base := os.Getenv("CELLCLOUD_TEST_POSTGRES")
	admin, err := Open(ctx, base)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	schema := fmt.Sprintf("g_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	dsn, err := WithSearchPath(base, schema)
	if err != nil {
		t.Fatal(err)
	}
	d, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		d.Close()
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		admin.Close()
	})
	return d
}

func openGroupTest(t *testing.T, engine string) *DB {
	t.Helper()
	ctx := context.Background()
	d := openEngine(t, engine)
	if err := d.Migrate(ctx, "test", []Migration{{Version: 1, Name: "kv", SQL: `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`}}); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return d
}

// waitQueued polls until a caller leads and n more wait in the queue.
func waitQueued(t *testing.T, d *DB, n int) {
	t.Helper()
	testpoll.Eventually(t, 10*time.Second, fmt.Sprintf("a leader and %d queued callers", n), func() (bool, string) {
		d.group.mu.Lock()
		got, leading := len(d.group.queue), d.group.leading
		d.group.mu.Unlock()
		return leading && got >= n, fmt.Sprintf("%d callers queued, leading %v", got, leading)
	})
}

// holdLead starts a caller of Group that leads its group and waits inside
// it until the returned function is called; then it runs f (if any), and
// the returned function waits for it and fails the test on its error.
func holdLead(t *testing.T, d *DB, f func(tx *Tx) error) (finish func()) {
	t.Helper()
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- d.Group(context.Background(), func(tx *Tx) error {
			<-release
			if f == nil {
				return nil
			}
			return f(tx)
		})
	}()
	waitQueued(t, d, 0)
	return func() {
		t.Helper()
		close(release)
		if err := <-first; err != nil {
			t.Fatalf("first caller: %v", err)
		}
	}
}

func TestGroupCommitsWaitingTransactionsTogetherAndIsolatesFailures(t *testing.T) {
	eachGroupEngine(t, testGroupCommitsWaitingTransactionsTogetherAndIsolatesFailures)
}

func testGroupCommitsWaitingTransactionsTogetherAndIsolatesFailures(t *testing.T, engine string) {
	d := openGroupTest(t, engine)
	ctx := context.Background()
	boom := errors.New("boom")

	// The first caller holds the lead until 99 others wait behind it.
	finish := holdLead(t, d, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES ('lead', 'x')`)
		return err
	})
	before := d.Commits()

	var after atomic.Int64
	errs := make([]error, 100)
	var wg sync.WaitGroup
	for i := 1; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Group(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, 'x')`, fmt.Sprint(i)); err != nil {
					return err
				}
				tx.AfterCommit(func() { after.Add(1) })
				if i%10 == 0 {
					return fmt.Errorf("caller %d: %w", i, boom)
				}
				return nil
			})
		}()
	}
	waitQueued(t, d, 99)
	finish()
	wg.Wait()
	for i := 1; i < 100; i++ {
		if want := i%10 == 0; errors.Is(errs[i], boom) != want || (!want && errs[i] != nil) {
			t.Errorf("caller %d: err = %v, want failure %v", i, errs[i], want)
		}
	}
	var n int
	if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 91 {
		t.Errorf("%d rows, want 91 (the first caller and the 90 that did not fail)", n)
	}
	if got := after.Load(); got != 90 {
		t.Errorf("AfterCommit ran %d times, want 90 (not for the callers that failed)", got)
	}
	// The first caller's transaction alone, then 99 in groups of at most 64.
	if got := d.Commits() - before; got != 3 {
		t.Errorf("%d commits for 100 transactions, want 3", got)
	}
}

func TestGroupRetriesAndThenRunsEachAlone(t *testing.T) {
	eachGroupEngine(t, testGroupRetriesAndThenRunsEachAlone)
}

func testGroupRetriesAndThenRunsEachAlone(t *testing.T, engine string) {
	d := openGroupTest(t, engine)
	ctx := context.Background()

	finish := holdLead(t, d, nil)

	// One caller fails once with a conflict the engine asks to retry: the
	// whole group is run again and every caller succeeds. Another always
	// fails so: after the retries, each caller runs alone, and only that
	// one fails.
	var once atomic.Bool
	locked := errors.New("database is locked (5) (SQLITE_BUSY)")
	errs := make([]error, 10)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Group(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, 'x')`, fmt.Sprint(i)); err != nil {
					return err
				}
				switch {
				case i == 3 && once.CompareAndSwap(false, true):
					return locked
				case i == 7:
					return locked
				}
				return nil
			})
		}()
	}
	waitQueued(t, d, 10)
	finish()
	wg.Wait()
	for i, err := range errs {
		if (i == 7) != (err != nil) {
			t.Errorf("caller %d: err = %v", i, err)
		}
	}
	var n int
	if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 9 {
		t.Errorf("%d rows, want 9", n)
	}
}

func TestGroupPanicReachesItsCallerAndSparesTheOthers(t *testing.T) {
	eachGroupEngine(t, testGroupPanicReachesItsCallerAndSparesTheOthers)
}

func testGroupPanicReachesItsCallerAndSparesTheOthers(t *testing.T, engine string) {
	d := openGroupTest(t, engine)
	ctx := context.Background()

	finish := holdLead(t, d, nil)

	recovered := make([]any, 5)
	errs := make([]error, 5)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { recovered[i] = recover() }()
			errs[i] = d.Group(ctx, func(tx *Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, 'x')`, fmt.Sprint(i)); err != nil {
					return err
				}
				if i == 2 {
					panic("caller 2 fails")
				}
				return nil
			})
		}()
	}
	waitQueued(t, d, 5)
	finish()
	wg.Wait()
	for i := range errs {
		if want := i == 2; (recovered[i] != nil) != want || errs[i] != nil {
			t.Errorf("caller %d: panic %v, err %v; want a panic only in caller 2", i, recovered[i], errs[i])
		}
	}
	// Later transactions still run: the lead was not lost with the panic.
	if err := d.Group(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES ('after', 'x')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("%d rows, want 5 (four callers and the one after)", n)
	}
}

func TestGroupQuerySendsTheGroupsQueriesTogether(t *testing.T) {
	eachGroupEngine(t, testGroupQuerySendsTheGroupsQueriesTogether)
}

// testGroupQuerySendsTheGroupsQueriesTogether queues callers of GroupQuery
// and of Group behind a held leader, twice: all of them succeeding (on
// PostgreSQL the group's queries then go in one round trip, and its
// functions' queued statements with the commit), and with one query
// failing (a duplicate key), which fails its caller alone.
func testGroupQuerySendsTheGroupsQueriesTogether(t *testing.T, engine string) {
	d := openGroupTest(t, engine)
	ctx := context.Background()
	for i := range 20 {
		if _, err := d.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, '0')`, fmt.Sprintf("r%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, round := range []string{"a", "b"} {
		finish := holdLead(t, d, nil)
		errs := make([]error, 25)
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				q := Query{SQL: `UPDATE kv SET v = v || ? WHERE k = ? RETURNING v`, Args: []any{round, fmt.Sprintf("r%d", i)}}
				switch {
				case i == 7:
					q.Args[1] = "missing"
				case i == 13 && round == "b":
					q = Query{SQL: `INSERT INTO kv (k, v) VALUES ('r0', 'dup') RETURNING v`}
				}
				errs[i] = d.GroupQuery(ctx, q, func(tx *Tx, a Answer) error {
					var v string
					err := a.Scan(&v)
					if i == 7 && errors.Is(err, sql.ErrNoRows) {
						v = "none"
					} else if err != nil {
						return err
					}
					return tx.ExecLater(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, fmt.Sprintf("saw%s%d", round, i), v)
				})
			}()
		}
		for j := 20; j < 25; j++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = d.Group(ctx, func(tx *Tx) error {
					return tx.ExecLater(ctx, `INSERT INTO kv (k, v) VALUES (?, 'p')`, fmt.Sprintf("plain%s%d", round, j))
				})
			}()
		}
		waitQueued(t, d, 25)
		trips := d.RoundTrips()
		finish()
		wg.Wait()
		if n := d.RoundTrips() - trips; engine == "postgres" && round == "a" && n != 2 {
			t.Errorf("round %s: %d round trips for the group, want 2 (its queries with the begin, its statements with the commit)", round, n)
		}
		for i, err := range errs {
			if failing := i == 13 && round == "b"; failing != IsUniqueViolation(err) || (!failing && err != nil) {
				t.Errorf("round %s, caller %d: err = %v", round, i, err)
			}
		}
	}
	// Each query ran once in each round (its caller's function saw what
	// it wrote), the failed one not at all, nor its function.
	want := map[string]string{}
	for i := range 20 {
		v := "0ab"
		if i == 13 {
			v = "0a"
		}
		if i == 7 {
			v = "0" // its query asked for a key that is not there
		}
		want[fmt.Sprintf("r%d", i)] = v
		for _, round := range []string{"a", "b"} {
			saw := "0a"
			if round == "b" {
				saw = "0ab"
			}
			switch {
			case i == 7:
				saw = "none"
			case i == 13 && round == "b":
				continue
			}
			want[fmt.Sprintf("saw%s%d", round, i)] = saw
		}
	}
	for j := 20; j < 25; j++ {
		want[fmt.Sprintf("plaina%d", j)], want[fmt.Sprintf("plainb%d", j)] = "p", "p"
	}
	got := map[string]string{}
	rows, err := d.Query(ctx, `SELECT k, v FROM kv`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		got[k] = v
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d rows, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("row %s = %q, want %q", k, got[k], v)
		}
	}
}
