package celldb

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// An early delete is a delete_instances for an instance the cell does not
// have yet: messages between cells can arrive out of order (a build whose
// relay or apply failed is sent or applied again after the delete that
// followed it), so the delete is kept until its build comes, and the build
// is deleted as it arrives.

// RecordEarlyDelete keeps a delete of an instance the cell does not have.
func RecordEarlyDelete(ctx context.Context, tx *db.Tx, uuid, requestID string, now time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO early_deletes (uuid, request_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT (uuid) DO NOTHING`, uuid, requestID, db.Micros(now))
	if err != nil {
		return fmt.Errorf("record early delete of %s: %w", uuid, err)
	}
	return nil
}

// TakeEarlyDeletes removes and returns the early deletes of these
// instances: the request id of each, by instance.
func TakeEarlyDeletes(ctx context.Context, tx *db.Tx, uuids []string) (map[string]string, error) {
	if len(uuids) == 0 {
		return nil, nil
	}
	args := make([]any, len(uuids))
	for i, u := range uuids {
		args[i] = u
	}
	rows, err := tx.Query(ctx, `DELETE FROM early_deletes WHERE uuid IN (?`+strings.Repeat(", ?", len(uuids)-1)+`) RETURNING uuid, request_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("take early deletes: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var u, rid string
		if err := rows.Scan(&u, &rid); err != nil {
			return nil, fmt.Errorf("take early deletes: %w", err)
		}
		out[u] = rid
	}
	return out, rows.Err()
}

// ListEarlyDeletes returns the early deletes kept: when each came, by
// instance.
func ListEarlyDeletes(ctx context.Context, q Querier) (map[string]time.Time, error) {
	rows, err := q.Query(ctx, `SELECT uuid, created_at FROM early_deletes`)
	if err != nil {
		return nil, fmt.Errorf("early deletes: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var u string
		var at int64
		if err := rows.Scan(&u, &at); err != nil {
			return nil, fmt.Errorf("early deletes: %w", err)
		}
		out[u] = db.FromMicros(at)
	}
	return out, rows.Err()
}

// PruneEarlyDeletes drops the early deletes kept since before: their
// builds went to another cell (a routing cell hears of deletes for the
// builds it passed down) or never came.
func PruneEarlyDeletes(ctx context.Context, d *db.DB, before time.Time) (int64, error) {
	res, err := d.Exec(ctx, `DELETE FROM early_deletes WHERE created_at < ?`, db.Micros(before))
	if err != nil {
		return 0, fmt.Errorf("prune early deletes: %w", err)
	}
	return res.RowsAffected()
}
