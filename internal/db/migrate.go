package db

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Migration is one versioned schema change in a named set. SQL may hold
// several statements separated by ";" and these dialect macros:
// {{serial}} (an auto-increment 64-bit primary key column type),
// {{blob}} (binary data), {{bigint}}.
type Migration struct {
	Version int
	Name    string
	SQL     string
	// Go, when set, runs after SQL in the migration's transaction: a data
	// migration that SQL common to both engines cannot say. Like SQL, it
	// runs once per database.
	Go func(ctx context.Context, tx *Tx) error
}

// Migrate applies, in order, the migrations of set that the database has not
// applied yet, each in its own transaction, and records them in
// schema_migrations. Sets let the cells service, the API cell and a compute
// cell keep their schemas apart in one database.
func (d *DB) Migrate(ctx context.Context, set string, ms []Migration) error {
	if _, err := d.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		set_name TEXT NOT NULL, version INTEGER NOT NULL, name TEXT NOT NULL, applied_at BIGINT NOT NULL,
		PRIMARY KEY (set_name, version))`); err != nil {
		return fmt.Errorf("migrate %s: %w", set, err)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			return fmt.Errorf("migrate %s: migration %q has version %d, want %d", set, m.Name, m.Version, i+1)
		}
	}
	// What is applied already: a start whose schema is current runs no
	// transaction, and a database that a newer binary migrated is
	// refused rather than used with a schema this one does not know.
	// A version may be missing below the latest (a migration rerun by
	// hand, or a test that takes a database back): each is checked on
	// its own below unless all are there.
	var applied, count int
	if err := d.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0), COUNT(*) FROM schema_migrations WHERE set_name = ?`, set).Scan(&applied, &count); err != nil {
		return fmt.Errorf("migrate %s: %w", set, err)
	}
	if applied > len(ms) {
		return fmt.Errorf("database %s: schema %q is at version %d, newer than this binary knows (version %d): run a binary at least as new as the one that migrated it",
			Redact(d.DSN), set, applied, len(ms))
	}
	if applied == len(ms) && count == len(ms) {
		return nil
	}
	for _, m := range ms {
		err := d.InTx(ctx, func(tx *Tx) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE set_name = ? AND version = ?`, set, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range splitStatements(d.expand(m.SQL)) {
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", firstLine(stmt), err)
				}
			}
			if m.Go != nil {
				if err := m.Go(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (set_name, version, name, applied_at) VALUES (?, ?, ?, ?)`,
				set, m.Version, m.Name, time.Now().UnixMicro())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate %s to version %d (%s): %w", set, m.Version, m.Name, err)
		}
	}
	return nil
}

func (d *DB) expand(s string) string {
	r := map[Dialect]*strings.Replacer{
		SQLite:   strings.NewReplacer("{{serial}}", "INTEGER PRIMARY KEY AUTOINCREMENT", "{{blob}}", "BLOB", "{{bigint}}", "INTEGER"),
		Postgres: strings.NewReplacer("{{serial}}", "BIGSERIAL PRIMARY KEY", "{{blob}}", "BYTEA", "{{bigint}}", "BIGINT"),
	}[d.Dialect]
	return r.Replace(s)
}

func splitStatements(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
