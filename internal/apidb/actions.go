package apidb

import (
	"context"
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
