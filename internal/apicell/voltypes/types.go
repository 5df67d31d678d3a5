package voltypes

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Type is a volume type.
type Type struct {
	ID, Name string
	// Description is "" both for an empty description and for none;
	// NoDescription says it is none (Cinder shows null).
	Description   string
	NoDescription bool
	IsPublic      bool
	// ExtraSpecs are all the type's extra specs (never nil).
	ExtraSpecs map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Clone returns a deep copy.
func (t *Type) Clone() *Type {
	c := *t
	c.ExtraSpecs = maps.Clone(t.ExtraSpecs)
	return &c
}

const typeColumns = `id, name, description, is_public, created_at, updated_at`

func scanType(s db.Scanner) (*Type, error) {
	var t Type
	var desc sql.NullString
	var public int
	var created, updated int64
	if err := s.Scan(&t.ID, &t.Name, &desc, &public, &created, &updated); err != nil {
		return nil, err
	}
	t.Description, t.NoDescription = desc.String, !desc.Valid
	t.IsPublic = public != 0
	t.CreatedAt, t.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	return &t, nil
}

// visible is the condition on a type row (alias t) that a non-admin of
// project may see it: public, or private with access for the project.
const visible = `(t.is_public = 1 OR EXISTS (SELECT 1 FROM volume_type_projects p WHERE p.volume_type_id = t.id AND p.project_id = ?))`

// one reads the live type that where (on alias t) selects, as a caller of
// project (admin: any type) sees it; nil when there is none.
func (s *Store) one(ctx context.Context, q db.Querier, project string, admin bool, where string, args ...any) (*Type, error) {
	query := `SELECT ` + prefixed("t.", typeColumns) + ` FROM volume_types t WHERE t.deleted = 0 AND ` + where
	if !admin {
		query += ` AND ` + visible
		args = append(args, project)
	}
	t, err := scanType(q.QueryRow(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read volume type: %w", err)
	}
	if t.ExtraSpecs, err = s.Specs(ctx, q, t.ID); err != nil {
		return nil, err
	}
	return t, nil
}

func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	for i := range parts {
		parts[i] = p + parts[i]
	}
	return strings.Join(parts, ", ")
}

// Type finds a live type by id or name, as a caller of project sees it
// (an admin sees every type; others the public ones and the private ones
// their project has access to). As Cinder's get_by_name_or_id, a UUID is
// an id first and then a name (names may look like UUIDs); anything else
// is a name. Not found: TypeNotFound for a UUID, TypeNotFoundByName for
// a name.
func (s *Store) Type(ctx context.Context, q db.Querier, idOrName, project string, admin bool) (*Type, error) {
	_, perr := uuid.Parse(idOrName)
	isID := perr == nil
	if isID {
		t, err := s.one(ctx, q, project, admin, `t.id = ?`, idOrName)
		if t != nil || err != nil {
			return t, err
		}
	}
	t, err := s.one(ctx, q, project, admin, `t.name = ?`, idOrName)
	if t != nil || err != nil {
		return t, err
	}
	if isID {
		return nil, TypeNotFound(idOrName)
	}
	return nil, TypeNotFoundByName(idOrName)
}

// Get finds a live type by id only, as a caller of project sees it (the
// lookup of Cinder's type routes: show, manage, extra specs, access).
func (s *Store) Get(ctx context.Context, q db.Querier, id, project string, admin bool) (*Type, error) {
	t, err := s.one(ctx, q, project, admin, `t.id = ?`, id)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, TypeNotFound(id)
	}
	return t, nil
}

// Default is the default type: the one named by Config.DefaultType.
// Missing, it is ErrDefaultMisconfigured (Cinder's
// VolumeTypeDefaultMisconfiguredError, a 500).
func (s *Store) Default(ctx context.Context, q db.Querier) (*Type, error) {
	t, err := s.one(ctx, q, "", true, `t.name = ?`, s.defaultName)
	if err != nil {
		return nil, err
	}
	if t == nil {
		return nil, fail(ErrDefaultMisconfigured, "The request cannot be fulfilled as the default volume type %s cannot be found.", s.defaultName)
	}
	return t, nil
}

// List lists the live types, newest first (Cinder's default sort,
// created_at then id, descending). isPublic nil lists every type; true the
// public ones and the private ones project has access to; false the
// private ones. Cinder gives non-admins true always, and admins their
// is_public filter (true without one).
func (s *Store) List(ctx context.Context, q db.Querier, project string, isPublic *bool) ([]*Type, error) {
	query := `SELECT ` + prefixed("t.", typeColumns) + ` FROM volume_types t WHERE t.deleted = 0`
	var args []any
	switch {
	case isPublic == nil:
	case *isPublic:
		query += ` AND ` + visible
		args = append(args, project)
	default:
		query += ` AND t.is_public = 0`
	}
	query += ` ORDER BY t.created_at DESC, t.id DESC`
	types, err := db.Collect(ctx, q, scanType, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list volume types: %w", err)
	}
	specs, err := s.allSpecs(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, t := range types {
		t.ExtraSpecs = specs[t.ID]
		if t.ExtraSpecs == nil {
			t.ExtraSpecs = map[string]string{}
		}
	}
	return types, nil
}

// names are the live types' names, sorted.
func (s *Store) names(ctx context.Context, q db.Querier) ([]string, error) {
	names, err := db.Collect(ctx, q, func(sc db.Scanner) (string, error) {
		var n string
		return n, sc.Scan(&n)
	}, `SELECT name FROM volume_types WHERE deleted = 0 ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list volume type names: %w", err)
	}
	return names, nil
}

// NewType is what Create makes.
type NewType struct {
	// ID is the new type's id; "" makes a random one.
	ID, Name string
	// Description nil is none (null).
	Description *string
	IsPublic    bool
	ExtraSpecs  map[string]string
	// Projects get access to the (private) type.
	Projects []string
}

// Create makes a type. A name (or id) a live type has is ErrExists
// ("Volume Type NAME already exists.").
func (s *Store) Create(ctx context.Context, tx *db.Tx, n NewType) (*Type, error) {
	if n.ID == "" {
		n.ID = uuid.NewString()
	}
	var taken int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM volume_types WHERE deleted = 0 AND name = ?`, n.Name).Scan(&taken); err != nil {
		return nil, fmt.Errorf("create volume type: %w", err)
	}
	if taken > 0 {
		return nil, exists(n.Name)
	}
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM volume_types WHERE id = ?`, n.ID).Scan(&taken); err != nil {
		return nil, fmt.Errorf("create volume type: %w", err)
	}
	if taken > 0 {
		return nil, exists(n.ID)
	}
	now := db.Micros(s.now())
	var desc any
	if n.Description != nil {
		desc = *n.Description
	}
	_, err := tx.Exec(ctx, `INSERT INTO volume_types (id, name, description, is_public, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
		n.ID, n.Name, desc, boolInt(n.IsPublic), now, now)
	if db.IsUniqueViolation(err) {
		return nil, exists(n.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("create volume type %s: %w", n.Name, err)
	}
	if err := s.putSpecs(ctx, tx, n.ID, n.ExtraSpecs); err != nil {
		return nil, err
	}
	for _, p := range uniq(n.Projects) {
		if _, err := tx.Exec(ctx, `INSERT INTO volume_type_projects (volume_type_id, project_id) VALUES (?, ?)`, n.ID, p); err != nil {
			return nil, fmt.Errorf("create volume type %s: access of %s: %w", n.Name, p, err)
		}
	}
	return s.Get(ctx, tx, n.ID, "", true)
}

func exists(name string) error {
	return fail(ErrExists, "Volume Type %s already exists.", name)
}

func uniq(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return slices.Compact(out)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TypeChange is an update: nil fields keep their value.
type TypeChange struct {
	Name, Description *string
	IsPublic          *bool
}

// Update changes a live type (by id). A new name another live type has
// is ErrExists. A rename renames the type's quota resources
// (volumes_<name>, gigabytes_<name>, snapshots_<name>) in the projects'
// limits and the quota classes, as Cinder's update_quota_resource does.
func (s *Store) Update(ctx context.Context, tx *db.Tx, id string, c TypeChange) (*Type, error) {
	old, err := s.Get(ctx, tx, id, "", true)
	if err != nil {
		return nil, err
	}
	sets, args := []string{"updated_at = ?"}, []any{db.Micros(s.now())}
	if c.Name != nil {
		var taken int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM volume_types WHERE deleted = 0 AND name = ? AND id <> ?`, *c.Name, id).Scan(&taken); err != nil {
			return nil, fmt.Errorf("update volume type %s: %w", id, err)
		}
		if taken > 0 {
			return nil, exists(*c.Name)
		}
		sets, args = append(sets, "name = ?"), append(args, *c.Name)
	}
	if c.Description != nil {
		sets, args = append(sets, "description = ?"), append(args, *c.Description)
	}
	if c.IsPublic != nil {
		sets, args = append(sets, "is_public = ?"), append(args, boolInt(*c.IsPublic))
	}
	_, err = tx.Exec(ctx, `UPDATE volume_types SET `+strings.Join(sets, ", ")+` WHERE id = ? AND deleted = 0`, append(args, id)...)
	if db.IsUniqueViolation(err) {
		return nil, exists(*c.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("update volume type %s: %w", id, err)
	}
	if c.Name != nil && *c.Name != old.Name {
		for _, part := range typeParts {
			from, to := part+"_"+old.Name, part+"_"+*c.Name
			for _, table := range []string{"volume_quotas", "volume_quota_classes"} {
				// A row left under the new name (a type of that name
				// deleted earlier) gives way to the renamed one.
				key := "project_id"
				if table == "volume_quota_classes" {
					key = "class_name"
				}
				if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE resource = ? AND `+key+` IN (SELECT `+key+` FROM `+table+` WHERE resource = ?)`, to, from); err != nil {
					return nil, fmt.Errorf("rename quota %s: %w", from, err)
				}
				if _, err := tx.Exec(ctx, `UPDATE `+table+` SET resource = ? WHERE resource = ?`, to, from); err != nil {
					return nil, fmt.Errorf("rename quota %s: %w", from, err)
				}
			}
		}
	}
	return s.Get(ctx, tx, id, "", true)
}

// InUse reports whether volumes (deleted ones excluded) have a type.
type InUse func(ctx context.Context, q db.Querier, typeID string) (bool, error)

// Delete deletes a live type (by id), with Cinder's checks in Cinder's
// order: not found; the default type (ErrDefaultDeletion); the only
// type (ErrOnlyType); in use, as inUse says (ErrInUse). Its extra specs
// and access go with it; its quota limits stay (a type made again with
// its name has them again), as in Cinder.
func (s *Store) Delete(ctx context.Context, tx *db.Tx, id string, inUse InUse) error {
	t, err := s.Get(ctx, tx, id, "", true)
	if err != nil {
		return err
	}
	def, err := s.Default(ctx, tx)
	if err != nil {
		return err
	}
	if def.ID == t.ID {
		return fail(ErrDefaultDeletion, "The volume type %s is a default volume type and cannot be deleted.", id)
	}
	var live int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM volume_types WHERE deleted = 0`).Scan(&live); err != nil {
		return fmt.Errorf("delete volume type %s: %w", id, err)
	}
	if live <= 1 {
		return fail(ErrOnlyType, "The volume type %s is the only currently defined volume type and cannot be deleted.", id)
	}
	if inUse != nil {
		used, err := inUse(ctx, tx, id)
		if err != nil {
			return fmt.Errorf("delete volume type %s: %w", id, err)
		}
		if used {
			return fail(ErrInUse, "Volume Type %s deletion is not allowed with volumes present with the type.", id)
		}
	}
	now := db.Micros(s.now())
	if _, err := tx.Exec(ctx, `UPDATE volume_types SET deleted = 1, deleted_at = ? WHERE id = ?`, now, id); err != nil {
		return fmt.Errorf("delete volume type %s: %w", id, err)
	}
	for _, table := range []string{"volume_type_extra_specs", "volume_type_projects"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE volume_type_id = ?`, id); err != nil {
			return fmt.Errorf("delete volume type %s: %w", id, err)
		}
	}
	return nil
}

// touch marks a type updated.
func (s *Store) touch(ctx context.Context, tx *db.Tx, id string) error {
	if _, err := tx.Exec(ctx, `UPDATE volume_types SET updated_at = ? WHERE id = ?`, db.Micros(s.now()), id); err != nil {
		return fmt.Errorf("update volume type %s: %w", id, err)
	}
	return nil
}
