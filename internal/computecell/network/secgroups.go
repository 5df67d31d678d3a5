package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Security groups in a compute cell. The API cell (the root) owns the
// groups; the cell holds those its ports are in, and the remote groups
// their rules name, in sg_groups (rules by revision, members by sequence)
// and sg_members, and its compute agents enforce them (package firewall).
// SecGroups is the cell's side of the messages: it asks the root for the
// groups the cell's ports name and does not hold (security_groups_sync, in
// the transaction of the build, attach or port_update that names them),
// applies what the root sends (security_groups, security_group_members,
// port_update) newer-wins, and every heal interval sends a Complete sync
// of what the cell needs and holds, which repairs anything missed. Every
// change raises sg_state.rules_gen (a group's rules, a group new or
// dropped, a port's groups or addresses) or members_gen (a member set), in
// the transaction of the change, for the compute agents that poll it, and
// calls OnChange once it commits (OnMembers, with the deltas applied, for
// a change of member sets by security_group_members).

// SecGroupsConfig configures SecGroups.
type SecGroupsConfig struct {
	// Cell is this cell's path; the syncs go to its root.
	Cell   string
	DB     *db.DB
	Sender Sender
	Logger *slog.Logger
	Now    func() time.Time
	// HealInterval is how often the cell sends the root a Complete sync
	// (default 1m; the node gives the cells' heal interval).
	HealInterval time.Duration
	// AskTimeout is how long a group asked for may stay unanswered
	// (revision 0) before it is asked for again (default 30s).
	AskTimeout time.Duration
	// OnChange is called after a transaction that raised rules_gen or
	// members_gen commits (the compute agent's wake, where this process
	// runs one); nil for none: the agents find the change when they poll.
	OnChange func()
	// OnMembers, if set, is called instead of OnChange after a
	// security_group_members transaction that applied deltas commits,
	// with the deltas it applied, in their order (the compute agent's
	// Members, where this process runs one: it applies them in memory).
	OnMembers func([]wire.MemberDelta)
}

// SecGroups is the cell's side of the security group messages, and the
// owner of its periodic sync.
type SecGroups struct {
	cfg SecGroupsConfig
	log *slog.Logger

	// held are the groups this process knows sg_groups has a row of
	// (asked for or come), so that a build whose groups are all held
	// costs no statement. It only learns a group after the transaction
	// that shows it commits, and forgets it after a Drop commits. It may
	// hold a group a concurrent Drop is removing: the build that trusted
	// it then waits for the next Complete sync, which asks for it again.
	mu   sync.Mutex
	held map[string]struct{}

	stop context.CancelFunc
	done chan struct{}
}

// NewSecGroups validates the configuration.
func NewSecGroups(cfg SecGroupsConfig) (*SecGroups, error) {
	if cfg.DB == nil || cfg.Sender == nil {
		return nil, errors.New("network: security groups need a database and a sender")
	}
	if err := cellpath.Validate(cfg.Cell); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HealInterval <= 0 {
		cfg.HealInterval = time.Minute
	}
	if cfg.AskTimeout <= 0 {
		cfg.AskTimeout = 30 * time.Second
	}
	return &SecGroups{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "security groups"), held: map[string]struct{}{}}, nil
}

// changed registers, in tx, the OnChange call after it commits.
func (s *SecGroups) changed(tx *db.Tx) {
	if s.cfg.OnChange != nil {
		tx.AfterCommit(s.cfg.OnChange)
	}
}

// SecurityGroups is the cast handler of security_groups. Per group: its
// rules replace the cell's if its revision is newer (a group the cell has
// no row of is taken whole); with HasMembers, its member set replaces the
// cell's if its sequence is newer. Drop deletes the groups and their
// members. A repeat or a late copy changes nothing: every write is
// conditional on the version, in the statement itself, so two copies
// applied at once cannot undo one another either.
func (s *SecGroups) SecurityGroups(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.SecurityGroups
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "security_groups: %v", err)
	}
	log := s.log.With("request_id", env.RequestID)
	now := db.Micros(s.cfg.Now())
	var rules, members bool
	var come []string
	for i := range m.Groups {
		g := &m.Groups[i]
		if g.ID == "" || g.Revision < 1 {
			log.Warn("security_groups: a group without an id or a revision; ignored", "group", g.ID, "revision", g.Revision)
			continue
		}
		if g.Resync {
			// What drifted, for the logs: the cause of a drift is not
			// known yet (architecture §3.9).
			if err := logDrift(ctx, tx, log, g); err != nil {
				return err
			}
		}
		r, mem, err := applyGroup(ctx, tx, g, now)
		if err != nil {
			return fmt.Errorf("security group %s: %w", g.ID, err)
		}
		rules, members = rules || r, members || mem
		come = append(come, g.ID)
	}
	dropped, err := dropGroups(ctx, tx, m.Drop)
	if err != nil {
		return err
	}
	rules = rules || dropped > 0
	if err := raiseGens(ctx, tx, rules, members); err != nil {
		return err
	}
	tx.AfterCommit(func() {
		s.hold(come)
		s.unhold(m.Drop)
	})
	if rules || members {
		s.changed(tx)
	}
	log.Info("security groups from the API cell", "groups", len(m.Groups), "drop", len(m.Drop), "dropped", dropped,
		"rules_changed", rules, "members_changed", members)
	return nil
}

// logDrift logs, at WARN, how the cell's member set of g differs from
// the one the root resends (Resync): the members only the cell has and
// those only the root has.
func logDrift(ctx context.Context, tx *db.Tx, log *slog.Logger, g *wire.SecurityGroupState) error {
	var seq int64
	if err := tx.QueryRow(ctx, `SELECT member_seq FROM sg_groups WHERE id = ?`, g.ID).Scan(&seq); err != nil {
		if isNoRows(err) {
			return nil
		}
		return err
	}
	have, err := db.Collect(ctx, tx, func(r db.Scanner) (wire.GroupMember, error) {
		var m wire.GroupMember
		return m, r.Scan(&m.PortID, &m.Address)
	}, `SELECT port_id, address FROM sg_members WHERE group_id = ?`, g.ID)
	if err != nil {
		return err
	}
	var onlyCell, onlyRoot []string
	for _, m := range have {
		if !slices.Contains(g.Members, m) {
			onlyCell = append(onlyCell, m.PortID+" "+m.Address)
		}
	}
	for _, m := range g.Members {
		if !slices.Contains(have, m) {
			onlyRoot = append(onlyRoot, m.PortID+" "+m.Address)
		}
	}
	log.Warn("the root resends a security group's member set that drifted from the cell's", "group", g.ID, "cell_member_seq", seq,
		"root_member_seq", g.MemberSeq, "only_in_cell", strings.Join(onlyCell, ", "), "only_at_root", strings.Join(onlyRoot, ", "))
	return nil
}

// applyGroup applies one group of security_groups; it reports whether its
// rules (or the group itself) and whether its members changed.
func applyGroup(ctx context.Context, tx *db.Tx, g *wire.SecurityGroupState, now int64) (rules, members bool, err error) {
	rulesJSON := []byte("[]")
	if len(g.Rules) > 0 {
		if rulesJSON, err = json.Marshal(g.Rules); err != nil {
			return false, false, err
		}
	}
	stateful := 0
	if g.Stateful {
		stateful = 1
	}
	res, err := tx.Exec(ctx, `UPDATE sg_groups SET project_id = ?, revision = ?, stateful = ?, rules = ?, updated_at = ? WHERE id = ? AND revision < ?`,
		g.ProjectID, g.Revision, stateful, string(rulesJSON), now, g.ID, g.Revision)
	if err != nil {
		return false, false, err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		rules = true
	} else {
		// Not newer than the cell's, or a group the cell has no row of:
		// the second is taken whole.
		seq := int64(0)
		if g.HasMembers {
			seq = g.MemberSeq
		}
		res, err := tx.Exec(ctx, `INSERT INTO sg_groups (id, project_id, revision, member_seq, stateful, rules, asked_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (id) DO NOTHING`, g.ID, g.ProjectID, g.Revision, seq, stateful, string(rulesJSON), now)
		if err != nil {
			return false, false, err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if g.HasMembers {
				if err := insertMembers(ctx, tx, g.ID, g.Members); err != nil {
					return false, false, err
				}
			}
			return true, g.HasMembers, nil
		}
	}
	if !g.HasMembers {
		return rules, false, nil
	}
	// A set newer than the cell's replaces it; one the root found to
	// differ from the cell's at the same sequence (Resync) too.
	set := `member_seq = ?, updated_at = ?`
	cond := `member_seq < ?`
	if g.Resync {
		set += `, member_epoch = member_epoch + 1`
		cond = `member_seq <= ?`
	}
	res, err = tx.Exec(ctx, `UPDATE sg_groups SET `+set+` WHERE id = ? AND `+cond, g.MemberSeq, now, g.ID, g.MemberSeq)
	if err != nil {
		return false, false, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return rules, false, nil // as old as the cell's or older
	}
	if _, err := tx.Exec(ctx, `DELETE FROM sg_members WHERE group_id = ?`, g.ID); err != nil {
		return false, false, err
	}
	return rules, true, insertMembers(ctx, tx, g.ID, g.Members)
}

// memberBatch is how many members one statement inserts or deletes.
const memberBatch = 200

func insertMembers(ctx context.Context, tx *db.Tx, group string, ms []wire.GroupMember) error {
	for len(ms) > 0 {
		n := min(len(ms), memberBatch)
		args := make([]any, 0, 3*n)
		for _, m := range ms[:n] {
			args = append(args, group, m.PortID, m.Address)
		}
		q := `INSERT INTO sg_members (group_id, port_id, address) VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", n), ", ") +
			` ON CONFLICT (group_id, port_id, address) DO NOTHING`
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("insert members of %s: %w", group, err)
		}
		ms = ms[n:]
	}
	return nil
}

func deleteMembers(ctx context.Context, tx *db.Tx, group string, ms []wire.GroupMember) error {
	for len(ms) > 0 {
		n := min(len(ms), memberBatch)
		args := make([]any, 0, 1+2*n)
		args = append(args, group)
		for _, m := range ms[:n] {
			args = append(args, m.PortID, m.Address)
		}
		// Each engine finds the pairs by the primary key its own way:
		// SQLite looks each of n ORed conditions up in the key (a list
		// of values it would match against every member of the group);
		// PostgreSQL joins a list of values to the key (n ORed
		// conditions it plans for milliseconds: 27 ms a statement for
		// 200 members of a group of 8,000, against 3 ms).
		q := `DELETE FROM sg_members WHERE group_id = ? AND (` + strings.TrimSuffix(strings.Repeat("(port_id = ? AND address = ?) OR ", n), " OR ") + `)`
		if tx.Dialect == db.Postgres {
			q = `DELETE FROM sg_members WHERE group_id = ? AND (port_id, address) IN (VALUES ` + strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ") + `)`
		}
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("delete members of %s: %w", group, err)
		}
		ms = ms[n:]
	}
	return nil
}

// dropGroups deletes the groups and their members; it returns how many
// groups the cell had.
func dropGroups(ctx context.Context, tx *db.Tx, ids []string) (int64, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	in, args := placeholders(ids)
	if _, err := tx.Exec(ctx, `DELETE FROM sg_members WHERE group_id IN (`+in+`)`, args...); err != nil {
		return 0, fmt.Errorf("drop security groups: %w", err)
	}
	res, err := tx.Exec(ctx, `DELETE FROM sg_groups WHERE id IN (`+in+`)`, args...)
	if err != nil {
		return 0, fmt.Errorf("drop security groups: %w", err)
	}
	return res.RowsAffected()
}

func placeholders(ids []string) (string, []any) {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", "), args
}

// raiseGens raises the generations the compute agents poll: rules_gen for
// a change of rules or of what the ports are in, members_gen for one of a
// member set.
func raiseGens(ctx context.Context, tx *db.Tx, rules, members bool) error {
	if !rules && !members {
		return nil
	}
	r, m := 0, 0
	if rules {
		r = 1
	}
	if members {
		m = 1
	}
	if _, err := tx.Exec(ctx, `UPDATE sg_state SET rules_gen = rules_gen + ?, members_gen = members_gen + ? WHERE id = 1`, r, m); err != nil {
		return fmt.Errorf("raise the security group generations: %w", err)
	}
	return nil
}

// SecurityGroupMembers is the cast handler of security_group_members.
// Per delta: a group the cell holds at FromSeq takes it and is then at
// ToSeq; one at ToSeq or past it ignores it (a repeat, or a late copy of
// one a whole set has covered since); one at another sequence (it missed
// a delta) or a group it has no row of asks the root for the group with a
// sync (not Complete), which the root answers with the whole member set.
func (s *SecGroups) SecurityGroupMembers(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.SecurityGroupMembers
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "security_group_members: %v", err)
	}
	log := s.log.With("request_id", env.RequestID)
	now := s.cfg.Now()
	var applied, repeats int
	var done []wire.MemberDelta
	var ask []wire.HeldGroup
	var asked []string
	for _, d := range m.Deltas {
		if d.GroupID == "" || d.ToSeq <= d.FromSeq {
			log.Warn("security_group_members: a delta without a group or a forward sequence; ignored", "group", d.GroupID,
				"from_seq", d.FromSeq, "to_seq", d.ToSeq)
			continue
		}
		res, err := tx.Exec(ctx, `UPDATE sg_groups SET member_seq = ?, updated_at = ? WHERE id = ? AND member_seq = ?`,
			d.ToSeq, db.Micros(now), d.GroupID, d.FromSeq)
		if err != nil {
			return fmt.Errorf("security group %s: %w", d.GroupID, err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			if err := deleteMembers(ctx, tx, d.GroupID, d.Removed); err != nil {
				return err
			}
			if err := insertMembers(ctx, tx, d.GroupID, d.Added); err != nil {
				return err
			}
			applied++
			done = append(done, d)
			continue
		}
		var rev, seq int64
		err = tx.QueryRow(ctx, `SELECT revision, member_seq FROM sg_groups WHERE id = ?`, d.GroupID).Scan(&rev, &seq)
		switch {
		case err == nil && seq >= d.ToSeq:
			repeats++
			continue
		case err == nil:
			// A gap: the cell missed a delta (or this one came before the
			// whole set it follows). The root answers with the whole set.
			log.Info("a gap in a security group's members; asking for the whole set", "group", d.GroupID, "member_seq", seq,
				"from_seq", d.FromSeq)
			if _, err := tx.Exec(ctx, `UPDATE sg_groups SET asked_at = ? WHERE id = ?`, db.Micros(now), d.GroupID); err != nil {
				return err
			}
		case isNoRows(err):
			// A group the cell does not hold (yet: the message that makes
			// it a holder may come after this one; or no more: a late
			// delta of a group dropped). Asked for: the root sends it, or
			// drops it again.
			log.Info("members of a security group the cell does not hold; asking for it", "group", d.GroupID)
			if _, err := tx.Exec(ctx, `INSERT INTO sg_groups (id, asked_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING`, d.GroupID, db.Micros(now)); err != nil {
				return err
			}
			asked = append(asked, d.GroupID)
		default:
			return fmt.Errorf("security group %s: %w", d.GroupID, err)
		}
		if !slices.ContainsFunc(ask, func(h wire.HeldGroup) bool { return h.ID == d.GroupID }) {
			ask = append(ask, wire.HeldGroup{ID: d.GroupID, Revision: rev, MemberSeq: seq})
		}
	}
	if err := raiseGens(ctx, tx, false, applied > 0); err != nil {
		return err
	}
	switch {
	case applied > 0 && s.cfg.OnMembers != nil:
		tx.AfterCommit(func() { s.cfg.OnMembers(done) })
	case applied > 0:
		s.changed(tx)
	}
	if len(asked) > 0 {
		tx.AfterCommit(func() { s.hold(asked) })
	}
	if len(ask) > 0 {
		if err := s.sendSync(ctx, tx, env.RequestID, ask, false); err != nil {
			return err
		}
	}
	log.Info("security group members from the API cell", "deltas", len(m.Deltas), "applied", applied, "repeats", repeats, "asked", len(ask))
	return nil
}

// sendSync sends the root a security_groups_sync wanting the groups of
// held (those in it at revision 0 and sequence 0 are new to the cell).
func (s *SecGroups) sendSync(ctx context.Context, tx *db.Tx, requestID string, held []wire.HeldGroup, complete bool) error {
	m := &wire.SecurityGroupsSync{Held: held, Complete: complete}
	for _, h := range held {
		m.Want = append(m.Want, h.ID)
	}
	return s.send(ctx, tx, requestID, m)
}

func (s *SecGroups) send(ctx context.Context, tx *db.Tx, requestID string, m *wire.SecurityGroupsSync) error {
	if err := s.cfg.Sender.Send(ctx, tx, cellpath.Root(s.cfg.Cell), wire.MethodSecurityGroupsSync, requestID, m); err != nil {
		return fmt.Errorf("send security_groups_sync: %w", err)
	}
	return nil
}

// hold records groups sg_groups has rows of.
func (s *SecGroups) hold(ids []string) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.held[id] = struct{}{}
	}
}

func (s *SecGroups) unhold(ids []string) {
	if len(ids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.held, id)
	}
}
