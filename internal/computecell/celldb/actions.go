package celldb

import (
	"context"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The pending action of an instance is the compute cell's work queue for
// server actions: the cells service sets it in the transaction that accepts
// the action, a worker carries it out and clears it, and a restarted
// process finds it still there.

// PendingAction is the server action an instance waits for: what, with
// which parameters, for which request. The zero value is none.
type PendingAction struct {
	Action    string
	Params    []byte
	RequestID string
}

// ClearAction removes the pending action without a change of state (the
// version stays); a change of state clears it with Change.Action.
func ClearAction(ctx context.Context, tx *db.Tx, uuid string) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET action = '', action_params = '', action_request_id = '' WHERE uuid = ?`, uuid)
	return err
}

// Pending is an instance with an action to carry out.
type Pending struct {
	UUID      string
	Action    string
	Params    []byte
	RequestID string
}

// PendingActions lists instances with a pending action, oldest change first.
func PendingActions(ctx context.Context, q Querier, limit int) ([]Pending, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (Pending, error) {
		var p Pending
		var params string
		err := r.Scan(&p.UUID, &p.Action, &params, &p.RequestID)
		p.Params = []byte(params)
		return p, err
	}, `SELECT uuid, action, action_params, action_request_id FROM instances WHERE action <> '' AND deleted = 0 ORDER BY updated_at LIMIT ?`, limit)
}

// StartAction records a new instance action and returns its id.
func StartAction(ctx context.Context, tx *db.Tx, a wire.ActionRecord) (int64, error) {
	return insertAction(ctx, tx, a, a.StartTime)
}

// StartActionWithEvent records a new instance action and the start of its
// first event, at the event's time.
func StartActionWithEvent(ctx context.Context, tx *db.Tx, a wire.ActionRecord, event, host string, at time.Time) error {
	if tx.Dialect == db.Postgres {
		// One statement, sent with the transaction's next: the event takes
		// the action's id inside it, so nothing waits for it (SQLite has
		// no INSERT in a WITH, and no round trip to save).
		if err := tx.ExecLater(ctx, `WITH a AS (INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id, message, start_time, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id)
			INSERT INTO instance_action_events (action_id, event, host, start_time) SELECT id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) FROM a`,
			a.UUID, a.Action, a.RequestID, a.UserID, a.ProjectID, a.Message, db.Micros(a.StartTime), db.Micros(at),
			event, host, db.Micros(at)); err != nil {
			return fmt.Errorf("record action %s on %s with event %s: %w", a.Action, a.UUID, event, err)
		}
		return nil
	}
	id, err := insertAction(ctx, tx, a, at)
	if err != nil {
		return err
	}
	if err := tx.ExecLater(ctx, `INSERT INTO instance_action_events (action_id, event, host, start_time) VALUES (?, ?, ?, ?)`,
		id, event, host, db.Micros(at)); err != nil {
		return fmt.Errorf("record event %s: %w", event, err)
	}
	return nil
}

// insertAction inserts an action last updated at updated.
func insertAction(ctx context.Context, tx *db.Tx, a wire.ActionRecord, updated time.Time) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO instance_actions (instance_uuid, action, request_id, user_id, project_id, message, start_time, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, a.UUID, a.Action, a.RequestID, a.UserID, a.ProjectID, a.Message,
		db.Micros(a.StartTime), db.Micros(updated)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record action %s on %s: %w", a.Action, a.UUID, err)
	}
	return id, nil
}

// StartEvent records the start of an event of an action.
func StartEvent(ctx context.Context, tx *db.Tx, actionID int64, event, host string, at time.Time) (int64, error) {
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO instance_action_events (action_id, event, host, start_time) VALUES (?, ?, ?, ?) RETURNING id`,
		actionID, event, host, db.Micros(at)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("record event %s: %w", event, err)
	}
	_, err = tx.Exec(ctx, `UPDATE instance_actions SET updated_at = ? WHERE id = ?`, db.Micros(at), actionID)
	return id, err
}

// ListActions returns an instance's actions, newest first, with events.
func ListActions(ctx context.Context, q Querier, uuid, requestID string) ([]wire.ActionRecord, error) {
	query := `SELECT id, action, instance_uuid, request_id, user_id, project_id, message, start_time, updated_at FROM instance_actions WHERE instance_uuid = ?`
	args := []any{uuid}
	if requestID != "" {
		query += ` AND request_id = ?`
		args = append(args, requestID)
	}
	query += ` ORDER BY start_time DESC, id DESC`
	type row struct {
		id int64
		a  wire.ActionRecord
	}
	rows, err := db.Collect(ctx, q, func(r db.Scanner) (row, error) {
		var x row
		var start, updated int64
		err := r.Scan(&x.id, &x.a.Action, &x.a.UUID, &x.a.RequestID, &x.a.UserID, &x.a.ProjectID, &x.a.Message, &start, &updated)
		x.a.StartTime, x.a.UpdatedAt = db.FromMicros(start), db.FromMicros(updated)
		return x, err
	}, query, args...)
	if err != nil {
		return nil, err
	}
	out := make([]wire.ActionRecord, 0, len(rows))
	for _, x := range rows {
		evs, err := db.Collect(ctx, q, func(r db.Scanner) (wire.EventRecord, error) {
			var e wire.EventRecord
			var start, finish int64
			err := r.Scan(&e.Event, &e.Host, &e.Result, &e.Traceback, &start, &finish)
			e.StartTime, e.FinishTime = db.FromMicros(start), db.FromMicros(finish)
			return e, err
		}, `SELECT event, host, result, traceback, start_time, finish_time FROM instance_action_events WHERE action_id = ? ORDER BY id`, x.id)
		if err != nil {
			return nil, err
		}
		x.a.Events = evs
		out = append(out, x.a)
	}
	return out, nil
}

// ActionEnd ends the latest action of an instance under a request
// (FinishAction): its unfinished events get the result (and the host,
// where they have none), and an "Error" marks the action.
type ActionEnd struct {
	RequestID, Result, Traceback, Host string
	At                                 time.Time
}

// FinishAction ends the latest action of the instance under requestID
// (ActionEnd); an instance with no such action changes nothing.
func FinishAction(ctx context.Context, tx *db.Tx, uuid, requestID, result, traceback, host string, at time.Time) error {
	e := ActionEnd{RequestID: requestID, Result: result, Traceback: traceback, Host: host, At: at}
	// The latest action of that request is found inside the statements, so
	// that ending it costs two statements (one on PostgreSQL), not three.
	const action = `(SELECT id FROM instance_actions WHERE instance_uuid = ? AND request_id = ? ORDER BY id DESC LIMIT 1)`
	if tx.Dialect == db.Postgres {
		// On PostgreSQL one statement: both updates see the same snapshot
		// and touch different tables.
		if err := tx.ExecLater(ctx, `WITH `+endActionCTEs("")+` SELECT 1`, e.args(uuid)...); err != nil {
			return fmt.Errorf("finish action %s on %s: %w", requestID, uuid, err)
		}
		return nil
	}
	if err := tx.ExecLater(ctx, `UPDATE instance_action_events SET result = ?, traceback = ?, finish_time = ?,
		host = CASE WHEN host = '' THEN ? ELSE host END WHERE action_id = `+action+` AND finish_time = 0`,
		result, traceback, db.Micros(at), host, uuid, requestID); err != nil {
		return fmt.Errorf("finish the events of %s on %s: %w", requestID, uuid, err)
	}
	if err := tx.ExecLater(ctx, `UPDATE instance_actions SET message = CASE WHEN ? = 'Error' THEN 'Error' ELSE message END, updated_at = ?
		WHERE id = `+action, result, db.Micros(at), uuid, requestID); err != nil {
		return fmt.Errorf("finish action %s on %s: %w", requestID, uuid, err)
	}
	return nil
}

// endActionCTEs are, on PostgreSQL, the common table expressions (ea, ee,
// ef) that end an action as FinishAction does, when cond (appended to the
// action's search: "" or " AND ...") holds; ActionEnd.args are their
// arguments.
func endActionCTEs(cond string) string {
	return `ea AS (SELECT id FROM instance_actions WHERE instance_uuid = ? AND request_id = ?` + cond + ` ORDER BY id DESC LIMIT 1),
		ee AS (UPDATE instance_action_events SET result = ?, traceback = ?, finish_time = ?,
			host = CASE WHEN host = '' THEN ? ELSE host END WHERE action_id = (SELECT id FROM ea) AND finish_time = 0),
		ef AS (UPDATE instance_actions SET message = CASE WHEN ? = 'Error' THEN 'Error' ELSE message END, updated_at = ?
			WHERE id = (SELECT id FROM ea))`
}

func (e ActionEnd) args(uuid string) []any {
	return []any{uuid, e.RequestID, e.Result, e.Traceback, db.Micros(e.At), e.Host, e.Result, db.Micros(e.At)}
}
