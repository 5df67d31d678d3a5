package voldb

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Applied is what Apply did with one state.
type Applied struct {
	ID string
	// Changed: the state replaced the copy's.
	Changed bool
	// Deleted: the state deleted the copy.
	Deleted bool
}

// Apply applies the owning cells' states of volumes and snapshots to the
// copy, each by the contract's rules:
//
//   - an id the copy does not have (or has deleted) is ignored: a deletion
//     is final;
//   - a state from a cell other than the copy's (once the copy has one)
//     is ignored, but for a move: a state with MovedFrom equal to the
//     copy's cell applies when newer and makes Cell the copy's cell;
//   - a deletion from the copy's cell wins whatever its version;
//   - otherwise a state applies only when its version is newer than the
//     copy's; the first that applies names the copy's cell. A state with
//     Cell "" (the volume found no cell) leaves the copy without one.
//
// A volume's state that applies replaces the mirror of its attachments
// with the state's list (and its attach_status with theirs); a deletion
// removes them.
//
// A state that carries image metadata (a re-image's end) replaces the
// volume's volume_image_metadata with it when it applies.
//
// A state that is not newer costs one statement that changes nothing (a
// heal resend). now is the time written for states without UpdatedAt.
func Apply(ctx context.Context, tx *db.Tx, vols []wire.VolumeState, snaps []wire.SnapshotState, now time.Time) ([]Applied, error) {
	var out []Applied
	for _, st := range vols {
		status := st.Status
		if st.Deleted {
			status = StatusDeleted
		}
		set, args := `status = ?, size_gb = ?`, []any{status, st.SizeGB}
		if st.ImageMetadata != nil {
			// A re-image's end: the new image's metadata, as Cinder's
			// _refresh_volume_glance_meta (and its bootable flag).
			b, err := json.Marshal(st.ImageMetadata)
			if err != nil {
				return nil, fmt.Errorf("apply the state of %s: %w", st.ID, err)
			}
			set += `, volume_image_metadata = ?, bootable = 1`
			args = append(args, string(b))
		}
		a, err := applyRow(ctx, tx, "volumes", st.ID, st.Cell, st.MovedFrom, st.Version, st.Deleted, st.UpdatedAt, now, set, args)
		if err != nil {
			return nil, err
		}
		if a.Changed {
			// The state's attachments are the volume's whole list.
			if err := replaceAttachments(ctx, tx, st.ID, st.Attachments, a.Deleted); err != nil {
				return nil, err
			}
		}
		if a.Deleted {
			// A deleted volume has no snapshots left: those its cell has
			// not reported deleted (yet) go with it.
			if _, err := tx.Exec(ctx, `UPDATE volume_snapshots SET deleted = 1, deleted_at = ?, status = 'deleted'
				WHERE volume_id = ? AND deleted = 0`, db.Micros(now), st.ID); err != nil {
				return nil, fmt.Errorf("apply the deletion of volume %s: %w", st.ID, err)
			}
		}
		out = append(out, a)
	}
	for _, st := range snaps {
		progress, status := st.Progress, st.Status
		if progress == "" {
			progress = "0%"
		}
		if st.Deleted {
			status = StatusDeleted
		}
		a, err := applyRow(ctx, tx, "volume_snapshots", st.ID, st.Cell, "", st.Version, st.Deleted, st.UpdatedAt, now,
			`status = ?, size_gb = ?, progress = ?`, []any{status, st.SizeGB, progress})
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// applyRow is one conditional UPDATE: the version rules are its WHERE.
// movedFrom ("" none) is a cell whose copy the state may also take, when
// newer, making cell the copy's.
func applyRow(ctx context.Context, tx *db.Tx, table, id, cell, movedFrom string, version int64, deleted bool, updated, now time.Time,
	set string, args []any) (Applied, error) {
	if updated.IsZero() {
		updated = now
	}
	a := Applied{ID: id}
	// The cells whose copy the state applies to: none yet, its own, and
	// on a move the one it moved from.
	cells, cellArgs := `cell_path = '' OR cell_path = ?`, []any{cell}
	if movedFrom != "" && movedFrom != cell {
		cells, cellArgs = cells+` OR cell_path = ?`, append(cellArgs, movedFrom)
	}
	q := `UPDATE ` + table + ` SET ` + set + `, version = CASE WHEN version > ? THEN version ELSE ? END,
		cell_path = ?, updated_at = ?`
	args = append(args, version, version, cell, db.Micros(updated))
	if deleted {
		q += `, deleted = 1, deleted_at = ?`
		args = append(args, db.Micros(now))
	}
	q += ` WHERE id = ? AND deleted = 0 AND (` + cells + `)`
	args = append(append(args, id), cellArgs...)
	if deleted && cell != "" {
		q += ` AND (version < ? OR cell_path = ?)`
		args = append(args, version, cell)
	} else {
		q += ` AND version < ?`
		args = append(args, version)
	}
	res, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return a, fmt.Errorf("apply the state of %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return a, fmt.Errorf("apply the state of %s: %w", id, err)
	}
	a.Changed, a.Deleted = n == 1, n == 1 && deleted
	return a, nil
}
