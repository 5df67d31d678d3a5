package voltypes

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cellcloud/cellcloud/internal/db"
)

// The quota resources, by Cinder's names; each type adds
// volumes_<name>, gigabytes_<name> and snapshots_<name>.
const (
	Volumes            = "volumes"
	Gigabytes          = "gigabytes"
	Snapshots          = "snapshots"
	Backups            = "backups"
	BackupGigabytes    = "backup_gigabytes"
	Groups             = "groups"
	PerVolumeGigabytes = "per_volume_gigabytes"
)

// Unlimited is the limit that never refuses.
const Unlimited = -1

// MaxLimit is the largest limit (Cinder's DB_MAX_INT).
const MaxLimit = 0x7FFFFFFF

// globalResources are the resources that are not per type, in Cinder's
// order.
var globalResources = []string{Volumes, PerVolumeGigabytes, Snapshots, Gigabytes, Backups, BackupGigabytes, Groups}

// builtinDefaults are Cinder's quota options' defaults (quota_volumes,
// per_volume_size_limit, …), the default of a resource the default quota
// class has no row for; a per-type resource's is Unlimited.
var builtinDefaults = map[string]int64{
	Volumes: 10, PerVolumeGigabytes: Unlimited, Snapshots: 10, Gigabytes: 1000,
	Backups: 10, BackupGigabytes: 1000, Groups: 10,
}

// typeParts are the resources each type has one of.
var typeParts = []string{Volumes, Gigabytes, Snapshots}

// TypeResource is a type's resource of part (volumes, gigabytes,
// snapshots): "volumes_gold".
func TypeResource(part, typeName string) string { return part + "_" + typeName }

// Resources are every quota resource: the global ones, then those of
// every live type (by name).
func (s *Store) Resources(ctx context.Context, q db.Querier) ([]string, error) {
	names, err := s.names(ctx, q)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(globalResources)
	for _, n := range names {
		for _, p := range typeParts {
			out = append(out, TypeResource(p, n))
		}
	}
	return out, nil
}

func builtin(resource string) int64 {
	if v, ok := builtinDefaults[resource]; ok {
		return v
	}
	return Unlimited
}

func (s *Store) rows(ctx context.Context, q db.Querier, query string, args ...any) (map[string]int64, error) {
	type row struct {
		r string
		v int64
	}
	rows, err := db.Collect(ctx, q, func(sc db.Scanner) (row, error) {
		var x row
		return x, sc.Scan(&x.r, &x.v)
	}, query, args...)
	if err != nil {
		return nil, fmt.Errorf("volume quotas: %w", err)
	}
	out := make(map[string]int64, len(rows))
	for _, x := range rows {
		out[x.r] = x.v
	}
	return out, nil
}

// Defaults are every resource's default limit (Cinder's get_defaults):
// the default quota class's, else the built-in one.
func (s *Store) Defaults(ctx context.Context, q db.Querier) (map[string]int64, error) {
	return s.ClassLimits(ctx, q, DefaultQuotaClass)
}

// Limits are a project's limits by resource, for every resource: its own,
// else the default quota class's, else the built-in default (-1
// unlimited).
func (s *Store) Limits(ctx context.Context, q db.Querier, project string) (map[string]int64, error) {
	defaults, err := s.Defaults(ctx, q)
	if err != nil {
		return nil, err
	}
	own, err := s.rows(ctx, q, `SELECT resource, hard_limit FROM volume_quotas WHERE project_id = ?`, project)
	if err != nil {
		return nil, err
	}
	for r := range defaults {
		if v, ok := own[r]; ok {
			defaults[r] = v
		}
	}
	return defaults, nil
}

// ProjectLimits are the limits a project set of its own, for the
// resources that exist (Cinder's get_project_quotas with defaults=False).
func (s *Store) ProjectLimits(ctx context.Context, q db.Querier, project string) (map[string]int64, error) {
	res, err := s.Resources(ctx, q)
	if err != nil {
		return nil, err
	}
	own, err := s.rows(ctx, q, `SELECT resource, hard_limit FROM volume_quotas WHERE project_id = ?`, project)
	if err != nil {
		return nil, err
	}
	for r := range own {
		if !slices.Contains(res, r) {
			delete(own, r)
		}
	}
	return own, nil
}

// SetLimits sets some of a project's own limits (the others keep
// theirs). Every key must be a resource (else ErrBadKeys, "Bad key(s) in
// quota set: …") and every limit within [-1, MaxLimit]; the caller checks
// them against usage first, under LockQuota (see the API's quota set).
func (s *Store) SetLimits(ctx context.Context, tx *db.Tx, project string, limits map[string]int64) error {
	if err := s.checkKeys(ctx, tx, limits, "Bad key(s) in quota set: %s"); err != nil {
		return err
	}
	return upsertLimits(ctx, tx, "volume_quotas", "project_id", project, limits)
}

// DeleteLimits drops a project's own limits: it has the defaults again.
// A project without any is no error (Cinder's 200 either way).
func (s *Store) DeleteLimits(ctx context.Context, tx *db.Tx, project string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM volume_quotas WHERE project_id = ?`, project); err != nil {
		return fmt.Errorf("delete volume quotas of %s: %w", project, err)
	}
	return nil
}

// ClassLimits are a quota class's limits for every resource (Cinder's
// get_class_quotas): the class's own, else the default class's, else the
// built-in default.
func (s *Store) ClassLimits(ctx context.Context, q db.Querier, class string) (map[string]int64, error) {
	res, err := s.Resources(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := s.rows(ctx, q, `SELECT resource, hard_limit FROM volume_quota_classes WHERE class_name = ?`, DefaultQuotaClass)
	if err != nil {
		return nil, err
	}
	own := rows
	if class != DefaultQuotaClass {
		if own, err = s.rows(ctx, q, `SELECT resource, hard_limit FROM volume_quota_classes WHERE class_name = ?`, class); err != nil {
			return nil, err
		}
	}
	out := make(map[string]int64, len(res))
	for _, r := range res {
		switch v, ok := own[r]; {
		case ok:
			out[r] = v
		default:
			if d, ok := rows[r]; ok {
				out[r] = d
			} else {
				out[r] = builtin(r)
			}
		}
	}
	return out, nil
}

// SetClassLimits sets some limits of a quota class (the others keep
// theirs); every key must be a resource (else ErrBadKeys, "Bad key(s) in
// quota class set: …"). The default class's limits are every project's
// defaults.
func (s *Store) SetClassLimits(ctx context.Context, tx *db.Tx, class string, limits map[string]int64) error {
	if err := s.checkKeys(ctx, tx, limits, "Bad key(s) in quota class set: %s"); err != nil {
		return err
	}
	return upsertLimits(ctx, tx, "volume_quota_classes", "class_name", class, limits)
}

func (s *Store) checkKeys(ctx context.Context, q db.Querier, limits map[string]int64, format string) error {
	res, err := s.Resources(ctx, q)
	if err != nil {
		return err
	}
	var bad []string
	for k, v := range limits {
		if !slices.Contains(res, k) {
			bad = append(bad, k)
			continue
		}
		if v < Unlimited || v > MaxLimit {
			return fmt.Errorf("volume quota %s: limit %d out of range", k, v)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		return fail(ErrBadKeys, "Invalid input received: "+format, strings.Join(bad, ", "))
	}
	return nil
}

func upsertLimits(ctx context.Context, tx *db.Tx, table, keyCol, key string, limits map[string]int64) error {
	rs := make([]string, 0, len(limits))
	for r := range limits {
		rs = append(rs, r)
	}
	slices.Sort(rs)
	for _, r := range rs {
		_, err := tx.Exec(ctx, `INSERT INTO `+table+` (`+keyCol+`, resource, hard_limit) VALUES (?, ?, ?)
			ON CONFLICT (`+keyCol+`, resource) DO UPDATE SET hard_limit = excluded.hard_limit`, key, r, limits[r])
		if err != nil {
			return fmt.Errorf("set %s %s of %s: %w", table, r, key, err)
		}
	}
	return nil
}
