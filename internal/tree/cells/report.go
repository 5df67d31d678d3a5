package cells

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// minReportGap keeps reports "on significant change" from flooding the parent.
const minReportGap = time.Second

// ReportSoon asks for a capacity report to the parent now rather than at the
// next interval (after a significant change), rate-limited.
func (s *Service) ReportSoon() {
	select {
	case s.reportNow <- struct{}{}:
	default:
	}
}

func (s *Service) reportLoop(ctx context.Context) {
	if cellpath.Parent(s.path) == "" {
		return // a root has nobody to report to
	}
	t := time.NewTicker(s.cfg.ReportInterval)
	defer t.Stop()
	var last time.Time
	s.sendReport(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.reportNow:
			if wait := minReportGap - time.Since(last); wait > 0 {
				sleepCtx(ctx, wait)
			}
		}
		last = time.Now()
		s.sendReport(ctx)
	}
}

// Report is this cell's capacity: its own hosts plus its children's last
// reports.
func (s *Service) Report(ctx context.Context) (capacity.Report, error) {
	var parts []capacity.Report
	if s.cfg.Capacity != nil {
		r, err := s.cfg.Capacity.Capacity(ctx, s.cfg.DB)
		if err != nil {
			return capacity.Report{}, err
		}
		parts = append(parts, r)
	}
	vr, err := s.ownVolumeReport(ctx)
	if err != nil {
		return capacity.Report{}, err
	}
	parts = append(parts, vr)
	ns, err := ListNeighbours(ctx, s.cfg.DB)
	if err != nil {
		return capacity.Report{}, err
	}
	var down []string
	for _, n := range ns {
		switch {
		case n.Relation != Child:
		case s.Down(n):
			down = append(down, n.Path)
		case n.Report != nil:
			parts = append(parts, *n.Report)
		}
	}
	parts = append(parts, capacity.Report{DownCells: down})
	return capacity.Merge(parts...), nil
}

func (s *Service) sendReport(ctx context.Context) {
	parent := cellpath.Parent(s.path)
	if _, ok := s.neighbour(parent); !ok {
		return
	}
	r, err := s.Report(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("computing the capacity report", "err", err)
		}
		return
	}
	// Reported even when this cell cannot receive: the report goes over
	// the parent's broker, and says so.
	r.NotReceiving = s.receiving(ctx)
	s.noteReceiving(r.NotReceiving)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Notify(rctx, parent, wire.MethodCapacityReport, "", &wire.CapacityReport{Cell: s.path, Report: r, At: s.now()}); err != nil {
		s.log.Debug("capacity report not sent", "err", err)
	}
}

// handleCapacityReport records a child's report; a big change is passed up
// at once.
func (s *Service) handleCapacityReport(ctx context.Context, env *wire.Envelope) (any, error) {
	var r wire.CapacityReport
	if err := json.Unmarshal(env.Payload, &r); err != nil {
		return nil, wire.Errorf(wire.CodeBadMessage, "capacity_report: %v", err)
	}
	if cellpath.Parent(env.Sender) != s.path || r.Cell != env.Sender {
		return nil, wire.Errorf(wire.CodeBadMessage, "capacity report for %q from %q, which is not a child of %q", r.Cell, env.Sender, s.path)
	}
	var before *capacity.Report
	var unreachable string
	// Ordered with checkLinks' writes of the same column.
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	s.mu.Lock() // refreshNeighbours replaces l.n under s.mu
	l, linked := s.neighbours[env.Sender]
	if linked {
		before, unreachable = l.n.Report, l.unreachable
	}
	s.mu.Unlock()
	ok, err := recordReport(ctx, s.cfg.DB, env.Sender, r.Report, unreachable, s.now())
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, wire.Errorf(wire.CodeNotFound, "cell %q is not a child in the cells table of %q", env.Sender, s.path)
	}
	s.reported(env.Sender)
	s.mu.Lock()
	if linked {
		l.stored = unreachable // what recordReport wrote
	}
	if l, ok := s.neighbours[env.Sender]; ok {
		rep := r.Report
		l.n.Report = &rep
		l.n.LastSeen = s.now()
		if rep.NotReceiving == "" && l.unreachable == "" {
			l.receivingAt = l.n.LastSeen
		}
	}
	s.mu.Unlock()
	if before != nil && before.NotReceiving != r.Report.NotReceiving {
		if r.Report.NotReceiving != "" {
			s.log.Warn("a child says it cannot receive; it takes no new builds until it can", "neighbour", env.Sender, "reason", r.Report.NotReceiving)
		} else {
			s.log.Info("a child says it can receive again", "neighbour", env.Sender)
		}
	}
	if before == nil || Significant(*before, r.Report) {
		s.ReportSoon()
	}
	return nil, nil
}

// Significant reports whether capacity changed enough to tell the parent
// before the next periodic report: hosts came or went, the zones or the
// aggregates' capabilities changed (an operator's aggregate change, which
// builds asked for the zone wait on), or free RAM or free vCPUs moved by
// more than a tenth of the total.
func Significant(a, b capacity.Report) bool {
	if a.NotReceiving != b.NotReceiving {
		return true // the child is down, or up again, at once
	}
	if a.Hosts != b.Hosts || !slices.Equal(a.AvailabilityZones, b.AvailabilityZones) || !reflect.DeepEqual(a.Aggregates, b.Aggregates) {
		return true
	}
	// A storage zone that appears or goes (a volume role started or
	// stopped) is a change volume creates wait on.
	if len(a.VolumeZones) != len(b.VolumeZones) {
		return true
	}
	for z := range a.VolumeZones {
		if _, ok := b.VolumeZones[z]; !ok {
			return true
		}
	}
	tenth := func(x, y, total int64) bool {
		d := x - y
		if d < 0 {
			d = -d
		}
		return total > 0 && d*10 > total
	}
	return tenth(a.FreeRAMMB, b.FreeRAMMB, max(a.TotalRAMMB, b.TotalRAMMB)) ||
		tenth(int64(a.FreeVCPUs), int64(b.FreeVCPUs), int64(max(a.TotalVCPUs, b.TotalVCPUs)))
}
