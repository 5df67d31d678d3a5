package cells

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// NoValidBackendReason is the fault of a volume that found no cell with
// room in its zone: Cinder's scheduler's words.
const NoValidBackendReason = "No valid backend was found. No weighed backends available"

// VolumeAcceptor is what a cell with a volume role offers: it makes the
// volumes sent to the cell (recording them inside tx, the transaction that
// applies volume_create), and tells the room its backend has for the
// cell's capacity report and for a cell that also has children.
type VolumeAcceptor interface {
	Create(ctx context.Context, tx *db.Tx, env *wire.Envelope) error
	Capacity(ctx context.Context) (zone string, room capacity.VolumeRoom, err error)
}

// AcceptVolumes makes a the maker of the volumes placed on this cell.
func (s *Service) AcceptVolumes(a VolumeAcceptor) { s.volumes = a }

// ownVolumeReport is the room of this cell's own volume role, as a
// report to merge with the children's (an empty one without the role).
func (s *Service) ownVolumeReport(ctx context.Context) (capacity.Report, error) {
	if s.volumes == nil {
		return capacity.Report{}, nil
	}
	zone, room, err := s.volumes.Capacity(ctx)
	if err != nil {
		return capacity.Report{}, err
	}
	return capacity.Report{VolumeZones: map[string]capacity.VolumeRoom{zone: room}}, nil
}

// handleVolumeCreate places a volume: on this cell's own volume role when
// the cell has no children (or the volume names this cell), otherwise on
// the child whose last report has the most room in the volume's zone. A
// volume with no cell to go to is reported to the root as an error with
// no cell.
func (s *Service) handleVolumeCreate(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.VolumeCreate
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "volume_create: %v", err)
	}
	v := &m.Volume
	if v.ID == "" || v.SizeGB <= 0 {
		return wire.Errorf(wire.CodeBadMessage, "volume_create needs a volume id and a positive size")
	}
	log := s.log.With("request_id", env.RequestID, "volume", v.ID)
	if m.TargetCell != "" && m.TargetCell != s.path {
		if !cellpath.IsAncestor(s.path, m.TargetCell) {
			return wire.Errorf(wire.CodeBadMessage, "volume_create for cell %q reached %q, which is not above it", m.TargetCell, s.path)
		}
		return s.Send(ctx, tx, m.TargetCell, wire.MethodVolumeCreate, env.RequestID, &m)
	}
	if s.volumes != nil && (m.TargetCell == s.path || !s.hasChildren()) {
		log.Info("making the volume in this cell", "size_gb", v.SizeGB)
		return s.volumes.Create(ctx, tx, env)
	}
	if m.TargetCell == s.path {
		return s.volumeFailed(ctx, tx, env, v.ID, "cell "+s.path+" has no volume role")
	}
	best, err := s.volumeCandidate(ctx, v, m.Tried)
	if err != nil {
		return err
	}
	if best == "" {
		log.Warn("no cell has room for the volume", "size_gb", v.SizeGB, "zone", v.AvailabilityZone)
		return s.volumeFailed(ctx, tx, env, v.ID, NoValidBackendReason)
	}
	if best == s.path {
		log.Info("making the volume in this cell", "size_gb", v.SizeGB)
		return s.volumes.Create(ctx, tx, env)
	}
	log.Info("volume scheduled to a child cell", "child", best, "size_gb", v.SizeGB)
	if err := s.Send(ctx, tx, best, wire.MethodVolumeCreate, env.RequestID, &m); err != nil {
		return err
	}
	zone, size := v.AvailabilityZone, int64(v.SizeGB)
	tx.AfterCommit(func() { s.takeVolume(best, zone, size) })
	return nil
}

// volumeCandidate is the cell (a live child, or this cell's own volume
// role) with the most free room for v in its zone, or "".
func (s *Service) volumeCandidate(ctx context.Context, v *wire.VolumeSpec, tried []string) (string, error) {
	type cand struct {
		path string
		free int64
	}
	var cands []cand
	size := int64(v.SizeGB)
	if s.volumes != nil && !slices.Contains(tried, s.path) {
		r, err := s.ownVolumeReport(ctx)
		if err != nil {
			return "", err
		}
		if r.VolumeFits(v.AvailabilityZone, size) {
			cands = append(cands, cand{s.path, r.VolumeFree(v.AvailabilityZone)})
		}
	}
	for _, n := range s.Neighbours() {
		if n.Relation != Child || s.Down(n) || n.Report == nil || slices.Contains(tried, n.Path) {
			continue
		}
		r := s.afterInflight(n.Path, *n.Report)
		if r.VolumeFits(v.AvailabilityZone, size) {
			cands = append(cands, cand{n.Path, r.VolumeFree(v.AvailabilityZone)})
		}
	}
	if len(cands) == 0 {
		return "", nil
	}
	best := slices.MaxFunc(cands, func(a, b cand) int {
		if c := cmp.Compare(a.free, b.free); c != 0 {
			return c
		}
		return cmp.Compare(b.path, a.path) // the first path wins a tie
	})
	return best.path, nil
}

// volumeFailed tells the root that volume id found no cell: status error,
// no cell, version 1 (the copy's is 0), so a repeat changes nothing.
func (s *Service) volumeFailed(ctx context.Context, tx *db.Tx, env *wire.Envelope, id, reason string) error {
	return s.Send(ctx, tx, cellpath.Root(s.path), wire.MethodVolumeUpdate, env.RequestID, &wire.VolumeUpdate{
		Volumes: []wire.VolumeState{{ID: id, Version: 1, Status: "error", Fault: reason, UpdatedAt: s.now()}},
	})
}

// takeVolume counts a volume sent to a child against the child's last
// report until its next one, so that the volumes of a burst spread as the
// builds of one do.
func (s *Service) takeVolume(child, zone string, sizeGB int64) {
	s.sentTo(child, func(r capacity.Report) capacity.Report { return r.TakeVolume(zone, sizeGB) })
}
