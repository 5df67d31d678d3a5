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
}

// ApplyHostMappings records the mappings a cell sent.
func ApplyHostMappings(ctx context.Context, tx *db.Tx, m wire.HostMappings, now time.Time) error {
	for _, x := range m.Set {
		_, err := tx.Exec(ctx, `INSERT INTO host_mappings (uuid, cell, kind, host, binary_name, updated_at) VALUES (?, ?, ?, ?, ?, ?)
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
	err := q.QueryRow(ctx, `SELECT uuid, cell, kind, host, binary_name FROM host_mappings WHERE uuid = ? AND kind = ?`, uuid, kind).
		Scan(&m.UUID, &m.Cell, &m.Kind, &m.Host, &m.Binary)
	if errors.Is(err, sql.ErrNoRows) {
		return m, ErrNotFound
	}
	return m, err
}

// HostCells lists the cells that have a host of that name.
func HostCells(ctx context.Context, q db.Querier, host string) ([]string, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var c string
		return c, r.Scan(&c)
	}, `SELECT DISTINCT cell FROM host_mappings WHERE host = ? ORDER BY cell`, host)
}

// CellComputeHosts lists the hosts of a cell's compute services.
func CellComputeHosts(ctx context.Context, q db.Querier, cell string) ([]string, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var h string
		return h, r.Scan(&h)
	}, `SELECT host FROM host_mappings WHERE cell = ? AND kind = ? AND binary_name = 'nova-compute' ORDER BY host`, cell, wire.MappingService)
}
