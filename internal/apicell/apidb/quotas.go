package apidb

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// DefaultQuotaClass is the quota class whose limits replace the configured
// defaults.
const DefaultQuotaClass = "default"

// LockQuota serialises the quota checks of a project until tx ends. On
// PostgreSQL it takes the key's advisory lock exclusively, which waits
// for the creates that hold it shared (LockQuotaShared) and holds off new
// ones, and the key's row lock in quota_locks (as binaries before the
// advisory lock took it), in one statement. A check that counts usage and
// then creates records inside tx therefore sees every record a concurrent
// check created before it. On SQLite it does nothing: a transaction there
// holds the database's one write lock from its start.
func LockQuota(ctx context.Context, tx *db.Tx, projectID string) error {
	if tx.Dialect != db.Postgres {
		return nil
	}
	// Sent with the statement that reads the limits (or usage) next.
	err := tx.ExecLater(ctx, `INSERT INTO quota_locks (project_id, checks)
		SELECT ?, 1 FROM (SELECT pg_advisory_xact_lock(hashtextextended(?, 0))) AS advisory
		ON CONFLICT (project_id) DO UPDATE SET checks = quota_locks.checks + 1`, projectID, projectID)
	if err != nil {
		return fmt.Errorf("lock quota of %s: %w", projectID, err)
	}
	return nil
}

// LockQuotaShared takes a project's quota lock shared until tx ends: for
// a create that counts nothing because every limit it checks is
// unlimited. Such creates do not wait for each other, but a change of
// the project's limits (under LockQuota) waits for them to end, and they
// for it; the limits must be read after this, in a later statement, so
// that they are read after a concurrent change committed (PostgreSQL's
// READ COMMITTED gives each statement a new snapshot). Nothing on SQLite.
func LockQuotaShared(ctx context.Context, tx *db.Tx, projectID string) error {
	if tx.Dialect != db.Postgres {
		return nil
	}
	if err := tx.ExecLater(ctx, `SELECT pg_advisory_xact_lock_shared(hashtextextended(?, 0))`, projectID); err != nil {
		return fmt.Errorf("lock quota of %s: %w", projectID, err)
	}
	return nil
}

func collectLimits(ctx context.Context, q Querier, query string, args ...any) (quota.Limits, error) {
	type row struct {
		r string
		v int64
	}
	rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
		var x row
		return x, s.Scan(&x.r, &x.v)
	}, query, args...)
	if err != nil {
		return nil, err
	}
	out := quota.Limits{}
	for _, x := range rows {
		out[x.r] = x.v
	}
	return out, nil
}

// ProjectLimits are the limits set for a project (user "") or for one
// user in it: only the resources with a row.
func ProjectLimits(ctx context.Context, q Querier, projectID, userID string) (quota.Limits, error) {
	return collectLimits(ctx, q, `SELECT resource, hard_limit FROM quota_limits WHERE project_id = ? AND user_id = ?`, projectID, userID)
}

// ClassLimits are the limits set for a quota class.
func ClassLimits(ctx context.Context, q Querier, class string) (quota.Limits, error) {
	return collectLimits(ctx, q, `SELECT resource, hard_limit FROM quota_classes WHERE class_name = ?`, class)
}

// EffectiveLimits are a project's (or a user's in it) limits in force.
func EffectiveLimits(ctx context.Context, q Querier, defaults quota.Defaults, projectID, userID string) (quota.Limits, error) {
	class, err := ClassLimits(ctx, q, DefaultQuotaClass)
	if err != nil {
		return nil, err
	}
	project, err := ProjectLimits(ctx, q, projectID, "")
	if err != nil {
		return nil, err
	}
	var user quota.Limits
	if userID != "" {
		if user, err = ProjectLimits(ctx, q, projectID, userID); err != nil {
			return nil, err
		}
	}
	return quota.Effective(defaults, class, project, user), nil
}

// LimitsFor are the limits in force for a project, and for the user when
// the user has limits of their own in it (nil otherwise): what
// EffectiveLimits gives for each, read in one query.
func LimitsFor(ctx context.Context, q Querier, defaults quota.Defaults, projectID, userID string) (project, user quota.Limits, err error) {
	type row struct {
		user, r string
		v       int64
		class   bool
	}
	rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
		var x row
		var class int
		err := s.Scan(&class, &x.user, &x.r, &x.v)
		x.class = class == 1
		return x, err
	}, `SELECT 1, '', resource, hard_limit FROM quota_classes WHERE class_name = ?
		UNION ALL SELECT 0, user_id, resource, hard_limit FROM quota_limits WHERE project_id = ? AND user_id IN ('', ?)`,
		DefaultQuotaClass, projectID, userID)
	if err != nil {
		return nil, nil, err
	}
	class, own, mine := quota.Limits{}, quota.Limits{}, quota.Limits{}
	for _, x := range rows {
		switch {
		case x.class:
			class[x.r] = x.v
		case x.user == "":
			own[x.r] = x.v
		default:
			mine[x.r] = x.v
		}
	}
	project = quota.Effective(defaults, class, own, nil)
	if userID != "" && len(mine) > 0 {
		user = quota.Effective(defaults, class, own, mine)
	}
	return project, user, nil
}

// SetLimits writes limits for a project (user "") or a user in it.
func SetLimits(ctx context.Context, tx *db.Tx, projectID, userID string, l quota.Limits) error {
	for r, v := range l {
		if _, err := tx.Exec(ctx, `INSERT INTO quota_limits (project_id, user_id, resource, hard_limit) VALUES (?, ?, ?, ?)
			ON CONFLICT (project_id, user_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, projectID, userID, r, v); err != nil {
			return fmt.Errorf("set quota %s of %s: %w", r, projectID, err)
		}
	}
	return nil
}

// DeleteLimits deletes a user's limits in a project, or (user "") every
// limit of the project, its users' included, as Nova's delete does.
func DeleteLimits(ctx context.Context, tx *db.Tx, projectID, userID string) error {
	q, args := `DELETE FROM quota_limits WHERE project_id = ?`, []any{projectID}
	if userID != "" {
		q, args = q+` AND user_id = ?`, append(args, userID)
	}
	_, err := tx.Exec(ctx, q, args...)
	return err
}

// SetClassLimits writes limits for a quota class.
func SetClassLimits(ctx context.Context, tx *db.Tx, class string, l quota.Limits) error {
	for r, v := range l {
		if _, err := tx.Exec(ctx, `INSERT INTO quota_classes (class_name, resource, hard_limit) VALUES (?, ?, ?)
			ON CONFLICT (class_name, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, class, r, v); err != nil {
			return fmt.Errorf("set quota class %s %s: %w", class, r, err)
		}
	}
	return nil
}

// UserLimitSums are, per resource, the sum of the limits set for the
// users of a project, and whether any of them is unlimited.
func UserLimitSums(ctx context.Context, q Querier, projectID string) (sums quota.Limits, unlimited map[string]bool, err error) {
	type row struct {
		r      string
		sum, n int64
	}
	rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
		var x row
		return x, s.Scan(&x.r, &x.sum, &x.n)
	}, `SELECT resource, COALESCE(SUM(CASE WHEN hard_limit < 0 THEN 0 ELSE hard_limit END), 0), SUM(CASE WHEN hard_limit < 0 THEN 1 ELSE 0 END)
		FROM quota_limits WHERE project_id = ? AND user_id <> '' GROUP BY resource`, projectID)
	if err != nil {
		return nil, nil, err
	}
	sums, unlimited = quota.Limits{}, map[string]bool{}
	for _, x := range rows {
		sums[x.r] = x.sum
		unlimited[x.r] = x.n > 0
	}
	return sums, unlimited, nil
}

// Usage counts a project's (or, with a user, that user's) instances, cores,
// RAM and server groups from the API cell's records: every instance not
// yet deleted, whatever its state (as Nova counts). An instance being
// resized counts the larger of its two flavors.
func Usage(ctx context.Context, q Querier, projectID, userID string) (quota.Limits, error) {
	where, args := `project_id = ? AND deleted = 0`, []any{projectID}
	if userID != "" {
		where, args = where+` AND user_id = ?`, append(args, userID)
	}
	var n, cores, ram, groups int64
	err := q.QueryRow(ctx, `SELECT COUNT(*),
		COALESCE(SUM(CASE WHEN resize_vcpus > vcpus THEN resize_vcpus ELSE vcpus END), 0),
		COALESCE(SUM(CASE WHEN resize_memory_mb > memory_mb THEN resize_memory_mb ELSE memory_mb END), 0)
		FROM instances WHERE `+where, args...).Scan(&n, &cores, &ram)
	if err != nil {
		return nil, fmt.Errorf("count usage of %s: %w", projectID, err)
	}
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM server_groups WHERE `+where, args...).Scan(&groups); err != nil {
		return nil, fmt.Errorf("count server groups of %s: %w", projectID, err)
	}
	return quota.Limits{quota.Instances: n, quota.Cores: cores, quota.RAM: ram, quota.ServerGroups: groups}, nil
}

// CountKeyPairs counts a user's key pairs (in every project, as Nova does).
func CountKeyPairs(ctx context.Context, q Querier, userID string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM key_pairs WHERE user_id = ?`, userID).Scan(&n)
	return n, err
}

// CountGroupMembers counts the live members of a server group that a user
// owns (Nova's server_group_members usage).
func CountGroupMembers(ctx context.Context, q Querier, groupID, userID string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM server_group_members m JOIN instances i ON i.uuid = m.instance_uuid
		WHERE m.group_uuid = ? AND i.user_id = ? AND i.deleted = 0`, groupID, userID).Scan(&n)
	return n, err
}

// SetResizeFlavor records the flavor a resize goes to, so that the
// instance counts it (when larger) from the request on.
func SetResizeFlavor(ctx context.Context, tx *db.Tx, uuid string, f wire.Flavor) error {
	_, err := tx.Exec(ctx, `UPDATE instances SET resize_vcpus = ?, resize_memory_mb = ? WHERE uuid = ?`, f.VCPUs, f.RAMMB, uuid)
	return err
}

// backfillQuotaColumns fills the counted flavor columns of instances
// created before they existed (migration 10).
func backfillQuotaColumns(ctx context.Context, tx *db.Tx) error {
	type row struct{ uuid, flavor string }
	rows, err := db.Collect(ctx, tx, func(s db.Scanner) (row, error) {
		var x row
		return x, s.Scan(&x.uuid, &x.flavor)
	}, `SELECT uuid, flavor FROM instances WHERE vcpus = 0 AND deleted = 0`)
	if err != nil {
		return err
	}
	for _, x := range rows {
		var f wire.Flavor
		if err := json.Unmarshal([]byte(x.flavor), &f); err != nil {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE instances SET vcpus = ?, memory_mb = ? WHERE uuid = ?`, f.VCPUs, f.RAMMB, x.uuid); err != nil {
			return err
		}
	}
	return nil
}
