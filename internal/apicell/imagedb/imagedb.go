// Package imagedb is the Image API's data in the API cell's database: the
// image records, their custom properties and their tags (migration set
// "image"). Image data itself lives in a file store beside it (see package
// api/image); a record only says how big the data is and what it hashes to.
//
// Times are microseconds since the epoch, as everywhere in cellcloud. Text
// columns that Glance allows to be null (name, owner, formats, checksum and
// hashes) are stored as "" for null, so both engines sort and compare them
// the same way.
package imagedb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/notfound"
)

// MigrationSet names the image schema's migration set.
const MigrationSet = "image"

// Migrations is the image schema. It lives in the API cell's database.
var Migrations = []db.Migration{
	{Version: 1, Name: "images, image properties and image tags", SQL: `
CREATE TABLE images (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL,
	visibility TEXT NOT NULL,
	protected INTEGER NOT NULL DEFAULT 0,
	os_hidden INTEGER NOT NULL DEFAULT 0,
	owner TEXT NOT NULL DEFAULT '',
	size {{bigint}} NOT NULL DEFAULT 0,
	checksum TEXT NOT NULL DEFAULT '',
	os_hash_algo TEXT NOT NULL DEFAULT '',
	os_hash_value TEXT NOT NULL DEFAULT '',
	min_disk INTEGER NOT NULL DEFAULT 0,
	min_ram INTEGER NOT NULL DEFAULT 0,
	disk_format TEXT NOT NULL DEFAULT '',
	container_format TEXT NOT NULL DEFAULT '',
	version {{bigint}} NOT NULL DEFAULT 1,
	created_at {{bigint}} NOT NULL,
	updated_at {{bigint}} NOT NULL,
	deleted_at {{bigint}} NOT NULL DEFAULT 0,
	deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX images_live ON images (deleted, created_at);
CREATE INDEX images_owner ON images (owner, deleted);
CREATE TABLE image_properties (
	image_id TEXT NOT NULL REFERENCES images (id),
	name TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (image_id, name)
);
CREATE INDEX image_properties_name ON image_properties (name, value);
CREATE TABLE image_tags (
	image_id TEXT NOT NULL REFERENCES images (id),
	tag TEXT NOT NULL,
	PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags (tag)`},
	// A server create needs the image's auto_disk_config property (Nova's
	// default OS-DCF:diskConfig, and its "disabled"): kept on the image's
	// row too, so the create's one read of the image has it.
	{Version: 2, Name: "auto_disk_config on the image row", SQL: `
ALTER TABLE images ADD COLUMN auto_disk_config TEXT NOT NULL DEFAULT '';
UPDATE images SET auto_disk_config = COALESCE((SELECT value FROM image_properties p
	WHERE p.image_id = images.id AND p.name = 'auto_disk_config'), '')`},
}

// Image statuses (Glance's; cellcloud uses queued, saving, active and
// deleted).
const (
	StatusQueued      = "queued"
	StatusSaving      = "saving"
	StatusActive      = "active"
	StatusKilled      = "killed"
	StatusDeleted     = "deleted"
	StatusDeactivated = "deactivated"
)

// Visibilities.
const (
	Public    = "public"
	Private   = "private"
	Shared    = "shared"
	Community = "community"
)

// HashAlgo is the secure hash recorded for image data (Glance's default
// hashing_algorithm).
const HashAlgo = "sha512"

var (
	// ErrNotFound is a missing or deleted image.
	ErrNotFound = notfound.New("image not found")
	// ErrDuplicate is an id already used by an image, deleted or not.
	ErrDuplicate = errors.New("image id already exists")
	// ErrProtected is a delete of a protected image.
	ErrProtected = errors.New("image is protected")
	// ErrNoFormats is an upload to an image without a disk_format or a
	// container_format.
	ErrNoFormats = errors.New("disk_format and container_format must be set prior to saving data")
	// ErrStale is a write based on a version of the image that is no
	// longer current; read it again and retry.
	ErrStale = errors.New("image changed concurrently")
)

// StatusError is a status change the image's current status does not
// allow (Glance's InvalidImageStatusTransition).
type StatusError struct {
	ID       string
	From, To string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("Image status transition from %s to %s is not allowed", e.From, e.To)
}

// Image is an image record. Name, Owner, DiskFormat, ContainerFormat and the
// data fields are "" when Glance would show null.
type Image struct {
	ID         string
	Name       string
	Status     string
	Visibility string
	Protected  bool
	Hidden     bool
	// Owner is the owning project.
	Owner string
	// Size, Checksum (MD5), HashAlgo and HashValue describe the data; they
	// are meaningful only when HasData.
	Size            int64
	Checksum        string
	HashAlgo        string
	HashValue       string
	MinDisk         int
	MinRAM          int
	DiskFormat      string
	ContainerFormat string
	// Tags are sorted and unique.
	Tags []string
	// Properties are the custom properties, shown as top-level keys.
	Properties map[string]string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// Version increases on every write; Update uses it to detect a
	// concurrent change.
	Version int64
	// AutoDiskConfig is the auto_disk_config property ("" without one),
	// read with the image itself even when the properties are not.
	AutoDiskConfig string
}

// HasData reports whether image data has been stored.
func (i *Image) HasData() bool { return i.HashValue != "" }

// VisibleTo reports whether a caller of project (an admin or not) may see
// the image, as Glance decides without image members: admins see every
// image, owners their own, everybody public and community images.
func (i *Image) VisibleTo(project string, admin bool) bool {
	return admin || (i.Owner != "" && i.Owner == project) || i.Visibility == Public || i.Visibility == Community
}

// MutableBy reports whether a caller may change the image: admins and the
// owner.
func (i *Image) MutableBy(project string, admin bool) bool {
	return admin || (i.Owner != "" && i.Owner == project)
}

// Clone returns a deep copy.
func (i *Image) Clone() *Image {
	c := *i
	c.Tags = slices.Clone(i.Tags)
	c.Properties = maps.Clone(i.Properties)
	return &c
}

// Data describes stored image data.
type Data struct {
	Size      int64
	Checksum  string
	HashAlgo  string
	HashValue string
}

// Store reads and writes image records. The zero value is ready to use.
// Every method takes the database or transaction to work in, so callers can
// join it to their own transaction.
type Store struct {
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

const cols = `id, name, status, visibility, protected, os_hidden, owner, size, checksum, os_hash_algo, os_hash_value,
	min_disk, min_ram, disk_format, container_format, version, created_at, updated_at, auto_disk_config`

func scan(r db.Scanner) (*Image, error) {
	var i Image
	var protected, hidden int
	var created, updated int64
	err := r.Scan(&i.ID, &i.Name, &i.Status, &i.Visibility, &protected, &hidden, &i.Owner, &i.Size, &i.Checksum,
		&i.HashAlgo, &i.HashValue, &i.MinDisk, &i.MinRAM, &i.DiskFormat, &i.ContainerFormat, &i.Version, &created, &updated,
		&i.AutoDiskConfig)
	if err != nil {
		return nil, err
	}
	i.Protected = protected != 0
	i.Hidden = hidden != 0
	i.CreatedAt = db.FromMicros(created)
	i.UpdatedAt = db.FromMicros(updated)
	i.Properties = map[string]string{}
	i.Tags = []string{}
	return &i, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// NormalizeID is how ids are stored and looked up: lower case, so that an
// id given in upper case (Nova lower-cases imageRef) still matches.
func NormalizeID(id string) string { return strings.ToLower(id) }

// Get reads a live (not deleted) image with its properties and tags.
func (s *Store) Get(ctx context.Context, q db.Querier, id string) (*Image, error) {
	img, err := s.GetWithoutDetails(ctx, q, id)
	if err != nil {
		return nil, err
	}
	if err := s.loadDetails(ctx, q, []*Image{img}); err != nil {
		return nil, err
	}
	return img, nil
}

// GetWithoutDetails reads a live image as Get does, but not its properties
// and tags (left empty): one query, for those who need only the image itself (a
// server create checks its status, visibility and minimums).
func (s *Store) GetWithoutDetails(ctx context.Context, q db.Querier, id string) (*Image, error) {
	id = NormalizeID(id)
	img, err := scan(q.QueryRow(ctx, `SELECT `+cols+` FROM images WHERE id = ? AND deleted = 0`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	return img, nil
}

// GetWithProperties reads a live image as Get does, with its properties
// and without its tags, in one query (a server create checks the image
// and sends its properties to the schedulers).
func (s *Store) GetWithProperties(ctx context.Context, q db.Querier, id string) (*Image, error) {
	wq := WithPropertiesQuery(id)
	rows, err := q.Query(ctx, wq.SQL, wq.Args...)
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", NormalizeID(id), err)
	}
	defer rows.Close()
	return withProperties(func(f func(db.Scanner) error) error {
		for rows.Next() {
			if err := f(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}, id)
}

// WithPropertiesQuery is GetWithProperties's query, for a caller that runs
// it with others (db.DB.QueryAll) and reads it with WithPropertiesFrom.
func WithPropertiesQuery(id string) db.Query {
	return db.Query{SQL: `SELECT ` + qualifiedCols + `, p.name, p.value FROM images
		LEFT JOIN image_properties p ON p.image_id = images.id WHERE images.id = ? AND images.deleted = 0`, Args: []any{NormalizeID(id)}}
}

// WithPropertiesFrom reads image id, with its properties, from what its
// query answered (WithPropertiesQuery), as GetWithProperties returns it.
func WithPropertiesFrom(a db.Answer, id string) (*Image, error) {
	return withProperties(a.Each, id)
}

// withProperties reads image id from the rows of its query, which each
// hands to its function in turn.
func withProperties(each func(func(db.Scanner) error) error, id string) (*Image, error) {
	id = NormalizeID(id)
	var img *Image
	err := each(func(r db.Scanner) error {
		var name, value sql.NullString
		i, err := scan(withExtra{r, []any{&name, &value}})
		if err != nil {
			return err
		}
		if img == nil {
			img = i
		}
		if name.Valid {
			img.Properties[name.String] = value.String
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("image %s: %w", id, err)
	}
	if img == nil {
		return nil, fmt.Errorf("image %s: %w", id, ErrNotFound)
	}
	return img, nil
}

// qualifiedCols are cols, each with its table's name (a join names
// another table's name).
const qualifiedCols = `images.id, images.name, images.status, images.visibility, images.protected, images.os_hidden, images.owner,
	images.size, images.checksum, images.os_hash_algo, images.os_hash_value, images.min_disk, images.min_ram, images.disk_format,
	images.container_format, images.version, images.created_at, images.updated_at, images.auto_disk_config`

// withExtra scans a row whose columns after scan's are scanned into extra.
type withExtra struct {
	r     db.Scanner
	extra []any
}

func (w withExtra) Scan(dest ...any) error { return w.r.Scan(append(dest, w.extra...)...) }

// loadDetails fills the properties and tags of imgs.
func (s *Store) loadDetails(ctx context.Context, q db.Querier, imgs []*Image) error {
	if len(imgs) == 0 {
		return nil
	}
	byID := make(map[string]*Image, len(imgs))
	args := make([]any, 0, len(imgs))
	for _, i := range imgs {
		byID[i.ID] = i
		args = append(args, i.ID)
	}
	in := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(imgs)), ", ") + ")"
	type kv struct{ id, k, v string }
	props, err := db.Collect(ctx, q, func(r db.Scanner) (kv, error) {
		var x kv
		return x, r.Scan(&x.id, &x.k, &x.v)
	}, `SELECT image_id, name, value FROM image_properties WHERE image_id IN `+in, args...)
	if err != nil {
		return fmt.Errorf("image properties: %w", err)
	}
	for _, p := range props {
		byID[p.id].Properties[p.k] = p.v
	}
	tags, err := db.Collect(ctx, q, func(r db.Scanner) (kv, error) {
		var x kv
		return x, r.Scan(&x.id, &x.k)
	}, `SELECT image_id, tag FROM image_tags WHERE image_id IN `+in+` ORDER BY image_id, tag`, args...)
	if err != nil {
		return fmt.Errorf("image tags: %w", err)
	}
	for _, t := range tags {
		byID[t.id].Tags = append(byID[t.id].Tags, t.k)
	}
	return nil
}

// Create inserts a new image. Its id must not have been used before, even
// by a deleted image (ErrDuplicate). Zero times are set to now; the
// version starts at 1.
func (s *Store) Create(ctx context.Context, tx *db.Tx, img *Image) error {
	img.ID = NormalizeID(img.ID)
	now := s.now()
	if img.CreatedAt.IsZero() {
		img.CreatedAt = now
	}
	if img.UpdatedAt.IsZero() {
		img.UpdatedAt = img.CreatedAt
	}
	img.Version = 1
	var n int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM images WHERE id = ?`, img.ID).Scan(&n); err != nil {
		return fmt.Errorf("create image %s: %w", img.ID, err)
	}
	if n > 0 {
		return fmt.Errorf("create image %s: %w", img.ID, ErrDuplicate)
	}
	_, err := tx.Exec(ctx, `INSERT INTO images (id, name, status, visibility, protected, os_hidden, owner, size, checksum,
		os_hash_algo, os_hash_value, min_disk, min_ram, disk_format, container_format, version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		img.ID, img.Name, img.Status, img.Visibility, b2i(img.Protected), b2i(img.Hidden), img.Owner, img.Size, img.Checksum,
		img.HashAlgo, img.HashValue, img.MinDisk, img.MinRAM, img.DiskFormat, img.ContainerFormat, img.Version,
		db.Micros(img.CreatedAt), db.Micros(img.UpdatedAt))
	if db.IsUniqueViolation(err) {
		return fmt.Errorf("create image %s: %w", img.ID, ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("create image %s: %w", img.ID, err)
	}
	return s.writeDetails(ctx, tx, img)
}

// writeDetails replaces the properties and tags of img.
func (s *Store) writeDetails(ctx context.Context, tx *db.Tx, img *Image) error {
	if _, err := tx.Exec(ctx, `DELETE FROM image_properties WHERE image_id = ?`, img.ID); err != nil {
		return fmt.Errorf("image %s properties: %w", img.ID, err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM image_tags WHERE image_id = ?`, img.ID); err != nil {
		return fmt.Errorf("image %s tags: %w", img.ID, err)
	}
	for _, k := range slices.Sorted(maps.Keys(img.Properties)) {
		if _, err := tx.Exec(ctx, `INSERT INTO image_properties (image_id, name, value) VALUES (?, ?, ?)`, img.ID, k, img.Properties[k]); err != nil {
			return fmt.Errorf("image %s property %s: %w", img.ID, k, err)
		}
	}
	img.AutoDiskConfig = img.Properties["auto_disk_config"]
	if _, err := tx.Exec(ctx, `UPDATE images SET auto_disk_config = ? WHERE id = ?`, img.AutoDiskConfig, img.ID); err != nil {
		return fmt.Errorf("image %s: %w", img.ID, err)
	}
	img.Tags = SortTags(img.Tags)
	for _, t := range img.Tags {
		if _, err := tx.Exec(ctx, `INSERT INTO image_tags (image_id, tag) VALUES (?, ?)`, img.ID, t); err != nil {
			return fmt.Errorf("image %s tag %s: %w", img.ID, t, err)
		}
	}
	if img.Properties == nil {
		img.Properties = map[string]string{}
	}
	return nil
}

// SortTags returns tags sorted, without repeats, never nil.
func SortTags(tags []string) []string {
	out := slices.Clone(tags)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// Update writes the metadata of img (name, visibility, protected, hidden,
// owner, min_disk, min_ram, formats, tags, properties), provided the stored
// image is still at img.Version and not deleted (ErrStale otherwise;
// ErrNotFound when it is gone). Status and data are not written. On
// success img has its new version and updated_at.
func (s *Store) Update(ctx context.Context, tx *db.Tx, img *Image) error {
	now := s.now()
	res, err := tx.Exec(ctx, `UPDATE images SET name = ?, visibility = ?, protected = ?, os_hidden = ?, owner = ?, min_disk = ?,
		min_ram = ?, disk_format = ?, container_format = ?, version = version + 1, updated_at = ?
		WHERE id = ? AND version = ? AND deleted = 0`,
		img.Name, img.Visibility, b2i(img.Protected), b2i(img.Hidden), img.Owner, img.MinDisk, img.MinRAM, img.DiskFormat,
		img.ContainerFormat, db.Micros(now), img.ID, img.Version)
	if err != nil {
		return fmt.Errorf("update image %s: %w", img.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		if _, err := s.Get(ctx, tx, img.ID); err != nil {
			return err
		}
		return fmt.Errorf("update image %s: %w", img.ID, ErrStale)
	}
	img.Version++
	img.UpdatedAt = now
	return s.writeDetails(ctx, tx, img)
}

// transition moves a live image from one status to another, setting the
// extra columns given. It returns ErrNotFound when the image is gone and a
// *StatusError when it is not in from.
func (s *Store) transition(ctx context.Context, tx *db.Tx, id, from, to string, set string, args ...any) error {
	id = NormalizeID(id)
	q := `UPDATE images SET status = ?, version = version + 1, updated_at = ?` + set + ` WHERE id = ? AND status = ? AND deleted = 0`
	all := append([]any{to, db.Micros(s.now())}, args...)
	all = append(all, id, from)
	res, err := tx.Exec(ctx, q, all...)
	if err != nil {
		return fmt.Errorf("image %s %s -> %s: %w", id, from, to, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	cur, err := s.Get(ctx, tx, id)
	if err != nil {
		return err
	}
	return &StatusError{ID: id, From: cur.Status, To: to}
}

// BeginUpload marks a queued image as saving (its data is being
// received). Its disk_format and container_format must be set
// (ErrNoFormats), as Glance requires before saving data.
func (s *Store) BeginUpload(ctx context.Context, tx *db.Tx, id string) error {
	id = NormalizeID(id)
	res, err := tx.Exec(ctx, `UPDATE images SET status = ?, version = version + 1, updated_at = ?
		WHERE id = ? AND status = ? AND deleted = 0 AND disk_format <> '' AND container_format <> ''`,
		StatusSaving, db.Micros(s.now()), id, StatusQueued)
	if err != nil {
		return fmt.Errorf("image %s: begin upload: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	cur, err := s.Get(ctx, tx, id)
	if err != nil {
		return err
	}
	if cur.Status != StatusQueued {
		return &StatusError{ID: id, From: cur.Status, To: StatusSaving}
	}
	return fmt.Errorf("image %s: %w", id, ErrNoFormats)
}

// FinishUpload records the data of a saving image and makes it active.
func (s *Store) FinishUpload(ctx context.Context, tx *db.Tx, id string, d Data) error {
	return s.transition(ctx, tx, id, StatusSaving, StatusActive,
		`, size = ?, checksum = ?, os_hash_algo = ?, os_hash_value = ?`, d.Size, d.Checksum, d.HashAlgo, d.HashValue)
}

// AbortUpload puts a saving image back to queued, with no data, so the
// upload can be tried again.
func (s *Store) AbortUpload(ctx context.Context, tx *db.Tx, id string) error {
	return s.transition(ctx, tx, id, StatusSaving, StatusQueued,
		`, size = 0, checksum = '', os_hash_algo = '', os_hash_value = ''`)
}

// ResetUploads puts every saving image back to queued (uploads that a
// stopped process left unfinished) and returns their ids.
func (s *Store) ResetUploads(ctx context.Context, tx *db.Tx) ([]string, error) {
	ids, err := db.Collect(ctx, tx, func(r db.Scanner) (string, error) {
		var id string
		return id, r.Scan(&id)
	}, `SELECT id FROM images WHERE status = ? AND deleted = 0 ORDER BY id`, StatusSaving)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := s.AbortUpload(ctx, tx, id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// Delete marks a live image deleted. A protected image is not deleted
// (ErrProtected). Its id stays used.
func (s *Store) Delete(ctx context.Context, tx *db.Tx, id string) error {
	id = NormalizeID(id)
	now := db.Micros(s.now())
	res, err := tx.Exec(ctx, `UPDATE images SET status = ?, deleted = 1, deleted_at = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND deleted = 0 AND protected = 0`, StatusDeleted, now, now, id)
	if err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 1 {
		return nil
	}
	if _, err := s.Get(ctx, tx, id); err != nil {
		return err
	}
	return fmt.Errorf("delete image %s: %w", id, ErrProtected)
}

// HasDataFile reports whether the image id is live and should have data
// in the file store (it is active or deactivated).
func (s *Store) HasDataFile(ctx context.Context, q db.Querier, id string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM images WHERE id = ? AND deleted = 0 AND status IN (?, ?) AND os_hash_value <> ''`,
		NormalizeID(id), StatusActive, StatusDeactivated).Scan(&n)
	return n > 0, err
}
