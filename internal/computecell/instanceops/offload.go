package instanceops

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// offloadBatch bounds the instances one round of the offload loop queues.
const offloadBatch = 100

// offloadLoop is Nova's _poll_shelved_instances: every ShelvedPollInterval
// it queues the offload of the instances SHELVED for ShelvedOffloadTime.
// It runs only when that time is positive.
func (o *Ops) offloadLoop() {
	defer close(o.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-o.stop
		cancel()
	}()
	t := time.NewTicker(o.cfg.ShelvedPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			n, err := o.OffloadShelved(ctx)
			if err != nil {
				if ctx.Err() == nil {
					o.log.Error("offloading shelved instances", "err", err)
				}
				break
			}
			if n < offloadBatch {
				break
			}
		}
	}
}

// OffloadShelved queues a shelve_offload action on (at most offloadBatch)
// instances SHELVED, with no task, for at least ShelvedOffloadTime, as
// Nova's periodic does (SHELVING_OFFLOADING, no instance action recorded),
// and returns how many. Their new task state goes up to the API cell. An
// instance that moved on meanwhile (unshelved, deleted, another action) is
// left alone: each is queued in a transaction of its own that checks it
// again.
func (o *Ops) OffloadShelved(ctx context.Context) (int, error) {
	uuids, err := celldb.ShelvedBefore(ctx, o.cfg.DB, o.cfg.Now().Add(-o.cfg.ShelvedOffloadTime), offloadBatch)
	if err != nil || len(uuids) == 0 {
		return 0, err
	}
	task := vmstate.Actions["shelve_offload"].Task
	queued := 0
	for _, u := range uuids {
		rid := "req-" + uuid.NewString()
		ok := false
		err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
			in, err := celldb.Get(ctx, tx, u)
			if err != nil {
				return err
			}
			if in.Deleted || in.VMState != vmstate.Shelved || in.TaskState != "" || in.Action != "" {
				return nil
			}
			none := ""
			pending := &celldb.PendingAction{Action: "shelve_offload", RequestID: rid}
			_, err = o.state.Transition(ctx, tx, u, &none, celldb.Change{TaskState: &task, Action: pending})
			if errors.Is(err, wire.ErrConflict) {
				return nil // another process of the cell took it first
			}
			ok = err == nil
			return err
		})
		if err != nil {
			return queued, err
		}
		if ok {
			queued++
			o.log.Info("offloading a shelved instance", "request_id", rid, "instance", u, "shelved_offload_time", o.cfg.ShelvedOffloadTime)
		}
	}
	if queued > 0 {
		o.Wake()
	}
	return queued, nil
}
