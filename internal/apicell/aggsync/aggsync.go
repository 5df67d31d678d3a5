// Package aggsync is the API cell's side of the host aggregates the
// compute cells hold (wire/aggregates.go). The API cell owns the
// aggregates (apidb, os-aggregates); each compute cell holds a snapshot of
// those with a host of its own, replaced whole when a newer one comes.
// This package
//
//   - sends, in the transaction of every aggregate change, a new snapshot
//     to each cell the change touches (Pusher.Push), versioned by the
//     change's sequence number (apidb.LockAggregates), and records it;
//   - answers a cell's host_aggregates_sync (Handlers.Sync): a cell that
//     does not hold the last snapshot recorded for it, or holds another
//     default zone, gets a fresh one in the same transaction.
//
// Every message is durable, sent through the cells service's outbox in
// the transaction of its change; a cell ignores any snapshot not newer
// than the one it holds, and its periodic sync heals the rest (a snapshot
// lost with a broker, a cell's database restored from a backup).
package aggsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Sender sends a durable message from the API cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// Pusher sends cells their aggregate snapshots.
type Pusher struct {
	Sender Sender
	// DefaultZone is the zone of the hosts in no aggregate with one
	// (config api.default_availability_zone).
	DefaultZone string
}

// Snapshot is what cell holds of the aggregates now (as tx sees them), at
// version seq.
func (p *Pusher) Snapshot(ctx context.Context, q db.Querier, cell string, seq int64) (*wire.HostAggregates, error) {
	aggs, err := apidb.CellAggregates(ctx, q, cell)
	if err != nil {
		return nil, err
	}
	m := &wire.HostAggregates{Version: seq, DefaultZone: p.DefaultZone, Aggregates: make([]wire.HostAggregate, 0, len(aggs))}
	for _, a := range aggs {
		ha := wire.HostAggregate{ID: a.ID, UUID: a.UUID, Name: a.Name, Hosts: make([]string, 0, len(a.Hosts))}
		if len(a.Metadata) > 0 {
			ha.Metadata = maps.Clone(a.Metadata)
		}
		for _, h := range a.Hosts {
			ha.Hosts = append(ha.Hosts, h.Host)
		}
		m.Aggregates = append(m.Aggregates, ha)
	}
	return m, nil
}

// Push sends each of cells its snapshot as tx sees it, at version seq
// (the sequence number LockAggregates gave the change), and records it.
// Call it in the change's transaction, after the change, with every cell
// whose hosts the change touched (the cells of the hosts added or
// removed, or of all the aggregate's hosts when its metadata or name
// changed). A nil Pusher sends nothing.
func (p *Pusher) Push(ctx context.Context, tx *db.Tx, requestID string, seq int64, cells ...string) error {
	if p == nil || p.Sender == nil {
		return nil
	}
	cells = slices.Clone(cells)
	slices.Sort(cells)
	for _, cell := range slices.Compact(cells) {
		if cell == "" {
			continue
		}
		if err := p.send(ctx, tx, requestID, cell, seq); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pusher) send(ctx context.Context, tx *db.Tx, requestID, cell string, seq int64) error {
	m, err := p.Snapshot(ctx, tx, cell, seq)
	if err != nil {
		return err
	}
	if err := apidb.SetAggregateCell(ctx, tx, cell, apidb.AggregateCell{Version: seq, DefaultZone: p.DefaultZone}); err != nil {
		return err
	}
	if err := p.Sender.Send(ctx, tx, cell, wire.MethodHostAggregates, requestID, m); err != nil {
		return fmt.Errorf("send host aggregates to %s: %w", cell, err)
	}
	return nil
}

// CellsOf are the cells of hosts, each once.
func CellsOf(hosts []apidb.AggregateHost) []string {
	var out []string
	for _, h := range hosts {
		if !slices.Contains(out, h.Cell) {
			out = append(out, h.Cell)
		}
	}
	return out
}

// Handlers are the API cell's handlers of what the cells send up about
// aggregates.
type Handlers struct {
	Pusher *Pusher
	Logger *slog.Logger
}

func (h *Handlers) log() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

// Sync is the cast handler of host_aggregates_sync. A cell that holds the
// snapshot last recorded for it, with the default zone of now, gets no
// answer; any other (it never had one, it missed one, its database went
// back, the default zone changed) gets a snapshot made now under the
// aggregates' lock, at a new sequence number, so that it is newer than
// anything the cell may hold and consistent with every change before it.
// A repeat is answered again only while the cell has not applied the
// first answer (then the newer answer wins and the older is ignored).
func (h *Handlers) Sync(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.HostAggregatesSync
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "host_aggregates_sync: %v", err)
	}
	cell := env.Sender
	if cell == "" {
		return wire.Errorf(wire.CodeBadMessage, "host_aggregates_sync from no cell")
	}
	rec, err := apidb.GetAggregateCell(ctx, tx, cell)
	switch {
	case errors.Is(err, apidb.ErrNotFound):
	case err != nil:
		return err
	case rec.Version == m.Version && rec.DefaultZone == h.Pusher.DefaultZone && m.DefaultZone == h.Pusher.DefaultZone:
		return nil
	}
	seq, err := apidb.LockAggregates(ctx, tx)
	if err != nil {
		return err
	}
	if seq <= m.Version {
		// The cell holds a version this database never gave (it was
		// restored from a backup): the sequence jumps past it, so this
		// snapshot and every later one are newer.
		if seq, err = apidb.RaiseAggregateSeq(ctx, tx, m.Version+1); err != nil {
			return err
		}
	}
	h.log().Info("host aggregates sync from a cell", "request_id", env.RequestID, "from", cell, "held", m.Version,
		"recorded", rec.Version, "sent", seq)
	return h.Pusher.Push(ctx, tx, env.RequestID, seq, cell)
}
