package voldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// StatusChange is a conditional status change of a volume (Cinder's
// conditional_update): it takes only if the volume is not deleted, its
// status is one of From (nil: any) and the snapshot condition holds.
type StatusChange struct {
	ID   string
	From []string
	To   string
	// NoSnapshots: the volume must have no snapshot that is not deleted.
	NoSnapshots bool
	// SnapshotsFrom (when not nil): every snapshot of the volume that is
	// not deleted must be in one of these statuses (a cascading delete).
	SnapshotsFrom []string
	// Detached: attach_status must not be "attached".
	Detached bool
	// NoAttachments: the volume must have no attachment in the mirror
	// (whatever its status).
	NoAttachments bool
	// AttachStatus (when not ""): attach_status must be this one.
	AttachStatus string
	// Now is the updated_at written.
	Now time.Time
}

// SetStatus applies c in tx and reports whether it took. The version is
// not changed: the owning cell's next state replaces the status.
func SetStatus(ctx context.Context, tx *db.Tx, c StatusChange) (bool, error) {
	q := `UPDATE volumes SET status = ?, updated_at = ? WHERE id = ? AND deleted = 0`
	args := []any{c.To, db.Micros(c.Now), c.ID}
	if c.From != nil {
		q += ` AND status IN (` + placeholders(len(c.From)) + `)`
		for _, s := range c.From {
			args = append(args, s)
		}
	}
	if c.Detached {
		q += ` AND attach_status <> 'attached'`
	}
	if c.AttachStatus != "" {
		q += ` AND attach_status = ?`
		args = append(args, c.AttachStatus)
	}
	if c.NoAttachments {
		q += ` AND NOT EXISTS (SELECT 1 FROM volume_attachments a WHERE a.volume_id = volumes.id)`
	}
	if c.NoSnapshots {
		q += ` AND NOT EXISTS (SELECT 1 FROM volume_snapshots s WHERE s.volume_id = volumes.id AND s.deleted = 0)`
	}
	if c.SnapshotsFrom != nil {
		q += ` AND NOT EXISTS (SELECT 1 FROM volume_snapshots s WHERE s.volume_id = volumes.id AND s.deleted = 0`
		if len(c.SnapshotsFrom) > 0 {
			q += ` AND s.status NOT IN (` + placeholders(len(c.SnapshotsFrom)) + `)`
			for _, s := range c.SnapshotsFrom {
				args = append(args, s)
			}
		}
		q += `)`
	}
	res, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("set status of volume %s: %w", c.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("set status of volume %s: %w", c.ID, err)
	}
	return n == 1, nil
}

// SetSnapshotStatus sets a snapshot's status to to if it is not deleted
// and its status is one of from (nil: any), and reports whether it took.
func SetSnapshotStatus(ctx context.Context, tx *db.Tx, id string, from []string, to string, now time.Time) (bool, error) {
	q := `UPDATE volume_snapshots SET status = ?, updated_at = ? WHERE id = ? AND deleted = 0`
	args := []any{to, db.Micros(now), id}
	if from != nil {
		q += ` AND status IN (` + placeholders(len(from)) + `)`
		for _, s := range from {
			args = append(args, s)
		}
	}
	res, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("set status of snapshot %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("set status of snapshot %s: %w", id, err)
	}
	return n == 1, nil
}

// SetVolumeSnapshotsStatus sets the status of every snapshot of a volume
// that is not deleted (a cascading delete's "deleting").
func SetVolumeSnapshotsStatus(ctx context.Context, tx *db.Tx, volumeID, to string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE volume_snapshots SET status = ?, updated_at = ? WHERE volume_id = ? AND deleted = 0`,
		to, db.Micros(now), volumeID); err != nil {
		return fmt.Errorf("set status of the snapshots of volume %s: %w", volumeID, err)
	}
	return nil
}

// Fields are the changes UpdateFields makes (nil: unchanged).
type Fields struct {
	Name, Description *string
	Bootable          *bool
	// ReadOnly sets the admin metadata "readonly" ("True" or "False").
	ReadOnly *string
	// Metadata is merged into the metadata, or replaces it with
	// ReplaceMetadata.
	Metadata        map[string]string
	ReplaceMetadata bool
	// DeleteMetadataKey deletes one key (it must exist: ErrNoMetadataKey).
	DeleteMetadataKey *string
	Now               time.Time
}

// ErrNoMetadataKey is a metadata key to delete that is not there.
var ErrNoMetadataKey = fmt.Errorf("no such metadata key")

// UpdateFields changes what the API owns of a volume (never its status,
// size, cell or version). ErrNotFound if the volume is gone.
func UpdateFields(ctx context.Context, tx *db.Tx, id string, f Fields) error {
	return update(ctx, tx, "volumes", "volume_metadata", "volume_id", id, f, ErrNotFound)
}

// UpdateSnapshotFields changes a snapshot's name, description or metadata
// (Bootable and ReadOnly do not apply).
func UpdateSnapshotFields(ctx context.Context, tx *db.Tx, id string, f Fields) error {
	f.Bootable, f.ReadOnly = nil, nil
	return update(ctx, tx, "volume_snapshots", "snapshot_metadata", "snapshot_id", id, f, ErrSnapshotNotFound)
}

func update(ctx context.Context, tx *db.Tx, table, mdTable, idCol, id string, f Fields, notFound error) error {
	set := `updated_at = ?`
	args := []any{db.Micros(f.Now)}
	if f.Name != nil {
		set += `, name = ?`
		args = append(args, *f.Name)
	}
	if f.Description != nil {
		set += `, description = ?`
		args = append(args, *f.Description)
	}
	if f.Bootable != nil {
		set += `, bootable = ?`
		args = append(args, b2i(*f.Bootable))
	}
	if f.ReadOnly != nil {
		set += `, readonly = ?`
		args = append(args, *f.ReadOnly)
	}
	res, err := tx.Exec(ctx, `UPDATE `+table+` SET `+set+` WHERE id = ? AND deleted = 0`, append(args, id)...)
	if err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update %s: %w", id, err)
	} else if n == 0 {
		return notFound
	}
	if f.Metadata != nil || f.ReplaceMetadata {
		if err := setMetadata(ctx, tx, mdTable, idCol, id, f.Metadata, f.ReplaceMetadata); err != nil {
			return err
		}
	}
	if f.DeleteMetadataKey != nil {
		res, err := tx.Exec(ctx, `DELETE FROM `+mdTable+` WHERE `+idCol+` = ? AND meta_key = ?`, id, *f.DeleteMetadataKey)
		if err != nil {
			return fmt.Errorf("delete metadata of %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("delete metadata of %s: %w", id, err)
		} else if n == 0 {
			return ErrNoMetadataKey
		}
	}
	return nil
}

// Destroy deletes a volume's copy that has no cell, by the API alone (no
// message): its snapshots with it. It reports whether it deleted it (false:
// gone already, or it has a cell now).
func Destroy(ctx context.Context, tx *db.Tx, id string, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE volumes SET deleted = 1, deleted_at = ?, status = 'deleted', updated_at = ?
		WHERE id = ? AND deleted = 0 AND cell_path = ''`, db.Micros(now), db.Micros(now), id)
	if err != nil {
		return false, fmt.Errorf("destroy volume %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.Exec(ctx, `UPDATE volume_snapshots SET deleted = 1, deleted_at = ?, status = 'deleted', updated_at = ?
		WHERE volume_id = ? AND deleted = 0`, db.Micros(now), db.Micros(now), id); err != nil {
		return false, fmt.Errorf("destroy the snapshots of volume %s: %w", id, err)
	}
	return true, nil
}

// DestroySnapshot deletes a snapshot's copy that has no cell, by the API
// alone, and reports whether it did.
func DestroySnapshot(ctx context.Context, tx *db.Tx, id string, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE volume_snapshots SET deleted = 1, deleted_at = ?, status = 'deleted', updated_at = ?
		WHERE id = ? AND deleted = 0 AND cell_path = ''`, db.Micros(now), db.Micros(now), id)
	if err != nil {
		return false, fmt.Errorf("destroy snapshot %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// CountSnapshots is how many snapshots of a volume are not deleted.
func CountSnapshots(ctx context.Context, q db.Querier, volumeID string) (int, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM volume_snapshots WHERE volume_id = ? AND deleted = 0`, volumeID).Scan(&n); err != nil {
		return 0, fmt.Errorf("snapshots of volume %s: %w", volumeID, err)
	}
	return n, nil
}

// TypeInUse reports whether a volume that is not deleted has the type.
func TypeInUse(ctx context.Context, q db.Querier, typeID string) (bool, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM volumes WHERE volume_type_id = ? AND deleted = 0`, typeID).Scan(&n); err != nil {
		return false, fmt.Errorf("volumes of type %s: %w", typeID, err)
	}
	return n > 0, nil
}

// Usage is a project's use of the volume quotas by Cinder's keys:
// volumes, gigabytes (volumes and snapshots), snapshots, and per type
// volumes_<type name>, gigabytes_<type name>, snapshots_<type name>;
// backups, backup_gigabytes and groups are 0 (there are none). Deleted
// rows do not count.
func Usage(ctx context.Context, q db.Querier, project string) (map[string]int64, error) {
	out := map[string]int64{"volumes": 0, "gigabytes": 0, "snapshots": 0, "backups": 0, "backup_gigabytes": 0, "groups": 0}
	type row struct {
		typ    string
		n, gib int64
	}
	scan := func(s db.Scanner) (row, error) {
		var r row
		return r, s.Scan(&r.typ, &r.n, &r.gib)
	}
	vols, err := db.Collect(ctx, q, scan, `SELECT volume_type_name, COUNT(*), COALESCE(SUM(size_gb), 0) FROM volumes
		WHERE project_id = ? AND deleted = 0 GROUP BY volume_type_name`, project)
	if err != nil {
		return nil, fmt.Errorf("volume usage of %s: %w", project, err)
	}
	for _, r := range vols {
		out["volumes"] += r.n
		out["gigabytes"] += r.gib
		out["volumes_"+r.typ] += r.n
		out["gigabytes_"+r.typ] += r.gib
	}
	snaps, err := db.Collect(ctx, q, scan, `SELECT v.volume_type_name, COUNT(*), COALESCE(SUM(s.size_gb), 0)
		FROM volume_snapshots s JOIN volumes v ON v.id = s.volume_id
		WHERE s.project_id = ? AND s.deleted = 0 GROUP BY v.volume_type_name`, project)
	if err != nil {
		return nil, fmt.Errorf("snapshot usage of %s: %w", project, err)
	}
	for _, r := range snaps {
		out["snapshots"] += r.n
		out["gigabytes"] += r.gib
		out["snapshots_"+r.typ] += r.n
		out["gigabytes_"+r.typ] += r.gib
	}
	return out, nil
}

// Counter is TypeInUse and Usage as methods, for the Block Storage API's
// TypeUsage and QuotaUsage.
type Counter struct{}

// TypeInUse is the package's TypeInUse.
func (Counter) TypeInUse(ctx context.Context, q db.Querier, typeID string) (bool, error) {
	return TypeInUse(ctx, q, typeID)
}

// Usage is the package's Usage.
func (Counter) Usage(ctx context.Context, q db.Querier, project string) (map[string]int64, error) {
	return Usage(ctx, q, project)
}

// ChangeImageMetadata changes a volume's volume_image_metadata (the API
// cell owns it): change gets the metadata as it is (nil: none) and returns
// it as it must be (or an error, returned as it is). It is a
// compare-and-swap on the stored text, tried again when another writer
// came in between. ErrNotFound if the volume is gone.
func ChangeImageMetadata(ctx context.Context, tx *db.Tx, id string, now time.Time, change func(map[string]string) (map[string]string, error)) (map[string]string, error) {
	for range 5 {
		var raw string
		err := tx.QueryRow(ctx, `SELECT volume_image_metadata FROM volumes WHERE id = ? AND deleted = 0`, id).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, fmt.Errorf("image metadata of volume %s: %w", id, err)
		}
		var md map[string]string
		if raw != "" {
			if err := json.Unmarshal([]byte(raw), &md); err != nil {
				return nil, fmt.Errorf("volume %s: image metadata: %w", id, err)
			}
		}
		md, err = change(md)
		if err != nil {
			return nil, err
		}
		next := ""
		if md != nil {
			b, err := json.Marshal(md)
			if err != nil {
				return nil, err
			}
			next = string(b)
		}
		res, err := tx.Exec(ctx, `UPDATE volumes SET volume_image_metadata = ?, updated_at = ?
			WHERE id = ? AND deleted = 0 AND volume_image_metadata = ?`, next, db.Micros(now), id, raw)
		if err != nil {
			return nil, fmt.Errorf("set the image metadata of volume %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, fmt.Errorf("set the image metadata of volume %s: %w", id, err)
		} else if n == 1 {
			return md, nil
		}
	}
	return nil, fmt.Errorf("set the image metadata of volume %s: changed by others five times running", id)
}

// Retype is Cinder's retype of a volume whose new type needs no migration
// (every type here is served by the same backend): in tx, provided the
// volume is available or in-use and has another type, its type becomes
// typeID/typeName and its multiattach flag multiattach. It reports
// whether it took (false: the volume's status or type did not allow it).
func Retype(ctx context.Context, tx *db.Tx, id, typeID, typeName string, multiattach bool, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE volumes SET volume_type_id = ?, volume_type_name = ?, multiattach = ?, updated_at = ?
		WHERE id = ? AND deleted = 0 AND status IN ('available', 'in-use') AND volume_type_id <> ?`,
		typeID, typeName, b2i(multiattach), db.Micros(now), id, typeID)
	if err != nil {
		return false, fmt.Errorf("retype volume %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// SnapshotUsage is how many snapshots of a volume are not deleted and the
// GiB they hold (their sizes), for a retype's quota.
func SnapshotUsage(ctx context.Context, q db.Querier, volumeID string) (n int, gb int64, err error) {
	if err := q.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(size_gb), 0) FROM volume_snapshots WHERE volume_id = ? AND deleted = 0`,
		volumeID).Scan(&n, &gb); err != nil {
		return 0, 0, fmt.Errorf("snapshots of volume %s: %w", volumeID, err)
	}
	return n, gb, nil
}

// ReserveAttaching sets the copy of a volume that a server's cell has
// taken to attach without answering its state (a move, or a cell of an
// earlier release) attaching, as Cinder's reserve shows it, its version
// kept, provided the copy is still as the attach saw it: available, in
// cell from, at version. The cells' next state replaces it (for a move,
// the server's cell's takeover, or the volume's cell's row when the move
// fails); a copy that changed already is left as it is. It reports
// whether it took.
func ReserveAttaching(ctx context.Context, tx *db.Tx, id, from string, version int64, now time.Time) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE volumes SET status = 'attaching', updated_at = ?
		WHERE id = ? AND deleted = 0 AND status = 'available' AND cell_path = ? AND version = ?`, db.Micros(now), id, from, version)
	if err != nil {
		return false, fmt.Errorf("reserve volume %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
