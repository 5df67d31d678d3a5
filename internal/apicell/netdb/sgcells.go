package netdb

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Security groups in the cells (migration 8): the data the API cell keeps
// to tell the compute cells the groups they enforce (package sgsync sends
// it).
//
//   - security_group_holders: which cells hold which groups (a cell says so
//     in its security_groups_sync; the root pushes a group's changes to its
//     holders alone).
//   - security_groups.member_seq: the sequence of a group's member set; each
//     delta the flusher sends raises it by one. It starts at 1, so a cell's
//     0 always means "no member set yet".
//   - security_group_member_changes: the log of member changes, appended in
//     the transaction of every write that changes a group's members (a
//     port's addresses, groups, port security or address pairs; a port's
//     deletion; the boot-made ports a cell reports; a server's groups),
//     and taken by the flusher in id order. It has no per-group counter, so
//     a boot writes no hot row.
//
// A group's members are the addresses (fixed IPs, and the addresses of
// the allowed address pairs) of the ports in it with port security on: a
// port's own groups (port_security_groups), or, for a port whose groups
// are its server's (server_groups), the server's (security_group_bindings).
var sgCellsMigration = db.Migration{Version: 8, Name: "security groups in the cells", SQL: `
ALTER TABLE security_groups ADD COLUMN member_seq {{bigint}} NOT NULL DEFAULT 1;
CREATE TABLE security_group_holders (
	group_id TEXT NOT NULL,
	cell TEXT NOT NULL,
	PRIMARY KEY (group_id, cell)
);
CREATE INDEX security_group_holders_cell ON security_group_holders (cell);
CREATE TABLE security_group_member_changes (
	id {{serial}},
	group_id TEXT NOT NULL,
	port_id TEXT NOT NULL,
	address TEXT NOT NULL,
	added INTEGER NOT NULL
)`}

// Member is one address of a port in a group.
type Member struct {
	GroupID, PortID, Address string
}

// MemberChange is a row of the member change log.
type MemberChange struct {
	ID int64
	Member
	Added bool
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// portMembersSelect is (group, port, fixed IP, address pairs) of the ports
// whose ids fill the two IN lists: by their own groups, or their server's.
// Each half starts from the ports by id (their primary key), so both
// engines look the few ports up by index; a join of the ports table to a
// subquery of them had PostgreSQL scan the whole ports and port_fixed_ips
// tables at every boot (docs/benchmarks.md).
const portMembersSelect = `SELECT ps.security_group_id, p.id, COALESCE(f.ip_address, ''), p.allowed_address_pairs
		FROM ports p JOIN port_security_groups ps ON ps.port_id = p.id
		LEFT JOIN port_fixed_ips f ON f.port_id = p.id
		WHERE p.id IN (%s) AND p.server_groups = 0 AND p.port_security_enabled = 1
	UNION ALL
	SELECT b.security_group_id, p.id, COALESCE(f.ip_address, ''), p.allowed_address_pairs
		FROM ports p JOIN security_group_bindings b ON b.instance_uuid = p.device_id
		LEFT JOIN port_fixed_ips f ON f.port_id = p.id
		WHERE p.id IN (%s) AND p.server_groups = 1 AND p.device_id <> '' AND p.port_security_enabled = 1`

type memberRow struct {
	group, port, addr, pairs string
}

func scanMemberRow(s db.Scanner) (memberRow, error) {
	var r memberRow
	return r, s.Scan(&r.group, &r.port, &r.addr, &r.pairs)
}

// addMembers adds the members a row of a member query says: its fixed IP
// and the addresses of its port's address pairs.
func addMembers(set map[Member]bool, rows []memberRow) {
	for _, r := range rows {
		if r.addr != "" {
			set[Member{r.group, r.port, r.addr}] = true
		}
		if r.pairs == "" || r.pairs == "[]" {
			continue
		}
		var pairs []AddressPair
		if json.Unmarshal([]byte(r.pairs), &pairs) != nil {
			continue
		}
		for _, p := range pairs {
			if p.IPAddress != "" {
				set[Member{r.group, r.port, p.IPAddress}] = true
			}
		}
	}
}

// portMembers is what the ports ids give to their groups' member sets:
// one query per 200 ports.
func portMembers(ctx context.Context, q db.Querier, ids []string) (map[Member]bool, error) {
	out := map[Member]bool{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 200)]
		ids = ids[len(chunk):]
		m := marks(len(chunk))
		rows, err := db.Collect(ctx, q, scanMemberRow, fmt.Sprintf(portMembersSelect, m, m), append(anys(chunk), anys(chunk)...)...)
		if err != nil {
			return nil, fmt.Errorf("security group members of %d ports: %w", len(chunk), err)
		}
		addMembers(out, rows)
	}
	return out, nil
}

// GroupMembers is a group's whole member set, by port then address.
func GroupMembers(ctx context.Context, q db.Querier, group string) ([]Member, error) {
	rows, err := db.Collect(ctx, q, scanMemberRow, `SELECT ps.security_group_id, p.id, COALESCE(f.ip_address, ''), p.allowed_address_pairs
		FROM port_security_groups ps JOIN ports p ON p.id = ps.port_id AND p.server_groups = 0 AND p.port_security_enabled = 1
		LEFT JOIN port_fixed_ips f ON f.port_id = p.id WHERE ps.security_group_id = ?
		UNION ALL
		SELECT b.security_group_id, p.id, COALESCE(f.ip_address, ''), p.allowed_address_pairs
		FROM security_group_bindings b JOIN ports p ON p.device_id = b.instance_uuid AND p.server_groups = 1 AND p.port_security_enabled = 1
		LEFT JOIN port_fixed_ips f ON f.port_id = p.id WHERE b.security_group_id = ?`, group, group)
	if err != nil {
		return nil, fmt.Errorf("members of security group %s: %w", group, err)
	}
	set := map[Member]bool{}
	addMembers(set, rows)
	return sortedMembers(set), nil
}

func sortedMembers(set map[Member]bool) []Member {
	out := slices.Collect(maps.Keys(set))
	slices.SortFunc(out, func(a, b Member) int {
		return strings.Compare(a.GroupID+"\x00"+a.PortID+"\x00"+a.Address, b.GroupID+"\x00"+b.PortID+"\x00"+b.Address)
	})
	return out
}

// logMemberDiff appends to the log what changed from before to after.
func logMemberDiff(ctx context.Context, tx *db.Tx, before, after map[Member]bool) error {
	var ch []MemberChange
	for _, m := range sortedMembers(before) {
		if !after[m] {
			ch = append(ch, MemberChange{Member: m})
		}
	}
	for _, m := range sortedMembers(after) {
		if !before[m] {
			ch = append(ch, MemberChange{Member: m, Added: true})
		}
	}
	return LogMemberChanges(ctx, tx, ch)
}

// logPortMembers logs how the member sets changed by the ports ids since
// before (their members read before the change; nil: none).
func logPortMembers(ctx context.Context, tx *db.Tx, ids []string, before map[Member]bool) error {
	after, err := portMembers(ctx, tx, ids)
	if err != nil {
		return err
	}
	return logMemberDiff(ctx, tx, before, after)
}

// LogPortMembers logs the members of the ports ids as added: ports whose
// groups came after them (the ports a boot made for fixed IPs, before the
// server's groups were bound).
func LogPortMembers(ctx context.Context, tx *db.Tx, ids []string) error {
	return logPortMembers(ctx, tx, ids, nil)
}

// LogMemberChanges appends changes to the log, 200 rows a statement.
func LogMemberChanges(ctx context.Context, tx *db.Tx, changes []MemberChange) error {
	for len(changes) > 0 {
		chunk := changes[:min(len(changes), 200)]
		changes = changes[len(chunk):]
		args := make([]any, 0, 4*len(chunk))
		for _, c := range chunk {
			args = append(args, c.GroupID, c.PortID, c.Address, boolInt(c.Added))
		}
		// Nothing reads its result, and its error only fails the
		// transaction: on PostgreSQL it goes with the next statement.
		if err := tx.ExecLater(ctx, `INSERT INTO security_group_member_changes (group_id, port_id, address, added) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", len(chunk)), ", "), args...); err != nil {
			return fmt.Errorf("log %d security group member changes: %w", len(chunk), err)
		}
	}
	return nil
}

// serverPortIDs are the ports bound to server.
func serverPortIDs(ctx context.Context, q db.Querier, server string) ([]string, error) {
	ids, err := db.Collect(ctx, q, func(s db.Scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	}, `SELECT id FROM ports WHERE device_id = ? ORDER BY id`, server)
	if err != nil {
		return nil, fmt.Errorf("ports of %s: %w", server, err)
	}
	return ids, nil
}

// HasMemberChanges reports whether the log has a row: the flusher's one
// statement when there is nothing to do.
func HasMemberChanges(ctx context.Context, q db.Querier) (bool, error) {
	ids, err := db.Collect(ctx, q, func(s db.Scanner) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	}, `SELECT id FROM security_group_member_changes ORDER BY id LIMIT 1`)
	if err != nil {
		return false, fmt.Errorf("security group member changes: %w", err)
	}
	return len(ids) > 0, nil
}

// TakeMemberChanges reads up to limit rows of the log in id order; on
// PostgreSQL it holds them until tx ends, so that two flushers never take
// the same row (the second waits, and skips the rows the first deleted).
func TakeMemberChanges(ctx context.Context, tx *db.Tx, limit int) ([]MemberChange, error) {
	q := `SELECT id, group_id, port_id, address, added FROM security_group_member_changes ORDER BY id LIMIT ?`
	if tx.Dialect == db.Postgres {
		q += ` FOR UPDATE`
	}
	out, err := db.Collect(ctx, tx, func(s db.Scanner) (MemberChange, error) {
		var c MemberChange
		var added int
		err := s.Scan(&c.ID, &c.GroupID, &c.PortID, &c.Address, &added)
		c.Added = added != 0
		return c, err
	}, q, limit)
	if err != nil {
		return nil, fmt.Errorf("take security group member changes: %w", err)
	}
	return out, nil
}

// DeleteMemberChanges deletes the rows ids of the log.
func DeleteMemberChanges(ctx context.Context, tx *db.Tx, ids []int64) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		if _, err := tx.Exec(ctx, `DELETE FROM security_group_member_changes WHERE id IN (`+marks(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("delete %d security group member changes: %w", len(chunk), err)
		}
	}
	return nil
}

// RaiseMemberSeq raises a group's member sequence by one and returns the
// new one; ok is false when the group is gone.
func RaiseMemberSeq(ctx context.Context, tx *db.Tx, group string) (seq int64, ok bool, err error) {
	seqs, err := db.Collect(ctx, tx, func(s db.Scanner) (int64, error) {
		var v int64
		return v, s.Scan(&v)
	}, `UPDATE security_groups SET member_seq = member_seq + 1 WHERE id = ? RETURNING member_seq`, group)
	if err != nil {
		return 0, false, fmt.Errorf("raise the member sequence of security group %s: %w", group, err)
	}
	if len(seqs) == 0 {
		return 0, false, nil
	}
	return seqs[0], true, nil
}

// GroupState is a group as the cells get it: its rules and revision, and
// the sequence of its member set.
type GroupState struct {
	*SecurityGroup
	MemberSeq int64
}

// GroupStates reads the groups ids that exist, with their rules and
// member sequences, by id. The member sequence is read before anything a
// caller reads of the members next, so a member set read after it is at
// least as new as the sequence says.
func GroupStates(ctx context.Context, q db.Querier, ids []string) (map[string]*GroupState, error) {
	out := map[string]*GroupState{}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 200)]
		ids = ids[len(chunk):]
		type seqRow struct {
			g   *SecurityGroup
			seq int64
		}
		rows, err := db.Collect(ctx, q, func(s db.Scanner) (seqRow, error) {
			var r seqRow
			var stateful, isDefault int
			var tags string
			var created, updated int64
			g := &SecurityGroup{Rules: []*SecurityGroupRule{}}
			err := s.Scan(&g.ID, &g.Name, &g.ProjectID, &g.Description, &stateful, &isDefault, &tags, &g.RevisionNumber, &created, &updated, &r.seq)
			g.Stateful, g.IsDefault = stateful != 0, isDefault != 0
			g.CreatedAt, g.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
			r.g = g
			return r, err
		}, `SELECT `+securityGroupCols+`, member_seq FROM security_groups WHERE id IN (`+marks(len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("security groups: %w", err)
		}
		for _, r := range rows {
			out[r.g.ID] = &GroupState{SecurityGroup: r.g, MemberSeq: r.seq}
		}
		if len(rows) == 0 {
			continue
		}
		rules, err := db.Collect(ctx, q, scanRule, `SELECT `+ruleSelect+` WHERE r.security_group_id IN (`+marks(len(chunk))+`) ORDER BY r.created_at, r.id`,
			anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("rules of security groups: %w", err)
		}
		for _, r := range rules {
			if g := out[r.SecurityGroupID]; g != nil {
				g.Rules = append(g.Rules, r)
			}
		}
	}
	return out, nil
}

// GroupsNaming are the groups other than group whose rules name it as
// their remote group.
func GroupsNaming(ctx context.Context, q db.Querier, group string) ([]string, error) {
	ids, err := db.Collect(ctx, q, func(s db.Scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	}, `SELECT DISTINCT security_group_id FROM security_group_rules WHERE remote_group_id = ? AND security_group_id <> ? ORDER BY 1`, group, group)
	if err != nil {
		return nil, fmt.Errorf("groups naming security group %s: %w", group, err)
	}
	return ids, nil
}

// AddHolders records cell as a holder of the groups ids (a holder already
// stays one).
func AddHolders(ctx context.Context, tx *db.Tx, cell string, ids []string) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 200)]
		ids = ids[len(chunk):]
		args := make([]any, 0, 2*len(chunk))
		for _, id := range chunk {
			args = append(args, id, cell)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO security_group_holders (group_id, cell) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?), ", len(chunk)), ", ")+` ON CONFLICT DO NOTHING`, args...); err != nil {
			return fmt.Errorf("record %s as holder of %d security groups: %w", cell, len(chunk), err)
		}
	}
	return nil
}

// CellHolds are the groups cell holds, by id.
func CellHolds(ctx context.Context, q db.Querier, cell string) ([]string, error) {
	ids, err := db.Collect(ctx, q, func(s db.Scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	}, `SELECT group_id FROM security_group_holders WHERE cell = ? ORDER BY group_id`, cell)
	if err != nil {
		return nil, fmt.Errorf("security groups %s holds: %w", cell, err)
	}
	return ids, nil
}

// RemoveHolder ends cell's holding of the groups ids.
func RemoveHolder(ctx context.Context, tx *db.Tx, cell string, ids []string) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 200)]
		ids = ids[len(chunk):]
		if _, err := tx.Exec(ctx, `DELETE FROM security_group_holders WHERE cell = ? AND group_id IN (`+marks(len(chunk))+`)`,
			append([]any{cell}, anys(chunk)...)...); err != nil {
			return fmt.Errorf("drop %s as holder of %d security groups: %w", cell, len(chunk), err)
		}
	}
	return nil
}

// GroupHolders are the cells that hold each of the groups ids, by group,
// each group's by cell.
func GroupHolders(ctx context.Context, q db.Querier, ids []string) (map[string][]string, error) {
	out := map[string][]string{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 200)]
		ids = ids[len(chunk):]
		type row struct{ group, cell string }
		rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
			var r row
			return r, s.Scan(&r.group, &r.cell)
		}, `SELECT group_id, cell FROM security_group_holders WHERE group_id IN (`+marks(len(chunk))+`) ORDER BY group_id, cell`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("holders of %d security groups: %w", len(chunk), err)
		}
		for _, r := range rows {
			out[r.group] = append(out[r.group], r.cell)
		}
	}
	return out, nil
}

// DeleteGroupHolders deletes the holders of a group (it is gone).
func DeleteGroupHolders(ctx context.Context, tx *db.Tx, group string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM security_group_holders WHERE group_id = ?`, group); err != nil {
		return fmt.Errorf("drop the holders of security group %s: %w", group, err)
	}
	return nil
}

// GroupMemberCounts counts the members of each of the groups ids (a
// group with none is absent), in one query, for the cells' periodic sync
// to compare with what they hold. The members a port's allowed address
// pairs give are counted by reading those groups' whole sets.
func GroupMemberCounts(ctx context.Context, q db.Querier, ids []string) (map[string]int, error) {
	out := map[string]int{}
	var withPairs []string
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 200)]
		ids = ids[len(chunk):]
		m := marks(len(chunk))
		type row struct {
			group string
			n     int
			pairs int
		}
		rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
			var r row
			return r, s.Scan(&r.group, &r.n, &r.pairs)
		}, `SELECT x.gid, COUNT(DISTINCT CASE WHEN x.addr <> '' THEN x.pid || ' ' || x.addr END), MAX(x.pairs) FROM (
			SELECT ps.security_group_id AS gid, p.id AS pid, COALESCE(f.ip_address, '') AS addr,
				CASE WHEN p.allowed_address_pairs IN ('', '[]') THEN 0 ELSE 1 END AS pairs
			FROM port_security_groups ps JOIN ports p ON p.id = ps.port_id AND p.server_groups = 0 AND p.port_security_enabled = 1
			LEFT JOIN port_fixed_ips f ON f.port_id = p.id WHERE ps.security_group_id IN (`+m+`)
			UNION ALL
			SELECT b.security_group_id, p.id, COALESCE(f.ip_address, ''),
				CASE WHEN p.allowed_address_pairs IN ('', '[]') THEN 0 ELSE 1 END
			FROM security_group_bindings b JOIN ports p ON p.device_id = b.instance_uuid AND p.server_groups = 1 AND p.port_security_enabled = 1
			LEFT JOIN port_fixed_ips f ON f.port_id = p.id WHERE b.security_group_id IN (`+m+`)
		) x GROUP BY x.gid`, append(anys(chunk), anys(chunk)...)...)
		if err != nil {
			return nil, fmt.Errorf("count the members of %d security groups: %w", len(chunk), err)
		}
		for _, r := range rows {
			if r.pairs != 0 {
				withPairs = append(withPairs, r.group)
				continue
			}
			if r.n > 0 {
				out[r.group] = r.n
			}
		}
	}
	for _, g := range withPairs {
		ms, err := GroupMembers(ctx, q, g)
		if err != nil {
			return nil, err
		}
		if len(ms) > 0 {
			out[g] = len(ms)
		}
	}
	return out, nil
}

// GroupsWithPendingChanges are those of ids with member changes in the
// log not flushed yet (their deltas are still to come).
func GroupsWithPendingChanges(ctx context.Context, q db.Querier, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 200)]
		ids = ids[len(chunk):]
		gs, err := db.Collect(ctx, q, func(s db.Scanner) (string, error) {
			var g string
			return g, s.Scan(&g)
		}, `SELECT DISTINCT group_id FROM security_group_member_changes WHERE group_id IN (`+marks(len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("pending member changes: %w", err)
		}
		for _, g := range gs {
			out[g] = true
		}
	}
	return out, nil
}
