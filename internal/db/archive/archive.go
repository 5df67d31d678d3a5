// Package archive moves a cell database's deleted rows into shadow tables
// and purges the shadow tables, as Nova's "nova-manage db
// archive_deleted_rows" and "db purge" do.
//
// A Plan names the tables whose deleted rows move (roots), each with the
// rows of other tables that depend on a root row (children, which may have
// children of their own). A batch is one transaction: it takes up to
// MaxRows root rows of one table that were deleted before the cutoff and
// moves them, with every row depending on them, to the shadow tables
// (shadow_<table>, the same columns); dependents that Nova deletes rather
// than archives (Drop) are deleted. A process killed between batches
// leaves every root row either in its table with all its dependents or in
// its shadow table with all of them, and a rerun goes on where it stopped.
//
// Purge deletes shadow rows by the same trees: the shadow root rows older
// than the cutoff, with their shadow dependents, in batches.
package archive

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// ShadowPrefix names a table's shadow table (Nova's _SHADOW_TABLE_PREFIX).
const ShadowPrefix = "shadow_"

// MaxRowsLimit bounds MaxRows: a batch's keys are bound parameters.
const MaxRowsLimit = 10000

// Table is a root table: its deleted rows move to its shadow table.
type Table struct {
	// Name is the table.
	Name string
	// Key is the column its children refer to (a unique column).
	Key string
	// Deleted is the SQL condition of a row to archive ("deleted <> 0");
	// empty for a table whose rows are never deleted and are archived
	// by age alone (task_log, when Option is given).
	Deleted string
	// Time is the column (microseconds) compared with the cutoff: when
	// the row was deleted, or its last change.
	Time string
	// Option, when set, makes the table archived only when the run's
	// Options.Include has it (Nova's --task-log).
	Option string
	// Children are the rows that go with a root row.
	Children []Child
}

// Child is a table whose rows depend on a row of their parent.
type Child struct {
	// Name is the table.
	Name string
	// Column is the child's column that holds the parent's key.
	Column string
	// Key is the child's own key, which its children refer to.
	Key string
	// Where, if set, is a further SQL condition of the rows that go
	// with their parent ("deleted <> 0"); the others stay where they are.
	Where string
	// Drop: the rows are deleted, not archived (no shadow table), as
	// Nova deletes the API database's rows of archived instances.
	Drop bool
	// Children depend on this child's rows.
	Children []Child
}

// Expire is a table whose rows are deleted for good, with no shadow table,
// once Time is before the cutoff: rows that end and are then of no use
// (expired tokens, as Keystone's token_flush).
type Expire struct {
	Name string
	Key  string
	Time string
}

// Plan is what a database's archive does.
type Plan struct {
	Tables []Table
	Expire []Expire
}

// Merge joins plans (a cell's database holds the tables of several
// packages).
func Merge(ps ...Plan) Plan {
	var out Plan
	for _, p := range ps {
		out.Tables = append(out.Tables, p.Tables...)
		out.Expire = append(out.Expire, p.Expire...)
	}
	return out
}

// ShadowTables lists the shadow tables the plan needs, roots and children
// (Drop ones excepted), each once, in the order of the plan.
func (p Plan) ShadowTables() []string {
	var out []string
	add := func(n string) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	var walk func([]Child)
	walk = func(cs []Child) {
		for _, c := range cs {
			walk(c.Children)
			if !c.Drop {
				add(c.Name)
			}
		}
	}
	for _, t := range p.Tables {
		walk(t.Children)
		add(t.Name)
	}
	return out
}

// ShadowSQL is the migration SQL that creates the shadow tables of tables
// (with no rows, the columns of each table as they are now), an index on
// each root's Time and Key columns and on each child's Column, for purge, and on
// each root table an index of its rows to archive by Time. It
// creates only what is missing: a plan that gains a table gets it by a new
// migration of the same SQL.
func ShadowSQL(p Plan) string {
	var b strings.Builder
	for _, n := range p.ShadowTables() {
		fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s%s AS SELECT * FROM %s WHERE 1 = 0;\n", ShadowPrefix, n, n)
	}
	idx := map[string]bool{}
	index := func(table, col string) {
		name := ShadowPrefix + table + "_" + col
		if idx[name] {
			return
		}
		idx[name] = true
		fmt.Fprintf(&b, "CREATE INDEX IF NOT EXISTS %s ON %s%s (%s);\n", name, ShadowPrefix, table, col)
	}
	var walk func([]Child)
	walk = func(cs []Child) {
		for _, c := range cs {
			if !c.Drop {
				index(c.Name, c.Column)
			}
			walk(c.Children)
		}
	}
	for _, t := range p.Tables {
		index(t.Name, t.Time)
		index(t.Name, t.Key)
		walk(t.Children)
	}
	// The archive's own lookup of each root table: its rows to archive,
	// in the batch's order (oldest first), without reading the live ones.
	for _, t := range p.Tables {
		name := "archive_" + t.Name
		if idx[name] {
			continue
		}
		idx[name] = true
		fmt.Fprintf(&b, "CREATE INDEX IF NOT EXISTS %s ON %s (%s, %s)", name, t.Name, t.Time, t.Key)
		if t.Deleted != "" {
			fmt.Fprintf(&b, " WHERE %s", t.Deleted)
		}
		b.WriteString(";\n")
	}
	return b.String()
}

// Options are a run's choices.
type Options struct {
	// MaxRows is the number of root rows a batch takes (1 to
	// MaxRowsLimit); their dependents go with them.
	MaxRows int
	// Before is the cutoff: rows deleted (or, for Expire, ended) before
	// it. The zero time means no cutoff (every deleted row).
	Before time.Time
	// UntilComplete runs batches until nothing is left; otherwise a run
	// stops once it has taken MaxRows root rows (Nova's behaviour).
	UntilComplete bool
	// Include names the optional tables to archive too ("task_log").
	Include []string
	// AfterBatch, if set, is called after each committed batch with the
	// counts of that batch.
	AfterBatch func(Counts)
}

// Counts is rows per table.
type Counts map[string]int64

// Total is the sum of the counts.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

func (c Counts) add(o Counts) {
	for k, v := range o {
		if v != 0 {
			c[k] += v
		}
	}
}

// ErrBadOptions is a run's options that make no sense (MaxRows out of range).
var ErrBadOptions = errors.New("archive: bad options")

func (o Options) check() error {
	if o.MaxRows < 1 || o.MaxRows > MaxRowsLimit {
		return fmt.Errorf("%w: max rows %d must be 1 to %d", ErrBadOptions, o.MaxRows, MaxRowsLimit)
	}
	return nil
}

// Archive moves the deleted rows of the plan's tables older than the
// cutoff, with their dependents, to the shadow tables, in batches, and
// deletes the expired rows of its Expire tables. It returns the rows moved
// (or, for Drop children and Expire tables, deleted) per table; on an
// error, what the committed batches did.
func Archive(ctx context.Context, d *db.DB, p Plan, o Options) (Counts, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	total := Counts{}
	var roots int64
	left := func() int {
		if o.UntilComplete {
			return o.MaxRows
		}
		return o.MaxRows - int(roots)
	}
	cols := map[string]string{}
	for _, t := range p.Tables {
		if t.Option != "" && !slices.Contains(o.Include, t.Option) {
			continue
		}
		if err := columns(ctx, d, t, cols); err != nil {
			return total, err
		}
		for left() > 0 {
			var c Counts
			err := d.InTx(ctx, func(tx *db.Tx) error {
				var err error
				c, err = batch(ctx, tx, t, cols, o.Before, left())
				return err
			})
			if err != nil {
				return total, fmt.Errorf("archive %s: %w", t.Name, err)
			}
			if c[t.Name] == 0 {
				break
			}
			roots += c[t.Name]
			total.add(c)
			if o.AfterBatch != nil {
				o.AfterBatch(c)
			}
		}
	}
	for _, e := range p.Expire {
		for left() > 0 {
			var n int64
			err := d.InTx(ctx, func(tx *db.Tx) error {
				res, err := tx.Exec(ctx, `DELETE FROM `+e.Name+` WHERE `+e.Key+` IN (SELECT `+e.Key+` FROM `+e.Name+
					` WHERE `+e.Time+` < ? ORDER BY `+e.Time+` LIMIT ?)`, expireCutoff(o.Before), left())
				if err != nil {
					return err
				}
				n, err = res.RowsAffected()
				return err
			})
			if err != nil {
				return total, fmt.Errorf("archive: delete expired rows of %s: %w", e.Name, err)
			}
			if n == 0 {
				break
			}
			roots += n
			c := Counts{e.Name: n}
			total.add(c)
			if o.AfterBatch != nil {
				o.AfterBatch(c)
			}
		}
	}
	return total, nil
}

// expireCutoff is the cutoff of Expire rows: with no cutoff, those ended
// by now.
func expireCutoff(before time.Time) int64 {
	if before.IsZero() {
		return db.Micros(time.Now())
	}
	return db.Micros(before)
}

// columns records, for t and its archived children, the column list of
// each table, and checks that its shadow table has every one of them.
func columns(ctx context.Context, d *db.DB, t Table, out map[string]string) error {
	names := []string{t.Name}
	var walk func([]Child)
	walk = func(cs []Child) {
		for _, c := range cs {
			if !c.Drop {
				names = append(names, c.Name)
			}
			walk(c.Children)
		}
	}
	walk(t.Children)
	for _, n := range names {
		if _, ok := out[n]; ok {
			continue
		}
		main, err := TableColumns(ctx, d, n)
		if err != nil {
			return err
		}
		shadow, err := TableColumns(ctx, d, ShadowPrefix+n)
		if err != nil {
			return fmt.Errorf("archive: %s has no shadow table (%w): the database's migrations have not run", n, err)
		}
		var missing []string
		for _, c := range main {
			if !slices.Contains(shadow, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("archive: %s%s lacks the columns %s of %s: a migration that added them to %s did not add them to its shadow table",
				ShadowPrefix, n, strings.Join(missing, ", "), n, n)
		}
		out[n] = strings.Join(main, ", ")
	}
	return nil
}

// TableColumns lists a table's columns, in order.
func TableColumns(ctx context.Context, q db.Querier, table string) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT * FROM `+table+` WHERE 1 = 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return rows.Columns()
}

// batch moves, in tx, up to n root rows of t with their dependents.
func batch(ctx context.Context, tx *db.Tx, t Table, cols map[string]string, before time.Time, n int) (Counts, error) {
	where, args := candidates(t, before)
	keys, err := db.Collect(ctx, tx, func(s db.Scanner) (any, error) {
		var k any
		err := s.Scan(&k)
		return k, err
	}, `SELECT `+t.Key+` FROM `+t.Name+` WHERE `+where+` ORDER BY `+t.Time+`, `+t.Key+` LIMIT ?`, append(args, n)...)
	if err != nil {
		return nil, err
	}
	c := Counts{}
	if len(keys) == 0 {
		return c, nil
	}
	in := `(` + strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ") + `)`
	// Children first (their parents' rows are still there for the
	// subqueries that find them; and a foreign key to the parent, as
	// server_tags has, would take them with it).
	if err := moveChildren(ctx, tx, t.Children, `SELECT `+t.Key+` FROM `+t.Name+` WHERE `+t.Key+` IN `+in, keys, cols, c); err != nil {
		return nil, err
	}
	m, err := move(ctx, tx, t.Name, cols[t.Name], t.Key+` IN `+in, keys)
	if err != nil {
		return nil, err
	}
	c[t.Name] += m
	return c, nil
}

// candidates is the condition of t's rows to archive.
func candidates(t Table, before time.Time) (string, []any) {
	var conds []string
	var args []any
	if t.Deleted != "" {
		conds = append(conds, t.Deleted)
	}
	if !before.IsZero() {
		conds = append(conds, t.Time+` < ?`)
		args = append(args, db.Micros(before))
	}
	if len(conds) == 0 {
		return "1 = 1", nil
	}
	return strings.Join(conds, " AND "), args
}

// moveChildren moves (or drops) the rows of cs whose parent key is one
// that parents (a query over keys) returns, deepest first.
func moveChildren(ctx context.Context, tx *db.Tx, cs []Child, parents string, keys []any, cols map[string]string, c Counts) error {
	for _, ch := range cs {
		cond := ch.Column + ` IN (` + parents + `)`
		if ch.Where != "" {
			cond += ` AND ` + ch.Where
		}
		if len(ch.Children) > 0 {
			if err := moveChildren(ctx, tx, ch.Children, `SELECT `+ch.Key+` FROM `+ch.Name+` WHERE `+cond, keys, cols, c); err != nil {
				return err
			}
		}
		if ch.Drop {
			res, err := tx.Exec(ctx, `DELETE FROM `+ch.Name+` WHERE `+cond, keys...)
			if err != nil {
				return fmt.Errorf("delete from %s: %w", ch.Name, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			c[ch.Name] += n
			continue
		}
		n, err := move(ctx, tx, ch.Name, cols[ch.Name], cond, keys)
		if err != nil {
			return err
		}
		c[ch.Name] += n
	}
	return nil
}

// move copies a table's rows that match cond to its shadow table and
// deletes them, and returns how many. On PostgreSQL it is one statement
// (a row another transaction adds meanwhile cannot be deleted uncopied);
// a SQLite transaction holds the database's write lock from its start.
func move(ctx context.Context, tx *db.Tx, table, cols, cond string, args []any) (int64, error) {
	shadow := ShadowPrefix + table
	if tx.Dialect == db.Postgres {
		res, err := tx.Exec(ctx, `WITH moved AS (DELETE FROM `+table+` WHERE `+cond+` RETURNING `+cols+`)
			INSERT INTO `+shadow+` (`+cols+`) SELECT `+cols+` FROM moved`, args...)
		if err != nil {
			return 0, fmt.Errorf("move %s to %s: %w", table, shadow, err)
		}
		return res.RowsAffected()
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+shadow+` (`+cols+`) SELECT `+cols+` FROM `+table+` WHERE `+cond, args...); err != nil {
		return 0, fmt.Errorf("copy %s to %s: %w", table, shadow, err)
	}
	res, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+cond, args...)
	if err != nil {
		return 0, fmt.Errorf("delete from %s: %w", table, err)
	}
	return res.RowsAffected()
}

// PurgeOptions are a purge's choices.
type PurgeOptions struct {
	// Before is the cutoff: shadow rows of roots whose Time is before it
	// go, with their shadow dependents. With All, every shadow row goes.
	Before time.Time
	All    bool
	// MaxRows is the number of shadow root rows a batch (a transaction)
	// takes (default 1000).
	MaxRows int
	// AfterBatch, if set, is called after each committed batch.
	AfterBatch func(Counts)
}

// Purge deletes shadow rows: those of the plan's roots older than the
// cutoff (or all of them), with their shadow dependents, in batches until
// none is left. It returns the rows deleted per shadow table.
func Purge(ctx context.Context, d *db.DB, p Plan, o PurgeOptions) (Counts, error) {
	if o.MaxRows == 0 {
		o.MaxRows = 1000
	}
	if o.MaxRows < 0 || o.MaxRows > MaxRowsLimit {
		return nil, fmt.Errorf("%w: max rows %d must be 1 to %d", ErrBadOptions, o.MaxRows, MaxRowsLimit)
	}
	if !o.All && o.Before.IsZero() {
		return nil, fmt.Errorf("%w: a purge needs a cutoff or All", ErrBadOptions)
	}
	total := Counts{}
	for _, t := range p.Tables {
		st := ShadowPrefix + t.Name
		for {
			c := Counts{}
			err := d.InTx(ctx, func(tx *db.Tx) error {
				cond, args := "1 = 1", []any{}
				if !o.All {
					cond, args = t.Time+` < ?`, []any{db.Micros(o.Before)}
				}
				keys, err := db.Collect(ctx, tx, func(s db.Scanner) (any, error) {
					var k any
					err := s.Scan(&k)
					return k, err
				}, `SELECT `+t.Key+` FROM `+st+` WHERE `+cond+` ORDER BY `+t.Time+` LIMIT ?`, append(args, o.MaxRows)...)
				if err != nil || len(keys) == 0 {
					return err
				}
				in := `(` + strings.TrimSuffix(strings.Repeat("?, ", len(keys)), ", ") + `)`
				if err := purgeChildren(ctx, tx, t.Children, `SELECT `+t.Key+` FROM `+st+` WHERE `+t.Key+` IN `+in, keys, c); err != nil {
					return err
				}
				res, err := tx.Exec(ctx, `DELETE FROM `+st+` WHERE `+t.Key+` IN `+in, keys...)
				if err != nil {
					return err
				}
				n, err := res.RowsAffected()
				c[st] += n
				return err
			})
			if err != nil {
				return total, fmt.Errorf("purge %s: %w", st, err)
			}
			if c[st] == 0 {
				break
			}
			total.add(c)
			if o.AfterBatch != nil {
				o.AfterBatch(c)
			}
		}
	}
	return total, nil
}

func purgeChildren(ctx context.Context, tx *db.Tx, cs []Child, parents string, keys []any, c Counts) error {
	for _, ch := range cs {
		if ch.Drop {
			continue
		}
		st := ShadowPrefix + ch.Name
		cond := ch.Column + ` IN (` + parents + `)`
		if len(ch.Children) > 0 {
			if err := purgeChildren(ctx, tx, ch.Children, `SELECT `+ch.Key+` FROM `+st+` WHERE `+cond, keys, c); err != nil {
				return err
			}
		}
		res, err := tx.Exec(ctx, `DELETE FROM `+st+` WHERE `+cond, keys...)
		if err != nil {
			return fmt.Errorf("delete from %s: %w", st, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		c[st] += n
	}
	return nil
}
