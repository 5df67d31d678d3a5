// Package scheduler is the host scheduler role of a compute cell: it reads
// live host state from the cell database and runs the pure host scheduler
// (package hostsched) over it. It only chooses: the claim that makes a
// choice stick is taken in the cell database by its caller, the conductor
// for a build and the instance operations for a move (both through package
// instancestate), and the compute host checks it as the spawn begins.
package scheduler

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/db"
)

// Service is the scheduler role. Like Nova's, it keeps the hosts' state
// in memory between selections: it reads every host from the database at
// most every Refresh, and in between counts what it has chosen on each
// host itself. The claim taken in the database (see the package comment)
// stays the truth: a choice made on a stale view only fails its claim and
// moves to an alternate.
type Service struct {
	db        *db.DB
	sched     *hostsched.Scheduler
	downAfter time.Duration
	now       func() time.Time
	// Refresh is how long the in-memory host state is used before it is
	// read again (default 1s; 0 after New keeps the default).
	Refresh time.Duration

	mu       sync.Mutex
	hosts    []hostsched.Host
	byName   map[string]int
	loadedAt time.Time
	// aggVersion and aggs are the cell's aggregates as last read (host →
	// its aggregates' metadata), read again only when the version of the
	// snapshot the cell holds changed.
	aggVersion int64
	aggs       map[string][]map[string]string
}

// New returns a scheduler over the cell database. downAfter is how old a
// host's heartbeat may be before the host counts as down.
func New(d *db.DB, sched *hostsched.Scheduler, downAfter time.Duration) (*Service, error) {
	if d == nil {
		return nil, errors.New("scheduler: a database is required")
	}
	if sched == nil {
		sched = hostsched.Default()
	}
	if downAfter <= 0 {
		downAfter = 60 * time.Second
	}
	return &Service{db: d, sched: sched, downAfter: downAfter, now: time.Now, Refresh: time.Second}, nil
}

// Select picks hosts for the request.
func (s *Service) Select(ctx context.Context, req *hostsched.Request) ([]hostsched.Selection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	// A retry (hosts to ignore) follows a failed claim or spawn: the view
	// that chose those hosts was wrong, so it is read again.
	if s.hosts == nil || now.Sub(s.loadedAt) >= s.Refresh || now.Before(s.loadedAt) || len(req.IgnoreHosts) > 0 {
		if err := s.load(ctx, now); err != nil {
			return nil, err
		}
	}
	sels, err := s.sched.Select(req, s.hosts)
	// What was chosen counts at once, so the next selection, before the
	// next read, does not choose the same room again.
	for _, sel := range sels {
		if i, ok := s.byName[sel.Host]; ok {
			h := &s.hosts[i]
			h.UsedVCPUs += req.Flavor.VCPUs
			h.UsedRAMMB += req.Flavor.RAMMB
			h.UsedDiskGB += req.Flavor.DiskGB
			h.Instances++
		}
	}
	return sels, err
}

// load reads every host from the database.
func (s *Service) load(ctx context.Context, now time.Time) error {
	nodes, err := celldb.ListNodes(ctx, s.db)
	if err != nil {
		return err
	}
	v, _, err := celldb.HostAggregatesState(ctx, s.db)
	if err != nil {
		return err
	}
	if v != s.aggVersion || s.aggs == nil {
		aggs, err := celldb.HostAggregateMetadata(ctx, s.db)
		if err != nil {
			return err
		}
		s.aggVersion, s.aggs = v, aggs
	}
	hosts := make([]hostsched.Host, len(nodes))
	byName := make(map[string]int, len(nodes))
	for i, n := range nodes {
		hosts[i] = hostsched.Host{
			Name: n.Host, AvailabilityZone: n.AvailabilityZone, Enabled: n.Enabled, Up: now.Sub(n.HeartbeatAt) <= s.downAfter,
			TotalVCPUs: n.VCPUs, UsedVCPUs: n.UsedVCPUs, TotalRAMMB: n.RAMMB, UsedRAMMB: n.UsedRAMMB,
			TotalDiskGB: n.DiskGB, UsedDiskGB: n.UsedDiskGB, CPURatio: n.CPURatio, RAMRatio: n.RAMRatio, DiskRatio: n.DiskRatio,
			Instances: n.Instances, Aggregates: s.aggs[n.Host],
		}
		byName[n.Host] = i
	}
	s.hosts, s.byName, s.loadedAt = hosts, byName, now
	return nil
}
