package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

func TestRebind(t *testing.T) {
	tests := []struct {
		name    string
		dialect db.Dialect
		in      string
		want    string
	}{
		{"sqlite keeps placeholders", db.SQLite, `SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = ? AND c = ?`},
		{"postgres numbers placeholders in order", db.Postgres, `SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
		{"postgres without placeholders", db.Postgres, `SELECT 1`, `SELECT 1`},
		{"sqlite without placeholders", db.SQLite, `SELECT 1`, `SELECT 1`},
		{"empty query", db.Postgres, ``, ``},
		{"placeholder only", db.Postgres, `?`, `$1`},
		{"adjacent placeholders", db.Postgres, `(??,?)`, `($1$2,$3)`},
		{"placeholders at both ends", db.Postgres, `? + ?`, `$1 + $2`},
		{"ten and more", db.Postgres, `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`},
		{"multi-byte text kept", db.Postgres, `SELECT 'é' WHERE x = ?`, `SELECT 'é' WHERE x = $1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := db.Rebind(tc.dialect, tc.in); got != tc.want {
				t.Errorf("Rebind(%v, %q) = %q, want %q", tc.dialect, tc.in, got, tc.want)
			}
			d := &db.DB{Dialect: tc.dialect}
			if got := d.Rebind(tc.in); got != tc.want {
				t.Errorf("(%v).Rebind(%q) = %q, want %q", tc.dialect, tc.in, got, tc.want)
			}
		})
	}
}

func createKV(t *testing.T, d *db.DB) {
	t.Helper()
	err := d.Migrate(context.Background(), "test", []db.Migration{
		{Version: 1, Name: "kv", SQL: `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL)`},
	})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

func countKV(t *testing.T, d *db.DB) int {
	t.Helper()
	var n int
	if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM kv`).Scan(&n); err != nil {
		t.Fatalf("count: %v", err)
	}
	return n
}

func TestInTxRollsBackOnErrorAndRunsAfterCommitOnlyOnCommit(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		createKV(t, d)

		boom := errors.New("boom")
		ran := 0
		calls := 0
		err := d.InTx(ctx, func(tx *db.Tx) error {
			calls++
			if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "a", "1"); err != nil {
				return err
			}
			tx.AfterCommit(func() { ran++ })
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("InTx error = %v, want the function's error", err)
		}
		if calls != 1 {
			t.Errorf("a non-retryable error ran the function %d times, want 1", calls)
		}
		if ran != 0 {
			t.Errorf("AfterCommit ran %d times after a rollback, want 0", ran)
		}
		if n := countKV(t, d); n != 0 {
			t.Errorf("%d rows after a rolled-back transaction, want 0", n)
		}

		var order []string
		err = d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "a", "1"); err != nil {
				return err
			}
			tx.AfterCommit(func() {
				// The change is visible to others by the time AfterCommit runs.
				var v string
				if err := d.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, "a").Scan(&v); err != nil {
					t.Errorf("AfterCommit does not see the committed row: %v", err)
				}
				order = append(order, "first")
			})
			tx.AfterCommit(func() { order = append(order, "second") })
			if len(order) != 0 {
				t.Error("AfterCommit ran before the commit")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
		if len(order) != 2 || order[0] != "first" || order[1] != "second" {
			t.Errorf("AfterCommit functions ran as %v, want [first second] once each", order)
		}
		if n := countKV(t, d); n != 1 {
			t.Errorf("%d rows after a commit, want 1", n)
		}
	})
}

func TestInTxRetriesRetryableErrorsFromScratch(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		createKV(t, d)
		calls, ran := 0, 0
		err := d.InTx(ctx, func(tx *db.Tx) error {
			calls++
			if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "a", "1"); err != nil {
				return err
			}
			tx.AfterCommit(func() { ran++ })
			if calls == 1 {
				return errors.New("database is locked (5) (SQLITE_BUSY)")
			}
			return nil
		})
		if err != nil {
			t.Fatalf("InTx: %v", err)
		}
		if calls != 2 {
			t.Errorf("function ran %d times, want 2 (one retry)", calls)
		}
		if ran != 1 {
			t.Errorf("AfterCommit ran %d times, want 1 (only the committed attempt's)", ran)
		}
		if n := countKV(t, d); n != 1 {
			t.Errorf("%d rows, want 1: the failed attempt was not rolled back", n)
		}
	})
}

func TestInTxRollsBackWhenTheFunctionPanics(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		createKV(t, d)
		func() {
			defer func() {
				if r := recover(); r != "boom" {
					t.Errorf("recovered %v, want the function's panic", r)
				}
			}()
			_ = d.InTx(ctx, func(tx *db.Tx) error {
				if _, err := tx.Exec(ctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "a", "1"); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		// The panicking transaction must not keep its connection or (SQLite)
		// the write lock: another write goes through at once.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := d.InTx(wctx, func(tx *db.Tx) error {
			_, err := tx.Exec(wctx, `INSERT INTO kv (k, v) VALUES (?, ?)`, "b", "2")
			return err
		}); err != nil {
			t.Fatalf("write after a panicking transaction: %v", err)
		}
		if n := countKV(t, d); n != 1 {
			t.Errorf("%d rows, want 1 (the panicking transaction's row rolled back)", n)
		}
	})
}

func TestIsUniqueViolation(t *testing.T) {
	if db.IsUniqueViolation(nil) {
		t.Error("IsUniqueViolation(nil) = true")
	}
	if db.IsUniqueViolation(errors.New("something else")) {
		t.Error("IsUniqueViolation(unrelated error) = true")
	}
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		err := d.Migrate(ctx, "test", []db.Migration{{Version: 1, Name: "tables", SQL: `
CREATE TABLE texts (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE serials (id {{serial}}, v TEXT NOT NULL);
CREATE TABLE ints (id {{bigint}} PRIMARY KEY, u TEXT UNIQUE)`}})
		if err != nil {
			t.Fatalf("migrate: %v", err)
		}
		mustExec := func(q string, args ...any) {
			t.Helper()
			if _, err := d.Exec(ctx, q, args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		mustExec(`INSERT INTO texts (k, v) VALUES (?, ?)`, "a", "1")
		mustExec(`INSERT INTO serials (id, v) VALUES (?, ?)`, 7, "1")
		mustExec(`INSERT INTO ints (id, u) VALUES (?, ?)`, 7, "x")

		dups := map[string]func() error{
			"text primary key": func() error {
				_, err := d.Exec(ctx, `INSERT INTO texts (k, v) VALUES (?, ?)`, "a", "2")
				return err
			},
			"serial primary key": func() error {
				_, err := d.Exec(ctx, `INSERT INTO serials (id, v) VALUES (?, ?)`, 7, "2")
				return err
			},
			"bigint primary key": func() error {
				_, err := d.Exec(ctx, `INSERT INTO ints (id, u) VALUES (?, ?)`, 7, "y")
				return err
			},
			"unique column": func() error {
				_, err := d.Exec(ctx, `INSERT INTO ints (id, u) VALUES (?, ?)`, 8, "x")
				return err
			},
			"inside a transaction, wrapped": func() error {
				return d.InTx(ctx, func(tx *db.Tx) error {
					_, err := tx.Exec(ctx, `INSERT INTO texts (k, v) VALUES (?, ?)`, "a", "3")
					if err != nil {
						return errors.Join(errors.New("insert"), err)
					}
					return nil
				})
			},
		}
		for name, f := range dups {
			err := f()
			if err == nil {
				t.Errorf("%s: duplicate accepted", name)
				continue
			}
			if !db.IsUniqueViolation(err) {
				t.Errorf("%s: IsUniqueViolation(%v) = false", name, err)
			}
		}

		// Other failures are not unique violations.
		_, err = d.Exec(ctx, `INSERT INTO texts (k, v) VALUES (?, NULL)`, "b")
		if err == nil {
			t.Fatal("NULL accepted in a NOT NULL column")
		}
		if db.IsUniqueViolation(err) {
			t.Errorf("IsUniqueViolation(NOT NULL violation %v) = true", err)
		}
		_, err = d.Exec(ctx, `INSERT INTO missing (k) VALUES (?)`, "a")
		if err == nil || db.IsUniqueViolation(err) {
			t.Errorf("missing table: err = %v, IsUniqueViolation must be false", err)
		}
	})
}

func TestMicrosRoundTrip(t *testing.T) {
	if db.Micros(time.Time{}) != 0 {
		t.Errorf("Micros(zero time) = %d, want 0", db.Micros(time.Time{}))
	}
	if got := db.FromMicros(0); !got.IsZero() {
		t.Errorf("FromMicros(0) = %v, want the zero time", got)
	}
	paris := time.FixedZone("CET", 3600)
	times := []time.Time{
		time.Date(2024, 2, 29, 23, 59, 59, 123456000, time.UTC),
		time.Date(2024, 2, 29, 23, 59, 59, 123456789, paris), // nanoseconds are dropped
		time.Date(1969, 7, 20, 20, 17, 40, 1999, time.UTC),   // before the epoch
		time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Now(),
	}
	for _, tm := range times {
		us := db.Micros(tm)
		back := db.FromMicros(us)
		want := tm.Truncate(time.Microsecond)
		if !back.Equal(want) {
			t.Errorf("FromMicros(Micros(%v)) = %v, want %v", tm, back, want)
		}
		if back.Location() != time.UTC {
			t.Errorf("FromMicros(%d) is in %v, want UTC", us, back.Location())
		}
		if db.Micros(back) != us {
			t.Errorf("Micros(FromMicros(%d)) = %d", us, db.Micros(back))
		}
	}
	// Later times store as larger numbers, so both engines order them alike.
	a := time.Date(2024, 1, 1, 0, 0, 0, 1000, time.UTC)
	b := a.Add(time.Microsecond)
	if db.Micros(a) >= db.Micros(b) {
		t.Errorf("Micros(%v) = %d is not before Micros(%v) = %d", a, db.Micros(a), b, db.Micros(b))
	}

	// And through a {{bigint}} column on each engine.
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "test", []db.Migration{{Version: 1, Name: "times", SQL: `CREATE TABLE times (at {{bigint}} NOT NULL)`}}); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		tm := time.Date(2262, 4, 11, 23, 47, 16, 854775000, time.UTC) // near the int64 nanosecond limit
		if _, err := d.Exec(ctx, `INSERT INTO times (at) VALUES (?)`, db.Micros(tm)); err != nil {
			t.Fatalf("insert: %v", err)
		}
		var us int64
		if err := d.QueryRow(ctx, `SELECT at FROM times`).Scan(&us); err != nil {
			t.Fatalf("select: %v", err)
		}
		if got := db.FromMicros(us); !got.Equal(tm) {
			t.Errorf("stored %v, read back %v", tm, got)
		}
	})
}

func TestStatementsCountsWhatRuns(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if _, err := d.Exec(ctx, `CREATE TABLE counted (k INTEGER PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		before := d.Statements()
		if err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO counted (k) VALUES (1)`); err != nil {
				return err
			}
			var n int
			return tx.QueryRow(ctx, `SELECT COUNT(*) FROM counted`).Scan(&n)
		}); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM counted`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if got := d.Statements() - before; got != 3 {
			t.Errorf("Statements grew by %d, want 3 (an insert and a query in a transaction, a query outside)", got)
		}
	})
}

// What a transaction remembers lasts until it ends, and a rollback to a
// savepoint forgets it all (what was taken under the savepoint, a lock
// say, is undone); a new transaction starts with nothing.
func TestRememberLastsTheTransactionAndARollbackToASavepointForgets(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if _, ok := tx.Recall("k"); ok {
				t.Error("a new transaction recalls something")
			}
			tx.Remember("k", 1)
			if v, ok := tx.Recall("k"); !ok || v != 1 {
				t.Errorf("Recall = %v, %v; want 1, true", v, ok)
			}
			if err := tx.Savepoint(ctx, "s"); err != nil {
				return err
			}
			tx.Remember("k2", 2)
			if err := tx.Release(ctx, "s"); err != nil {
				return err
			}
			if v, ok := tx.Recall("k2"); !ok || v != 2 {
				t.Errorf("after a release: Recall = %v, %v; want 2, true", v, ok)
			}
			if err := tx.Savepoint(ctx, "s2"); err != nil {
				return err
			}
			if err := tx.RollbackTo(ctx, "s2"); err != nil {
				return err
			}
			if _, ok := tx.Recall("k"); ok {
				t.Error("a rollback to a savepoint left what was remembered")
			}
			return tx.Release(ctx, "s2")
		})
		if err != nil {
			t.Fatal(err)
		}
		_ = d.InTx(ctx, func(tx *db.Tx) error {
			if _, ok := tx.Recall("k2"); ok {
				t.Error("the next transaction recalls what the last remembered")
			}
			return nil
		})
	})
}

// BenchmarkRebind is a boot's longest statement (the cell's instance
// insert, 25 placeholders) rebound for PostgreSQL.
func BenchmarkRebind(b *testing.B) {
	q := `INSERT INTO instances (uuid, name, project_id, user_id, image_ref, flavor, key_name, user_data, metadata, availability_zone,
		reservation_id, launch_index, build, host, node, vm_state, task_state, power_state, version, fault, request_id, launched_at,
		created_at, updated_at, deleted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	for b.Loop() {
		db.Rebind(db.Postgres, q)
	}
}
