package netdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/quota"
	"github.com/cellcloud/cellcloud/internal/db"
)

// The Networking API's quotas, as Neutron's DbQuotaNoLockDriver keeps
// them: a project's own limits are rows of network_quotas (migration 5);
// a resource without a row takes the configured default. Usage is never
// stored: it is counted from the records themselves, inside the
// transaction that creates new ones and under the project's quota lock
// (CheckQuota), so that two concurrent creates of one project are checked
// one after the other and the count cannot drift from the records.

// ErrOverQuota is the kind of a create refused for quota (Neutron's
// OverQuota, a 409).
var ErrOverQuota = errors.New("over quota")

// OverQuota is Neutron's OverQuota: "Quota exceeded for resources:
// ['network']." (the resources over, sorted, as a Python list).
func OverQuota(resources ...string) error {
	rs := slices.Clone(resources)
	slices.Sort(rs)
	quoted := make([]string, len(rs))
	for i, r := range rs {
		quoted[i] = "'" + r + "'"
	}
	return fail(ErrOverQuota, "OverQuota", fmt.Sprintf("Quota exceeded for resources: [%s].", strings.Join(quoted, ", ")))
}

// QuotaNotFound is Neutron's TenantQuotaNotFound: a reset of a project
// that has no limits of its own.
func QuotaNotFound(project string) error {
	return fail(ErrNotFound, "TenantQuotaNotFound", fmt.Sprintf("Quota for project %s could not be found.", project))
}

// lockQuota serialises the quota checks of a project's networking
// resources until tx ends (apidb's quota lock, on a key of its own, so
// that they do not wait on the project's compute quota checks).
func lockQuota(ctx context.Context, tx *db.Tx, project string) error {
	return apidb.LockQuota(ctx, tx, "network:"+project)
}

// QuotaLimits are a project's limits by resource.
type QuotaLimits map[string]int64

// ProjectQuotas are the limits a project set of its own (none when it has
// only the defaults).
func ProjectQuotas(ctx context.Context, q db.Querier, project string) (QuotaLimits, error) {
	all, err := listQuotas(ctx, q, `SELECT project_id, resource, hard_limit FROM network_quotas WHERE project_id = ?`, project)
	if err != nil {
		return nil, err
	}
	if all[project] == nil {
		return QuotaLimits{}, nil
	}
	return all[project], nil
}

// AllProjectQuotas are the limits of every project that set some of its
// own, by project.
func AllProjectQuotas(ctx context.Context, q db.Querier) (map[string]QuotaLimits, error) {
	return listQuotas(ctx, q, `SELECT project_id, resource, hard_limit FROM network_quotas`)
}

func listQuotas(ctx context.Context, q db.Querier, query string, args ...any) (map[string]QuotaLimits, error) {
	type row struct {
		project, resource string
		limit             int64
	}
	rows, err := db.Collect(ctx, q, func(s db.Scanner) (row, error) {
		var r row
		return r, s.Scan(&r.project, &r.resource, &r.limit)
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("network quotas: %w", err)
	}
	out := map[string]QuotaLimits{}
	for _, r := range rows {
		if out[r.project] == nil {
			out[r.project] = QuotaLimits{}
		}
		out[r.project][r.resource] = r.limit
	}
	return out, nil
}

// EffectiveQuotas are the limits in force for a project: its own, else
// the defaults, for every resource.
func EffectiveQuotas(ctx context.Context, q db.Querier, defaults quota.NetworkDefaults, project string) (QuotaLimits, error) {
	own, err := ProjectQuotas(ctx, q, project)
	if err != nil {
		return nil, err
	}
	return MergeQuotas(defaults, own), nil
}

// MergeQuotas is own over defaults (Neutron's defaults for what defaults
// lack), for every resource.
func MergeQuotas(defaults quota.NetworkDefaults, own QuotaLimits) QuotaLimits {
	d := defaults.WithNeutronDefaults()
	out := QuotaLimits{}
	for _, r := range quota.NetworkResources() {
		out[r] = d[r]
		if v, ok := own[r]; ok {
			out[r] = v
		}
	}
	return out
}

// SetProjectQuotas sets some of a project's limits (the others keep
// theirs), after checking, under the project's quota lock, that none is
// below what the project already uses (Neutron's "Quota limit L for R
// must be greater than or equal to already used U", a 400) unless force
// is set. order is the order in which the limits are checked (the
// request's); limits of -1 are not checked.
func SetProjectQuotas(ctx context.Context, tx *db.Tx, project string, limits QuotaLimits, order []string, force bool) error {
	if err := lockQuota(ctx, tx, project); err != nil {
		return err
	}
	if !force {
		for _, r := range order {
			l := limits[r]
			if l == quota.Unlimited {
				continue
			}
			used, err := CountQuotaUsage(ctx, tx, project, r)
			if err != nil {
				return err
			}
			if used > l {
				return fail(ErrInvalid, "HTTPBadRequest", fmt.Sprintf("Quota limit %d for %s must be greater than or equal to already used %d", l, r, used))
			}
		}
	}
	for _, r := range order {
		_, err := tx.Exec(ctx, `INSERT INTO network_quotas (project_id, resource, hard_limit) VALUES (?, ?, ?)
			ON CONFLICT (project_id, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, project, r, limits[r])
		if err != nil {
			return fmt.Errorf("set network quota %s of %s: %w", r, project, err)
		}
	}
	return nil
}

// DeleteProjectQuotas drops a project's own limits: it has the defaults
// again. A project with none is QuotaNotFound.
func DeleteProjectQuotas(ctx context.Context, tx *db.Tx, project string) error {
	res, err := tx.Exec(ctx, `DELETE FROM network_quotas WHERE project_id = ?`, project)
	if err != nil {
		return fmt.Errorf("delete network quotas of %s: %w", project, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return QuotaNotFound(project)
	}
	return nil
}

// CountQuotaUsage is how many of resource a project has: its networks,
// subnets, ports (CountPorts), security groups (the default one too) and
// their rules, by the records' project_id. Routers, floating IPs, RBAC
// policies and subnet pools do not exist here: 0.
func CountQuotaUsage(ctx context.Context, q db.Querier, project, resource string) (int64, error) {
	table := ""
	switch resource {
	case quota.NetNetwork:
		table = "networks"
	case quota.NetSubnet:
		table = "subnets"
	case quota.NetSecurityGroup:
		table = "security_groups"
	case quota.NetSecurityGroupRule:
		table = "security_group_rules"
	case quota.NetPort:
		return CountPorts(ctx, q, project)
	default:
		return 0, nil
	}
	var n int64
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM `+table+` WHERE project_id = ?`, project).Scan(&n); err != nil {
		return 0, fmt.Errorf("count %s of %s: %w", table, project, err)
	}
	return n, nil
}

// CountPorts is how many ports a project has: its rows of the ports
// table, those a boot made included.
func CountPorts(ctx context.Context, q db.Querier, project string) (int64, error) {
	var n int64
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM ports WHERE project_id = ?`, project).Scan(&n); err != nil {
		return 0, fmt.Errorf("count ports of %s: %w", project, err)
	}
	return n, nil
}

// QuotaUsage counts every resource of a project.
func QuotaUsage(ctx context.Context, q db.Querier, project string) (QuotaLimits, error) {
	out := QuotaLimits{}
	for _, r := range quota.NetworkResources() {
		n, err := CountQuotaUsage(ctx, q, project, r)
		if err != nil {
			return nil, err
		}
		out[r] = n
	}
	return out, nil
}

// CheckQuota refuses, with OverQuota, a create of adding more of resource
// for project that would pass the project's limit. It takes the project's
// quota lock first and counts inside tx: the caller creates the records
// in the same tx, after the check, so that a concurrent create of the
// project waits for this one and counts what it made. A negative limit
// is unlimited (nothing is counted); adding 0 is always within it.
func CheckQuota(ctx context.Context, tx *db.Tx, defaults quota.NetworkDefaults, project, resource string, adding int) error {
	if err := lockQuota(ctx, tx, project); err != nil {
		return err
	}
	if adding <= 0 {
		return nil
	}
	limits, err := EffectiveQuotas(ctx, tx, defaults, project)
	if err != nil {
		return err
	}
	limit, ok := limits[resource]
	if !ok {
		return fmt.Errorf("check network quota: no resource %q", resource)
	}
	if limit < 0 {
		return nil
	}
	used, err := CountQuotaUsage(ctx, tx, project, resource)
	if err != nil {
		return err
	}
	if used+int64(adding) > limit {
		return OverQuota(resource)
	}
	return nil
}
