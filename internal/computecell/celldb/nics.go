package celldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// An instance's NICs (BuildContext.NICs) are what its ports' security
// groups are enforced by: a port_update, an interface attached or detached
// rewrite them (package network). They are not part of the state the API
// cell's copy shows, so writing them bumps no version.

// BuildForUpdate reads a live instance's build context in tx and, on
// PostgreSQL, locks its row until tx ends, so that a read-modify-write of
// its NICs cannot lose a concurrent one (a SQLite transaction here holds
// the write lock from its start). It is ErrNotFound for an instance that
// is not here or is deleted.
func BuildForUpdate(ctx context.Context, tx *db.Tx, uuid string) (*BuildContext, error) {
	q := `SELECT build FROM instances WHERE uuid = ? AND deleted = 0`
	if tx.Dialect == db.Postgres {
		q += " FOR UPDATE"
	}
	var raw string
	err := tx.QueryRow(ctx, q, uuid).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, uuid)
	}
	if err != nil {
		return nil, fmt.Errorf("read the build of %s: %w", uuid, err)
	}
	var b BuildContext
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			return nil, fmt.Errorf("decode the build of %s: %w", uuid, err)
		}
	}
	return &b, nil
}

// SetBuild writes an instance's build context (its NICs) as it is, with no
// version bump.
func SetBuild(ctx context.Context, tx *db.Tx, uuid string, b *BuildContext) error {
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE instances SET build = ? WHERE uuid = ?`, string(raw), uuid); err != nil {
		return fmt.Errorf("write the build of %s: %w", uuid, err)
	}
	return nil
}

// GroupNICs returns the NICs of the live instances that name security
// groups, in one query (instances whose NICs name none are not decoded).
func GroupNICs(ctx context.Context, q Querier) ([]wire.NIC, error) {
	rows, err := q.Query(ctx, `SELECT build FROM instances WHERE deleted = 0 AND build LIKE ?`, `%"security_groups"%`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wire.NIC
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var b BuildContext
		if err := json.Unmarshal([]byte(raw), &b); err != nil {
			continue // not this package's to mend; the instance names no group we can read
		}
		out = append(out, b.Enforced()...)
	}
	return out, rows.Err()
}
