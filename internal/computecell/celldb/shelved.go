package celldb

import (
	"context"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// ShelvedBefore lists (at most limit) live SHELVED instances with no task
// and no pending action, last changed (shelved) before cutoff, oldest
// first: those the offload after compute.shelved_offload_time takes off
// their hosts. It reads them through the partial index instances_shelved;
// the task state and action are compared as expressions (concatenated
// with the empty string) to keep SQLite's planner off instances_task and
// instances_action, which hold every idle instance.
func ShelvedBefore(ctx context.Context, q Querier, cutoff time.Time, limit int) ([]string, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var u string
		return u, r.Scan(&u)
	}, `SELECT uuid FROM instances WHERE vm_state = 'shelved' AND deleted = 0 AND updated_at < ? AND task_state || '' = '' AND action || '' = ''
		ORDER BY updated_at LIMIT ?`, db.Micros(cutoff), limit)
}
