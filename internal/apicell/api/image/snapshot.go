package image

import (
	"bytes"
	"context"
	"fmt"
	"os"

	"github.com/cellcloud/cellcloud/internal/db"
)

// StoreData gives a queued image its data inside the caller's transaction
// (a server snapshot arriving from a compute cell): the data file first,
// then the record that points at it, so a rollback leaves at most a file
// that the next upload overwrites or the next start removes. The image
// must be queued.
func (a *API) StoreData(ctx context.Context, tx *db.Tx, id string, data []byte) error {
	// Only a queued image takes the data: one the owner filled (or
	// deleted) meanwhile keeps what it has.
	if err := a.b.store.BeginUpload(ctx, tx, id); err != nil {
		return fmt.Errorf("image %s: %w", id, err)
	}
	tmp, d, err := a.b.files.receive(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("image %s: %w", id, err)
	}
	defer os.Remove(tmp) // gone already once committed
	if err := a.b.files.commit(tmp, id); err != nil {
		return fmt.Errorf("image %s: %w", id, err)
	}
	return a.b.store.FinishUpload(ctx, tx, id, d)
}

// DropSnapshot deletes the queued image of a snapshot that failed.
func (a *API) DropSnapshot(ctx context.Context, tx *db.Tx, id string) error {
	return a.b.store.Delete(ctx, tx, id)
}

// DeleteImage deletes an image inside the caller's transaction (a shelved
// server's snapshot, done with once the server is unshelved or deleted);
// its data file goes once the transaction commits. A protected image is
// not deleted (imagedb.ErrProtected), a deleted one is imagedb.ErrNotFound.
func (a *API) DeleteImage(ctx context.Context, tx *db.Tx, id string) error {
	if err := a.b.store.Delete(ctx, tx, id); err != nil {
		return err
	}
	tx.AfterCommit(func() {
		if err := a.b.files.remove(id); err != nil {
			a.b.log.Error("image deleted; its data file could not be removed (it goes at the next start)", "image", id, "err", err)
		}
	})
	return nil
}
