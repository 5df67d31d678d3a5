package volume

import (
	"context"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// healPage is the number of volumes (or snapshots) per heal message.
const healPage = 500

// healLoop resends the recently changed volumes and snapshots every
// HealInterval, so that a lost update is repaired.
func (m *Manager) healLoop(ctx context.Context) {
	t := time.NewTicker(m.cfg.HealInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Heal(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("volume heal", "err", err)
			}
		}
	}
}

// Heal sends up again, as volume_update with Heal set, every volume (with
// its attachments) and snapshot (deleted ones too) changed within the heal
// window, in pages of 500, each page read and sent in a transaction of its own.
func (m *Manager) Heal(ctx context.Context) error {
	since := m.cfg.Now().Add(-m.cfg.HealWindow)
	if err := healPages(ctx, m.cfg.DB, since, celldb.VolumesChangedAfter, func(tx *db.Tx, page []*celldb.Volume) error {
		ids := make([]string, len(page))
		for i, v := range page {
			ids[i] = v.ID
		}
		atts, err := celldb.AttachmentStates(ctx, tx, ids...)
		if err != nil {
			return err
		}
		u := &wire.VolumeUpdate{Heal: true}
		for _, v := range page {
			st := v.State(m.cfg.Cell)
			st.Attachments = atts[v.ID]
			u.Volumes = append(u.Volumes, st)
		}
		return m.send(ctx, tx, "", u)
	}, func(v *celldb.Volume) (time.Time, string) { return v.UpdatedAt, v.ID }); err != nil {
		return err
	}
	return healPages(ctx, m.cfg.DB, since, celldb.SnapshotsChangedAfter, func(tx *db.Tx, page []*celldb.VolumeSnapshot) error {
		u := &wire.VolumeUpdate{Heal: true}
		for _, s := range page {
			u.Snapshots = append(u.Snapshots, s.State(m.cfg.Cell))
		}
		return m.send(ctx, tx, "", u)
	}, func(s *celldb.VolumeSnapshot) (time.Time, string) { return s.UpdatedAt, s.ID })
}

// healPages reads the rows changed since at in pages (keyset on
// updated_at, id) and sends each.
func healPages[T any](ctx context.Context, d *db.DB, at time.Time,
	list func(context.Context, db.Querier, time.Time, string, int) ([]T, error),
	send func(*db.Tx, []T) error, key func(T) (time.Time, string)) error {
	after := ""
	for {
		var n int
		var nextAt time.Time
		var nextAfter string
		err := d.InTx(ctx, func(tx *db.Tx) error {
			page, err := list(ctx, tx, at, after, healPage)
			n = len(page)
			if err != nil || n == 0 {
				return err
			}
			nextAt, nextAfter = key(page[n-1])
			return send(tx, page)
		})
		if err != nil || n < healPage {
			return err
		}
		at, after = nextAt, nextAfter
	}
}
