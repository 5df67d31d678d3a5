package celldb

import (
	"context"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/db"
)

// ActionMoveOut is the pending action of a volume locked for a move to
// another cell (package volume, move.go): it is no worker's work (the
// importing cell ends it), so VolumesWithPendingWork leaves it out.
const ActionMoveOut = "move_out"

// DeleteVolumeRow removes a volume's row for good: a volume that moved to
// another cell (or whose import was given up), which this cell must
// neither heal nor report any more. Its attachments and snapshots must
// be gone (deleted) already; their rows stay.
func DeleteVolumeRow(ctx context.Context, tx *db.Tx, id string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM volumes WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete the row of volume %s: %w", id, err)
	}
	return nil
}

// RaiseVolumeVersion sets a volume's version to at least version (the
// next UpdateVolume increments it past): a moved volume's versions carry
// on above those of the cell it came from.
func RaiseVolumeVersion(ctx context.Context, tx *db.Tx, id string, version int64) error {
	if _, err := tx.Exec(ctx, `UPDATE volumes SET version = ? WHERE id = ? AND version < ?`, version, id, version); err != nil {
		return fmt.Errorf("raise the version of volume %s: %w", id, err)
	}
	return nil
}
