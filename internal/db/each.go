package db

import (
	"context"
	"errors"
	"strconv"
)

// InTxEach runs several functions in one transaction and returns each
// one's error. The first attempt runs them without savepoints, since they
// rarely fail and each savepoint costs statements and copies every page it
// first touches. If one fails, they all run again, each under its own
// savepoint, so that only those that fail are undone (their AfterCommit
// functions with them) while the rest commit once. A conflict the engine
// asks to retry runs the whole transaction again, as InTx does. err is the
// transaction's own failure: then none of the functions took effect. Each
// function must be safe to run again. In the second attempt tx.Alone
// reports true.
func (d *DB) InTxEach(ctx context.Context, fs []func(*Tx) error) (errs []error, err error) {
	errs = make([]error, len(fs))
	err = d.InTx(ctx, func(tx *Tx) error {
		for _, f := range fs {
			if err := f(tx); err != nil {
				if retryable(err) {
					return err
				}
				return errEachMember
			}
		}
		return nil
	})
	if !errors.Is(err, errEachMember) {
		return errs, err
	}
	err = d.InTx(ctx, func(tx *Tx) error {
		tx.alone = true
		for i, f := range fs {
			errs[i] = nil
			sp := "each" + strconv.Itoa(i)
			if err := tx.Savepoint(ctx, sp); err != nil {
				return err
			}
			if err := f(tx); err != nil {
				if retryable(err) {
					return err
				}
				if rerr := tx.RollbackTo(ctx, sp); rerr != nil {
					return rerr
				}
				errs[i] = err
			}
			if err := tx.Release(ctx, sp); err != nil {
				return err
			}
		}
		return nil
	})
	return errs, err
}

// errEachMember ends InTxEach's first attempt when one function failed.
var errEachMember = errors.New("database: one of the functions failed")
