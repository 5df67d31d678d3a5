package apidb

import (
	"context"
	"encoding/json"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// SetTaskState records, on the API cell's copy, the task state a server
// action has started, so the API shows it at once. It does not change the
// version: the owning cell's next update, which is newer, replaces it.
func SetTaskState(ctx context.Context, tx *db.Tx, uuid, task string, now time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET task_state = ?, updated_at = ? WHERE uuid = ? AND deleted = 0`, task, db.Micros(now), uuid)
	return err
}

// Rename changes the name and (when not nil) replaces the metadata of an
// instance's copy, as a rebuild with a name or metadata does.
func Rename(ctx context.Context, tx *db.Tx, uuid string, name *string, meta map[string]string, now time.Time) error {
	if name != nil {
		if _, err := tx.Exec(ctx, `UPDATE instances SET name = ?, updated_at = ? WHERE uuid = ?`, *name, db.Micros(now), uuid); err != nil {
			return err
		}
	}
	if meta != nil {
		b, _ := json.Marshal(meta)
		if _, err := tx.Exec(ctx, `UPDATE instances SET metadata = ?, updated_at = ? WHERE uuid = ?`, string(b), db.Micros(now), uuid); err != nil {
			return err
		}
	}
	return nil
}
