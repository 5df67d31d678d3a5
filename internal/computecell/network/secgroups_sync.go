package network

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The cell's security_groups_sync messages: asking for new groups (Want),
// the periodic Complete sync and the asking again of groups unanswered.

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Want asks the root, in tx, for the security groups the NICs' ports are
// in that the cell does not hold: it inserts their rows (revision 0, asked
// now) and sends one security_groups_sync for them. A NIC with
// PortRevision 0 (from an API cell that does not send groups) names none.
// When this process knows the cell holds them all, it costs no statement;
// a group the cell has a row of already (asked by another transaction, or
// before this process started) is not asked again.
func (s *SecGroups) Want(ctx context.Context, tx *db.Tx, requestID string, nics []wire.NIC) error {
	return s.ask(ctx, tx, requestID, s.notHeld(nics))
}

// notHeld returns the groups of the NICs this process does not know the
// cell holds, sorted, each once.
func (s *SecGroups) notHeld(nics []wire.NIC) []string {
	var out []string
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range nics {
		if n.PortRevision <= 0 {
			continue
		}
		for _, g := range n.SecurityGroups {
			if _, ok := s.held[g]; !ok && g != "" && !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	slices.Sort(out)
	return out
}

// groupBatch is how many groups one statement inserts.
const groupBatch = 200

func (s *SecGroups) ask(ctx context.Context, tx *db.Tx, requestID string, groups []string) error {
	if len(groups) == 0 {
		return nil
	}
	now := db.Micros(s.cfg.Now())
	var fresh []string
	for rest := groups; len(rest) > 0; {
		n := min(len(rest), groupBatch)
		args := make([]any, 0, 2*n)
		for _, g := range rest[:n] {
			args = append(args, g, now)
		}
		rows, err := tx.Query(ctx, `INSERT INTO sg_groups (id, asked_at) VALUES `+strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ")+
			` ON CONFLICT (id) DO NOTHING RETURNING id`, args...)
		if err != nil {
			return fmt.Errorf("ask for security groups: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			fresh = append(fresh, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("ask for security groups: %w", err)
		}
		rest = rest[n:]
	}
	tx.AfterCommit(func() { s.hold(groups) })
	if len(fresh) == 0 {
		return nil
	}
	slices.Sort(fresh)
	held := make([]wire.HeldGroup, len(fresh))
	for i, g := range fresh {
		held[i] = wire.HeldGroup{ID: g}
	}
	s.log.Info("asking the API cell for security groups", "request_id", requestID, "groups", fresh)
	return s.sendSync(ctx, tx, requestID, held, false)
}

// Heal sends the root the periodic Complete sync: Want are the groups of
// the live instances' NICs (those with a PortRevision), Held every group
// the cell has a row of, at its revision and member sequence. The root
// answers with what is newer there, and Drop for what the cell needs no
// more; it counts the cell a holder of nothing else. A cell that needs
// and holds nothing sends nothing. It is one transaction: the Want and
// Held it sends are of one moment.
func (s *SecGroups) Heal(ctx context.Context) error {
	return s.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		nics, err := celldb.GroupNICs(ctx, tx)
		if err != nil {
			return fmt.Errorf("security groups heal: %w", err)
		}
		var want []string
		for _, n := range nics {
			if n.PortRevision > 0 {
				want = append(want, n.SecurityGroups...)
			}
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if len(want) > 0 && want[0] == "" {
			want = want[1:]
		}
		// Each group with how many members the cell holds: the root
		// resends a set whose count is not its own at the same sequence.
		held, err := db.Collect(ctx, tx, func(r db.Scanner) (wire.HeldGroup, error) {
			var h wire.HeldGroup
			var n int
			err := r.Scan(&h.ID, &h.Revision, &h.MemberSeq, &n)
			h.Members = &n
			return h, err
		}, `SELECT g.id, g.revision, g.member_seq, (SELECT COUNT(*) FROM sg_members m WHERE m.group_id = g.id) FROM sg_groups g ORDER BY g.id`)
		if err != nil {
			return fmt.Errorf("security groups heal: %w", err)
		}
		if len(want) == 0 && len(held) == 0 {
			return nil
		}
		// The groups still unanswered are asked for again by this sync.
		if slices.ContainsFunc(held, func(h wire.HeldGroup) bool { return h.Revision == 0 }) {
			if _, err := tx.Exec(ctx, `UPDATE sg_groups SET asked_at = ? WHERE revision = 0`, db.Micros(s.cfg.Now())); err != nil {
				return err
			}
		}
		requestID := "req-" + uuid.NewString()
		s.log.Info("security groups: sending the periodic sync", "request_id", requestID, "want", len(want), "held", len(held))
		return s.send(ctx, tx, requestID, &wire.SecurityGroupsSync{Want: want, Held: held, Complete: true})
	})
}

// Reask asks again for the groups asked for more than AskTimeout ago and
// not come yet (revision 0). With none, it is one read.
func (s *SecGroups) Reask(ctx context.Context) error {
	cutoff := db.Micros(s.cfg.Now().Add(-s.cfg.AskTimeout))
	var n int
	if err := s.cfg.DB.QueryRow(ctx, `SELECT COUNT(*) FROM sg_groups WHERE revision = 0 AND asked_at <= ?`, cutoff).Scan(&n); err != nil {
		return fmt.Errorf("security groups: %w", err)
	}
	if n == 0 {
		return nil
	}
	return s.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		held, err := db.Collect(ctx, tx, func(r db.Scanner) (wire.HeldGroup, error) {
			var h wire.HeldGroup
			return h, r.Scan(&h.ID, &h.Revision, &h.MemberSeq)
		}, `SELECT id, revision, member_seq FROM sg_groups WHERE revision = 0 AND asked_at <= ? ORDER BY id`, cutoff)
		if err != nil || len(held) == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sg_groups SET asked_at = ? WHERE revision = 0 AND asked_at <= ?`, db.Micros(s.cfg.Now()), cutoff); err != nil {
			return err
		}
		requestID := "req-" + uuid.NewString()
		s.log.Warn("security groups asked for and not come; asking again", "request_id", requestID, "groups", len(held))
		return s.sendSync(ctx, tx, requestID, held, false)
	})
}

// Start runs the periodic sync (every HealInterval) and the asking again
// (every AskTimeout) until Shutdown.
func (s *SecGroups) Start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		heal := time.NewTicker(s.cfg.HealInterval)
		defer heal.Stop()
		reask := time.NewTicker(s.cfg.AskTimeout)
		defer reask.Stop()
		for {
			var err error
			select {
			case <-ctx.Done():
				return
			case <-heal.C:
				err = s.Heal(ctx)
			case <-reask.C:
				err = s.Reask(ctx)
			}
			if err != nil && ctx.Err() == nil {
				s.log.Error("security groups sync; tried again on the next tick", "err", err)
			}
		}
	}()
	return nil
}

// Shutdown stops the loop and waits for it. It is idempotent.
func (s *SecGroups) Shutdown(context.Context) error {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	return nil
}
