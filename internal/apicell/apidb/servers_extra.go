package apidb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// The parts of a server that live only in the API cell: what a user sets
// with PUT /servers/{id} (name, description, access IPs), the lock, the
// metadata as the API changes it, and the tags (server_tags).

// GetForUpdate reads one instance inside a transaction and, on PostgreSQL,
// locks its row until the transaction ends, so that a read-modify-write of
// the copy (metadata, tags, lock) cannot lose a concurrent one. SQLite
// transactions here take the write lock when they begin.
func GetForUpdate(ctx context.Context, tx *db.Tx, uuid string) (*Instance, error) {
	q := `SELECT ` + cols + ` FROM instances WHERE uuid = ?`
	if tx.Dialect == db.Postgres {
		q += " FOR UPDATE"
	}
	in, err := scan(tx.QueryRow(ctx, q, uuid))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("instance %s: %w", uuid, ErrNotFound)
	}
	return in, err
}

// ServerUpdate is a change to what a user may set on a server. Nil fields
// are left alone.
type ServerUpdate struct {
	Name *string
	// SetDescription writes Description: a nil Description clears it
	// (null), a pointer to "" makes it empty.
	SetDescription bool
	Description    *string
	// AccessIPv4 and AccessIPv6 ("" clears one).
	AccessIPv4, AccessIPv6 *string
	// AutoDiskConfig is OS-DCF:diskConfig (AUTO: true).
	AutoDiskConfig *bool
	// Hostname is the server's new hostname (2.90); a rename keeps it.
	Hostname *string
}

// UpdateServer applies u to a live instance's copy and sets updated_at.
// It is ErrNotFound when there is no such live instance.
func UpdateServer(ctx context.Context, tx *db.Tx, uuid string, u ServerUpdate, now time.Time) error {
	sets := []string{"updated_at = ?"}
	args := []any{db.Micros(now)}
	if u.Name != nil {
		sets = append(sets, "name = ?")
		args = append(args, *u.Name)
	}
	if u.SetDescription {
		desc, null := "", 1
		if u.Description != nil {
			desc, null = *u.Description, 0
		}
		sets = append(sets, "description = ?", "description_null = ?")
		args = append(args, desc, null)
	}
	if u.AccessIPv4 != nil {
		sets = append(sets, "access_ip_v4 = ?")
		args = append(args, *u.AccessIPv4)
	}
	if u.AccessIPv6 != nil {
		sets = append(sets, "access_ip_v6 = ?")
		args = append(args, *u.AccessIPv6)
	}
	if u.AutoDiskConfig != nil {
		sets = append(sets, "auto_disk_config = ?")
		args = append(args, b2i(*u.AutoDiskConfig))
	}
	if u.Hostname != nil {
		sets = append(sets, "hostname = ?")
		args = append(args, *u.Hostname)
	}
	args = append(args, uuid)
	res, err := tx.Exec(ctx, `UPDATE instances SET `+strings.Join(sets, ", ")+` WHERE uuid = ? AND deleted = 0`, args...)
	return affected(res, err, uuid)
}

// SetMetadata replaces a live instance's metadata and sets updated_at.
func SetMetadata(ctx context.Context, tx *db.Tx, uuid string, meta map[string]string, now time.Time) error {
	if meta == nil {
		meta = map[string]string{}
	}
	b, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	res, err := tx.Exec(ctx, `UPDATE instances SET metadata = ?, updated_at = ? WHERE uuid = ? AND deleted = 0`,
		string(b), db.Micros(now), uuid)
	return affected(res, err, uuid)
}

// Lock holders, as Nova's locked_by.
const (
	LockedByOwner = "owner"
	LockedByAdmin = "admin"
)

// SetLock locks a live instance (by is LockedByOwner or LockedByAdmin) or,
// with by "", unlocks it. A lock with a reason records it (one without
// keeps the reason recorded, as Nova's does); an unlock forgets it.
func SetLock(ctx context.Context, tx *db.Tx, uuid, by, reason string, now time.Time) error {
	if by != "" && by != LockedByOwner && by != LockedByAdmin {
		return fmt.Errorf("lock %s: locked_by %q is not owner or admin", uuid, by)
	}
	locked := 0
	if by != "" {
		locked = 1
	}
	if by != "" && reason == "" {
		res, err := tx.Exec(ctx, `UPDATE instances SET locked = ?, locked_by = ?, updated_at = ? WHERE uuid = ? AND deleted = 0`,
			locked, by, db.Micros(now), uuid)
		return affected(res, err, uuid)
	}
	if by == "" {
		reason = ""
	}
	res, err := tx.Exec(ctx, `UPDATE instances SET locked = ?, locked_by = ?, locked_reason = ?, updated_at = ? WHERE uuid = ? AND deleted = 0`,
		locked, by, reason, db.Micros(now), uuid)
	return affected(res, err, uuid)
}

func affected(res sql.Result, err error, uuid string) error {
	if err != nil {
		return fmt.Errorf("update instance %s: %w", uuid, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("instance %s: %w", uuid, ErrNotFound)
	}
	return nil
}

// ListTags returns an instance's tags, sorted.
func ListTags(ctx context.Context, q Querier, uuid string) ([]string, error) {
	tags, err := db.Collect(ctx, q, scanString, `SELECT tag FROM server_tags WHERE instance_uuid = ? ORDER BY tag`+binary(q), uuid)
	if tags == nil && err == nil {
		tags = []string{}
	}
	return tags, err
}

func scanString(r db.Scanner) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}

// LoadTags fills in the Tags of each instance (an empty list when it has
// none) with one query.
func LoadTags(ctx context.Context, q Querier, insts []*Instance) error {
	if len(insts) == 0 {
		return nil
	}
	byUUID := make(map[string][]*Instance, len(insts))
	uuids := make([]any, 0, len(insts))
	for _, in := range insts {
		in.Tags = []string{}
		if _, dup := byUUID[in.UUID]; !dup {
			uuids = append(uuids, in.UUID)
		}
		if !slices.Contains(byUUID[in.UUID], in) {
			byUUID[in.UUID] = append(byUUID[in.UUID], in)
		}
	}
	type pair struct{ uuid, tag string }
	pairs, err := db.Collect(ctx, q, func(r db.Scanner) (pair, error) {
		var p pair
		err := r.Scan(&p.uuid, &p.tag)
		return p, err
	}, `SELECT instance_uuid, tag FROM server_tags WHERE instance_uuid IN (`+placeholders(len(uuids))+`) ORDER BY tag`+binary(q), uuids...)
	if err != nil {
		return fmt.Errorf("load tags: %w", err)
	}
	for _, p := range pairs {
		for _, in := range byUUID[p.uuid] {
			in.Tags = append(in.Tags, p.tag)
		}
	}
	return nil
}

// HasTag reports whether an instance has a tag.
func HasTag(ctx context.Context, q Querier, uuid, tag string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM server_tags WHERE instance_uuid = ? AND tag = ?`, uuid, tag).Scan(&n)
	return n > 0, err
}

// AddTags gives each instance each tag; tags it already has are kept once.
func AddTags(ctx context.Context, tx *db.Tx, uuids, tags []string) error {
	for _, u := range uuids {
		for _, t := range tags {
			if _, err := tx.Exec(ctx, `INSERT INTO server_tags (instance_uuid, tag) VALUES (?, ?) ON CONFLICT DO NOTHING`, u, t); err != nil {
				return fmt.Errorf("tag %s with %q: %w", u, t, err)
			}
		}
	}
	return nil
}

// SetTags replaces an instance's tags (repeats count once) and returns
// them, sorted.
func SetTags(ctx context.Context, tx *db.Tx, uuid string, tags []string) ([]string, error) {
	cur, err := ListTags(ctx, tx, uuid)
	if err != nil {
		return nil, err
	}
	for _, t := range cur {
		if !slices.Contains(tags, t) {
			if _, err := tx.Exec(ctx, `DELETE FROM server_tags WHERE instance_uuid = ? AND tag = ?`, uuid, t); err != nil {
				return nil, fmt.Errorf("untag %s: %w", uuid, err)
			}
		}
	}
	if err := AddTags(ctx, tx, []string{uuid}, tags); err != nil {
		return nil, err
	}
	return ListTags(ctx, tx, uuid)
}

// DeleteTag removes one tag; it reports whether the instance had it.
func DeleteTag(ctx context.Context, tx *db.Tx, uuid, tag string) (bool, error) {
	res, err := tx.Exec(ctx, `DELETE FROM server_tags WHERE instance_uuid = ? AND tag = ?`, uuid, tag)
	if err != nil {
		return false, fmt.Errorf("untag %s: %w", uuid, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// DeleteAllTags removes every tag of an instance.
func DeleteAllTags(ctx context.Context, tx *db.Tx, uuid string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM server_tags WHERE instance_uuid = ?`, uuid); err != nil {
		return fmt.Errorf("untag %s: %w", uuid, err)
	}
	return nil
}
