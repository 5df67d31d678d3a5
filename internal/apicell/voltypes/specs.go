package voltypes

import (
	"context"
	"fmt"
	"slices"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Specs are a type's extra specs (never nil). The type is not checked.
func (s *Store) Specs(ctx context.Context, q db.Querier, typeID string) (map[string]string, error) {
	type kv struct{ k, v string }
	rows, err := db.Collect(ctx, q, func(sc db.Scanner) (kv, error) {
		var x kv
		return x, sc.Scan(&x.k, &x.v)
	}, `SELECT spec_key, value FROM volume_type_extra_specs WHERE volume_type_id = ?`, typeID)
	if err != nil {
		return nil, fmt.Errorf("extra specs of volume type %s: %w", typeID, err)
	}
	out := make(map[string]string, len(rows))
	for _, x := range rows {
		out[x.k] = x.v
	}
	return out, nil
}

// allSpecs are the extra specs of every live type, by type id.
func (s *Store) allSpecs(ctx context.Context, q db.Querier) (map[string]map[string]string, error) {
	type row struct{ id, k, v string }
	rows, err := db.Collect(ctx, q, func(sc db.Scanner) (row, error) {
		var x row
		return x, sc.Scan(&x.id, &x.k, &x.v)
	}, `SELECT s.volume_type_id, s.spec_key, s.value FROM volume_type_extra_specs s
		JOIN volume_types t ON t.id = s.volume_type_id WHERE t.deleted = 0`)
	if err != nil {
		return nil, fmt.Errorf("extra specs: %w", err)
	}
	out := map[string]map[string]string{}
	for _, x := range rows {
		if out[x.id] == nil {
			out[x.id] = map[string]string{}
		}
		out[x.id][x.k] = x.v
	}
	return out, nil
}

// SetSpecs creates or replaces extra specs of a live type (by id); the
// others stay.
func (s *Store) SetSpecs(ctx context.Context, tx *db.Tx, typeID string, specs map[string]string) error {
	if _, err := s.Get(ctx, tx, typeID, "", true); err != nil {
		return err
	}
	if err := s.putSpecs(ctx, tx, typeID, specs); err != nil {
		return err
	}
	return s.touch(ctx, tx, typeID)
}

func (s *Store) putSpecs(ctx context.Context, tx *db.Tx, typeID string, specs map[string]string) error {
	keys := make([]string, 0, len(specs))
	for k := range specs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		_, err := tx.Exec(ctx, `INSERT INTO volume_type_extra_specs (volume_type_id, spec_key, value) VALUES (?, ?, ?)
			ON CONFLICT (volume_type_id, spec_key) DO UPDATE SET value = excluded.value`, typeID, k, specs[k])
		if err != nil {
			return fmt.Errorf("set extra spec %s of volume type %s: %w", k, typeID, err)
		}
	}
	return nil
}

// DeleteSpec deletes one extra spec of a live type (by id): Cinder's
// VolumeTypeExtraSpecsNotFound when it has none of that key.
func (s *Store) DeleteSpec(ctx context.Context, tx *db.Tx, typeID, key string) error {
	if _, err := s.Get(ctx, tx, typeID, "", true); err != nil {
		return err
	}
	res, err := tx.Exec(ctx, `DELETE FROM volume_type_extra_specs WHERE volume_type_id = ? AND spec_key = ?`, typeID, key)
	if err != nil {
		return fmt.Errorf("delete extra spec %s of volume type %s: %w", key, typeID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return SpecNotFound(typeID, key)
	}
	return s.touch(ctx, tx, typeID)
}

// SpecNotFound is Cinder's VolumeTypeExtraSpecsNotFound.
func SpecNotFound(typeID, key string) error {
	return fail(ErrSpecNotFound, "Volume Type %s has no extra specs with key %s.", typeID, key)
}

// Access is the projects with access to a live type (by id), sorted.
func (s *Store) Access(ctx context.Context, q db.Querier, typeID string) ([]string, error) {
	if _, err := s.Get(ctx, q, typeID, "", true); err != nil {
		return nil, err
	}
	ps, err := db.Collect(ctx, q, func(sc db.Scanner) (string, error) {
		var p string
		return p, sc.Scan(&p)
	}, `SELECT project_id FROM volume_type_projects WHERE volume_type_id = ? ORDER BY project_id`, typeID)
	if err != nil {
		return nil, fmt.Errorf("access of volume type %s: %w", typeID, err)
	}
	return ps, nil
}

// AddAccess gives project access to a private live type (by id): a
// public type is ErrPublicAccess, an entry already there ErrAccessExists.
func (s *Store) AddAccess(ctx context.Context, tx *db.Tx, typeID, project string) error {
	t, err := s.Get(ctx, tx, typeID, "", true)
	if err != nil {
		return err
	}
	if t.IsPublic {
		return publicAccess()
	}
	res, err := tx.Exec(ctx, `INSERT INTO volume_type_projects (volume_type_id, project_id) VALUES (?, ?)
		ON CONFLICT (volume_type_id, project_id) DO NOTHING`, typeID, project)
	if err != nil {
		return fmt.Errorf("add access of %s to volume type %s: %w", project, typeID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fail(ErrAccessExists, "Volume type access for %s / %s combination already exists.", typeID, project)
	}
	return nil
}

// RemoveAccess takes project's access to a private live type (by id)
// away: a public type is ErrPublicAccess, a missing entry
// ErrAccessNotFound.
func (s *Store) RemoveAccess(ctx context.Context, tx *db.Tx, typeID, project string) error {
	t, err := s.Get(ctx, tx, typeID, "", true)
	if err != nil {
		return err
	}
	if t.IsPublic {
		return publicAccess()
	}
	res, err := tx.Exec(ctx, `DELETE FROM volume_type_projects WHERE volume_type_id = ? AND project_id = ?`, typeID, project)
	if err != nil {
		return fmt.Errorf("remove access of %s to volume type %s: %w", project, typeID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fail(ErrAccessNotFound, "Volume type access not found for %s / %s combination.", typeID, project)
	}
	return nil
}

// publicAccess is Cinder's InvalidVolumeType of an access change on a
// public type.
func publicAccess() error {
	return fail(ErrPublicAccess, "Invalid volume type: Type access modification is not applicable to public volume type.")
}
