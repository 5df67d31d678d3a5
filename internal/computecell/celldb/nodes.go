package celldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// Node is a compute node: one hypervisor host and its resource use.
type Node struct {
	// UUID is the node's id from microversion 2.53 (its id below that is
	// its nova-compute service's).
	UUID             string
	Host             string
	AvailabilityZone string
	HypervisorType   string
	Enabled          bool
	VCPUs            int
	RAMMB            int64
	DiskGB           int64
	UsedVCPUs        int
	UsedRAMMB        int64
	UsedDiskGB       int64
	CPURatio         float64
	RAMRatio         float64
	DiskRatio        float64
	Instances        int
	HeartbeatAt      time.Time
}

// FreeVCPUs, FreeRAMMB and FreeDiskGB are what is left after ratios.
func (n Node) FreeVCPUs() int    { return int(float64(n.VCPUs)*n.CPURatio) - n.UsedVCPUs }
func (n Node) FreeRAMMB() int64  { return int64(float64(n.RAMMB)*n.RAMRatio) - n.UsedRAMMB }
func (n Node) FreeDiskGB() int64 { return int64(float64(n.DiskGB)*n.DiskRatio) - n.UsedDiskGB }

// A node's allocation ratios are its aggregates' where they give one
// (agg_*_ratio, negative for none), its own otherwise.
const (
	effectiveCPURatio  = `(CASE WHEN agg_cpu_ratio >= 0 THEN agg_cpu_ratio ELSE cpu_ratio END)`
	effectiveRAMRatio  = `(CASE WHEN agg_ram_ratio >= 0 THEN agg_ram_ratio ELSE ram_ratio END)`
	effectiveDiskRatio = `(CASE WHEN agg_disk_ratio >= 0 THEN agg_disk_ratio ELSE disk_ratio END)`
	effectiveRatios    = effectiveCPURatio + `, ` + effectiveRAMRatio + `, ` + effectiveDiskRatio
)

// ErrClaimFailed is returned when a host has no room for a claim.
var ErrClaimFailed = errors.New("host has not enough free resources for the claim")

// RegisterNode creates a compute node or updates its size, keeping its use.
func RegisterNode(ctx context.Context, d *db.DB, n Node, now time.Time) error {
	return d.InTx(ctx, func(tx *db.Tx) error {
		return RegisterNodeTx(ctx, tx, n, now)
	})
}

// RegisterNodeTx is RegisterNode inside tx. A new node gets a UUID (an
// old one without gets one too).
func RegisterNodeTx(ctx context.Context, tx *db.Tx, n Node, now time.Time) error {
	res, err := tx.Exec(ctx, `UPDATE compute_nodes SET hypervisor_type = ?, vcpus = ?, ram_mb = ?, disk_gb = ?,
		cpu_ratio = ?, ram_ratio = ?, disk_ratio = ?, heartbeat_at = ?, uuid = CASE WHEN uuid = '' THEN ? ELSE uuid END WHERE host = ?`,
		n.HypervisorType, n.VCPUs, n.RAMMB, n.DiskGB, n.CPURatio, n.RAMRatio, n.DiskRatio, db.Micros(now), uuid.NewString(), n.Host)
	if err != nil {
		return err
	}
	if k, _ := res.RowsAffected(); k == 1 {
		return nil
	}
	// A new node's zone and ratios are what the aggregates the cell holds
	// give it (aggregates.go); n.AvailabilityZone is not used.
	na, err := nodeAggregates(ctx, tx, n.Host)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO compute_nodes (uuid, host, availability_zone, hypervisor_type, enabled, vcpus, ram_mb, disk_gb,
		cpu_ratio, ram_ratio, disk_ratio, agg_cpu_ratio, agg_ram_ratio, agg_disk_ratio, heartbeat_at, created_at)
		VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		uuid.NewString(), n.Host, na.Zone, n.HypervisorType, n.VCPUs, n.RAMMB, n.DiskGB, n.CPURatio, n.RAMRatio, n.DiskRatio,
		na.CPURatio, na.RAMRatio, na.DiskRatio, db.Micros(now), db.Micros(now))
	return err
}

// Heartbeat marks hosts as alive, in one statement. On PostgreSQL it
// skips a host whose row another transaction holds (a claim, a release)
// rather than wait for it: waiting, it held the rows it had marked, and a
// transaction that claimed on several hosts, holding the one it waited
// for and waiting for one of those, was a deadlock (a second's stall,
// then a retry). A host skipped is marked at the next heartbeat, well
// within the time a host may go unheard.
func Heartbeat(ctx context.Context, d *db.DB, hosts []string, now time.Time) error {
	if len(hosts) == 0 {
		return nil
	}
	in := strings.TrimSuffix(strings.Repeat("?, ", len(hosts)), ", ")
	args := []any{db.Micros(now)}
	for _, h := range hosts {
		args = append(args, h)
	}
	q := `UPDATE compute_nodes SET heartbeat_at = ? WHERE host IN (` + in + `)`
	if d.Dialect == db.Postgres {
		q = `UPDATE compute_nodes SET heartbeat_at = ? WHERE host IN (SELECT host FROM compute_nodes WHERE host IN (` + in + `)
			FOR UPDATE SKIP LOCKED)`
	}
	_, err := d.Exec(ctx, q, args...)
	return err
}

// ListNodes reads every compute node.
func ListNodes(ctx context.Context, q Querier) ([]Node, error) {
	return listNodes(ctx, q, "")
}

func listNodes(ctx context.Context, q Querier, where string, args ...any) ([]Node, error) {
	rows, err := q.Query(ctx, `SELECT uuid, host, availability_zone, hypervisor_type, enabled, vcpus, ram_mb, disk_gb, used_vcpus, used_ram_mb,
		used_disk_gb, `+effectiveRatios+`, instances, heartbeat_at FROM compute_nodes `+where+` ORDER BY host`, args...)
	if err != nil {
		return nil, fmt.Errorf("compute nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var enabled int
		var hb int64
		if err := rows.Scan(&n.UUID, &n.Host, &n.AvailabilityZone, &n.HypervisorType, &enabled, &n.VCPUs, &n.RAMMB, &n.DiskGB, &n.UsedVCPUs,
			&n.UsedRAMMB, &n.UsedDiskGB, &n.CPURatio, &n.RAMRatio, &n.DiskRatio, &n.Instances, &hb); err != nil {
			return nil, err
		}
		n.Enabled = enabled != 0
		n.HeartbeatAt = db.FromMicros(hb)
		out = append(out, n)
	}
	return out, rows.Err()
}

// Claim reserves a flavor's resources on a host for an instance, inside tx.
// It succeeds again for the same instance and host (a retried spawn) and
// fails with ErrClaimFailed when the host is full.
func Claim(ctx context.Context, tx *db.Tx, uuid, host string, f capacity.Flavor, now time.Time) error {
	_, err := ClaimZone(ctx, tx, uuid, host, f, now)
	return err
}

// HostZone is a compute host's availability zone (its aggregates').
func HostZone(ctx context.Context, q Querier, host string) (string, error) {
	var az string
	if err := q.QueryRow(ctx, `SELECT availability_zone FROM compute_nodes WHERE host = ?`, host).Scan(&az); err != nil {
		return "", fmt.Errorf("zone of host %s: %w", host, err)
	}
	return az, nil
}

// ClaimZone is Claim that also returns the host's availability zone. A
// first claim takes two statements: the claim row, then the host's use
// (one on PostgreSQL, where the host's use is taken in the statement that
// inserts the row). A claim that fails leaves nothing behind, whatever the
// caller then does with its transaction.
func ClaimZone(ctx context.Context, tx *db.Tx, uuid, host string, f capacity.Flavor, now time.Time) (string, error) {
	claimArgs, takeArgs := claimArgs(uuid, host, f, now)
	if tx.Dialect == db.Postgres {
		var inserted bool
		var az *string
		err := tx.QueryRow(ctx, `WITH c AS (`+claimInsert+` RETURNING 1),
			u AS (`+claimTake+` AND EXISTS (SELECT 1 FROM c) RETURNING availability_zone)
			SELECT EXISTS (SELECT 1 FROM c), (SELECT availability_zone FROM u)`, append(claimArgs, takeArgs...)...).Scan(&inserted, &az)
		switch {
		case err != nil:
			return "", fmt.Errorf("claim on %s: %w", host, err)
		case !inserted:
			return claimedBefore(ctx, tx, uuid, host)
		case az == nil:
			return "", unclaim(ctx, tx, uuid, host)
		}
		return *az, nil
	}
	res, err := tx.Exec(ctx, claimInsert, claimArgs...)
	if err != nil {
		return "", fmt.Errorf("claim on %s: %w", host, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return "", err
	} else if n == 0 {
		return claimedBefore(ctx, tx, uuid, host)
	}
	var az string
	err = tx.QueryRow(ctx, claimTake+` RETURNING availability_zone`, takeArgs...).Scan(&az)
	if errors.Is(err, sql.ErrNoRows) {
		return "", unclaim(ctx, tx, uuid, host)
	}
	if err != nil {
		return "", fmt.Errorf("claim on %s: %w", host, err)
	}
	return az, nil
}

// claimInsert adds an instance's claim row; claimTake takes its flavor
// from the host's room, if it has it (claimArgs gives their arguments).
const (
	claimInsert = `INSERT INTO claims (instance_uuid, host, vcpus, ram_mb, disk_gb, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (instance_uuid) DO NOTHING`
	claimTake = `UPDATE compute_nodes SET used_vcpus = used_vcpus + ?, used_ram_mb = used_ram_mb + ?,
		used_disk_gb = used_disk_gb + ?, instances = instances + 1
		WHERE host = ? AND enabled = 1
		AND used_vcpus + ? <= vcpus * ` + effectiveCPURatio + ` AND used_ram_mb + ? <= ram_mb * ` + effectiveRAMRatio + `
		AND used_disk_gb + ? <= disk_gb * ` + effectiveDiskRatio
)

func claimArgs(uuid, host string, f capacity.Flavor, now time.Time) (claim, take []any) {
	return []any{uuid, host, f.VCPUs, f.RAMMB, f.DiskGB, db.Micros(now)},
		[]any{f.VCPUs, f.RAMMB, f.DiskGB, host, f.VCPUs, f.RAMMB, f.DiskGB}
}

// Place claims host for an instance waiting to be scheduled (task state
// scheduling) and records the host on it: task state networking, the
// host's zone when takeZone is set, the version up by one. It is
// ClaimZone then Update of the instance, and fails as they do
// (ErrClaimFailed for a host without room, wire.ErrConflict or
// ErrNotFound for an instance no longer scheduling); on PostgreSQL a first
// claim is one statement. On failure the caller rolls back what was done
// (its transaction or a savepoint), as after ClaimZone and Update.
func Place(ctx context.Context, tx *db.Tx, uuid, host string, f capacity.Flavor, takeZone bool, now time.Time) error {
	return PlaceAll(ctx, tx, []Placement{{UUID: uuid, Host: host, Need: f, TakeZone: takeZone}}, now)[0]
}

// Placement is one instance's Place: its host, the flavor it claims there,
// and whether it takes the host's zone.
type Placement struct {
	UUID, Host string
	Need       capacity.Flavor
	TakeZone   bool
}

// PlaceAll is Place of each instance, in order, and returns each one's
// error. On PostgreSQL their first statements go in one round trip
// (db.Tx.QueryAll): each sees the claims of those before it, as with
// Place one after the other. A claim that fails undoes its own statements
// as Place's does; an error of a statement fails the transaction.
func PlaceAll(ctx context.Context, tx *db.Tx, ps []Placement, now time.Time) []error {
	errs := make([]error, len(ps))
	if tx.Dialect != db.Postgres {
		for i, p := range ps {
			errs[i] = placeSQLite(ctx, tx, p, now)
		}
		return errs
	}
	qs := make([]db.Query, len(ps))
	for i, p := range ps {
		claimArgs, takeArgs := claimArgs(p.UUID, p.Host, p.Need, now)
		qs[i] = db.Query{SQL: placeQuery, Args: append(append(claimArgs, takeArgs...), p.Host, p.Host, TaskNetworking, p.TakeZone, db.Micros(now), p.UUID, TaskScheduling)}
	}
	for i, a := range tx.QueryAll(ctx, qs) {
		var inserted, placed bool
		var az *string
		if err := a.Scan(&inserted, &az, &placed); err != nil {
			errs[i] = fmt.Errorf("claim on %s: %w", ps[i].Host, err)
			continue
		}
		errs[i] = placedBy(ctx, tx, ps[i], inserted, az, placed, now)
	}
	return errs
}

// placeQuery is Place on PostgreSQL: the claim, the host's usage and the
// instance's host in one statement, which says what it did.
const placeQuery = `WITH c AS (` + claimInsert + ` RETURNING 1),
		u AS (` + claimTake + ` AND EXISTS (SELECT 1 FROM c) RETURNING availability_zone),
		i AS (UPDATE instances SET host = ?, node = ?, task_state = ?,
			availability_zone = CASE WHEN ? THEN (SELECT availability_zone FROM u) ELSE availability_zone END,
			updated_at = ?, version = version + 1
			WHERE uuid = ? AND ` + taskGuard + ` AND EXISTS (SELECT 1 FROM u) RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM c), (SELECT availability_zone FROM u), EXISTS (SELECT 1 FROM i)`

// placedBy finishes a Place by what its statement did (PostgreSQL).
func placedBy(ctx context.Context, tx *db.Tx, p Placement, inserted bool, az *string, placed bool, now time.Time) error {
	scheduling := TaskScheduling
	switch {
	case !inserted:
		// A claim held already (a repeat): as ClaimZone, then the update.
		zone, err := claimedBefore(ctx, tx, p.UUID, p.Host)
		if err != nil {
			return err
		}
		return placeSet(ctx, tx, p, zone, now)
	case az == nil:
		return unclaim(ctx, tx, p.UUID, p.Host)
	case !placed:
		return conflict(ctx, tx, p.UUID, &scheduling)
	}
	return nil
}

// placeSQLite is Place on SQLite: ClaimZone, then the instance's update.
func placeSQLite(ctx context.Context, tx *db.Tx, p Placement, now time.Time) error {
	az, err := ClaimZone(ctx, tx, p.UUID, p.Host, p.Need, now)
	if err != nil {
		return err
	}
	return placeSet(ctx, tx, p, az, now)
}

// placeSet records the host (and its zone az, if taken) on an instance
// waiting to be scheduled, whose claim is taken.
func placeSet(ctx context.Context, tx *db.Tx, p Placement, az string, now time.Time) error {
	scheduling, networking := TaskScheduling, TaskNetworking
	c := Change{Host: &p.Host, TaskState: &networking}
	if p.TakeZone {
		c.AvailabilityZone = &az
	}
	return Set(ctx, tx, p.UUID, &scheduling, c, now)
}

// claimedBefore is a claim of an instance that holds one already: fine on
// the same host, whose zone it returns.
func claimedBefore(ctx context.Context, tx *db.Tx, uuid, host string) (string, error) {
	var have string
	if err := tx.QueryRow(ctx, `SELECT host FROM claims WHERE instance_uuid = ?`, uuid).Scan(&have); err != nil {
		return "", fmt.Errorf("claim on %s: %w", host, err)
	}
	if have != host {
		return "", fmt.Errorf("instance %s already holds a claim on host %s", uuid, have)
	}
	var az string
	err := tx.QueryRow(ctx, `SELECT availability_zone FROM compute_nodes WHERE host = ?`, host).Scan(&az)
	return az, err
}

// unclaim removes the claim row of a host that turned out full or
// disabled, and says so.
func unclaim(ctx context.Context, tx *db.Tx, uuid, host string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM claims WHERE instance_uuid = ?`, uuid); err != nil {
		return fmt.Errorf("claim on %s: %w", host, err)
	}
	return fmt.Errorf("%w: %s", ErrClaimFailed, host)
}

// Release gives an instance's claim back to its host; it is a no-op when
// the instance holds none.
func Release(ctx context.Context, tx *db.Tx, uuid string) error {
	var host string
	var c capacity.Flavor
	err := tx.QueryRow(ctx, `SELECT host, vcpus, ram_mb, disk_gb FROM claims WHERE instance_uuid = ?`, uuid).Scan(&host, &c.VCPUs, &c.RAMMB, &c.DiskGB)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	// Delete the claim first and give back only if this transaction removed
	// it: a concurrent Release of the same claim (PostgreSQL, read
	// committed) waits on the row and then deletes nothing.
	res, err := tx.Exec(ctx, `DELETE FROM claims WHERE instance_uuid = ?`, uuid)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE compute_nodes SET used_vcpus = used_vcpus - ?, used_ram_mb = used_ram_mb - ?,
		used_disk_gb = used_disk_gb - ?, instances = instances - 1 WHERE host = ?`, c.VCPUs, c.RAMMB, c.DiskGB, host)
	return err
}

// Capacity summarises the cell's own hosts for a capacity report. Hosts
// whose heartbeat is older than downAfter, or that are disabled, offer
// nothing. Each live host's room counts in its zone (the effective one its
// aggregates give it), and its aggregates' metadata in the report's
// Aggregates.
func Capacity(ctx context.Context, q Querier, now time.Time, downAfter time.Duration) (capacity.Report, error) {
	nodes, err := ListNodes(ctx, q)
	if err != nil {
		return capacity.Report{}, err
	}
	aggs, err := HostAggregateMetadata(ctx, q)
	if err != nil {
		return capacity.Report{}, err
	}
	r := capacity.Report{Capabilities: map[string][]string{}, ZoneSlots: map[string][]capacity.Slot{}}
	types := map[string]bool{}
	var slots []capacity.Slot
	var live [][]map[string]string
	for _, n := range nodes {
		r.Hosts++
		r.Instances += n.Instances
		r.TotalVCPUs += n.VCPUs
		r.TotalRAMMB += n.RAMMB
		r.TotalDiskGB += n.DiskGB
		if !n.Enabled || now.Sub(n.HeartbeatAt) > downAfter {
			continue
		}
		fv, fr, fd := max(n.FreeVCPUs(), 0), max(n.FreeRAMMB(), 0), max(n.FreeDiskGB(), 0)
		r.FreeVCPUs += fv
		r.FreeRAMMB += fr
		r.FreeDiskGB += fd
		slot := capacity.Slot{VCPUs: fv, RAMMB: fr, DiskGB: fd, Count: 1}
		slots = append(slots, slot)
		// Merge below lists the zones, and keeps ZoneSlots only for more
		// than one.
		r.ZoneSlots[n.AvailabilityZone] = append(r.ZoneSlots[n.AvailabilityZone], slot)
		types[n.HypervisorType] = true
		live = append(live, aggs[n.Host])
	}
	r.Slots = capacity.Compress(slots, capacity.MaxSlots)
	r.AvailabilityZones = slices.Collect(maps.Keys(r.ZoneSlots))
	r.Aggregates = capacity.SummariseAggregates(live)
	for t := range types {
		r.Capabilities["hypervisor_type"] = append(r.Capabilities["hypervisor_type"], t)
	}
	return capacity.Merge(r), nil
}
