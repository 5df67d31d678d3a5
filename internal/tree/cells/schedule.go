package cells

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cellsched"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// NoValidCellReason is the fault message when a build finds no cell, the
// same words Nova uses when it finds no host.
const NoValidCellReason = "No valid host was found. There are not enough hosts available."

// handleBuild places a build: on this cell's own hosts, or split across the
// children the cell scheduler ranks best, one message per chosen cell.
func (s *Service) handleBuild(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var b wire.BuildInstances
	if err := json.Unmarshal(env.Payload, &b); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "build_instances: %v", err)
	}
	if len(b.Instances) == 0 {
		return wire.Errorf(wire.CodeBadMessage, "build_instances carries no instances")
	}
	if b.Attempts == 0 {
		b.Attempts = 1
	}
	if b.Scheduler == "" {
		b.Scheduler = env.Sender
	}
	return s.place(ctx, tx, env, &b)
}

// handleBuildFailed retries a build that a cell below could not place.
func (s *Service) handleBuildFailed(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var f wire.BuildFailed
	if err := json.Unmarshal(env.Payload, &f); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "build_failed: %v", err)
	}
	attempt := f.Build.Attempts
	if !f.Exhausted {
		attempt++
	}
	s.log.Info("build failed in a cell; rescheduling", "request_id", env.RequestID, "failed_cell", f.Cell,
		"reason", f.Reason, "instances", len(f.Build.Instances), "attempt", attempt)
	return s.retry(ctx, tx, env, &f)
}

// retry places a build again after f.Cell failed it (or, from replace.go,
// did not take it in time): f.Cell joins the cells tried, an attempt is
// counted unless f.Exhausted, and past MaxBuildAttempts the build gives up.
func (s *Service) retry(ctx context.Context, tx *db.Tx, env *wire.Envelope, f *wire.BuildFailed) error {
	b := f.Build
	if !slices.Contains(b.Tried, f.Cell) {
		b.Tried = append(b.Tried, f.Cell)
	}
	if !f.Exhausted {
		b.Attempts++
	}
	if b.Attempts > s.cfg.MaxBuildAttempts {
		return s.giveUp(ctx, tx, env, &b, fmt.Sprintf("%s Exceeded maximum number of retries (%d); last failure in cell %s: %s",
			NoValidCellReason, s.cfg.MaxBuildAttempts, f.Cell, f.Reason))
	}
	return s.place(ctx, tx, env, &b)
}

// place runs the cell scheduler and sends the build on.
func (s *Service) place(ctx context.Context, tx *db.Tx, env *wire.Envelope, b *wire.BuildInstances) error {
	// A cell with hosts and no children has no choice to make: its host
	// scheduler places the build, or hands back what does not fit. Its
	// capacity (a read of every host) is not computed for each build.
	if s.builds != nil && s.cfg.Capacity != nil && !s.hasChildren() && !slices.Contains(b.Tried, s.path) {
		s.log.Info("building on this cell's hosts", "request_id", env.RequestID, "instances", len(b.Instances))
		part := *b
		part.Scheduler = s.path
		return s.builds.AcceptBuild(ctx, tx, env, &part)
	}
	// What goes on from here to children or back to the parent counts its
	// versions past the one recorded for this cell, if one was.
	onward := *b
	if b.Recorded {
		onward.BaseVersion, onward.Recorded = b.BaseVersion+1, false
	}
	cands, err := s.candidates(ctx, tx)
	if err != nil {
		return err
	}
	req := schedRequest(b, s.now())
	ranked, err := s.cfg.Scheduler.Rank(req, cands)
	if err != nil {
		s.log.Warn("no cell passes the cell scheduler's filters", "request_id", env.RequestID, "instances", len(b.Instances),
			"target_cell", b.TargetCell, "zone", req.AvailabilityZone, "cells", s.cellsSeen(cands, req))
		return s.giveUp(ctx, tx, env, &onward, NoValidCellReason)
	}
	// Fill the best cell first; spill what does not fit to the next.
	rest := b.Instances
	for i, c := range ranked {
		if len(rest) == 0 {
			break
		}
		n := c.Report.FitsIn(req.AvailabilityZone, req.Flavor)
		if i == len(ranked)-1 || n > len(rest) {
			n = len(rest)
		}
		if n <= 0 {
			continue
		}
		part := *b
		part.Instances = rest[:n]
		part.Scheduler = s.path
		rest = rest[n:]
		if c.Self {
			s.log.Info("building on this cell's hosts", "request_id", env.RequestID, "instances", n)
			if err := s.builds.AcceptBuild(ctx, tx, env, &part); err != nil {
				return err
			}
			continue
		}
		s.log.Info("build scheduled to a child cell", "request_id", env.RequestID, "child", c.Path, "instances", n, "attempt", part.Attempts)
		part.BaseVersion, part.Recorded = onward.BaseVersion, s.placer != nil
		if err := s.Send(ctx, tx, c.Path, wire.MethodBuildInstances, env.RequestID, &part); err != nil {
			return err
		}
		if part.Recorded {
			if err := s.placer.Placed(ctx, tx, c.Path, env.RequestID, &part); err != nil {
				return err
			}
		}
		child, need := c.Path, req.Flavor
		zone := req.AvailabilityZone
		tx.AfterCommit(func() { s.take(child, zone, need, n) })
	}
	return nil
}

// cellsSeen says, for a build no cell took, what the scheduler had of
// each child: down (and why), or a candidate with how many of the build's
// instances its last report fits.
func (s *Service) cellsSeen(cands []cellsched.Candidate, req *cellsched.Request) string {
	var out []string
	now := s.now()
	for _, n := range s.Neighbours() {
		if n.Relation != Child {
			continue
		}
		switch {
		case NotReceiving(n) != "":
			out = append(out, n.Path+": down, cannot receive: "+NotReceiving(n))
		case s.Down(n):
			out = append(out, fmt.Sprintf("%s: down, last report %s ago", n.Path, now.Sub(n.LastSeen).Round(time.Millisecond)))
		}
	}
	for _, c := range cands {
		seen := "its own hosts"
		if !c.Self {
			seen = "last report " + now.Sub(c.LastSeen).Round(time.Millisecond).String() + " ago"
		}
		out = append(out, fmt.Sprintf("%s: candidate, %s, fits %d (free %d vCPU, %d MB, %d hosts)",
			c.Path, seen, c.Report.FitsIn(req.AvailabilityZone, req.Flavor), c.Report.FreeVCPUs, c.Report.FreeRAMMB, c.Report.Hosts))
	}
	return strings.Join(out, "; ")
}

// schedRequest is what the cell scheduler is asked to place for b.
func schedRequest(b *wire.BuildInstances, now time.Time) *cellsched.Request {
	zone, specs, project := b.Instances[0].AvailabilityZone, b.Flavor.ExtraSpecs, b.Instances[0].ProjectID
	if b.Forced() {
		// A forced host's zone was matched to the host by the API cell
		// (its aggregates'), which its cell may not report yet, and Nova
		// skips the filters for a forced host: its target cell leads to
		// it.
		zone, specs, project = "", nil, ""
	}
	// A volume-backed server's root disk is its volume: no cell's hosts
	// hold it (Nova's is_bfv; the cell's claim does the same).
	need := b.Flavor.Need()
	if volumeBacked(b.Instances[0].BlockDevices) {
		need.DiskGB = max(need.DiskGB-b.Flavor.RootGB, 0)
	}
	return &cellsched.Request{
		Flavor:           need,
		NumInstances:     len(b.Instances),
		AvailabilityZone: zone,
		ImageProperties:  b.ImageProperties,
		ExtraSpecs:       specs,
		ProjectID:        project,
		TargetCell:       b.TargetCell,
		SameCell:         b.SameCell,
		DifferentCell:    b.DifferentCell,
		Tried:            b.Tried,
		Now:              now,
	}
}

// volumeBacked reports whether mappings boot from a volume (the boot
// device's destination is a volume).
func volumeBacked(mappings []wire.BlockDevice) bool {
	for _, m := range mappings {
		if m.BootIndex == 0 && m.DestinationType == "volume" {
			return true
		}
	}
	return false
}

// giveUp hands a build that found no cell back to this cell's parent, which
// may try its other children, or, at the root, records the failure.
func (s *Service) giveUp(ctx context.Context, tx *db.Tx, env *wire.Envelope, b *wire.BuildInstances, reason string) error {
	parent := cellpath.Parent(s.path)
	if parent == "" || s.buildErrors != nil {
		if s.buildErrors == nil {
			return fmt.Errorf("build of %d instances found no cell and cell %q cannot record the failure", len(b.Instances), s.path)
		}
		s.log.Warn("build failed everywhere", "request_id", env.RequestID, "instances", len(b.Instances), "reason", reason)
		return s.buildErrors.BuildError(ctx, tx, b, reason)
	}
	b.Scheduler = parent
	return s.Send(ctx, tx, parent, wire.MethodBuildFailed, env.RequestID, &wire.BuildFailed{Build: *b, Cell: s.path, Reason: reason, Exhausted: true})
}

// candidates are this cell's own hosts (if any) and its children, with their
// last reports.
func (s *Service) candidates(ctx context.Context, q Querier) ([]cellsched.Candidate, error) {
	var out []cellsched.Candidate
	if s.cfg.Capacity != nil && s.builds != nil {
		r, err := s.cfg.Capacity.Capacity(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("own capacity: %w", err)
		}
		out = append(out, cellsched.Candidate{Path: s.path, Self: true, Report: r, WeightScale: 1})
	}
	// The children as last loaded from the cells table, with the reports
	// that came since: read for every build, so not from the database.
	for _, n := range s.Neighbours() {
		if n.Relation != Child || s.Down(n) {
			continue // a down child takes no new builds
		}
		c := cellsched.Candidate{Path: n.Path, LastSeen: n.LastSeen, WeightOffset: n.WeightOffset, WeightScale: n.WeightScale}
		if n.Report != nil {
			c.Report = s.afterInflight(n.Path, *n.Report)
		}
		// Operator-set capabilities extend what the cell reported.
		if len(n.Capabilities) > 0 {
			c.Report = capacity.Merge(c.Report, capacity.Report{Capabilities: n.Capabilities})
			c.Report.Slots = append([]capacity.Slot(nil), c.Report.Slots...)
		}
		out = append(out, c)
	}
	return out, nil
}

// hasChildren reports whether the cells table, as last loaded, names a child.
func (s *Service) hasChildren() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.neighbours {
		if l.n.Relation == Child {
			return true
		}
	}
	return false
}

// take counts a build of n instances of a flavor, in zone ("" for none),
// sent to a child against the child's last report, until its next one.
func (s *Service) take(child, zone string, f capacity.Flavor, n int) {
	s.sentTo(child, func(r capacity.Report) capacity.Report { return r.TakeIn(zone, f, n) })
}

// sentTo counts what was sent to a child against its last report (less
// what was sent since), until its next report: take applies to that
// report and the result stands in for it.
func (s *Service) sentTo(child string, take func(capacity.Report) capacity.Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.inflight[child]
	if !ok {
		l, ok := s.neighbours[child]
		if !ok || l.n.Report == nil {
			return
		}
		r = *l.n.Report
	}
	s.inflight[child] = take(r)
}

// afterInflight is a child's last report less what was sent to it since.
func (s *Service) afterInflight(child string, r capacity.Report) capacity.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	if adj, ok := s.inflight[child]; ok {
		return adj
	}
	return r
}

// reported forgets what was sent to a child once it reports again.
func (s *Service) reported(child string) {
	s.mu.Lock()
	delete(s.inflight, child)
	s.mu.Unlock()
}
