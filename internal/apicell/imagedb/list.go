package imagedb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// SortKeys are the keys a list may be sorted by (Glance's).
var SortKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}

// Sort is one sort key and its direction.
type Sort struct {
	Key  string
	Desc bool
}

// TimeFilter compares created_at or updated_at with a time, to the second
// (Glance's ISO 8601 filters). Op is one of eq, neq, gt, gte, lt, lte.
type TimeFilter struct {
	Op string
	At time.Time
}

// ErrMarker is a marker that names no image the caller can see.
var ErrMarker = errors.New("marker not found")

// ListOptions selects, sorts and pages images.
type ListOptions struct {
	// Project and Admin are the caller's: they decide what is visible.
	Project string
	Admin   bool
	// Visibility is "" (the default list: everything visible except other
	// projects' community images), "all", or one visibility.
	Visibility string

	// Each non-empty slice matches any of its values.
	IDs, Names, Statuses, ContainerFormats, DiskFormats []string
	Owner                                               string
	// Tags must all be present; Properties must all match exactly.
	Tags       []string
	Properties map[string]string
	Protected  *bool
	// Hidden lists hidden images instead of visible ones (os_hidden).
	Hidden           bool
	SizeMin, SizeMax *int64
	MinRAM, MinDisk  *int
	Checksum         string
	HashValue        string
	CreatedAt        []TimeFilter
	UpdatedAt        []TimeFilter

	// Sort is the order; created_at and id are added when missing, so the
	// order is total. Empty means created_at descending.
	Sort []Sort
	// Marker is the id of the last image of the previous page.
	Marker string
	// Limit is the page size; 0 means no limit.
	Limit int
}

func inList(col string, vals []string) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return col + " IN (" + strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ") + ")", args
}

func timeCond(col string, f TimeFilter) (string, []any, error) {
	lo := db.Micros(f.At.Truncate(time.Second))
	hi := lo + int64(time.Second/time.Microsecond)
	switch f.Op {
	case "eq":
		return "(" + col + " >= ? AND " + col + " < ?)", []any{lo, hi}, nil
	case "neq":
		return "(" + col + " < ? OR " + col + " >= ?)", []any{lo, hi}, nil
	case "gt":
		return col + " >= ?", []any{hi}, nil
	case "gte":
		return col + " >= ?", []any{lo}, nil
	case "lt":
		return col + " < ?", []any{lo}, nil
	case "lte":
		return col + " < ?", []any{hi}, nil
	}
	return "", nil, fmt.Errorf("unknown time operator %q", f.Op)
}

// sortValue is the marker's value for a sort key.
func sortValue(i *Image, key string) any {
	switch key {
	case "name":
		return i.Name
	case "status":
		return i.Status
	case "container_format":
		return i.ContainerFormat
	case "disk_format":
		return i.DiskFormat
	case "size":
		return i.Size
	case "id":
		return i.ID
	case "created_at":
		return db.Micros(i.CreatedAt)
	case "updated_at":
		return db.Micros(i.UpdatedAt)
	}
	return nil
}

// List returns the images o selects, in o's order, with their properties
// and tags. A marker the caller cannot see is ErrMarker.
func (s *Store) List(ctx context.Context, q db.Querier, o ListOptions) ([]*Image, error) {
	where := []string{"deleted = 0"}
	var args []any
	add := func(cond string, a ...any) {
		where = append(where, cond)
		args = append(args, a...)
	}
	if !o.Admin {
		add("(visibility IN (?, ?) OR owner = ?)", Public, Community, o.Project)
	}
	switch o.Visibility {
	case "":
		add("(visibility <> ? OR owner = ?)", Community, o.Project)
	case "all":
	default:
		add("visibility = ?", o.Visibility)
	}
	for _, f := range []struct {
		col  string
		vals []string
	}{{"id", normalizeIDs(o.IDs)}, {"name", o.Names}, {"status", o.Statuses}, {"container_format", o.ContainerFormats}, {"disk_format", o.DiskFormats}} {
		if len(f.vals) > 0 {
			c, a := inList(f.col, f.vals)
			add(c, a...)
		}
	}
	if o.Owner != "" {
		add("owner = ?", o.Owner)
	}
	for _, t := range o.Tags {
		add("EXISTS (SELECT 1 FROM image_tags t WHERE t.image_id = images.id AND t.tag = ?)", t)
	}
	for _, k := range slices.Sorted(maps.Keys(o.Properties)) {
		add("EXISTS (SELECT 1 FROM image_properties p WHERE p.image_id = images.id AND p.name = ? AND p.value = ?)", k, o.Properties[k])
	}
	if o.Protected != nil {
		add("protected = ?", b2i(*o.Protected))
	}
	add("os_hidden = ?", b2i(o.Hidden))
	if o.SizeMin != nil {
		add("size >= ? AND os_hash_value <> ''", *o.SizeMin)
	}
	if o.SizeMax != nil {
		add("size <= ? AND os_hash_value <> ''", *o.SizeMax)
	}
	if o.MinRAM != nil {
		add("min_ram = ?", *o.MinRAM)
	}
	if o.MinDisk != nil {
		add("min_disk = ?", *o.MinDisk)
	}
	if o.Checksum != "" {
		add("checksum = ?", o.Checksum)
	}
	if o.HashValue != "" {
		add("os_hash_value = ?", o.HashValue)
	}
	for _, tf := range []struct {
		col string
		fs  []TimeFilter
	}{{"created_at", o.CreatedAt}, {"updated_at", o.UpdatedAt}} {
		for _, f := range tf.fs {
			c, a, err := timeCond(tf.col, f)
			if err != nil {
				return nil, err
			}
			add(c, a...)
		}
	}

	keys, err := fullSort(o.Sort)
	if err != nil {
		return nil, err
	}
	if o.Marker != "" {
		m, err := s.Get(ctx, q, o.Marker)
		if errors.Is(err, ErrNotFound) || (err == nil && !m.VisibleTo(o.Project, o.Admin)) {
			return nil, fmt.Errorf("marker %s: %w", o.Marker, ErrMarker)
		}
		if err != nil {
			return nil, err
		}
		// (k1 after m1) OR (k1 = m1 AND k2 after m2) OR ...
		var ors []string
		for i, k := range keys {
			var and []string
			for _, prev := range keys[:i] {
				and = append(and, prev.Key+" = ?")
				args = append(args, sortValue(m, prev.Key))
			}
			op := ">"
			if k.Desc {
				op = "<"
			}
			and = append(and, k.Key+" "+op+" ?")
			args = append(args, sortValue(m, k.Key))
			ors = append(ors, "("+strings.Join(and, " AND ")+")")
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	order := make([]string, len(keys))
	for i, k := range keys {
		order[i] = k.Key
		if k.Desc {
			order[i] += " DESC"
		}
	}
	query := `SELECT ` + cols + ` FROM images WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + strings.Join(order, ", ")
	if o.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, o.Limit)
	}
	imgs, err := db.Collect(ctx, q, scan, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	if err := s.loadDetails(ctx, q, imgs); err != nil {
		return nil, err
	}
	return imgs, nil
}

func normalizeIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = NormalizeID(id)
	}
	return out
}

// fullSort checks the keys and appends created_at and id when missing, in
// the first key's direction (Glance adds them in its default direction,
// which a single sort_dir sets).
func fullSort(in []Sort) ([]Sort, error) {
	if len(in) == 0 {
		in = []Sort{{Key: "created_at", Desc: true}}
	}
	out := slices.Clone(in)
	for _, k := range out {
		if !slices.Contains(SortKeys, k.Key) {
			return nil, fmt.Errorf("invalid sort key %q", k.Key)
		}
	}
	for _, k := range []string{"created_at", "id"} {
		if !slices.ContainsFunc(out, func(s Sort) bool { return s.Key == k }) {
			out = append(out, Sort{Key: k, Desc: in[0].Desc})
		}
	}
	return out, nil
}
