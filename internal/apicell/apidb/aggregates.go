package apidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Host aggregates, as Nova keeps them in its API database: a name unique
// in the cloud, hosts (each by its cell and its name in that cell) and
// metadata, the availability zone being the key availability_zone. A
// delete removes the aggregate for good.

// AZKey is the metadata key that holds an aggregate's availability zone.
const AZKey = "availability_zone"

// ErrAggregateNameExists refuses a name another aggregate has.
var ErrAggregateNameExists = errors.New("aggregate name exists")

// ErrAggregateHostExists refuses a host the aggregate has already.
var ErrAggregateHostExists = errors.New("aggregate host exists")

// AggregateHost is a host of an aggregate: its cell and its name there.
type AggregateHost struct {
	Cell, Host string
}

// Aggregate is a host aggregate.
type Aggregate struct {
	ID        int64
	UUID      string
	Name      string
	Hosts     []AggregateHost
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time // zero: never updated
}

// Zone is the aggregate's availability zone ("": none).
func (a *Aggregate) Zone() string { return a.Metadata[AZKey] }

// LockAggregates serialises the changes to aggregates until tx ends: a
// row lock on PostgreSQL (SQLite takes one writer at a time already). A
// change checks the zones of other aggregates' hosts and then writes, so
// two at once (a host into two aggregates of different zones) must not
// both pass their checks.
//
// It returns the change's sequence number, which only grows: the version
// of the snapshots the change sends the cells (package aggsync).
func LockAggregates(ctx context.Context, tx *db.Tx) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO aggregate_lock (id, changes) VALUES (1, 1)
		ON CONFLICT (id) DO UPDATE SET changes = aggregate_lock.changes + 1 RETURNING changes`).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("lock aggregates: %w", err)
	}
	return seq, nil
}

// RaiseAggregateSeq sets the aggregates' change sequence to at least
// floor (the lock held) and returns it.
func RaiseAggregateSeq(ctx context.Context, tx *db.Tx, floor int64) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `UPDATE aggregate_lock SET changes = CASE WHEN changes < ? THEN ? ELSE changes END WHERE id = 1 RETURNING changes`,
		floor, floor).Scan(&seq)
	if err != nil {
		return 0, fmt.Errorf("raise aggregate sequence: %w", err)
	}
	return seq, nil
}

// CellAggregates reads the aggregates that have a host in cell, by id,
// each with its hosts in that cell only (in the order added) and its
// whole metadata: the snapshot the cell holds.
func CellAggregates(ctx context.Context, q db.Querier, cell string) ([]Aggregate, error) {
	all, err := db.Collect(ctx, q, func(r db.Scanner) (Aggregate, error) {
		var a Aggregate
		var created, updated int64
		err := r.Scan(&a.ID, &a.UUID, &a.Name, &created, &updated)
		a.CreatedAt = db.FromMicros(created)
		if updated != 0 {
			a.UpdatedAt = db.FromMicros(updated)
		}
		return a, err
	}, `SELECT id, uuid, name, created_at, updated_at FROM aggregates
		WHERE id IN (SELECT aggregate_id FROM aggregate_hosts WHERE cell = ?) ORDER BY id`, cell)
	if err != nil {
		return nil, fmt.Errorf("aggregates of cell %s: %w", cell, err)
	}
	ptrs := make([]*Aggregate, len(all))
	for i := range all {
		ptrs[i] = &all[i]
	}
	if err := loadAggregateParts(ctx, q, ptrs); err != nil {
		return nil, err
	}
	for i := range all {
		all[i].Hosts = slices.DeleteFunc(all[i].Hosts, func(h AggregateHost) bool { return h.Cell != cell })
	}
	return all, nil
}

// AggregateCell is what the API cell last sent a cell of its aggregates.
type AggregateCell struct {
	Version     int64
	DefaultZone string
}

// GetAggregateCell reads what was last sent to cell; ErrNotFound when
// nothing was.
func GetAggregateCell(ctx context.Context, q db.Querier, cell string) (AggregateCell, error) {
	var c AggregateCell
	err := q.QueryRow(ctx, `SELECT version, default_zone FROM aggregate_cells WHERE cell = ?`, cell).Scan(&c.Version, &c.DefaultZone)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("aggregates sent to %s: %w", cell, err)
	}
	return c, nil
}

// SetAggregateCell records what was sent to cell.
func SetAggregateCell(ctx context.Context, tx *db.Tx, cell string, c AggregateCell) error {
	_, err := tx.Exec(ctx, `INSERT INTO aggregate_cells (cell, version, default_zone) VALUES (?, ?, ?)
		ON CONFLICT (cell) DO UPDATE SET version = excluded.version, default_zone = excluded.default_zone`, cell, c.Version, c.DefaultZone)
	if err != nil {
		return fmt.Errorf("aggregates sent to %s: %w", cell, err)
	}
	return nil
}

// CreateAggregate creates an aggregate with no hosts, and the metadata
// availability_zone = zone when zone is not "".
func CreateAggregate(ctx context.Context, tx *db.Tx, uuid, name, zone string, now time.Time) (Aggregate, error) {
	if err := nameFree(ctx, tx, name, 0); err != nil {
		return Aggregate{}, err
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO aggregates (uuid, name, created_at) VALUES (?, ?, ?) RETURNING id`,
		uuid, name, db.Micros(now)).Scan(&id)
	if db.IsUniqueViolation(err) {
		return Aggregate{}, ErrAggregateNameExists
	}
	if err != nil {
		return Aggregate{}, fmt.Errorf("create aggregate %q: %w", name, err)
	}
	if zone != "" {
		if _, err := tx.Exec(ctx, `INSERT INTO aggregate_metadata (aggregate_id, key, value) VALUES (?, ?, ?)`, id, AZKey, zone); err != nil {
			return Aggregate{}, fmt.Errorf("aggregate %d zone: %w", id, err)
		}
	}
	return GetAggregate(ctx, tx, id)
}

// nameFree refuses name when an aggregate other than id has it.
func nameFree(ctx context.Context, q db.Querier, name string, id int64) error {
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM aggregates WHERE name = ? AND id <> ?`, name, id).Scan(&n); err != nil {
		return fmt.Errorf("aggregate name %q: %w", name, err)
	}
	if n > 0 {
		return ErrAggregateNameExists
	}
	return nil
}

// GetAggregate reads an aggregate with its hosts and metadata.
func GetAggregate(ctx context.Context, q db.Querier, id int64) (Aggregate, error) {
	var a Aggregate
	var created, updated int64
	err := q.QueryRow(ctx, `SELECT id, uuid, name, created_at, updated_at FROM aggregates WHERE id = ?`, id).
		Scan(&a.ID, &a.UUID, &a.Name, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return a, ErrNotFound
	}
	if err != nil {
		return a, fmt.Errorf("aggregate %d: %w", id, err)
	}
	a.CreatedAt = db.FromMicros(created)
	if updated != 0 {
		a.UpdatedAt = db.FromMicros(updated)
	}
	all := []*Aggregate{&a}
	return a, loadAggregateParts(ctx, q, all)
}

// ListAggregates reads every aggregate, by id.
func ListAggregates(ctx context.Context, q db.Querier) ([]Aggregate, error) {
	out, err := db.Collect(ctx, q, func(r db.Scanner) (Aggregate, error) {
		var a Aggregate
		var created, updated int64
		err := r.Scan(&a.ID, &a.UUID, &a.Name, &created, &updated)
		a.CreatedAt = db.FromMicros(created)
		if updated != 0 {
			a.UpdatedAt = db.FromMicros(updated)
		}
		return a, err
	}, `SELECT id, uuid, name, created_at, updated_at FROM aggregates ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("aggregates: %w", err)
	}
	ptrs := make([]*Aggregate, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	return out, loadAggregateParts(ctx, q, ptrs)
}

// loadAggregateParts reads the hosts (in the order they were added) and
// metadata of aggs.
func loadAggregateParts(ctx context.Context, q db.Querier, aggs []*Aggregate) error {
	byID := map[int64]*Aggregate{}
	for _, a := range aggs {
		a.Hosts = []AggregateHost{}
		a.Metadata = map[string]string{}
		byID[a.ID] = a
	}
	if len(aggs) == 0 {
		return nil
	}
	type hostRow struct {
		id int64
		h  AggregateHost
	}
	hosts, err := db.Collect(ctx, q, func(r db.Scanner) (hostRow, error) {
		var x hostRow
		return x, r.Scan(&x.id, &x.h.Cell, &x.h.Host)
	}, `SELECT aggregate_id, cell, host FROM aggregate_hosts ORDER BY aggregate_id, id`)
	if err != nil {
		return fmt.Errorf("aggregate hosts: %w", err)
	}
	for _, x := range hosts {
		if a := byID[x.id]; a != nil {
			a.Hosts = append(a.Hosts, x.h)
		}
	}
	type metaRow struct {
		id   int64
		k, v string
	}
	meta, err := db.Collect(ctx, q, func(r db.Scanner) (metaRow, error) {
		var x metaRow
		return x, r.Scan(&x.id, &x.k, &x.v)
	}, `SELECT aggregate_id, key, value FROM aggregate_metadata`)
	if err != nil {
		return fmt.Errorf("aggregate metadata: %w", err)
	}
	for _, x := range meta {
		if a := byID[x.id]; a != nil {
			a.Metadata[x.k] = x.v
		}
	}
	return nil
}

// RenameAggregate gives an aggregate a new name.
func RenameAggregate(ctx context.Context, tx *db.Tx, id int64, name string, now time.Time) error {
	if err := nameFree(ctx, tx, name, id); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE aggregates SET name = ?, updated_at = ? WHERE id = ?`, name, db.Micros(now), id)
	if db.IsUniqueViolation(err) {
		return ErrAggregateNameExists
	}
	if err != nil {
		return fmt.Errorf("rename aggregate %d: %w", id, err)
	}
	return nil
}

// UpdateAggregateMetadata sets the keys of updates to their values and
// deletes those whose value is nil (a key it does not have is no error).
func UpdateAggregateMetadata(ctx context.Context, tx *db.Tx, id int64, updates map[string]*string, now time.Time) error {
	keys := make([]string, 0, len(updates))
	for k := range updates {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		var err error
		if v := updates[k]; v == nil {
			_, err = tx.Exec(ctx, `DELETE FROM aggregate_metadata WHERE aggregate_id = ? AND key = ?`, id, k)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO aggregate_metadata (aggregate_id, key, value) VALUES (?, ?, ?)
				ON CONFLICT (aggregate_id, key) DO UPDATE SET value = excluded.value`, id, k, *v)
		}
		if err != nil {
			return fmt.Errorf("aggregate %d metadata %q: %w", id, k, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE aggregates SET updated_at = ? WHERE id = ?`, db.Micros(now), id); err != nil {
		return fmt.Errorf("aggregate %d: %w", id, err)
	}
	return nil
}

// AddAggregateHost adds a host to an aggregate.
func AddAggregateHost(ctx context.Context, tx *db.Tx, id int64, h AggregateHost) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM aggregate_hosts WHERE aggregate_id = ? AND cell = ? AND host = ?`,
		id, h.Cell, h.Host).Scan(&n); err != nil {
		return fmt.Errorf("aggregate %d host: %w", id, err)
	}
	if n > 0 {
		return ErrAggregateHostExists
	}
	_, err := tx.Exec(ctx, `INSERT INTO aggregate_hosts (aggregate_id, cell, host) VALUES (?, ?, ?)`, id, h.Cell, h.Host)
	if db.IsUniqueViolation(err) {
		return ErrAggregateHostExists
	}
	if err != nil {
		return fmt.Errorf("aggregate %d host %s: %w", id, h.Host, err)
	}
	return nil
}

// RemoveAggregateHost removes a host from an aggregate; ErrNotFound when
// the aggregate does not have it.
func RemoveAggregateHost(ctx context.Context, tx *db.Tx, id int64, h AggregateHost) error {
	res, err := tx.Exec(ctx, `DELETE FROM aggregate_hosts WHERE aggregate_id = ? AND cell = ? AND host = ?`, id, h.Cell, h.Host)
	if err != nil {
		return fmt.Errorf("aggregate %d host %s: %w", id, h.Host, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteAggregate deletes an aggregate and its metadata (its hosts too:
// the API refuses an aggregate that has any).
func DeleteAggregate(ctx context.Context, tx *db.Tx, id int64) error {
	for _, q := range []string{`DELETE FROM aggregate_metadata WHERE aggregate_id = ?`, `DELETE FROM aggregate_hosts WHERE aggregate_id = ?`} {
		if _, err := tx.Exec(ctx, q, id); err != nil {
			return fmt.Errorf("delete aggregate %d: %w", id, err)
		}
	}
	res, err := tx.Exec(ctx, `DELETE FROM aggregates WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete aggregate %d: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return ErrNotFound
	}
	return nil
}

// HostZones are the availability zones of hosts, from the aggregates that
// have both the host and a zone, by host; a host in none is absent.
func HostZones(ctx context.Context, q db.Querier) (map[AggregateHost][]string, error) {
	type row struct {
		h AggregateHost
		z string
	}
	rows, err := db.Collect(ctx, q, func(r db.Scanner) (row, error) {
		var x row
		return x, r.Scan(&x.h.Cell, &x.h.Host, &x.z)
	}, `SELECT DISTINCT h.cell, h.host, m.value FROM aggregate_hosts h
		JOIN aggregate_metadata m ON m.aggregate_id = h.aggregate_id AND m.key = ?
		ORDER BY h.cell, h.host, m.value`, AZKey)
	if err != nil {
		return nil, fmt.Errorf("host zones: %w", err)
	}
	out := map[AggregateHost][]string{}
	for _, x := range rows {
		out[x.h] = append(out[x.h], x.z)
	}
	return out, nil
}

// OtherZones are the zones of the aggregates other than id that have
// one of hosts and a zone, one per aggregate, by aggregate id.
func OtherZones(ctx context.Context, q db.Querier, id int64, hosts []AggregateHost) ([]string, error) {
	type row struct {
		id int64
		h  AggregateHost
		z  string
	}
	rows, err := db.Collect(ctx, q, func(r db.Scanner) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.h.Cell, &x.h.Host, &x.z)
	}, `SELECT h.aggregate_id, h.cell, h.host, m.value FROM aggregate_hosts h
		JOIN aggregate_metadata m ON m.aggregate_id = h.aggregate_id AND m.key = ?
		WHERE h.aggregate_id <> ? ORDER BY h.aggregate_id`, AZKey, id)
	if err != nil {
		return nil, fmt.Errorf("zones of hosts: %w", err)
	}
	var out []string
	seen := map[int64]bool{}
	for _, x := range rows {
		if !seen[x.id] && slices.Contains(hosts, x.h) {
			seen[x.id] = true
			out = append(out, x.z)
		}
	}
	return out, nil
}

// CountHostInstances counts the instances (not deleted) on hosts.
func CountHostInstances(ctx context.Context, q db.Querier, hosts []AggregateHost) (int, error) {
	total := 0
	for _, h := range hosts {
		var n int
		if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE cell_path = ? AND host = ? AND deleted = 0`,
			h.Cell, h.Host).Scan(&n); err != nil {
			return 0, fmt.Errorf("instances on %s: %w", h.Host, err)
		}
		total += n
	}
	return total, nil
}

// RemoveHostFromAggregates takes a host out of every aggregate (its
// compute service was deleted); it returns the ids of those it was in.
func RemoveHostFromAggregates(ctx context.Context, tx *db.Tx, h AggregateHost) ([]int64, error) {
	ids, err := db.Collect(ctx, tx, func(r db.Scanner) (int64, error) {
		var id int64
		return id, r.Scan(&id)
	}, `SELECT aggregate_id FROM aggregate_hosts WHERE cell = ? AND host = ? ORDER BY aggregate_id`, h.Cell, h.Host)
	if err != nil {
		return nil, fmt.Errorf("aggregates of %s: %w", h.Host, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM aggregate_hosts WHERE cell = ? AND host = ?`, h.Cell, h.Host); err != nil {
		return nil, fmt.Errorf("aggregates of %s: %w", h.Host, err)
	}
	return ids, nil
}
