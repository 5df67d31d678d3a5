package celldb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The binaries of a compute cell's services, with Nova's names. Each
// compute host runs nova-compute; the cell's controller runs the others.
const (
	BinaryCompute   = "nova-compute"
	BinaryScheduler = "nova-scheduler"
	BinaryConductor = "nova-conductor"
	BinaryNetwork   = "nova-network"
	BinaryCells     = "nova-cells"
)

// Topic is a binary's topic ("compute" for nova-compute), as Nova names it.
func Topic(binary string) string { return strings.TrimPrefix(binary, "nova-") }

// Service is a service of the cell: a binary running on a host.
type Service struct {
	ID             int64
	UUID           string
	Host           string
	Binary         string
	Topic          string
	Disabled       bool
	DisabledReason string
	ForcedDown     bool
	// LastSeen is the last heartbeat: a compute service's is its compute
	// node's, which the compute agent keeps.
	LastSeen  time.Time
	CreatedAt time.Time
	// UpdatedAt is the last change by an operator (zero for none).
	UpdatedAt time.Time
}

// Up reports whether the service is alive, as Nova's database service
// group driver decides: not forced down, and seen (or, never seen,
// created) within downAfter of now.
func (s Service) Up(now time.Time, downAfter time.Duration) bool {
	if s.ForcedDown {
		return false
	}
	seen := s.LastSeen
	if seen.IsZero() {
		seen = s.CreatedAt
	}
	d := now.Sub(seen)
	if d < 0 {
		d = -d
	}
	return d <= downAfter
}

// ErrServiceNotFound is returned for a service the cell does not have.
var ErrServiceNotFound = errors.New("service not found in this cell")

// ErrHostHasInstances refuses to delete a compute service with instances.
var ErrHostHasInstances = errors.New("the compute service's host has instances")

// ErrHostHasMigrations refuses to delete a compute service with
// migrations in progress.
var ErrHostHasMigrations = errors.New("the compute service's host has migrations in progress")

// RegisterService creates the service binary on host unless it exists,
// marks it seen at now, and returns it.
func RegisterService(ctx context.Context, tx *db.Tx, host, binary string, now time.Time) (Service, error) {
	_, err := tx.Exec(ctx, `INSERT INTO services (uuid, host, binary_name, topic, heartbeat_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (host, binary_name) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
		uuid.NewString(), host, binary, Topic(binary), db.Micros(now), db.Micros(now))
	if err != nil {
		return Service{}, fmt.Errorf("register service %s on %s: %w", binary, host, err)
	}
	ss, err := ListServices(ctx, tx, ServiceFilter{Host: host, Binary: binary})
	if err != nil {
		return Service{}, err
	}
	if len(ss) != 1 {
		return Service{}, fmt.Errorf("register service %s on %s: %d rows", binary, host, len(ss))
	}
	return ss[0], nil
}

// ServiceHeartbeat marks services (not nova-compute, whose heartbeat is
// its node's) as alive at now.
func ServiceHeartbeat(ctx context.Context, d *db.DB, ids []int64, now time.Time) error {
	return d.InTx(ctx, func(tx *db.Tx) error {
		for _, id := range ids {
			if _, err := tx.Exec(ctx, `UPDATE services SET heartbeat_at = ? WHERE id = ?`, db.Micros(now), id); err != nil {
				return err
			}
		}
		return nil
	})
}

// ServiceFilter selects services; zero fields match everything.
type ServiceFilter struct {
	ID     int64
	UUID   string
	Host   string
	Binary string
}

// ListServices reads the services that match f, by id.
func ListServices(ctx context.Context, q Querier, f ServiceFilter) ([]Service, error) {
	where := []string{"1 = 1"}
	var args []any
	if f.ID != 0 {
		where, args = append(where, "s.id = ?"), append(args, f.ID)
	}
	if f.UUID != "" {
		where, args = append(where, "s.uuid = ?"), append(args, f.UUID)
	}
	if f.Host != "" {
		where, args = append(where, "s.host = ?"), append(args, f.Host)
	}
	if f.Binary != "" {
		where, args = append(where, "s.binary_name = ?"), append(args, f.Binary)
	}
	return db.Collect(ctx, q, scanService, `SELECT s.id, s.uuid, s.host, s.binary_name, s.topic, s.disabled, s.disabled_reason, s.forced_down,
		CASE WHEN s.binary_name = '`+BinaryCompute+`' THEN COALESCE(n.heartbeat_at, 0) ELSE s.heartbeat_at END, s.created_at, s.updated_at
		FROM services s LEFT JOIN compute_nodes n ON n.host = s.host AND s.binary_name = '`+BinaryCompute+`'
		WHERE `+strings.Join(where, " AND ")+` ORDER BY s.id`, args...)
}

func scanService(r db.Scanner) (Service, error) {
	var s Service
	var disabled, forced int
	var seen, created, updated int64
	if err := r.Scan(&s.ID, &s.UUID, &s.Host, &s.Binary, &s.Topic, &disabled, &s.DisabledReason, &forced, &seen, &created, &updated); err != nil {
		return s, err
	}
	s.Disabled, s.ForcedDown = disabled != 0, forced != 0
	if seen != 0 {
		s.LastSeen = db.FromMicros(seen)
	}
	s.CreatedAt = db.FromMicros(created)
	if updated != 0 {
		s.UpdatedAt = db.FromMicros(updated)
	}
	return s, nil
}

// GetService reads one service by id or UUID.
func GetService(ctx context.Context, q Querier, id int64, uuid string) (Service, error) {
	if id == 0 && uuid == "" {
		return Service{}, ErrServiceNotFound
	}
	ss, err := ListServices(ctx, q, ServiceFilter{ID: id, UUID: uuid})
	if err != nil {
		return Service{}, err
	}
	if len(ss) == 0 {
		return Service{}, ErrServiceNotFound
	}
	return ss[0], nil
}

// ServiceChange is an operator's change to a service; nil fields stay.
type ServiceChange struct {
	Disabled       *bool
	DisabledReason *string
	ForcedDown     *bool
}

// UpdateService applies a change to a service. A compute service's node
// takes no builds while the service is disabled or forced down.
func UpdateService(ctx context.Context, tx *db.Tx, id int64, c ServiceChange, now time.Time) (Service, error) {
	s, err := GetService(ctx, tx, id, "")
	if err != nil {
		return s, err
	}
	if c.Disabled != nil {
		s.Disabled = *c.Disabled
	}
	if c.DisabledReason != nil {
		s.DisabledReason = *c.DisabledReason
	}
	if c.ForcedDown != nil {
		s.ForcedDown = *c.ForcedDown
	}
	if _, err := tx.Exec(ctx, `UPDATE services SET disabled = ?, disabled_reason = ?, forced_down = ?, updated_at = ? WHERE id = ?`,
		boolInt(s.Disabled), s.DisabledReason, boolInt(s.ForcedDown), db.Micros(now), id); err != nil {
		return s, fmt.Errorf("update service %d: %w", id, err)
	}
	if s.Binary == BinaryCompute {
		if _, err := tx.Exec(ctx, `UPDATE compute_nodes SET enabled = ? WHERE host = ?`, boolInt(!s.Disabled && !s.ForcedDown), s.Host); err != nil {
			return s, fmt.Errorf("update node %s: %w", s.Host, err)
		}
	}
	s.UpdatedAt = now
	return s, nil
}

// DeleteService removes a service. A compute service goes with its node,
// and only when the host holds no instances and no resize in progress.
func DeleteService(ctx context.Context, tx *db.Tx, id int64) (Service, error) {
	s, err := GetService(ctx, tx, id, "")
	if err != nil {
		return s, err
	}
	if s.Binary == BinaryCompute {
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM instances WHERE host = ? AND deleted = 0`, s.Host).Scan(&n); err != nil {
			return s, err
		}
		if n > 0 {
			return s, ErrHostHasInstances
		}
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM migrations WHERE (source_host = ? OR dest_host = ?)
			AND status IN ('migrating', 'finished')`, s.Host, s.Host).Scan(&n); err != nil {
			return s, err
		}
		if n > 0 {
			return s, ErrHostHasMigrations
		}
		if _, err := tx.Exec(ctx, `DELETE FROM compute_nodes WHERE host = ?`, s.Host); err != nil {
			return s, err
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM services WHERE id = ?`, id); err != nil {
		return s, err
	}
	return s, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Mappings are the host mappings of the services on hosts and of their
// compute nodes, for the API cell.
func Mappings(ctx context.Context, q Querier, hosts []string) ([]wire.HostMapping, error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	in := "?" + strings.Repeat(", ?", len(hosts)-1)
	args := make([]any, len(hosts))
	for i, h := range hosts {
		args[i] = h
	}
	out, err := db.Collect(ctx, q, func(r db.Scanner) (wire.HostMapping, error) {
		m := wire.HostMapping{Kind: wire.MappingService}
		return m, r.Scan(&m.UUID, &m.Host, &m.Binary)
	}, `SELECT uuid, host, binary_name FROM services WHERE host IN (`+in+`) ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	nodes, err := db.Collect(ctx, q, func(r db.Scanner) (wire.HostMapping, error) {
		m := wire.HostMapping{Kind: wire.MappingHypervisor}
		return m, r.Scan(&m.UUID, &m.Host)
	}, `SELECT uuid, host FROM compute_nodes WHERE uuid <> '' AND host IN (`+in+`) ORDER BY host`, args...)
	return append(out, nodes...), err
}

// InstancesByHost lists the live instances on each host.
func InstancesByHost(ctx context.Context, q Querier) (map[string][]wire.HypervisorServer, error) {
	type row struct {
		host string
		s    wire.HypervisorServer
	}
	rows, err := db.Collect(ctx, q, func(r db.Scanner) (row, error) {
		var x row
		return x, r.Scan(&x.host, &x.s.UUID, &x.s.Name)
	}, `SELECT host, uuid, name FROM instances WHERE deleted = 0 AND host <> '' ORDER BY host, created_at, uuid`)
	if err != nil {
		return nil, err
	}
	out := map[string][]wire.HypervisorServer{}
	for _, x := range rows {
		out[x.host] = append(out[x.host], x.s)
	}
	return out, nil
}

// HostUse sums what the live instances on host use, by project, in the
// order the projects' first instances were created.
func HostUse(ctx context.Context, q Querier, host string) ([]wire.HostResource, error) {
	type row struct {
		project string
		flavor  wire.Flavor
	}
	rows, err := db.Collect(ctx, q, func(r db.Scanner) (row, error) {
		var x row
		var f string
		if err := r.Scan(&x.project, &f); err != nil {
			return x, err
		}
		return x, json.Unmarshal([]byte(f), &x.flavor)
	}, `SELECT project_id, flavor FROM instances WHERE host = ? AND deleted = 0 ORDER BY created_at, uuid`, host)
	if err != nil {
		return nil, err
	}
	var out []wire.HostResource
	at := map[string]int{}
	for _, x := range rows {
		i, ok := at[x.project]
		if !ok {
			i = len(out)
			at[x.project] = i
			out = append(out, wire.HostResource{Project: x.project})
		}
		out[i].CPU += int64(x.flavor.VCPUs)
		out[i].MemoryMB += x.flavor.RAMMB
		out[i].DiskGB += x.flavor.RootGB + x.flavor.EphemeralGB
	}
	return out, nil
}

// UsageInWindow lists the instances launched before stop and not deleted
// by start (deleted ones too), of project (all when empty): what
// os-simple-tenant-usage charges for.
func UsageInWindow(ctx context.Context, q Querier, start, stop time.Time, project string) ([]wire.InstanceUsage, error) {
	where := `launched_at > 0 AND launched_at < ? AND (deleted = 0 OR deleted_at > ?)`
	args := []any{db.Micros(stop), db.Micros(start)}
	if project != "" {
		where += ` AND project_id = ?`
		args = append(args, project)
	}
	return db.Collect(ctx, q, func(r db.Scanner) (wire.InstanceUsage, error) {
		var u wire.InstanceUsage
		var flavor string
		var launched, deletedAt int64
		var deleted int
		if err := r.Scan(&u.UUID, &u.Name, &u.ProjectID, &flavor, &u.VMState, &launched, &deleted, &deletedAt); err != nil {
			return u, err
		}
		_ = json.Unmarshal([]byte(flavor), &u.Flavor)
		u.LaunchedAt = db.FromMicros(launched)
		if deleted != 0 {
			u.EndedAt = db.FromMicros(deletedAt)
		}
		return u, nil
	}, `SELECT uuid, name, project_id, flavor, vm_state, launched_at, deleted, deleted_at FROM instances WHERE `+where+` ORDER BY project_id, uuid`, args...)
}
