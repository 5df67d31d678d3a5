// Package apicopy holds the API cell's side of the cells service: it applies
// instance updates from the cells below to the API cell's copy, in version
// order, and records builds that found no cell at all.
package apicopy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Sender sends a durable message from this cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// ImageStore takes the data of a snapshot for a queued image, and deletes
// the images of snapshots that failed or are done with.
type ImageStore interface {
	StoreData(ctx context.Context, tx *db.Tx, id string, data []byte) error
	DropSnapshot(ctx context.Context, tx *db.Tx, id string) error
	DeleteImage(ctx context.Context, tx *db.Tx, id string) error
}

// Handlers are the API cell's message handlers.
type Handlers struct {
	Sender Sender
	Images ImageStore
	Logger *slog.Logger
	Now    func() time.Time
}

// SnapshotDone is the cast handler of snapshot_done: the snapshot's data
// goes to the image store and the image becomes active.
func (h *Handlers) SnapshotDone(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var s wire.SnapshotDone
	if err := json.Unmarshal(env.Payload, &s); err != nil || s.ImageID == "" {
		return wire.Errorf(wire.CodeBadMessage, "snapshot_done: needs an image id")
	}
	if h.Images == nil {
		return fmt.Errorf("snapshot_done: this process has no image store")
	}
	if s.Failed {
		h.Logger.Warn("snapshot failed in the cell; deleting its image", "request_id", env.RequestID, "image", s.ImageID, "instance", s.UUID)
		if err := h.Images.DropSnapshot(ctx, tx, s.ImageID); err != nil {
			h.Logger.Warn("deleting the image of a failed snapshot", "image", s.ImageID, "err", err)
		}
		// A failed shelve leaves the server without a shelved image.
		return apidb.ClearShelvedImage(ctx, tx, s.UUID, s.ImageID)
	}
	if err := h.Images.StoreData(ctx, tx, s.ImageID, s.Data); err != nil {
		// The image may have been deleted meanwhile: nothing to keep.
		h.Logger.Warn("snapshot data not stored", "request_id", env.RequestID, "image", s.ImageID, "instance", s.UUID, "err", err)
		return nil
	}
	h.Logger.Info("snapshot stored", "request_id", env.RequestID, "image", s.ImageID, "instance", s.UUID, "bytes", len(s.Data))
	return nil
}

// InstanceUpdate is the cast handler of instance_update.
func (h *Handlers) InstanceUpdate(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var u wire.InstanceUpdate
	if err := json.Unmarshal(env.Payload, &u); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "instance_update: %v", err)
	}
	now := h.Now()
	// A heal resend is mostly what the copy already holds: those states
	// are found in a few queries and skipped.
	var current map[string]apidb.Standing
	if u.Heal {
		var err error
		if current, err = apidb.Current(ctx, tx, u.Instances); err != nil {
			return err
		}
	}
	// Instances live in a cell the copy does not place them in, by cell.
	var stale map[string][]string
	// The addresses of ports to record, of all the update's instances.
	var newPorts []netdb.ServerAddresses
	for _, st := range u.Instances {
		rid := env.RequestID
		if st.RequestID != "" {
			rid = st.RequestID
		}
		switch current[st.UUID] {
		case apidb.Held:
			continue
		case apidb.StaleCell:
			stale = addStale(stale, st, rid, h.Logger)
			continue
		}
		a, err := apidb.ApplyUpdate(ctx, tx, st, now)
		if err != nil {
			return err
		}
		if a.Stale {
			stale = addStale(stale, st, rid, h.Logger)
			continue
		}
		if a.DropImage != "" {
			h.dropShelvedImage(ctx, tx, st.UUID, a.DropImage, rid)
		}
		// The cell the copy named before built the instance too, from a
		// placement that lost to this one (a routing cell with hosts of its
		// own placed it on them, fenced, after its child did not take it in
		// time; the child built it all the same): it deletes its own. A
		// placement recorded at a cell above the one that builds is not a
		// copy of the instance.
		if a.Changed && a.Moved && a.PrevCell != "" && !cellpath.IsAncestor(a.PrevCell, st.Cell) {
			stale = addStale(stale, wire.InstanceState{UUID: st.UUID, Cell: a.PrevCell, Version: st.Version}, rid, h.Logger)
		}
		if newPorts, err = h.syncPorts(ctx, tx, st, a, rid, newPorts, now); err != nil {
			return err
		}
		// The instance's build moved to another cell (placed again after
		// a hand-back, or from the routing cell the copy named to the cell
		// below that builds it), which has the ports as the build carried
		// them: the ports revised since are sent to it. Nothing is read
		// for an instance none of whose ports were.
		if a.Changed && a.Moved && !a.Deleted && a.PortsRevised {
			h.Logger.Info("sending the revised ports of an instance to its new cell", "request_id", rid, "instance", st.UUID, "from", a.PrevCell, "to", st.Cell)
			if err := sgsync.SendPorts(ctx, tx, h.Sender, rid, st.Cell, netdb.PortFilter{DeviceIDs: []string{st.UUID}}); err != nil {
				return err
			}
		}
		// A delete asked for before the instance reached its cell follows it there.
		if a.Changed && a.Moved && a.DeleteRequested && !a.Deleted {
			h.Logger.Info("sending a pending delete to the instance's cell", "request_id", rid, "instance", st.UUID, "to", st.Cell)
			if err := h.Sender.Send(ctx, tx, st.Cell, wire.MethodDeleteInstances, rid, &wire.DeleteInstances{UUIDs: []string{st.UUID}}); err != nil {
				return err
			}
		}
	}
	revised, err := netdb.MaterializeServerPorts(ctx, tx, newPorts, now)
	if err != nil {
		return err
	}
	// The ports a cell made for a server whose groups changed since its
	// build carried them: the cell enforces the build's until told.
	if err := h.sendRevised(ctx, tx, env.RequestID, u.Instances, revised); err != nil {
		return err
	}
	// The cell that sent them must not hold them: the API cell's record,
	// which placed their build elsewhere, decides. It deletes them, and
	// its deletions lose to the copy too.
	for _, cell := range slices.Sorted(maps.Keys(stale)) {
		if err := h.Sender.Send(ctx, tx, cell, wire.MethodDeleteInstances, env.RequestID, &wire.DeleteInstances{UUIDs: stale[cell]}); err != nil {
			return err
		}
	}
	return nil
}

// syncPorts keeps the ports table in step with an applied update: the
// ports a cell made on the boot are recorded when the copy first carries
// their addresses (added to newPorts, recorded for the whole update at
// once; those of addresses gone are deleted here), and the deletion of the
// instance frees its ports (FreePorts). An update that leaves the
// addresses as they were costs no statement here.
func (h *Handlers) syncPorts(ctx context.Context, tx *db.Tx, st wire.InstanceState, a apidb.Applied, rid string,
	newPorts []netdb.ServerAddresses, now time.Time) ([]netdb.ServerAddresses, error) {
	switch {
	case !a.Changed:
		return newPorts, nil
	case a.Deleted:
		return newPorts, FreePorts(ctx, tx, h.Sender, st.UUID, rid, now)
	case !a.AddressesChanged:
		return newPorts, nil
	}
	if a.HadAddresses {
		if err := netdb.DropStalePorts(ctx, tx, st.UUID, st.Addresses); err != nil {
			return nil, err
		}
	}
	// A later state of the same instance in this update replaces an earlier one's.
	newPorts = slices.DeleteFunc(newPorts, func(s netdb.ServerAddresses) bool { return s.UUID == st.UUID })
	return append(newPorts, netdb.ServerAddresses{UUID: st.UUID, ProjectID: a.ProjectID, Zone: a.AvailabilityZone, Addresses: st.Addresses,
		BuildGroups: a.BuildGroups}), nil
}

// sendRevised sends port_update for the ports MaterializeServerPorts
// revised (by server) to the cell of each server, that of its state in the
// update (the copy's, now).
func (h *Handlers) sendRevised(ctx context.Context, tx *db.Tx, requestID string, states []wire.InstanceState, revised map[string][]string) error {
	for _, server := range slices.Sorted(maps.Keys(revised)) {
		cell := ""
		for _, st := range states {
			if st.UUID == server {
				cell = st.Cell
			}
		}
		h.Logger.Info("sending the groups of the ports a cell made to it: the server's changed since its build",
			"request_id", requestID, "instance", server, "cell", cell, "ports", len(revised[server]))
		if err := sgsync.SendPorts(ctx, tx, h.Sender, requestID, cell, netdb.PortFilter{IDs: revised[server]}); err != nil {
			return err
		}
	}
	return nil
}

// FreePorts frees a deleted instance's ports (netdb.FreeServerPorts) and
// releases, in the cells that reserved them, the addresses of those it
// deleted, in tx.
func FreePorts(ctx context.Context, tx *db.Tx, s Sender, uuid, requestID string, now time.Time) error {
	rel, err := netdb.FreeServerPorts(ctx, tx, uuid, now)
	if err != nil || len(rel) == 0 {
		return err
	}
	return netdb.SendReleases(ctx, tx, s, requestID, rel)
}

// dropShelvedImage deletes the image a shelve made of an instance that is
// unshelved or deleted, as Nova does; an image already gone (or one its
// owner protected) is left as it is, with a warning.
func (h *Handlers) dropShelvedImage(ctx context.Context, tx *db.Tx, uuid, id, requestID string) {
	if h.Images == nil {
		h.Logger.Warn("this process has no image store; the shelved image stays", "request_id", requestID, "instance", uuid, "image", id)
		return
	}
	if err := h.Images.DeleteImage(ctx, tx, id); err != nil {
		h.Logger.Warn("the shelved image could not be deleted", "request_id", requestID, "instance", uuid, "image", id, "err", err)
		return
	}
	h.Logger.Info("shelved image deleted", "request_id", requestID, "instance", uuid, "image", id)
}

// addStale notes that st's cell holds an instance it must not.
func addStale(stale map[string][]string, st wire.InstanceState, requestID string, log *slog.Logger) map[string][]string {
	if stale == nil {
		stale = map[string][]string{}
	}
	if !slices.Contains(stale[st.Cell], st.UUID) {
		log.Warn("a cell holds an instance the API cell placed elsewhere; telling it to delete it", "request_id", requestID,
			"instance", st.UUID, "cell", st.Cell, "version", st.Version)
		stale[st.Cell] = append(stale[st.Cell], st.UUID)
	}
	return stale
}

// Placed records, for the cells service, that a child cell holds a build's
// instances at version b.BaseVersion+1, building and scheduling: the state
// the child would send up when it accepts the build, applied here when the
// build is sent. The child then sends nothing until the instances move on.
// It runs right after the build is sent, in the same transaction, so a
// pending delete it sends on (a build handed back and placed again) follows
// the build.
func (h *Handlers) Placed(ctx context.Context, tx *db.Tx, child, requestID string, b *wire.BuildInstances) error {
	uuids := make([]string, len(b.Instances))
	for i, spec := range b.Instances {
		uuids[i] = spec.UUID
	}
	deleting, revised, err := apidb.RecordPlaced(ctx, tx, uuids, child, b.BaseVersion+1, h.Now())
	if err != nil {
		return err
	}
	// The build carries its ports as they were when it was recorded: the
	// cell that takes it gets those revised since (before the first
	// placement, or in the cell that handed it back), after the build.
	// Nothing is read for a build none of whose ports were.
	if revised = slices.DeleteFunc(revised, func(u string) bool { return slices.Contains(deleting, u) }); len(revised) > 0 {
		h.Logger.Info("sending the revised ports of a build to the cell that takes it", "request_id", requestID, "instances", len(revised), "to", child)
		if err := sgsync.SendPorts(ctx, tx, h.Sender, requestID, child, netdb.PortFilter{DeviceIDs: revised}); err != nil {
			return err
		}
	}
	if len(deleting) == 0 {
		return nil
	}
	// Only a build placed again (handed back by another cell) can have a
	// delete pending: the cell that now takes it must hear of it.
	h.Logger.Info("sending pending deletes to the cell that takes their build", "request_id", requestID, "instances", len(deleting), "to", child)
	return h.Sender.Send(ctx, tx, child, wire.MethodDeleteInstances, requestID, &wire.DeleteInstances{UUIDs: deleting})
}

// Taken reports whether a cell in child's subtree has sent a state of one
// of b's instances newer than the placement recorded for child (version
// b.BaseVersion+1): the child took the build. It is one query, run only for
// a build about to be placed again.
func (h *Handlers) Taken(ctx context.Context, tx *db.Tx, child string, b *wire.BuildInstances) (bool, error) {
	uuids := make([]string, len(b.Instances))
	for i, spec := range b.Instances {
		uuids[i] = spec.UUID
	}
	return apidb.ReportedBelow(ctx, tx, uuids, child, b.BaseVersion+1)
}

// BuildError records that no cell could take a build: the instances go to
// ERROR with Nova's fault, or are deleted if a delete is already pending;
// the volumes the create took are given back (giveBackVolumes).
func (h *Handlers) BuildError(ctx context.Context, tx *db.Tx, b *wire.BuildInstances, reason string) error {
	now := h.Now()
	for _, spec := range b.Instances {
		// Locked, so that a delete marked concurrently is seen here.
		in, err := apidb.GetForUpdate(ctx, tx, spec.UUID)
		if err != nil {
			h.Logger.Warn("build error for an unknown instance", "instance", spec.UUID, "err", err)
			continue
		}
		if in.DeleteRequested {
			if err := apidb.MarkDeleted(ctx, tx, spec.UUID, now); err != nil {
				return err
			}
			if err := FreePorts(ctx, tx, h.Sender, spec.UUID, "", now); err != nil {
				return err
			}
			continue
		}
		if err := apidb.SetError(ctx, tx, spec.UUID, wire.Fault{Code: 500, Message: reason, Created: now}, b.BaseVersion, now); err != nil {
			return err
		}
	}
	return h.giveBackVolumes(ctx, tx, b, now)
}

// HostMappings is the cast handler of host_mappings: where each service
// and compute node of a cell is, so the API routes to it alone.
func (h *Handlers) HostMappings(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.HostMappings
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "host_mappings: %v", err)
	}
	if m.Cell != env.Sender {
		return wire.Errorf(wire.CodeBadMessage, "host_mappings of cell %q sent by %q", m.Cell, env.Sender)
	}
	return apidb.ApplyHostMappings(ctx, tx, m, h.Now())
}
