package netdb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
)

// Security group bindings: which groups each server is in. Neutron binds
// groups to ports; the ports here are derived from the servers' addresses,
// so the API cell binds groups to the servers themselves
// (security_group_bindings, migration 3), and every port of a server has
// its server's groups. A binding of a deleted server does not count: like
// the API cell's server group members, bindings are read joined with the
// live instances, so deleting a server costs no statement here; a group's
// bindings go with the group.

// ErrNoDefaultGroup is BindSecurityGroups asked to bind a project's
// default group before the project has one: the caller makes it
// (EnsureDefaultSecurityGroup, its own transaction) and tries again.
var ErrNoDefaultGroup = errors.New("the project has no default security group yet")

// BindSecurityGroups binds the instances of one create request (those of
// reservation, already inserted in tx) to the groups ids, or, when ids is
// empty, to project's default group. It is one statement for all of them.
// A group deleted since the request was checked is a SecurityGroupNotFound
// (nothing of the request is then written). It returns the ids of the
// groups bound (the default group's, when ids is empty), by id.
func BindSecurityGroups(ctx context.Context, tx *db.Tx, reservation, project string, ids []string, instances int) ([]string, error) {
	return bindNew(ctx, tx, "", nil, reservation, project, ids, instances)
}

// CreateBound inserts the instances of one create request (apidb.Create)
// and binds them as BindSecurityGroups does: on PostgreSQL in one
// statement, which binds the rows it inserts.
func CreateBound(ctx context.Context, tx *db.Tx, insts []apidb.Instance, reservation, project string, ids []string) ([]string, error) {
	if tx.Dialect != db.Postgres {
		if err := apidb.Create(ctx, tx, insts); err != nil {
			return nil, err
		}
		return BindSecurityGroups(ctx, tx, reservation, project, ids, len(insts))
	}
	q, args := apidb.CreateStatement(tx, insts)
	return bindNew(ctx, tx, `WITH i AS (`+q+` RETURNING uuid) `, args, reservation, project, ids, len(insts))
}

// bindNew is BindSecurityGroups of the instances of reservation, or, with
// a WITH (and its arguments) that inserts them, of the rows it returns.
func bindNew(ctx context.Context, tx *db.Tx, with string, args []any, reservation, project string, ids []string, instances int) ([]string, error) {
	q := with + `INSERT INTO security_group_bindings (instance_uuid, security_group_id)
		SELECT i.uuid, g.id FROM `
	if with == "" {
		q += `instances `
	}
	q += `i JOIN security_groups g ON `
	if len(ids) == 0 {
		q += `g.project_id = ? AND g.is_default = 1`
		args = append(args, project)
	} else {
		q += `g.id IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ") + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	if with == "" {
		q += ` WHERE i.reservation_id = ?`
		args = append(args, reservation)
	}
	if len(ids) > 0 {
		q += shareGroups(tx)
	}
	bound, err := db.Collect(ctx, tx, func(s db.Scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	}, q+` RETURNING security_group_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("bind security groups of %s: %w", reservation, err)
	}
	n := len(bound)
	want := instances * max(len(ids), 1)
	switch {
	case n == want:
		slices.Sort(bound)
		return slices.Compact(bound), nil
	case len(ids) == 0 && n == 0:
		return nil, ErrNoDefaultGroup
	default:
		// A group was deleted since the request was checked.
		return nil, fail(ErrNotFound, "SecurityGroupNotFound", fmt.Sprintf("A security group of %s was deleted meanwhile", reservation))
	}
}

// shareGroups is, on PostgreSQL, the lock a binding takes on the groups
// (alias g) it binds to, so that a group's deletion, which holds its row
// from before it counts the group's servers (DeleteSecurityGroup), and a
// binding to it are one after the other: a binding after the deletion
// finds no group, a deletion after the binding counts it. On SQLite
// writers take turns anyway. The default group, which only an admin
// deletes, is bound without it, so that a boot writes nothing to it.
func shareGroups(tx *db.Tx) string {
	if tx.Dialect == db.Postgres {
		return ` FOR SHARE OF g`
	}
	return ""
}

// BindSecurityGroup adds an instance to a group; it reports false when the
// instance was in it already (or the group is gone). The ports whose
// groups are the server's change with it: their addresses join the
// group's members (logged, sgcells.go) and their revision rises.
func BindSecurityGroup(ctx context.Context, tx *db.Tx, instance, group string, now time.Time) (bool, error) {
	return changeServerGroups(ctx, tx, instance, now, func() (sql.Result, error) {
		res, err := tx.Exec(ctx, `INSERT INTO security_group_bindings (instance_uuid, security_group_id)
			SELECT ?, g.id FROM security_groups g WHERE g.id = ?`+shareGroups(tx)+` ON CONFLICT DO NOTHING`, instance, group)
		if err != nil {
			return nil, fmt.Errorf("add %s to security group %s: %w", instance, group, err)
		}
		return res, nil
	})
}

// UnbindSecurityGroup takes an instance out of a group; it reports false
// when the instance was not in it. The server's ports change as with
// BindSecurityGroup.
func UnbindSecurityGroup(ctx context.Context, tx *db.Tx, instance, group string, now time.Time) (bool, error) {
	return changeServerGroups(ctx, tx, instance, now, func() (sql.Result, error) {
		res, err := tx.Exec(ctx, `DELETE FROM security_group_bindings WHERE instance_uuid = ? AND security_group_id = ?`, instance, group)
		if err != nil {
			return nil, fmt.Errorf("remove %s from security group %s: %w", instance, group, err)
		}
		return res, nil
	})
}

// changeServerGroups runs change, a change of the instance's bindings, and
// when it changed one, logs what its ports give the member sets now and
// raises the revision of the ports whose groups are the server's. The
// first change records the groups the server had, which are those its
// build carried (the API copy's build_security_groups, apidb migration 14:
// the ports its cell makes are told their groups when they are recorded,
// MaterializeServerPorts), and marks its ports revised (ports_revised: a
// cell that takes its build later is told their states).
func changeServerGroups(ctx context.Context, tx *db.Tx, instance string, now time.Time, change func() (sql.Result, error)) (bool, error) {
	ports, err := serverPortIDs(ctx, tx, instance)
	if err != nil {
		return false, err
	}
	var before map[Member]bool
	if len(ports) > 0 {
		if before, err = portMembers(ctx, tx, ports); err != nil {
			return false, err
		}
	}
	build, err := db.Collect(ctx, tx, func(s db.Scanner) (string, error) {
		var id string
		return id, s.Scan(&id)
	}, `SELECT security_group_id FROM security_group_bindings WHERE instance_uuid = ? ORDER BY security_group_id`, instance)
	if err != nil {
		return false, fmt.Errorf("security groups of %s: %w", instance, err)
	}
	res, err := change()
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return n > 0, err
	}
	if build == nil {
		build = []string{}
	}
	buildJSON, _ := json.Marshal(build)
	if _, err := tx.Exec(ctx, `UPDATE instances SET ports_revised = 1,
		build_security_groups = CASE WHEN build_security_groups = '' THEN ? ELSE build_security_groups END WHERE uuid = ?`,
		string(buildJSON), instance); err != nil {
		return false, fmt.Errorf("record the build's security groups of %s: %w", instance, err)
	}
	if len(ports) == 0 {
		return true, nil
	}
	if err := logPortMembers(ctx, tx, ports, before); err != nil {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE ports SET revision_number = revision_number + 1, updated_at = ? WHERE device_id = ? AND server_groups = 1`,
		db.Micros(now), instance); err != nil {
		return false, fmt.Errorf("revise the ports of %s: %w", instance, err)
	}
	return true, nil
}

// InstanceGroup is a group an instance is in: its id and name.
type InstanceGroup struct {
	InstanceUUID string
	ID, Name     string
}

// InstancesSecurityGroups returns the groups of each of the instances, by
// instance, each instance's by name then id: one query per 500 instances.
// As Nova shows them, they are the groups of the server's ports: a port
// passed in (or given groups of its own) has its own, the ports made for
// the server have the server's (its bindings); a server with no port yet
// (its cell has not reported its addresses) has its bindings.
func InstancesSecurityGroups(ctx context.Context, q db.Querier, uuids []string) (map[string][]InstanceGroup, error) {
	out := map[string][]InstanceGroup{}
	for len(uuids) > 0 {
		chunk := uuids[:min(len(uuids), 500)]
		uuids = uuids[len(chunk):]
		args := make([]any, len(chunk))
		for i, u := range chunk {
			args[i] = u
		}
		marks := strings.TrimSuffix(strings.Repeat("?, ", len(chunk)), ", ")
		rows, err := db.Collect(ctx, q, func(s db.Scanner) (InstanceGroup, error) {
			var g InstanceGroup
			return g, s.Scan(&g.InstanceUUID, &g.ID, &g.Name)
		}, `SELECT b.instance_uuid, g.id, g.name FROM security_group_bindings b JOIN security_groups g ON g.id = b.security_group_id
			WHERE b.instance_uuid IN (`+marks+`)
			AND (NOT EXISTS (SELECT 1 FROM ports p WHERE p.device_id = b.instance_uuid)
				OR EXISTS (SELECT 1 FROM ports p WHERE p.device_id = b.instance_uuid AND p.server_groups = 1))
			UNION
			SELECT p.device_id, g.id, g.name FROM ports p JOIN port_security_groups ps ON ps.port_id = p.id
				JOIN security_groups g ON g.id = ps.security_group_id
			WHERE p.device_id IN (`+marks+`) AND p.server_groups = 0
			ORDER BY 3, 2`, append(args, args...)...)
		if err != nil {
			return nil, fmt.Errorf("security groups of %d instances: %w", len(chunk), err)
		}
		for _, g := range rows {
			out[g.InstanceUUID] = append(out[g.InstanceUUID], g)
		}
	}
	return out, nil
}

// countServersIn is how many live servers are in group id.
func countServersIn(ctx context.Context, q db.Querier, id string) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM security_group_bindings b JOIN instances i ON i.uuid = b.instance_uuid
		WHERE b.security_group_id = ? AND i.deleted = 0`, id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("servers in security group %s: %w", id, err)
	}
	return n, nil
}

// ResolveSecurityGroup finds the group of project that nameOrID names: a
// group with that id, else the one group with that name (Nova's
// find_resourceid_by_name_or_id within the project). It returns
// ErrNotFound when there is none and ErrConflict when the name is several
// groups'.
func ResolveSecurityGroup(ctx context.Context, q db.Querier, project, nameOrID string) (id, name string, err error) {
	type pair struct{ id, name string }
	found, err := db.Collect(ctx, q, func(s db.Scanner) (pair, error) {
		var p pair
		return p, s.Scan(&p.id, &p.name)
	}, `SELECT id, name FROM security_groups WHERE project_id = ? AND (id = ? OR name = ?) ORDER BY id`, project, nameOrID, nameOrID)
	if err != nil {
		return "", "", fmt.Errorf("find security group %q: %w", nameOrID, err)
	}
	var named []pair
	for _, p := range found {
		if p.id == nameOrID {
			return p.id, p.name, nil
		}
		named = append(named, p)
	}
	switch len(named) {
	case 0:
		return "", "", fail(ErrNotFound, "SecurityGroupNotFound", fmt.Sprintf("Unable to find security_group with name or id '%s'", nameOrID))
	case 1:
		return named[0].id, named[0].name, nil
	}
	return "", "", fail(ErrConflict, "NoUniqueMatch",
		fmt.Sprintf("Multiple security_group matches found for name '%s', use an ID to be more specific.", nameOrID))
}
