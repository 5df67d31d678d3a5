package apidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// HostMapping says which cell holds a service or compute node (by UUID)
// or a host (by name). The API cell keeps it from the cells' host_mappings
// messages, so that a request for one goes to its cell alone.
type HostMapping struct {
	wire.HostMapping
	Cell string
	// Num is the integer id the service or hypervisor has below
	// microversion 2.53, unique in the cloud.
	Num int64
}

// ApplyHostMappings records the mappings a cell sent.
func ApplyHostMappings(ctx context.Context, tx *db.Tx, m wire.HostMappings, now time.Time) error {
	for _, x := range m.Set {
		// A new mapping takes the next number; one already held keeps its
		// own. (Two API processes numbering at once on PostgreSQL collide
		// on host_mappings_num: the message is applied again.)
		err := tx.ExecLater(ctx, `INSERT INTO host_mappings (uuid, cell, kind, host, binary_name, updated_at, num)
			VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(num), 0) + 1 FROM host_mappings))
			ON CONFLICT (uuid) DO UPDATE SET cell = excluded.cell, kind = excluded.kind, host = excluded.host,
			binary_name = excluded.binary_name, updated_at = excluded.updated_at`,
			x.UUID, m.Cell, x.Kind, x.Host, x.Binary, db.Micros(now))
		if err != nil {
			return fmt.Errorf("host mapping %s: %w", x.UUID, err)
		}
	}
	for _, u := range m.Removed {
		if _, err := tx.Exec(ctx, `DELETE FROM host_mappings WHERE uuid = ? AND cell = ?`, u, m.Cell); err != nil {
			return fmt.Errorf("host mapping %s: %w", u, err)
		}
	}
	return nil
}

// GetHostMapping reads the mapping of a UUID of the given kind.
func GetHostMapping(ctx context.Context, q db.Querier, uuid, kind string) (HostMapping, error) {
	var m HostMapping
	err := q.QueryRow(ctx, `SELECT uuid, cell, kind, host, binary_name, num FROM host_mappings WHERE uuid = ? AND kind = ?`, uuid, kind).
		Scan(&m.UUID, &m.Cell, &m.Kind, &m.Host, &m.Binary, &m.Num)
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	return m, err
}

// GetHostMappingByNum reads the mapping of a service or hypervisor by its
// integer id.
func GetHostMappingByNum(ctx context.Context, q db.Querier, num int64, kind string) (HostMapping, error) {
	var m HostMapping
	err := q.QueryRow(ctx, `SELECT uuid, cell, kind, host, binary_name, num FROM host_mappings WHERE num = ? AND kind = ?`, num, kind).
		Scan(&m.UUID, &m.Cell, &m.Kind, &m.Host, &m.Binary, &m.Num)
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	return m, err
}

// HostMappingNums returns the integer ids of the mapped UUIDs among uuids.
func HostMappingNums(ctx context.Context, q db.Querier, uuids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(uuids))
	for len(uuids) > 0 {
		n := min(len(uuids), 500)
		args := make([]any, n)
		for i, u := range uuids[:n] {
			args[i] = u
		}
		rows, err := q.Query(ctx, `SELECT uuid, num FROM host_mappings WHERE uuid IN (`+placeholders(n)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("host mapping numbers: %w", err)
		}
		for rows.Next() {
			var u string
			var num int64
			if err := rows.Scan(&u, &num); err != nil {
				rows.Close()
				return nil, err
			}
			out[u] = num
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		uuids = uuids[n:]
	}
	return out, nil
}

// HostCells lists the cells that have a host of that name.
func HostCells(ctx context.Context, q db.Querier, host string) ([]string, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var c string
		return c, r.Scan(&c)
	}, `SELECT DISTINCT cell FROM host_mappings WHERE host = ? ORDER BY cell`, host)
}

// NodeCells lists the cells that have a compute node (a hypervisor) of
// that name. A host's one node has the host's name, which its mapping
// carries.
func NodeCells(ctx context.Context, q db.Querier, node string) ([]string, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var c string
		return c, r.Scan(&c)
	}, `SELECT DISTINCT cell FROM host_mappings WHERE kind = ? AND host = ? ORDER BY cell`, wire.MappingHypervisor, node)
}

// CellComputeHosts lists the hosts of a cell's compute services.
func CellComputeHosts(ctx context.Context, q db.Querier, cell string) ([]string, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var h string
		return h, r.Scan(&h)
	}, `SELECT host FROM host_mappings WHERE cell = ? AND kind = ? AND binary_name = 'nova-compute' ORDER BY host`, cell, wire.MappingService)
}
