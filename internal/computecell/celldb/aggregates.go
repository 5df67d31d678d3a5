package celldb

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Host aggregates as the cell holds them: the last host_aggregates
// snapshot the API cell sent (wire/aggregates.go). A snapshot replaces
// the whole set; each compute node keeps what its aggregates give it (its
// zone and allocation ratios) so that a claim, the host scheduler and the
// capacity report read it with the node, at no extra statement.

// The aggregate metadata keys the cell acts on besides the zone (Nova's
// AggregateCoreFilter, AggregateRamFilter and AggregateDiskFilter).
const (
	CPURatioKey  = "cpu_allocation_ratio"
	RAMRatioKey  = "ram_allocation_ratio"
	DiskRatioKey = "disk_allocation_ratio"
)

// NodeAggregates is what a node's aggregates give it: its zone and the
// allocation ratios that replace its own (negative: none).
type NodeAggregates struct {
	Zone                          string
	CPURatio, RAMRatio, DiskRatio float64
}

// NodeAggregatesOf computes what aggs (the metadata of each aggregate a
// host is in) give the host, with defaultZone for a host in no aggregate
// with a zone. A host in several zones (the API refuses it; a snapshot
// taken in between could show it) is in all of them joined by ",", as
// Nova shows it. A ratio is the smallest its aggregates give (Nova's
// validate_num_values with min); a value that is not a number makes the
// host keep its own ratio, as Nova's filters fall back to the host's
// ratio when one does not parse.
func NodeAggregatesOf(aggs []map[string]string, defaultZone string) NodeAggregates {
	var zones []string
	for _, md := range aggs {
		if z := md[wire.AggregateZoneKey]; z != "" && !slices.Contains(zones, z) {
			zones = append(zones, z)
		}
	}
	out := NodeAggregates{Zone: defaultZone, CPURatio: ratioOf(aggs, CPURatioKey), RAMRatio: ratioOf(aggs, RAMRatioKey),
		DiskRatio: ratioOf(aggs, DiskRatioKey)}
	if len(zones) > 0 {
		slices.Sort(zones)
		out.Zone = strings.Join(zones, ",")
	}
	return out
}

func ratioOf(aggs []map[string]string, key string) float64 {
	r := -1.0
	for _, md := range aggs {
		v, ok := md[key]
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f != f {
			return -1
		}
		f = max(f, 0)
		if r < 0 || f < r {
			r = f
		}
	}
	return r
}

// HostAggregatesState is the version of the snapshot the cell holds (0:
// none yet) and the default zone it gave.
func HostAggregatesState(ctx context.Context, q Querier) (version int64, defaultZone string, err error) {
	err = q.QueryRow(ctx, `SELECT version, default_zone FROM host_aggregates_state WHERE id = 1`).Scan(&version, &defaultZone)
	if err != nil {
		return 0, "", fmt.Errorf("host aggregates state: %w", err)
	}
	return version, defaultZone, nil
}

// aggregateBatch is how many rows one insert writes.
const aggregateBatch = 200

// ApplyHostAggregates makes m the cell's aggregates, in tx, when it is
// newer than the snapshot held: it replaces every aggregate and
// membership and recomputes each compute node's zone and ratios. An older
// or equal version (a repeat, a late copy) changes nothing and reports
// false. Hosts m names that have no compute node yet get theirs when they
// register.
func ApplyHostAggregates(ctx context.Context, tx *db.Tx, m *wire.HostAggregates) (bool, error) {
	res, err := tx.Exec(ctx, `UPDATE host_aggregates_state SET version = ?, default_zone = ? WHERE id = 1 AND version < ?`,
		m.Version, m.DefaultZone, m.Version)
	if err != nil {
		return false, fmt.Errorf("apply host aggregates: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return false, err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM host_aggregate_hosts`); err != nil {
		return false, fmt.Errorf("apply host aggregates: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM host_aggregates`); err != nil {
		return false, fmt.Errorf("apply host aggregates: %w", err)
	}
	type member struct {
		host string
		id   int64
	}
	var members []member
	byHost := map[string][]map[string]string{}
	for rest := m.Aggregates; len(rest) > 0; {
		n := min(len(rest), aggregateBatch)
		args := make([]any, 0, 4*n)
		for _, a := range rest[:n] {
			md, err := json.Marshal(orEmpty(a.Metadata))
			if err != nil {
				return false, err
			}
			args = append(args, a.ID, a.UUID, a.Name, string(md))
			for _, h := range a.Hosts {
				members = append(members, member{h, a.ID})
				byHost[h] = append(byHost[h], a.Metadata)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO host_aggregates (id, uuid, name, metadata) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", n), ", ")+` ON CONFLICT (id) DO NOTHING`, args...); err != nil {
			return false, fmt.Errorf("apply host aggregates: %w", err)
		}
		rest = rest[n:]
	}
	for rest := members; len(rest) > 0; {
		n := min(len(rest), aggregateBatch)
		args := make([]any, 0, 2*n)
		for _, mb := range rest[:n] {
			args = append(args, mb.host, mb.id)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO host_aggregate_hosts (host, aggregate_id) VALUES `+
			strings.TrimSuffix(strings.Repeat("(?, ?), ", n), ", ")+` ON CONFLICT (host, aggregate_id) DO NOTHING`, args...); err != nil {
			return false, fmt.Errorf("apply host aggregates: %w", err)
		}
		rest = rest[n:]
	}
	return true, refreshNodes(ctx, tx, byHost, m.DefaultZone)
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// refreshNodes writes each compute node's zone and ratios from byHost
// (host → its aggregates' metadata), one statement per node that changes.
func refreshNodes(ctx context.Context, tx *db.Tx, byHost map[string][]map[string]string, defaultZone string) error {
	rows, err := tx.Query(ctx, `SELECT host, availability_zone, agg_cpu_ratio, agg_ram_ratio, agg_disk_ratio FROM compute_nodes`)
	if err != nil {
		return fmt.Errorf("refresh nodes' aggregates: %w", err)
	}
	changed := map[string]NodeAggregates{}
	for rows.Next() {
		var host string
		var have NodeAggregates
		if err := rows.Scan(&host, &have.Zone, &have.CPURatio, &have.RAMRatio, &have.DiskRatio); err != nil {
			rows.Close()
			return err
		}
		if want := NodeAggregatesOf(byHost[host], defaultZone); want != have {
			changed[host] = want
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, host := range slices.Sorted(maps.Keys(changed)) {
		if err := setNodeAggregates(ctx, tx, host, changed[host]); err != nil {
			return err
		}
	}
	return nil
}

func setNodeAggregates(ctx context.Context, tx *db.Tx, host string, na NodeAggregates) error {
	_, err := tx.Exec(ctx, `UPDATE compute_nodes SET availability_zone = ?, agg_cpu_ratio = ?, agg_ram_ratio = ?, agg_disk_ratio = ? WHERE host = ?`,
		na.Zone, na.CPURatio, na.RAMRatio, na.DiskRatio, host)
	if err != nil {
		return fmt.Errorf("set aggregates of node %s: %w", host, err)
	}
	return nil
}

// nodeAggregates is what the held aggregates give host now.
func nodeAggregates(ctx context.Context, q Querier, host string) (NodeAggregates, error) {
	_, defaultZone, err := HostAggregatesState(ctx, q)
	if err != nil {
		return NodeAggregates{}, err
	}
	rows, err := q.Query(ctx, `SELECT a.metadata FROM host_aggregate_hosts h JOIN host_aggregates a ON a.id = h.aggregate_id
		WHERE h.host = ? ORDER BY a.id`, host)
	if err != nil {
		return NodeAggregates{}, fmt.Errorf("aggregates of host %s: %w", host, err)
	}
	defer rows.Close()
	var aggs []map[string]string
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return NodeAggregates{}, err
		}
		var md map[string]string
		if err := json.Unmarshal([]byte(raw), &md); err != nil {
			return NodeAggregates{}, fmt.Errorf("aggregates of host %s: %w", host, err)
		}
		aggs = append(aggs, md)
	}
	if err := rows.Err(); err != nil {
		return NodeAggregates{}, err
	}
	return NodeAggregatesOf(aggs, defaultZone), nil
}

// HostAggregateMetadata reads, for each host in an aggregate, the
// metadata of each aggregate it is in (by aggregate id), for the host
// scheduler's aggregate filters and the capacity report.
func HostAggregateMetadata(ctx context.Context, q Querier) (map[string][]map[string]string, error) {
	rows, err := q.Query(ctx, `SELECT h.host, a.metadata FROM host_aggregate_hosts h JOIN host_aggregates a ON a.id = h.aggregate_id
		ORDER BY h.host, a.id`)
	if err != nil {
		return nil, fmt.Errorf("host aggregates: %w", err)
	}
	defer rows.Close()
	out := map[string][]map[string]string{}
	parsed := map[string]map[string]string{}
	for rows.Next() {
		var host, raw string
		if err := rows.Scan(&host, &raw); err != nil {
			return nil, err
		}
		md, ok := parsed[raw]
		if !ok {
			if err := json.Unmarshal([]byte(raw), &md); err != nil {
				return nil, fmt.Errorf("host aggregates: %w", err)
			}
			parsed[raw] = md
		}
		out[host] = append(out[host], md)
	}
	return out, rows.Err()
}

// HeldAggregates reads the aggregates the cell holds, by id, with their
// hosts (for an operator's view and tests).
func HeldAggregates(ctx context.Context, q Querier) ([]wire.HostAggregate, error) {
	rows, err := q.Query(ctx, `SELECT id, uuid, name, metadata FROM host_aggregates ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("held aggregates: %w", err)
	}
	var out []wire.HostAggregate
	idx := map[int64]int{}
	for rows.Next() {
		var a wire.HostAggregate
		var raw string
		if err := rows.Scan(&a.ID, &a.UUID, &a.Name, &raw); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(raw), &a.Metadata); err != nil {
			rows.Close()
			return nil, fmt.Errorf("held aggregates: %w", err)
		}
		if len(a.Metadata) == 0 {
			a.Metadata = nil
		}
		idx[a.ID] = len(out)
		out = append(out, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `SELECT aggregate_id, host FROM host_aggregate_hosts ORDER BY aggregate_id, host`)
	if err != nil {
		return nil, fmt.Errorf("held aggregates: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var host string
		if err := rows.Scan(&id, &host); err != nil {
			return nil, err
		}
		if i, ok := idx[id]; ok {
			out[i].Hosts = append(out[i].Hosts, host)
		}
	}
	return out, rows.Err()
}
