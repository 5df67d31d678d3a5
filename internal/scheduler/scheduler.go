// Package scheduler is the host scheduler role of a compute cell: it reads
// live host state from the cell database and runs the pure host scheduler
// (package hostsched) over it. The claim that makes a choice stick is taken
// by the compute host.
package scheduler

import (
	"context"
	"errors"
	"time"

	"github.com/cellcloud/cellcloud/internal/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/hostsched"
)

// Service is the scheduler role.
type Service struct {
	db        *db.DB
	sched     *hostsched.Scheduler
	downAfter time.Duration
	now       func() time.Time
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
	return &Service{db: d, sched: sched, downAfter: downAfter, now: time.Now}, nil
}

// Select picks hosts for the request.
func (s *Service) Select(ctx context.Context, req *hostsched.Request) ([]hostsched.Selection, error) {
	nodes, err := celldb.ListNodes(ctx, s.db)
	if err != nil {
		return nil, err
	}
	now := s.now()
	hosts := make([]hostsched.Host, len(nodes))
	for i, n := range nodes {
		hosts[i] = hostsched.Host{
			Name: n.Host, AvailabilityZone: n.AvailabilityZone, Enabled: n.Enabled, Up: now.Sub(n.HeartbeatAt) <= s.downAfter,
			TotalVCPUs: n.VCPUs, UsedVCPUs: n.UsedVCPUs, TotalRAMMB: n.RAMMB, UsedRAMMB: n.UsedRAMMB,
			TotalDiskGB: n.DiskGB, UsedDiskGB: n.UsedDiskGB, CPURatio: n.CPURatio, RAMRatio: n.RAMRatio, DiskRatio: n.DiskRatio,
			Instances: n.Instances,
		}
	}
	return s.sched.Select(req, hosts)
}
