package celldb

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// TaskUsageAudit is the task log name of the instance usage audit.
const TaskUsageAudit = "instance_usage_audit"

// TaskLog is a row of the task log: one host's run of a periodic task for
// one period.
type TaskLog struct {
	Host    string
	State   string // RUNNING or DONE
	Message string
	Items   int
	Errors  int
	Begin   time.Time
	End     time.Time
}

// AuditHost runs the usage audit of one host for [begin, end): it counts
// the instances that lived on the host in the period (deleted ones too)
// and records the run in the task log. A host audits a period once; ran
// is false when it already had.
func AuditHost(ctx context.Context, d *db.DB, host string, begin, end time.Time, now func() time.Time) (ran bool, err error) {
	err = d.InTx(ctx, func(tx *db.Tx) error {
		started := now()
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM task_log WHERE task_name = ? AND host = ? AND period_beginning = ? AND period_ending = ?`,
			TaskUsageAudit, host, db.Micros(begin), db.Micros(end)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		var items int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE host = ? AND launched_at > 0 AND launched_at < ?
			AND (deleted = 0 OR deleted_at > ?)`, host, db.Micros(end), db.Micros(begin)).Scan(&items); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO task_log (task_name, state, host, period_beginning, period_ending, message, task_items, errors, created_at, updated_at)
			VALUES (?, 'RUNNING', ?, ?, ?, 'Instance usage audit started...', ?, 0, ?, ?)`,
			TaskUsageAudit, host, db.Micros(begin), db.Micros(end), items, db.Micros(started), db.Micros(started)); err != nil {
			return fmt.Errorf("task log of %s: %w", host, err)
		}
		done := now()
		msg := fmt.Sprintf("Instance usage audit ran for host %s, %d instances in %s seconds.", host, items,
			strconv.FormatFloat(done.Sub(started).Seconds(), 'f', -1, 64))
		if _, err := tx.Exec(ctx, `UPDATE task_log SET state = 'DONE', message = ?, updated_at = ? WHERE task_name = ? AND host = ?
			AND period_beginning = ? AND period_ending = ?`, msg, db.Micros(done), TaskUsageAudit, host, db.Micros(begin), db.Micros(end)); err != nil {
			return err
		}
		ran = true
		return nil
	})
	return ran, err
}

// TaskLogs reads the usage audit's task log for one period.
func TaskLogs(ctx context.Context, q Querier, begin, end time.Time) ([]TaskLog, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (TaskLog, error) {
		var t TaskLog
		var b, e int64
		err := r.Scan(&t.Host, &t.State, &t.Message, &t.Items, &t.Errors, &b, &e)
		t.Begin, t.End = db.FromMicros(b), db.FromMicros(e)
		return t, err
	}, `SELECT host, state, message, task_items, errors, period_beginning, period_ending FROM task_log
		WHERE task_name = ? AND period_beginning = ? AND period_ending = ? ORDER BY host`, TaskUsageAudit, db.Micros(begin), db.Micros(end))
}
