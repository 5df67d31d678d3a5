// Package outbox keeps the messages a cell has committed to send, in the
// cell's own database, in the same transaction as the change that caused
// them. The cells service relays them to the neighbour's broker and deletes
// them once the broker has stored them, so nothing is lost when a neighbour
// (or this process) is down; a build to a child it keeps, marked sent,
// until the child shows it is alive or the build is placed elsewhere. It
// also records the ids of the messages a cell has applied, so a message
// delivered twice takes effect once.
package outbox

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Migrations is the outbox's schema, the same in every cell.
var Migrations = []db.Migration{
	{Version: 1, Name: "outbox and applied messages", SQL: `
CREATE TABLE outbox (
	seq {{serial}},
	neighbour TEXT NOT NULL,
	msg_id TEXT NOT NULL,
	method TEXT NOT NULL,
	body {{blob}} NOT NULL,
	created_at {{bigint}} NOT NULL
);
CREATE INDEX outbox_neighbour_seq ON outbox (neighbour, seq);
CREATE TABLE applied_messages (
	msg_id TEXT PRIMARY KEY,
	method TEXT NOT NULL,
	applied_at {{bigint}} NOT NULL
);
CREATE INDEX applied_messages_at ON applied_messages (applied_at)`},
	// sent_at marks a build kept after the next hop's broker stored it
	// (MarkSent), until its cell shows it is alive (PruneSent) or the
	// build is placed elsewhere (TakeStale).
	{Version: 2, Name: "builds kept once sent", SQL: `ALTER TABLE outbox ADD COLUMN sent_at {{bigint}}`},
	// The relay reads only messages not yet sent (Neighbours, Pending):
	// an index of those alone, in order, spares it the kept builds and
	// the rows deleted since the last vacuum, and the sort.
	{Version: 3, Name: "index of the messages not yet sent", SQL: `CREATE INDEX outbox_unsent ON outbox (neighbour, seq) WHERE sent_at IS NULL`},
}

// Enqueue adds env to the outbox for the neighbour it goes to next, inside
// tx. The message leaves only if tx commits.
func Enqueue(ctx context.Context, tx *db.Tx, neighbour string, env *wire.Envelope) error {
	b, err := json.Marshal(env)
	if err != nil {
		return fmt.Errorf("outbox: encode %s: %w", env.Method, err)
	}
	if len(b) > wire.MaxSize {
		return fmt.Errorf("outbox: %s message is %d bytes, over the %d byte limit", env.Method, len(b), wire.MaxSize)
	}
	// Sent with the transaction's next statement or its commit.
	err = tx.ExecLater(ctx, `INSERT INTO outbox (neighbour, msg_id, method, body, created_at) VALUES (?, ?, ?, ?, ?)`,
		neighbour, env.ID, env.Method, b, time.Now().UnixMicro())
	if err != nil {
		return fmt.Errorf("outbox: enqueue %s for %s: %w", env.Method, neighbour, err)
	}
	return nil
}

// Entry is a queued message.
type Entry struct {
	Seq       int64
	Neighbour string
	MsgID     string
	Method    string
	Body      []byte
	CreatedAt time.Time
}

// Pending returns up to limit messages queued for a neighbour and not yet
// sent, oldest first.
func Pending(ctx context.Context, d *db.DB, neighbour string, limit int) ([]Entry, error) {
	rows, err := d.Query(ctx, `SELECT seq, msg_id, method, body, created_at FROM outbox WHERE neighbour = ? AND sent_at IS NULL ORDER BY seq LIMIT ?`, neighbour, limit)
	if err != nil {
		return nil, fmt.Errorf("outbox: read: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e := Entry{Neighbour: neighbour}
		var at int64
		if err := rows.Scan(&e.Seq, &e.MsgID, &e.Method, &e.Body, &at); err != nil {
			return nil, fmt.Errorf("outbox: read: %w", err)
		}
		e.CreatedAt = db.FromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Unsent returns, in one statement, every message not yet sent, by
// neighbour and oldest first, with how many each neighbour has, when
// there are at most limit of them all: what Neighbours and Pending for
// each would return. When there are more, complete is false and nothing
// is returned: the caller reads them neighbour by neighbour.
func Unsent(ctx context.Context, d *db.DB, limit int) (byNeighbour map[string][]Entry, complete bool, err error) {
	rows, err := d.Query(ctx, `SELECT seq, neighbour, msg_id, method, body, created_at FROM outbox WHERE sent_at IS NULL LIMIT ?`, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("outbox: read: %w", err)
	}
	defer rows.Close()
	byNeighbour = map[string][]Entry{}
	n := 0
	for rows.Next() {
		if n++; n > limit {
			return nil, false, nil
		}
		var e Entry
		var at int64
		if err := rows.Scan(&e.Seq, &e.Neighbour, &e.MsgID, &e.Method, &e.Body, &at); err != nil {
			return nil, false, fmt.Errorf("outbox: read: %w", err)
		}
		e.CreatedAt = db.FromMicros(at)
		byNeighbour[e.Neighbour] = append(byNeighbour[e.Neighbour], e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("outbox: read: %w", err)
	}
	for _, es := range byNeighbour {
		slices.SortFunc(es, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	return byNeighbour, true, nil
}

// Neighbours lists the neighbours that have messages queued and not yet
// sent, with counts.
func Neighbours(ctx context.Context, d *db.DB) (map[string]int, error) {
	rows, err := d.Query(ctx, `SELECT neighbour, COUNT(*) FROM outbox WHERE sent_at IS NULL GROUP BY neighbour`)
	if err != nil {
		return nil, fmt.Errorf("outbox: count: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var n string
		var c int
		if err := rows.Scan(&n, &c); err != nil {
			return nil, err
		}
		out[n] = c
	}
	return out, rows.Err()
}

// Delete removes relayed messages.
func Delete(ctx context.Context, d *db.DB, seqs []int64) error {
	return bySeq(ctx, d, "DELETE FROM outbox", nil, seqs, "delete")
}

// MarkSent keeps relayed messages, marked sent at at: Pending and
// Neighbours no longer return them, so they are not relayed again. They
// stay until PruneSent or TakeStale removes them.
func MarkSent(ctx context.Context, d *db.DB, seqs []int64, at time.Time) error {
	return bySeq(ctx, d, "UPDATE outbox SET sent_at = ?", []any{at.UnixMicro()}, seqs, "mark sent")
}

// bySeq runs stmt, with args first, on the rows of seqs, 500 at a time.
func bySeq(ctx context.Context, d *db.DB, stmt string, args []any, seqs []int64, what string) error {
	for len(seqs) > 0 {
		n := min(len(seqs), 500)
		q := stmt + " WHERE seq IN (?" + repeat(",?", n-1) + ")"
		a := make([]any, 0, len(args)+n)
		a = append(a, args...)
		for _, s := range seqs[:n] {
			a = append(a, s)
		}
		if _, err := d.Exec(ctx, q, a...); err != nil {
			return fmt.Errorf("outbox: %s: %w", what, err)
		}
		seqs = seqs[n:]
	}
	return nil
}

// PruneSent removes, in one statement, the sent messages of each neighbour
// of before that were sent before its time there. It returns how many.
func PruneSent(ctx context.Context, d *db.DB, before map[string]time.Time) (int64, error) {
	if len(before) == 0 {
		return 0, nil
	}
	q := make([]byte, 0, 64+40*len(before))
	q = append(q, "DELETE FROM outbox WHERE sent_at IS NOT NULL AND ("...)
	args := make([]any, 0, 2*len(before))
	for _, nb := range slices.Sorted(maps.Keys(before)) {
		if len(args) > 0 {
			q = append(q, " OR "...)
		}
		q = append(q, "(neighbour = ? AND sent_at < ?)"...)
		args = append(args, nb, before[nb].UnixMicro())
	}
	q = append(q, ')')
	res, err := d.Exec(ctx, string(q), args...)
	if err != nil {
		return 0, fmt.Errorf("outbox: prune sent: %w", err)
	}
	return res.RowsAffected()
}

func repeat(s string, n int) string {
	b := make([]byte, 0, len(s)*n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

// MarkApplied records that msg id has been applied, inside the transaction
// that applies it. It returns false when the id was applied before: the
// caller must then do nothing (and may commit or roll back).
func MarkApplied(ctx context.Context, tx *db.Tx, id, method string) (bool, error) {
	var q string
	if tx.Dialect == db.Postgres {
		q = `INSERT INTO applied_messages (msg_id, method, applied_at) VALUES (?, ?, ?) ON CONFLICT (msg_id) DO NOTHING`
	} else {
		q = `INSERT OR IGNORE INTO applied_messages (msg_id, method, applied_at) VALUES (?, ?, ?)`
	}
	res, err := tx.Exec(ctx, q, id, method, time.Now().UnixMicro())
	if err != nil {
		return false, fmt.Errorf("outbox: mark %s applied: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// Applied is a message MarkAppliedMany records.
type Applied struct{ ID, Method string }

// MarkAppliedMany records several messages as applied in one statement,
// inside the transaction that applies them, and reports for each whether
// it is fresh: false when its id was applied before, or is an earlier
// message's of the same call (a message delivered twice in one batch
// takes effect once).
func MarkAppliedMany(ctx context.Context, tx *db.Tx, ms []Applied) ([]bool, error) {
	fresh := make([]bool, len(ms))
	if len(ms) == 0 {
		return fresh, nil
	}
	now := time.Now().UnixMicro()
	q := make([]byte, 0, 96+12*len(ms))
	args := make([]any, 0, 3*len(ms))
	if tx.Dialect == db.Postgres {
		q = append(q, "INSERT INTO applied_messages (msg_id, method, applied_at) VALUES "...)
	} else {
		q = append(q, "INSERT OR IGNORE INTO applied_messages (msg_id, method, applied_at) VALUES "...)
	}
	for i, m := range ms {
		if i > 0 {
			q = append(q, ", "...)
		}
		q = append(q, "(?, ?, ?)"...)
		args = append(args, m.ID, m.Method, now)
	}
	if tx.Dialect == db.Postgres {
		q = append(q, " ON CONFLICT (msg_id) DO NOTHING"...)
	}
	q = append(q, " RETURNING msg_id"...)
	rows, err := tx.Query(ctx, string(q), args...)
	if err != nil {
		return nil, fmt.Errorf("outbox: mark %d messages applied: %w", len(ms), err)
	}
	defer rows.Close()
	inserted := make(map[string]bool, len(ms))
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("outbox: mark %d messages applied: %w", len(ms), err)
		}
		inserted[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: mark %d messages applied: %w", len(ms), err)
	}
	for i, m := range ms {
		// The first of an id inserted is fresh; a repeat after it is not.
		fresh[i] = inserted[m.ID]
		delete(inserted, m.ID)
	}
	return fresh, nil
}

// PruneApplied forgets applied ids older than before. A message older than
// the broker's redelivery horizon cannot come again.
func PruneApplied(ctx context.Context, d *db.DB, before time.Time) (int64, error) {
	res, err := d.Exec(ctx, `DELETE FROM applied_messages WHERE applied_at < ?`, before.UnixMicro())
	if err != nil {
		return 0, fmt.Errorf("outbox: prune: %w", err)
	}
	return res.RowsAffected()
}

// TakeStale removes, inside tx, the messages of one method for a
// neighbour that are either not sent and queued before before, or sent
// before sentBefore (none when it is zero), and returns them, oldest
// first. It is one statement, so a message is taken once: by this or by
// the relay's Delete or MarkSent after the neighbour's broker stored it,
// or PruneSent, whichever commits first.
func TakeStale(ctx context.Context, tx *db.Tx, neighbour, method string, before, sentBefore time.Time) ([]Entry, error) {
	var sent int64 // sent_at is never below 0: takes no sent message
	if !sentBefore.IsZero() {
		sent = sentBefore.UnixMicro()
	}
	rows, err := tx.Query(ctx, `DELETE FROM outbox WHERE neighbour = ? AND method = ?
		AND ((sent_at IS NULL AND created_at < ?) OR sent_at < ?)
		RETURNING seq, msg_id, body, created_at`, neighbour, method, before.UnixMicro(), sent)
	if err != nil {
		return nil, fmt.Errorf("outbox: take %s for %s: %w", method, neighbour, err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e := Entry{Neighbour: neighbour, Method: method}
		var at int64
		if err := rows.Scan(&e.Seq, &e.MsgID, &e.Body, &at); err != nil {
			return nil, fmt.Errorf("outbox: take: %w", err)
		}
		e.CreatedAt = db.FromMicros(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: take: %w", err)
	}
	slices.SortFunc(out, func(a, b Entry) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}
