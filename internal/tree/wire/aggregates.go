package wire

// Host aggregates in the cells. The API cell (the root) owns the
// aggregates (os-aggregates); a compute cell holds, for its own hosts, the
// aggregates they are in with their whole metadata, so its host scheduler
// filters by zone and by aggregate, its claims use the aggregates'
// allocation ratios and its capacity reports name its zones. What a cell
// holds is one snapshot, replaced whole: aggregate changes are rare
// operator acts, and a whole snapshot needs no ordering but its version.
const (
	// MethodHostAggregates (targeted, down, durable): every aggregate
	// that has a host of the target cell, with those hosts only, and the
	// cloud's default zone, at Version. A cell holding a version as new
	// or newer ignores it, so a repeat or a late copy changes nothing.
	// The root sends it in the transaction of every change that touches
	// an aggregate with hosts in the cell (a host added or removed, the
	// metadata or the name changed), and in answer to a sync.
	MethodHostAggregates = "host_aggregates"
	// MethodHostAggregatesSync (targeted to the root, up, durable): the
	// sending cell holds the snapshot at Version (0: none). The root
	// answers with host_aggregates, in the same transaction, when the
	// cell's snapshot is not the last it sent the cell (or the cell has
	// never had one). Sent by every compute cell when it starts and every
	// heal interval: the heal of a snapshot lost or applied to a restored
	// database.
	MethodHostAggregatesSync = "host_aggregates_sync"
)

// AggregateZoneKey is the aggregate metadata key that holds its
// availability zone.
const AggregateZoneKey = "availability_zone"

// HostAggregates is the payload of host_aggregates.
type HostAggregates struct {
	// Version orders the snapshots of one cell: the root's aggregate
	// change sequence when it was made.
	Version int64 `json:"version"`
	// DefaultZone is the zone of the hosts in no aggregate with one
	// (Nova's default_availability_zone).
	DefaultZone string `json:"default_zone"`
	// Aggregates are the aggregates with a host of the cell, by ID.
	Aggregates []HostAggregate `json:"aggregates,omitempty"`
}

// HostAggregate is one aggregate as a cell holds it.
type HostAggregate struct {
	ID       int64             `json:"id"`
	UUID     string            `json:"uuid"`
	Name     string            `json:"name"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Hosts are the aggregate's hosts in the target cell, by their names
	// there.
	Hosts []string `json:"hosts"`
}

// Zone is the aggregate's availability zone ("": none).
func (a *HostAggregate) Zone() string { return a.Metadata[AggregateZoneKey] }

// HostAggregatesSync is the payload of host_aggregates_sync.
type HostAggregatesSync struct {
	Version int64 `json:"version"`
	// DefaultZone is the default zone the cell's snapshot gave; the root
	// answers when its own differs (its configuration changed).
	DefaultZone string `json:"default_zone"`
}
