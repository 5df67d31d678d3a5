package apicopy

import (
	"context"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Delete deletes a live instance for good, in tx: an instance no cell
// ever took (ERROR with no cell) goes at once; any other is marked
// deleting, and the delete is sent to its cell, or, while it is still
// being scheduled, follows it to the cell that reports it. Its ports are
// freed when it is deleted for good (FreePorts). Deleting twice
// sends the delete twice, which the cell carries out once.
func Delete(ctx context.Context, tx *db.Tx, s Sender, cur *apidb.Instance, requestID string, now time.Time) error {
	if cur.Deleted {
		return nil
	}
	if cur.Cell == "" && cur.VMState == "error" {
		if err := apidb.MarkDeleted(ctx, tx, cur.UUID, now); err != nil {
			return err
		}
		return FreePorts(ctx, tx, s, cur.UUID, requestID, now)
	}
	if err := apidb.MarkDeleting(ctx, tx, cur.UUID, now); err != nil {
		return err
	}
	if cur.Cell == "" {
		return nil
	}
	return s.Send(ctx, tx, cur.Cell, wire.MethodDeleteInstances, requestID, &wire.DeleteInstances{UUIDs: []string{cur.UUID}})
}
