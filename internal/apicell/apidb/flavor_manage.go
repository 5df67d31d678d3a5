package apidb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Errors of flavor management.
var (
	// ErrFlavorIDExists: a live flavor already has the id.
	ErrFlavorIDExists = errors.New("flavor id exists")
	// ErrFlavorNameExists: a live flavor already has the name.
	ErrFlavorNameExists = errors.New("flavor name exists")
	// ErrExtraSpecNotFound: the flavor has no extra spec of that key.
	ErrExtraSpecNotFound = errors.New("extra spec not found")
	// ErrAccessExists: the project already has access to the flavor.
	ErrAccessExists = errors.New("flavor access exists")
	// ErrAccessNotFound: the project has no access to the flavor.
	ErrAccessNotFound = errors.New("flavor access not found")
)

// FlavorDetail is a flavor with the fields only the Compute API's flavor
// views and flavor management use.
//
// A deleted flavor is kept as a tombstone (deleted and disabled), so that
// SeedFlavors does not bring a deleted default flavor back at the next
// start; creating a flavor with its id or name removes the tombstone.
// Instances keep their own copy of their flavor, so deleting one in use is
// fine, as in Nova.
type FlavorDetail struct {
	wire.Flavor
	RxTxFactor float64
	IsPublic   bool
	Disabled   bool
	// Description is nil when the flavor has none (null in the API).
	Description *string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// FlavorViewer is who looks at flavors: an admin sees every flavor; anyone
// else sees public flavors and the private ones their project was given.
type FlavorViewer struct {
	Admin     bool
	ProjectID string
}

const flavorDetailCols = `f.id, f.name, f.vcpus, f.ram_mb, f.root_gb, f.ephemeral_gb, f.swap_mb, f.extra_specs, f.rxtx_factor,
	f.is_public, f.disabled, f.description, f.description_null, f.created_at, f.updated_at`

func scanFlavorDetail(r db.Scanner) (FlavorDetail, error) {
	var f FlavorDetail
	var specs, descr string
	var public, disabled, descrNull int
	var created, updated int64
	err := r.Scan(&f.ID, &f.Name, &f.VCPUs, &f.RAMMB, &f.RootGB, &f.EphemeralGB, &f.SwapMB, &specs, &f.RxTxFactor,
		&public, &disabled, &descr, &descrNull, &created, &updated)
	if err != nil {
		return f, err
	}
	_ = json.Unmarshal([]byte(specs), &f.ExtraSpecs)
	f.IsPublic, f.Disabled = public != 0, disabled != 0
	if descrNull == 0 {
		f.Description = &descr
	}
	f.CreatedAt, f.UpdatedAt = db.FromMicros(created), db.FromMicros(updated)
	return f, nil
}

// visible is the condition that viewer may see flavor f (and its args).
func (v FlavorViewer) visible() (string, []any) {
	if v.Admin {
		return "", nil
	}
	return "(f.is_public = 1 OR EXISTS (SELECT 1 FROM flavor_projects p WHERE p.flavor_id = f.id AND p.project_id = ?))", []any{v.ProjectID}
}

// GetFlavorDetail reads a live flavor that viewer may see, disabled or not
// (Nova's Flavor.get_by_flavor_id); any other is ErrNotFound.
func GetFlavorDetail(ctx context.Context, q Querier, id string, viewer FlavorViewer) (FlavorDetail, error) {
	fq := FlavorDetailQuery(id, viewer)
	return FlavorDetailFrom(q.QueryRow(ctx, fq.SQL, fq.Args...), id)
}

// FlavorDetailQuery is GetFlavorDetail's query, for a caller that runs it
// with others (db.DB.QueryAll) and reads it with FlavorDetailFrom.
func FlavorDetailQuery(id string, viewer FlavorViewer) db.Query {
	query := `SELECT ` + flavorDetailCols + ` FROM flavors f WHERE f.id = ? AND f.deleted = 0`
	args := []any{id}
	if cond, a := viewer.visible(); cond != "" {
		query += " AND " + cond
		args = append(args, a...)
	}
	return db.Query{SQL: query, Args: args}
}

// FlavorDetailFrom reads flavor id from its query's row (FlavorDetailQuery),
// as GetFlavorDetail returns it.
func FlavorDetailFrom(row db.Scanner, id string) (FlavorDetail, error) {
	f, err := scanFlavorDetail(row)
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("flavor %s: %w", id, ErrNotFound)
	}
	return f, err
}

// FlavorSortKeys maps the Compute API's flavor sort keys to columns. Nova's
// "id" is its internal row number, which follows creation order; there is
// no vcpu_weight here, so it sorts by the tie-breakers alone.
var FlavorSortKeys = map[string]string{
	"created_at": "f.created_at", "description": "f.description", "disabled": "f.disabled",
	"ephemeral_gb": "f.ephemeral_gb", "flavorid": "f.id", "id": "f.created_at", "is_public": "f.is_public",
	"memory_mb": "f.ram_mb", "name": "f.name", "root_gb": "f.root_gb", "rxtx_factor": "f.rxtx_factor",
	"swap": "f.swap_mb", "updated_at": "f.updated_at", "vcpu_weight": "", "vcpus": "f.vcpus",
}

// FlavorListOptions filter, sort and page a flavor list, as Nova's
// FlavorList.get_all does.
type FlavorListOptions struct {
	Viewer FlavorViewer
	// IsPublic nil lists public and private flavors (an admin's
	// is_public=none); true lists the public ones and those the viewer's
	// project has access to; false lists the private ones.
	IsPublic *bool
	// IncludeDisabled lists disabled flavors too (admins).
	IncludeDisabled bool
	// MinRAMMB and MinRootGB, when set, are lower bounds.
	MinRAMMB, MinRootGB *int64
	// SortKey is a key of FlavorSortKeys (default "flavorid"); SortDir is
	// "asc" (default) or "desc". Ties go by creation, then id.
	SortKey, SortDir string
	// Limit is the page size (0: no limit).
	Limit int
	// Marker is the id of the last flavor of the previous page; it must be
	// a flavor the viewer can see, or the list is ErrNotFound.
	Marker string
}

// ListFlavorDetails lists live flavors.
func ListFlavorDetails(ctx context.Context, q Querier, o FlavorListOptions) ([]FlavorDetail, error) {
	if o.SortKey == "" {
		o.SortKey = "flavorid"
	}
	col, ok := FlavorSortKeys[o.SortKey]
	if !ok {
		return nil, fmt.Errorf("flavor sort key %q is not one of the keys", o.SortKey)
	}
	op, dir := ">", "ASC"
	switch o.SortDir {
	case "", "asc":
	case "desc":
		op, dir = "<", "DESC"
	default:
		return nil, fmt.Errorf("flavor sort direction %q is not asc or desc", o.SortDir)
	}
	where := []string{"f.deleted = 0"}
	var args []any
	if cond, a := o.Viewer.visible(); cond != "" {
		where = append(where, cond)
		args = append(args, a...)
	}
	if o.IsPublic != nil {
		if *o.IsPublic {
			where = append(where, "(f.is_public = 1 OR EXISTS (SELECT 1 FROM flavor_projects p WHERE p.flavor_id = f.id AND p.project_id = ?))")
			args = append(args, o.Viewer.ProjectID)
		} else {
			where = append(where, "f.is_public = 0")
		}
	}
	if !o.IncludeDisabled {
		where = append(where, "f.disabled = 0")
	}
	if o.MinRAMMB != nil {
		where = append(where, "f.ram_mb >= ?")
		args = append(args, *o.MinRAMMB)
	}
	if o.MinRootGB != nil {
		where = append(where, "f.root_gb >= ?")
		args = append(args, *o.MinRootGB)
	}
	// The sort: the key, then creation, then id, all in one direction;
	// text in code point order on both engines.
	text := map[string]bool{"f.id": true, "f.name": true, "f.description": true}
	var keys []string
	for _, c := range []string{col, "f.created_at", "f.id"} {
		if c == "" || (len(keys) > 0 && keys[0] == c) {
			continue
		}
		if text[c] {
			c += binary(q)
		}
		keys = append(keys, c)
	}
	if o.Marker != "" {
		m, err := GetFlavorDetail(ctx, q, o.Marker, o.Viewer)
		if err != nil {
			return nil, fmt.Errorf("marker %s: %w", o.Marker, err)
		}
		// (k1 op m1) OR (k1 = m1 AND k2 op m2) OR ...
		var ors []string
		for i := range keys {
			var ands []string
			for j := 0; j < i; j++ {
				ands = append(ands, keys[j]+" = ?")
				args = append(args, m.sortValue(keys[j]))
			}
			ands = append(ands, keys[i]+" "+op+" ?")
			args = append(args, m.sortValue(keys[i]))
			ors = append(ors, "("+strings.Join(ands, " AND ")+")")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	order := make([]string, len(keys))
	for i, k := range keys {
		order[i] = k + " " + dir
	}
	query := `SELECT ` + flavorDetailCols + ` FROM flavors f WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + strings.Join(order, ", ")
	if o.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, o.Limit)
	}
	return db.Collect(ctx, q, scanFlavorDetail, query, args...)
}

// sortValue is f's value of a sort column (as ListFlavorDetails names it).
func (f FlavorDetail) sortValue(col string) any {
	col, _, _ = strings.Cut(col, " ")
	b := func(v bool) int {
		if v {
			return 1
		}
		return 0
	}
	switch col {
	case "f.created_at":
		return db.Micros(f.CreatedAt)
	case "f.updated_at":
		return db.Micros(f.UpdatedAt)
	case "f.description":
		if f.Description == nil {
			return ""
		}
		return *f.Description
	case "f.disabled":
		return b(f.Disabled)
	case "f.is_public":
		return b(f.IsPublic)
	case "f.ephemeral_gb":
		return f.EphemeralGB
	case "f.id":
		return f.ID
	case "f.ram_mb":
		return f.RAMMB
	case "f.name":
		return f.Name
	case "f.root_gb":
		return f.RootGB
	case "f.rxtx_factor":
		return f.RxTxFactor
	case "f.swap_mb":
		return f.SwapMB
	case "f.vcpus":
		return f.VCPUs
	}
	panic("flavor sort column " + col)
}

// CreateFlavorDetail inserts a flavor. A live flavor with the same id is
// ErrFlavorIDExists, with the same name ErrFlavorNameExists; a deleted one
// (a tombstone) gives way.
func CreateFlavorDetail(ctx context.Context, tx *db.Tx, f FlavorDetail, now time.Time) error {
	var liveID, liveName int
	err := tx.QueryRow(ctx, `SELECT
		COALESCE(SUM(CASE WHEN id = ? THEN 1 ELSE 0 END), 0), COALESCE(SUM(CASE WHEN name = ? THEN 1 ELSE 0 END), 0)
		FROM flavors WHERE deleted = 0 AND (id = ? OR name = ?)`, f.ID, f.Name, f.ID, f.Name).Scan(&liveID, &liveName)
	if err != nil {
		return fmt.Errorf("create flavor %s: %w", f.ID, err)
	}
	if liveID > 0 {
		return fmt.Errorf("flavor %s: %w", f.ID, ErrFlavorIDExists)
	}
	if liveName > 0 {
		return fmt.Errorf("flavor %s: %w", f.Name, ErrFlavorNameExists)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM flavors WHERE deleted = 1 AND (id = ? OR name = ?)`, f.ID, f.Name); err != nil {
		return fmt.Errorf("create flavor %s: remove tombstone: %w", f.ID, err)
	}
	specs, _ := json.Marshal(f.ExtraSpecs)
	if f.ExtraSpecs == nil {
		specs = []byte("{}")
	}
	descr, descrNull := "", 1
	if f.Description != nil {
		descr, descrNull = *f.Description, 0
	}
	public, disabled := 0, 0
	if f.IsPublic {
		public = 1
	}
	if f.Disabled {
		disabled = 1
	}
	_, err = tx.Exec(ctx, `INSERT INTO flavors (id, name, vcpus, ram_mb, root_gb, ephemeral_gb, swap_mb, rxtx_factor, is_public,
		disabled, description, description_null, extra_specs, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
		f.ID, f.Name, f.VCPUs, f.RAMMB, f.RootGB, f.EphemeralGB, f.SwapMB, f.RxTxFactor, public, disabled, descr, descrNull,
		string(specs), db.Micros(now))
	if db.IsUniqueViolation(err) {
		// A concurrent create won the race.
		if strings.Contains(err.Error(), "name") {
			return fmt.Errorf("flavor %s: %w", f.Name, ErrFlavorNameExists)
		}
		return fmt.Errorf("flavor %s: %w", f.ID, ErrFlavorIDExists)
	}
	if err != nil {
		return fmt.Errorf("create flavor %s: %w", f.ID, err)
	}
	return nil
}

// lockFlavor reads a live flavor for an update, locking its row on
// PostgreSQL (SQLite transactions here take the write lock at BEGIN).
func lockFlavor(ctx context.Context, tx *db.Tx, id string) (FlavorDetail, error) {
	query := `SELECT ` + flavorDetailCols + ` FROM flavors f WHERE f.id = ? AND f.deleted = 0`
	if tx.Dialect == db.Postgres {
		query += " FOR UPDATE"
	}
	f, err := scanFlavorDetail(tx.QueryRow(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return f, fmt.Errorf("flavor %s: %w", id, ErrNotFound)
	}
	return f, err
}

// DeleteFlavor deletes a live flavor: its extra specs and access list go,
// and the row stays as a tombstone. Instances built with it keep their copy.
func DeleteFlavor(ctx context.Context, tx *db.Tx, id string, now time.Time) error {
	if _, err := lockFlavor(ctx, tx, id); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM flavor_projects WHERE flavor_id = ?`, id); err != nil {
		return fmt.Errorf("delete flavor %s: %w", id, err)
	}
	_, err := tx.Exec(ctx, `UPDATE flavors SET deleted = 1, disabled = 1, extra_specs = '{}', updated_at = ? WHERE id = ?`, db.Micros(now), id)
	if err != nil {
		return fmt.Errorf("delete flavor %s: %w", id, err)
	}
	return nil
}

// SetFlavorDescription sets (or, with nil, clears) a live flavor's
// description and returns the flavor as it is now.
func SetFlavorDescription(ctx context.Context, tx *db.Tx, id string, description *string, now time.Time) (FlavorDetail, error) {
	f, err := lockFlavor(ctx, tx, id)
	if err != nil {
		return f, err
	}
	descr, descrNull := "", 1
	if description != nil {
		descr, descrNull = *description, 0
	}
	_, err = tx.Exec(ctx, `UPDATE flavors SET description = ?, description_null = ?, updated_at = ? WHERE id = ?`, descr, descrNull, db.Micros(now), id)
	if err != nil {
		return f, fmt.Errorf("update flavor %s: %w", id, err)
	}
	f.Description, f.UpdatedAt = description, db.FromMicros(db.Micros(now))
	return f, nil
}

// SetFlavorExtraSpecs adds extra specs to a live flavor, replacing the
// values of keys it has, and returns all its extra specs.
func SetFlavorExtraSpecs(ctx context.Context, tx *db.Tx, id string, specs map[string]string) (map[string]string, error) {
	f, err := lockFlavor(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	all := map[string]string{}
	maps.Copy(all, f.ExtraSpecs)
	maps.Copy(all, specs)
	return all, writeExtraSpecs(ctx, tx, id, all)
}

// DeleteFlavorExtraSpec removes one extra spec of a live flavor: a missing
// flavor is ErrNotFound, a missing key ErrExtraSpecNotFound.
func DeleteFlavorExtraSpec(ctx context.Context, tx *db.Tx, id, key string) error {
	f, err := lockFlavor(ctx, tx, id)
	if err != nil {
		return err
	}
	if _, ok := f.ExtraSpecs[key]; !ok {
		return fmt.Errorf("flavor %s key %s: %w", id, key, ErrExtraSpecNotFound)
	}
	delete(f.ExtraSpecs, key)
	return writeExtraSpecs(ctx, tx, id, f.ExtraSpecs)
}

func writeExtraSpecs(ctx context.Context, tx *db.Tx, id string, specs map[string]string) error {
	b, _ := json.Marshal(specs)
	if specs == nil {
		b = []byte("{}")
	}
	if _, err := tx.Exec(ctx, `UPDATE flavors SET extra_specs = ? WHERE id = ?`, string(b), id); err != nil {
		return fmt.Errorf("flavor %s extra specs: %w", id, err)
	}
	return nil
}

// FlavorProjects lists the projects given access to a flavor, in order.
func FlavorProjects(ctx context.Context, q Querier, id string) ([]string, error) {
	return db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var p string
		return p, r.Scan(&p)
	}, `SELECT project_id FROM flavor_projects WHERE flavor_id = ? ORDER BY project_id`+binary(q), id)
}

// AddFlavorAccess gives a project access to a live flavor (public or not:
// the caller decides whether that makes sense).
func AddFlavorAccess(ctx context.Context, tx *db.Tx, id, project string) error {
	if _, err := lockFlavor(ctx, tx, id); err != nil {
		return err
	}
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM flavor_projects WHERE flavor_id = ? AND project_id = ?`, id, project).Scan(&n); err != nil {
		return fmt.Errorf("flavor %s access: %w", id, err)
	}
	if n > 0 {
		return fmt.Errorf("flavor %s project %s: %w", id, project, ErrAccessExists)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO flavor_projects (flavor_id, project_id) VALUES (?, ?)`, id, project); err != nil {
		if db.IsUniqueViolation(err) {
			return fmt.Errorf("flavor %s project %s: %w", id, project, ErrAccessExists)
		}
		return fmt.Errorf("flavor %s access: %w", id, err)
	}
	return nil
}

// RemoveFlavorAccess takes a project's access to a live flavor away.
func RemoveFlavorAccess(ctx context.Context, tx *db.Tx, id, project string) error {
	if _, err := lockFlavor(ctx, tx, id); err != nil {
		return err
	}
	res, err := tx.Exec(ctx, `DELETE FROM flavor_projects WHERE flavor_id = ? AND project_id = ?`, id, project)
	if err != nil {
		return fmt.Errorf("flavor %s access: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return fmt.Errorf("flavor %s project %s: %w", id, project, ErrAccessNotFound)
	}
	return nil
}
