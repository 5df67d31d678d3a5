package netdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Revisions: every stored resource has a revision_number that each change
// bumps; an update or delete may be constrained to a revision with
// If-Match: revision_number=N (Neutron's revision-if-match), and fails with
// 412 when the resource has moved on.

// revisionFailed is Neutron's answer to an If-Match that no longer holds.
func revisionFailed(want, have int64) error {
	return fail(ErrPrecondition, "HTTPPreconditionFailed", fmt.Sprintf("Constrained to %d, but current revision is %d", want, have))
}

// checkRevision enforces an If-Match revision constraint (nil: none).
func checkRevision(ifMatch *int64, have int64) error {
	if ifMatch != nil && *ifMatch != have {
		return revisionFailed(*ifMatch, have)
	}
	return nil
}

// RequireRevision enforces an If-Match revision constraint (nil: none) on
// a network or subnet inside tx before the caller changes or deletes it,
// holding its row (PostgreSQL) until tx ends so that no other writer moves
// the revision in between.
func RequireRevision(ctx context.Context, tx *db.Tx, table, id string, ifMatch *int64) error {
	if ifMatch == nil {
		return nil
	}
	notFound := networkNotFound
	switch table {
	case "networks":
	case "subnets":
		notFound = subnetNotFound
	default:
		return fmt.Errorf("require revision: no table %q", table)
	}
	if err := lockRow(ctx, tx, table, id); err != nil {
		return err
	}
	var rev int64
	err := tx.QueryRow(ctx, `SELECT revision_number FROM `+table+` WHERE id = ?`, id).Scan(&rev)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(id)
	}
	if err != nil {
		return fmt.Errorf("revision of %s %s: %w", table, id, err)
	}
	return checkRevision(ifMatch, rev)
}

// lockRow holds a row of table until tx ends (PostgreSQL; a SQLite
// transaction here holds the write lock already), so that what the caller
// reads of it next, its revision above all, stays true until it writes. A
// missing row is left for the caller's read to report.
func lockRow(ctx context.Context, tx *db.Tx, table, id string) error {
	if _, err := tx.Exec(ctx, `UPDATE `+table+` SET revision_number = revision_number WHERE id = ?`, id); err != nil {
		return fmt.Errorf("lock %s %s: %w", table, id, err)
	}
	return nil
}
