package celldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Migration is a resize or cold migration of an instance inside the cell.
type Migration struct {
	ID           int64
	InstanceUUID string
	Type         string // "resize" or "migration"
	SourceHost   string
	DestHost     string
	OldFlavor    wire.Flavor
	NewFlavor    wire.Flavor
	OldVMState   string
	Status       string // migrating, finished, confirmed, reverted, error, deleted
}

// DestClaimKey is the claim a resize holds on its destination host until it
// is confirmed (then it becomes the instance's claim) or reverted.
func DestClaimKey(uuid string) string { return uuid + "#dest" }

// CreateMigration records a migration.
func CreateMigration(ctx context.Context, tx *db.Tx, m Migration, now time.Time) (int64, error) {
	oldF, _ := json.Marshal(m.OldFlavor)
	newF, _ := json.Marshal(m.NewFlavor)
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO migrations (instance_uuid, migration_type, source_host, dest_host, old_flavor, new_flavor,
		old_vm_state, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		m.InstanceUUID, m.Type, m.SourceHost, m.DestHost, string(oldF), string(newF), m.OldVMState, m.Status, db.Micros(now), db.Micros(now)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record migration of %s: %w", m.InstanceUUID, err)
	}
	return id, nil
}

// OpenMigration returns the instance's migration waiting for confirm or revert.
func OpenMigration(ctx context.Context, q Querier, uuid string) (*Migration, error) {
	return migrationIn(ctx, q, uuid, "finished", "finished")
}

// ActiveMigration returns the instance's migration still under way or
// waiting for confirm or revert.
func ActiveMigration(ctx context.Context, q Querier, uuid string) (*Migration, error) {
	return migrationIn(ctx, q, uuid, "migrating", "finished")
}

func migrationIn(ctx context.Context, q Querier, uuid, s1, s2 string) (*Migration, error) {
	var m Migration
	var oldF, newF string
	err := q.QueryRow(ctx, `SELECT id, instance_uuid, migration_type, source_host, dest_host, old_flavor, new_flavor, old_vm_state, status
		FROM migrations WHERE instance_uuid = ? AND status IN (?, ?) ORDER BY id DESC LIMIT 1`, uuid, s1, s2).Scan(
		&m.ID, &m.InstanceUUID, &m.Type, &m.SourceHost, &m.DestHost, &oldF, &newF, &m.OldVMState, &m.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no migration of %s waiting for confirmation", ErrNotFound, uuid)
	}
	if err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(oldF), &m.OldFlavor)
	_ = json.Unmarshal([]byte(newF), &m.NewFlavor)
	return &m, nil
}

// SetMigrationStatus moves a migration on.
func SetMigrationStatus(ctx context.Context, tx *db.Tx, id int64, status string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE migrations SET status = ?, updated_at = ? WHERE id = ?`, status, db.Micros(now), id)
	return err
}

// MoveClaim renames a claim (a confirmed resize's destination claim becomes
// the instance's own).
func MoveClaim(ctx context.Context, tx *db.Tx, from, to string) error {
	_, err := tx.Exec(ctx, `UPDATE claims SET instance_uuid = ? WHERE instance_uuid = ?`, to, from)
	return err
}
