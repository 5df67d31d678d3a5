package voldb

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Sort is one sort key of a list and its direction.
type Sort struct {
	Key  string
	Desc bool
}

// TimeFilter is a comparison of a time column (3.60's created_at and
// updated_at filters): Op is one of gt, gte, lt, lte, eq, neq.
type TimeFilter struct {
	Op string
	At time.Time
}

// Filter selects volumes (or snapshots) of a list. Empty fields select
// everything.
type Filter struct {
	// ProjectID: only this project's ("": every project's).
	ProjectID string
	// Exact matches.
	Name, Status, AvailabilityZone, UserID string
	// VolumeID (snapshots only): only the snapshots of this volume.
	VolumeID string
	// NameLike and DescriptionLike are 3.34's "name~" and
	// "description~": a substring.
	NameLike, DescriptionLike string
	Bootable                  *bool
	Size                      *int
	// Metadata: every pair must be in the metadata.
	Metadata map[string]string
	// CreatedAt and UpdatedAt: every comparison must hold.
	CreatedAt, UpdatedAt []TimeFilter
}

// Page is the order and the window of a list.
type Page struct {
	// Sort keys in order (default created_at desc); id is added last.
	Sort []Sort
	// Marker: start after the row of this id ("" : from the start).
	Marker string
	// Limit: at most this many (0: no limit). Offset: skip this many.
	Limit, Offset int
}

// volumeSortColumns are the keys a volume list sorts by.
var volumeSortColumns = map[string]string{
	"id": "v.id", "name": "v.name", "display_name": "v.name", "status": "v.status", "size": "v.size_gb",
	"created_at": "v.created_at", "updated_at": "v.updated_at", "availability_zone": "v.availability_zone",
	"bootable": "v.bootable", "project_id": "v.project_id", "user_id": "v.user_id", "description": "v.description",
	"display_description": "v.description", "volume_type_id": "v.volume_type_id", "volume_type": "v.volume_type_name",
}

// snapshotSortColumns are the keys a snapshot list sorts by.
var snapshotSortColumns = map[string]string{
	"id": "s.id", "name": "s.name", "display_name": "s.name", "status": "s.status", "size": "s.size_gb",
	"volume_size": "s.size_gb", "created_at": "s.created_at", "updated_at": "s.updated_at", "volume_id": "s.volume_id",
	"project_id": "s.project_id", "user_id": "s.user_id", "description": "s.description",
}

// ValidVolumeSortKey reports whether key is a volume list sort key.
func ValidVolumeSortKey(key string) bool { _, ok := volumeSortColumns[key]; return ok }

// ValidSnapshotSortKey reports whether key is a snapshot list sort key.
func ValidSnapshotSortKey(key string) bool { _, ok := snapshotSortColumns[key]; return ok }

var timeOps = map[string]string{"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "neq": "<>"}

// where is the WHERE clause of f over the alias a ("v" or "s") and its
// metadata table.
func (f Filter) where(a, mdTable, idCol string) (string, []any, error) {
	w := a + `.deleted = 0`
	var args []any
	eq := func(col, v string) {
		if v != "" {
			w += ` AND ` + a + `.` + col + ` = ?`
			args = append(args, v)
		}
	}
	eq("project_id", f.ProjectID)
	eq("name", f.Name)
	eq("status", f.Status)
	eq("user_id", f.UserID)
	if a == "v" {
		eq("availability_zone", f.AvailabilityZone)
	} else {
		eq("volume_id", f.VolumeID)
	}
	like := func(col, v string) {
		if v != "" {
			w += ` AND ` + a + `.` + col + ` LIKE ?`
			args = append(args, "%"+v+"%")
		}
	}
	like("name", f.NameLike)
	like("description", f.DescriptionLike)
	if f.Bootable != nil && a == "v" {
		w += ` AND v.bootable = ?`
		args = append(args, b2i(*f.Bootable))
	}
	if f.Size != nil {
		w += ` AND ` + a + `.size_gb = ?`
		args = append(args, *f.Size)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Metadata)) {
		w += ` AND EXISTS (SELECT 1 FROM ` + mdTable + ` m WHERE m.` + idCol + ` = ` + a + `.id AND m.meta_key = ? AND m.meta_value = ?)`
		args = append(args, k, f.Metadata[k])
	}
	for col, tfs := range map[string][]TimeFilter{"created_at": f.CreatedAt, "updated_at": f.UpdatedAt} {
		for _, tf := range tfs {
			op, ok := timeOps[tf.Op]
			if !ok {
				return "", nil, fmt.Errorf("time filter: unknown operator %q", tf.Op)
			}
			w += ` AND ` + a + `.` + col + ` ` + op + ` ?`
			args = append(args, db.Micros(tf.At))
		}
	}
	return w, args, nil
}

// order is the ORDER BY of p and the WHERE clause of its marker (the rows
// after the marker row in that order), over the alias a.
func order(ctx context.Context, q db.Querier, table, a string, cols map[string]string, p Page) (string, string, []any, error) {
	sorts := p.Sort
	if len(sorts) == 0 {
		sorts = []Sort{{Key: "created_at", Desc: true}}
	}
	type key struct {
		col  string
		desc bool
	}
	var keys []key
	seen := map[string]bool{}
	for _, s := range sorts {
		col, ok := cols[s.Key]
		if !ok {
			return "", "", nil, fmt.Errorf("%w: %s", ErrSortKey, s.Key)
		}
		if !seen[col] {
			seen[col] = true
			keys = append(keys, key{col, s.Desc})
		}
	}
	if !seen[a+".id"] {
		keys = append(keys, key{a + ".id", keys[len(keys)-1].desc})
	}
	by := ""
	for i, k := range keys {
		if i > 0 {
			by += ", "
		}
		by += k.col
		if k.desc {
			by += " DESC"
		}
	}
	if p.Marker == "" {
		return by, "", nil, nil
	}
	// The marker row's values of the sort keys.
	sel := ""
	for i, k := range keys {
		if i > 0 {
			sel += ", "
		}
		sel += k.col
	}
	vals := make([]any, len(keys))
	ptrs := make([]any, len(keys))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := q.QueryRow(ctx, `SELECT `+sel+` FROM `+table+` `+a+` WHERE `+a+`.id = ?`, p.Marker).Scan(ptrs...); err != nil {
		return "", "", nil, fmt.Errorf("%w: %s", ErrMarkerNotFound, p.Marker)
	}
	// (k1 > m1) OR (k1 = m1 AND k2 > m2) OR …
	after := ""
	var args []any
	for i, k := range keys {
		if i > 0 {
			after += " OR "
		}
		after += "("
		for j := range i {
			after += keys[j].col + " = ? AND "
			args = append(args, vals[j])
		}
		op := ">"
		if k.desc {
			op = "<"
		}
		after += k.col + " " + op + " ?)"
		args = append(args, vals[i])
	}
	return by, "(" + after + ")", args, nil
}

// List is the volumes f selects, in p's order and window, with their
// metadata.
func List(ctx context.Context, q db.Querier, f Filter, p Page) ([]*Volume, error) {
	w, args, err := f.where("v", "volume_metadata", "volume_id")
	if err != nil {
		return nil, err
	}
	by, after, margs, err := order(ctx, q, "volumes", "v", volumeSortColumns, p)
	if err != nil {
		return nil, err
	}
	if after != "" {
		w += " AND " + after
		args = append(args, margs...)
	}
	query := `SELECT ` + volumeColumns + ` FROM volumes v WHERE ` + w + ` ORDER BY ` + by + window(p)
	vs, err := db.Collect(ctx, q, scanVolume, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	if err := loadVolumeMetadata(ctx, q, vs); err != nil {
		return nil, err
	}
	return vs, nil
}

// Count is how many volumes f selects (3.45's count).
func Count(ctx context.Context, q db.Querier, f Filter) (int, error) {
	w, args, err := f.where("v", "volume_metadata", "volume_id")
	if err != nil {
		return 0, err
	}
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM volumes v WHERE `+w, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count volumes: %w", err)
	}
	return n, nil
}

// ListSnapshots is the snapshots f selects, in p's order and window.
func ListSnapshots(ctx context.Context, q db.Querier, f Filter, p Page) ([]*Snapshot, error) {
	w, args, err := f.where("s", "snapshot_metadata", "snapshot_id")
	if err != nil {
		return nil, err
	}
	by, after, margs, err := order(ctx, q, "volume_snapshots", "s", snapshotSortColumns, p)
	if err != nil {
		return nil, err
	}
	if after != "" {
		w += " AND " + after
		args = append(args, margs...)
	}
	ss, err := db.Collect(ctx, q, scanSnapshot, `SELECT `+snapshotColumns+` FROM volume_snapshots s WHERE `+w+` ORDER BY `+by+window(p), args...)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	if err := loadSnapshotMetadata(ctx, q, ss); err != nil {
		return nil, err
	}
	return ss, nil
}

// CountSnapshotsOf is how many snapshots f selects.
func CountSnapshotsOf(ctx context.Context, q db.Querier, f Filter) (int, error) {
	w, args, err := f.where("s", "snapshot_metadata", "snapshot_id")
	if err != nil {
		return 0, err
	}
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM volume_snapshots s WHERE `+w, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count snapshots: %w", err)
	}
	return n, nil
}

func window(p Page) string {
	s := ""
	if p.Limit > 0 {
		s += fmt.Sprintf(" LIMIT %d", p.Limit)
	} else if p.Offset > 0 {
		s += " LIMIT 9223372036854775807"
	}
	if p.Offset > 0 {
		s += fmt.Sprintf(" OFFSET %d", p.Offset)
	}
	return s
}
