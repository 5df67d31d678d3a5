package compute

import (
	"context"
	"fmt"
	"sync"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// A restarted compute process puts the instances the database places on
// its hosts back on the (fake) hypervisor. Each spawn costs the driver's
// latency, so this runs in the background, a few at a time, while the
// heartbeat keeps the hosts up and the process serves: a cell with
// hundreds of instances to restore must not look dead to its own
// scheduler meanwhile. Work on an instance that is still to be restored
// waits for it: an action or a console read restores it first (or waits
// for its restore to end), a destroy or a new spawn drops it from the
// queue (or waits for its restore to end), so a restore never brings back
// what was removed meanwhile.

// restoreWorkers bounds the restores that run at once.
const restoreWorkers = 16

// vmKey is an instance's copy on one host.
type vmKey struct{ host, uuid string }

// restoreEntry is one copy still to restore.
type restoreEntry struct {
	started bool
	done    chan struct{} // closed when the restore ended or was dropped
}

// restoreQueue is what a restart still has to restore.
type restoreQueue struct {
	mu   sync.Mutex
	left map[vmKey]*restoreEntry
}

// restoreList reads the copies the database places on this process's
// hosts: every instance on its host but those building or offloaded, and
// the source copy of a resize that waits for confirm or revert.
func (s *Service) restoreList(ctx context.Context) ([]vmKey, error) {
	if _, ok := s.cfg.Driver.(virt.Lister); !ok {
		return nil, nil
	}
	ps, err := db.Collect(ctx, s.cfg.DB, func(r db.Scanner) (vmKey, error) {
		var k vmKey
		return k, r.Scan(&k.uuid, &k.host)
	}, `SELECT uuid, host FROM instances WHERE deleted = 0 AND host <> '' AND vm_state NOT IN (?, ?)
		UNION ALL SELECT m.instance_uuid, m.source_host FROM migrations m JOIN instances i ON i.uuid = m.instance_uuid
		WHERE m.status = 'finished' AND i.deleted = 0`,
		vmstate.ShelvedOffloaded, vmstate.Building)
	if err != nil {
		return nil, fmt.Errorf("compute: restore: %w", err)
	}
	mine := map[string]bool{}
	for _, h := range s.cfg.Hosts {
		mine[h] = true
	}
	var out []vmKey
	for _, k := range ps {
		if mine[k.host] {
			out = append(out, k)
		}
	}
	return out, nil
}

// queueRestore records the copies to restore, before anything else can
// drive them.
func (s *Service) queueRestore(ks []vmKey) {
	s.restoring.mu.Lock()
	defer s.restoring.mu.Unlock()
	s.restoring.left = make(map[vmKey]*restoreEntry, len(ks))
	for _, k := range ks {
		s.restoring.left[k] = &restoreEntry{done: make(chan struct{})}
	}
}

// restore restores ks, restoreWorkers at a time, until done or ctx ends.
func (s *Service) restore(ctx context.Context, ks []vmKey) {
	next := make(chan vmKey)
	var wg sync.WaitGroup
	for range min(restoreWorkers, len(ks)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				s.restoreOne(ctx, k)
			}
		}()
	}
feed:
	for _, k := range ks {
		select {
		case next <- k:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() == nil && len(ks) > 0 {
		s.log.Info("instances restored on their hosts", "instances", len(ks))
	}
}

// restoreOne restores k if it is still queued, or waits for the restore
// under way; it returns at once when k has nothing to restore.
func (s *Service) restoreOne(ctx context.Context, k vmKey) {
	q := &s.restoring
	q.mu.Lock()
	e := q.left[k]
	if e == nil {
		q.mu.Unlock()
		return
	}
	if e.started {
		q.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
		}
		return
	}
	e.started = true
	q.mu.Unlock()
	if err := s.cfg.Driver.Spawn(ctx, k.host, virt.Instance{UUID: k.uuid}); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("restoring an instance on its host", "instance", k.uuid, "host", k.host, "err", err)
		}
	} else {
		s.restoreVolumes(ctx, k)
	}
	q.mu.Lock()
	delete(q.left, k)
	q.mu.Unlock()
	close(e.done)
}

// dropRestore takes k out of the queue, or waits for its restore under
// way to end, so that what the caller does next (destroy, spawn anew) is
// not undone by it.
func (s *Service) dropRestore(ctx context.Context, k vmKey) {
	q := &s.restoring
	q.mu.Lock()
	e := q.left[k]
	if e == nil {
		q.mu.Unlock()
		return
	}
	if !e.started {
		delete(q.left, k)
		q.mu.Unlock()
		close(e.done)
		return
	}
	q.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
	}
}
