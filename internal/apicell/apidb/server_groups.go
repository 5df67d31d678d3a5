package apidb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// ServerGroup is a server group (Nova's instance group): a placement policy
// that its member instances share.
type ServerGroup struct {
	UUID      string
	Name      string
	ProjectID string
	UserID    string
	// Policy is affinity, anti-affinity, soft-affinity or soft-anti-affinity.
	Policy string
	// MaxServerPerHost is the anti-affinity rule max_server_per_host
	// (2.64): how many members may share a host; 0 means the default, 1.
	MaxServerPerHost int
	CreatedAt        time.Time
	// Members are the group's live instances (those not deleted in this
	// copy), oldest first.
	Members []string
}

const serverGroupCols = `uuid, name, project_id, user_id, policy, created_at, max_server_per_host`

func scanServerGroup(r db.Scanner) (*ServerGroup, error) {
	var g ServerGroup
	var created int64
	if err := r.Scan(&g.UUID, &g.Name, &g.ProjectID, &g.UserID, &g.Policy, &created, &g.MaxServerPerHost); err != nil {
		return nil, err
	}
	g.CreatedAt = db.FromMicros(created)
	g.Members = []string{}
	return &g, nil
}

// CreateServerGroup inserts a group with no members.
func CreateServerGroup(ctx context.Context, tx *db.Tx, g *ServerGroup) error {
	_, err := tx.Exec(ctx, `INSERT INTO server_groups (`+serverGroupCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		g.UUID, g.Name, g.ProjectID, g.UserID, g.Policy, db.Micros(g.CreatedAt), g.MaxServerPerHost)
	if db.IsUniqueViolation(err) {
		return fmt.Errorf("server group %s: %w", g.UUID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create server group %s: %w", g.UUID, err)
	}
	g.Members = []string{}
	return nil
}

// GetServerGroup reads a live group with its members.
func GetServerGroup(ctx context.Context, q Querier, uuid string) (*ServerGroup, error) {
	g, err := scanServerGroup(q.QueryRow(ctx, `SELECT `+serverGroupCols+` FROM server_groups WHERE uuid = ? AND deleted = 0`, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("server group %s: %w", uuid, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := loadMembers(ctx, q, []*ServerGroup{g}); err != nil {
		return nil, err
	}
	return g, nil
}

// ServerGroupListOptions pages a list of groups, oldest first.
type ServerGroupListOptions struct {
	// ProjectID limits to one project; empty means every project.
	ProjectID string
	// Limit is the page size (0: no limit); Offset the groups skipped.
	Limit, Offset int
}

// ListServerGroups lists live groups, oldest first, with their members.
func ListServerGroups(ctx context.Context, q Querier, o ServerGroupListOptions) ([]*ServerGroup, error) {
	query := `SELECT ` + serverGroupCols + ` FROM server_groups WHERE deleted = 0`
	var args []any
	if o.ProjectID != "" {
		query += ` AND project_id = ?`
		args = append(args, o.ProjectID)
	}
	limit := o.Limit
	if limit <= 0 {
		limit = math.MaxInt32
	}
	query += ` ORDER BY created_at, uuid` + binary(q) + ` LIMIT ? OFFSET ?`
	args = append(args, limit, max(o.Offset, 0))
	gs, err := db.Collect(ctx, q, scanServerGroup, query, args...)
	if err != nil {
		return nil, err
	}
	if err := loadMembers(ctx, q, gs); err != nil {
		return nil, err
	}
	return gs, nil
}

// loadMembers fills in the groups' live members, oldest instance first.
func loadMembers(ctx context.Context, q Querier, gs []*ServerGroup) error {
	if len(gs) == 0 {
		return nil
	}
	byUUID := make(map[string]*ServerGroup, len(gs))
	args := make([]any, 0, len(gs))
	for _, g := range gs {
		byUUID[g.UUID] = g
		args = append(args, g.UUID)
	}
	// "+i.deleted" keeps SQLite's planner from reading every live instance
	// through instances_live: the members are found by their groups.
	rows, err := q.Query(ctx, `SELECT m.group_uuid, m.instance_uuid FROM server_group_members m
		JOIN instances i ON i.uuid = m.instance_uuid
		WHERE +i.deleted = 0 AND m.group_uuid IN (`+memberPlaceholders(len(args))+`)
		ORDER BY i.created_at, i.launch_index, i.uuid`, args...)
	if err != nil {
		return fmt.Errorf("server group members: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g, in string
		if err := rows.Scan(&g, &in); err != nil {
			return err
		}
		byUUID[g].Members = append(byUUID[g].Members, in)
	}
	return rows.Err()
}

func memberPlaceholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// AddServerGroupMembers makes instances members of a live group; an
// instance that already is one stays one. A group that does not exist or
// was deleted is ErrNotFound.
func AddServerGroupMembers(ctx context.Context, tx *db.Tx, group string, instances []string) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM server_groups WHERE uuid = ? AND deleted = 0`, group).Scan(&n); err != nil {
		return fmt.Errorf("server group %s: %w", group, err)
	}
	if n == 0 {
		return fmt.Errorf("server group %s: %w", group, ErrNotFound)
	}
	for _, in := range instances {
		_, err := tx.Exec(ctx, `INSERT INTO server_group_members (group_uuid, instance_uuid) VALUES (?, ?)
			ON CONFLICT (group_uuid, instance_uuid) DO NOTHING`, group, in)
		if err != nil {
			return fmt.Errorf("add %s to server group %s: %w", in, group, err)
		}
	}
	return nil
}

// ServerGroupMembers returns the copies of a group's live members, oldest
// first: with their cells and hosts, where placement needs them.
func ServerGroupMembers(ctx context.Context, q Querier, group string) ([]*Instance, error) {
	// "+deleted", as in loadMembers: by the group's members, not every
	// live instance.
	return db.Collect(ctx, q, scan, `SELECT `+cols+` FROM instances
		WHERE +deleted = 0 AND uuid IN (SELECT instance_uuid FROM server_group_members WHERE group_uuid = ?)
		ORDER BY created_at, launch_index, uuid`, group)
}

// InstanceServerGroups are the live groups an instance is a member of
// (Nova's InstanceGroup.get_by_instance_uuid, as 2.71 shows it: at most
// one, since a server joins a group only on its boot).
func InstanceServerGroups(ctx context.Context, q Querier, instance string) ([]string, error) {
	out, err := db.Collect(ctx, q, func(s db.Scanner) (string, error) {
		var g string
		return g, s.Scan(&g)
	}, `SELECT g.uuid FROM server_group_members m JOIN server_groups g ON g.uuid = m.group_uuid
		WHERE m.instance_uuid = ? AND g.deleted = 0 ORDER BY g.created_at, g.uuid`+binary(q), instance)
	if err != nil {
		return nil, fmt.Errorf("server groups of %s: %w", instance, err)
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// DeleteServerGroup deletes a live group and forgets its members (the
// instances stay). A group that does not exist or was deleted is ErrNotFound.
func DeleteServerGroup(ctx context.Context, tx *db.Tx, uuid string) error {
	res, err := tx.Exec(ctx, `UPDATE server_groups SET deleted = 1 WHERE uuid = ? AND deleted = 0`, uuid)
	if err != nil {
		return fmt.Errorf("delete server group %s: %w", uuid, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("server group %s: %w", uuid, ErrNotFound)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM server_group_members WHERE group_uuid = ?`, uuid); err != nil {
		return fmt.Errorf("delete server group %s members: %w", uuid, err)
	}
	return nil
}
