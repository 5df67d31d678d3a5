// Package hostops answers the operator's questions about a compute cell's
// own hosts and services (os-hypervisors, os-services) and carries out
// the changes an operator makes to them. It runs in each compute cell; the
// API cell reaches it only through the cells service, by cell path.
package hostops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Sender sends a durable message from this cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// Config configures the operator handlers of a compute cell.
type Config struct {
	Cell   string
	DB     *db.DB
	Sender Sender
	// DownAfter is how long a service may go unseen and still be up
	// (Nova's service_down_time; default 60s).
	DownAfter time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Ops holds the handlers.
type Ops struct {
	cfg Config
	log *slog.Logger
}

// New checks the configuration.
func New(cfg Config) (*Ops, error) {
	if cfg.DB == nil || cfg.Sender == nil {
		return nil, errors.New("hostops: a database and a sender are required")
	}
	if err := cellpath.Validate(cfg.Cell); err != nil {
		return nil, fmt.Errorf("hostops: %w", err)
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Ops{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "hostops")}, nil
}

// InternalZone is the availability zone of the services that are not
// nova-compute (Nova's internal_service_availability_zone).
const InternalZone = "internal"

// fakeCPUInfo is what the fake driver says of its CPUs (Nova's).
const fakeCPUInfo = `{"arch": "x86_64", "model": "Nehalem", "vendor": "Intel", "features": ["pge", "clflush"], "topology": {"cores": 1, "threads": 1, "sockets": 4}}`

// decode reads a call's payload.
func decode(env *wire.Envelope, v any) error {
	if err := json.Unmarshal(env.Payload, v); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "%s payload: %v", env.Method, err)
	}
	return nil
}

// view turns a service row into what travels up.
func (o *Ops) view(s celldb.Service, zones map[string]string, now time.Time) wire.Service {
	zone := InternalZone
	if s.Binary == celldb.BinaryCompute {
		zone = zones[s.Host]
	}
	return wire.Service{ID: s.ID, UUID: s.UUID, Host: s.Host, Binary: s.Binary, Topic: s.Topic, Zone: zone,
		Disabled: s.Disabled, DisabledReason: s.DisabledReason, ForcedDown: s.ForcedDown, Up: s.Up(now, o.cfg.DownAfter),
		UpdatedAt: s.UpdatedAt, LastSeen: s.LastSeen}
}

func (o *Ops) zones(ctx context.Context, q db.Querier) (map[string]celldb.Node, map[string]string, error) {
	ns, err := celldb.ListNodes(ctx, q)
	if err != nil {
		return nil, nil, err
	}
	nodes := make(map[string]celldb.Node, len(ns))
	zones := make(map[string]string, len(ns))
	for _, n := range ns {
		nodes[n.Host] = n
		zones[n.Host] = n.AvailabilityZone
	}
	return nodes, zones, nil
}

// Services answers services.
func (o *Ops) Services(ctx context.Context, env *wire.Envelope) (any, error) {
	var q wire.ServiceQuery
	if err := decode(env, &q); err != nil {
		return nil, err
	}
	ss, err := celldb.ListServices(ctx, o.cfg.DB, celldb.ServiceFilter{ID: q.ID, UUID: q.UUID, Host: q.Host, Binary: q.Binary})
	if err != nil {
		return nil, err
	}
	_, zones, err := o.zones(ctx, o.cfg.DB)
	if err != nil {
		return nil, err
	}
	now := o.cfg.Now()
	out := make([]wire.Service, 0, len(ss))
	for _, s := range ss {
		out = append(out, o.view(s, zones, now))
	}
	return out, nil
}

// Hypervisors answers hypervisors: the compute nodes with their compute
// services (a node without one is left out, as Nova does).
func (o *Ops) Hypervisors(ctx context.Context, env *wire.Envelope) (any, error) {
	var q wire.HypervisorQuery
	if err := decode(env, &q); err != nil {
		return nil, err
	}
	nodes, zones, err := o.zones(ctx, o.cfg.DB)
	if err != nil {
		return nil, err
	}
	ss, err := celldb.ListServices(ctx, o.cfg.DB, celldb.ServiceFilter{Binary: celldb.BinaryCompute, ID: q.ID})
	if err != nil {
		return nil, err
	}
	var servers map[string][]wire.HypervisorServer
	if q.WithServers {
		if servers, err = celldb.InstancesByHost(ctx, o.cfg.DB); err != nil {
			return nil, err
		}
	}
	now := o.cfg.Now()
	out := []wire.Hypervisor{}
	for _, s := range ss {
		n, ok := nodes[s.Host]
		if !ok || (q.UUID != "" && n.UUID != q.UUID) || (q.Pattern != "" && !strings.Contains(n.Host, q.Pattern)) {
			continue
		}
		h := wire.Hypervisor{ID: s.ID, UUID: n.UUID, Hostname: n.Host, Type: n.HypervisorType, Version: 1000,
			Service: o.view(s, zones, now), VCPUs: n.VCPUs, VCPUsUsed: n.UsedVCPUs, MemoryMB: n.RAMMB, MemoryMBUsed: n.UsedRAMMB,
			LocalGB: n.DiskGB, LocalGBUsed: n.UsedDiskGB, RunningVMs: n.Instances, CPUInfo: fakeCPUInfo}
		if q.WithServers {
			h.Servers = servers[n.Host]
		}
		out = append(out, h)
	}
	return out, nil
}

// find resolves a service query that names one service.
func find(ctx context.Context, q db.Querier, sq wire.ServiceQuery) (celldb.Service, error) {
	var ss []celldb.Service
	var err error
	switch {
	case sq.ID != 0 || sq.UUID != "":
		ss, err = celldb.ListServices(ctx, q, celldb.ServiceFilter{ID: sq.ID, UUID: sq.UUID})
	case sq.Host != "" && sq.Binary != "":
		ss, err = celldb.ListServices(ctx, q, celldb.ServiceFilter{Host: sq.Host, Binary: sq.Binary})
	default:
		return celldb.Service{}, wire.Errorf(wire.CodeInvalid, "a service is named by its id, or by its host and binary")
	}
	if err != nil {
		return celldb.Service{}, err
	}
	if len(ss) != 1 {
		return celldb.Service{}, wire.Errorf(wire.CodeNotFound, "service not found")
	}
	return ss[0], nil
}

// UpdateService answers service_update.
func (o *Ops) UpdateService(ctx context.Context, env *wire.Envelope) (any, error) {
	var u wire.ServiceUpdate
	if err := decode(env, &u); err != nil {
		return nil, err
	}
	var out wire.Service
	err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		s, err := find(ctx, tx, u.ServiceQuery)
		if err != nil {
			return err
		}
		if u.ComputeOnly && s.Binary != celldb.BinaryCompute {
			return wire.Errorf(wire.CodeInvalid, "Updating a %s service is not supported. Only nova-compute services can be updated.", s.Binary)
		}
		now := o.cfg.Now()
		s, err = celldb.UpdateService(ctx, tx, s.ID, celldb.ServiceChange{Disabled: u.Disabled, DisabledReason: u.DisabledReason, ForcedDown: u.ForcedDown}, now)
		if err != nil {
			return err
		}
		_, zones, err := o.zones(ctx, tx)
		if err != nil {
			return err
		}
		out = o.view(s, zones, now)
		return nil
	})
	if err != nil {
		return nil, err
	}
	o.log.Info("service updated", "request_id", env.RequestID, "service", out.UUID, "host", out.Host, "binary", out.Binary,
		"disabled", out.Disabled, "forced_down", out.ForcedDown)
	return out, nil
}

// DeleteService answers service_delete, and tells the API cell to forget
// the service's (and its node's) mapping.
func (o *Ops) DeleteService(ctx context.Context, env *wire.Envelope) (any, error) {
	var q wire.ServiceQuery
	if err := decode(env, &q); err != nil {
		return nil, err
	}
	var out wire.Service
	err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		s, err := find(ctx, tx, q)
		if err != nil {
			return err
		}
		maps, err := celldb.Mappings(ctx, tx, []string{s.Host})
		if err != nil {
			return err
		}
		if _, err := celldb.DeleteService(ctx, tx, s.ID); err != nil {
			switch {
			case errors.Is(err, celldb.ErrHostHasInstances):
				return wire.Errorf(wire.CodeConflict, "Unable to delete compute service that is hosting instances. Migrate or delete the instances first.")
			case errors.Is(err, celldb.ErrHostHasMigrations):
				return wire.Errorf(wire.CodeConflict, "Unable to delete compute service that has in-progress migrations. Complete the migrations or delete the instances first.")
			}
			return err
		}
		var removed []string
		for _, m := range maps {
			if m.UUID == s.UUID || (s.Binary == celldb.BinaryCompute && m.Kind == wire.MappingHypervisor) {
				removed = append(removed, m.UUID)
			}
		}
		out = wire.Service{ID: s.ID, UUID: s.UUID, Host: s.Host, Binary: s.Binary, Topic: s.Topic}
		return SendMappings(ctx, tx, o.cfg.Sender, o.cfg.Cell, env.RequestID, nil, removed)
	})
	if err != nil {
		return nil, err
	}
	o.log.Info("service deleted", "request_id", env.RequestID, "service", out.UUID, "host", out.Host, "binary", out.Binary)
	return out, nil
}

// mappingChunk bounds the mappings one message carries.
const mappingChunk = 500

// SendMappings sends the API cell mappings to set and UUIDs to forget,
// inside tx, in messages of at most mappingChunk entries.
func SendMappings(ctx context.Context, tx *db.Tx, s Sender, cell, requestID string, set []wire.HostMapping, removed []string) error {
	root := cellpath.Root(cell)
	for len(set) > 0 || len(removed) > 0 {
		m := wire.HostMappings{Cell: cell}
		n := min(len(set), mappingChunk)
		m.Set, set = set[:n], set[n:]
		k := min(len(removed), mappingChunk-n)
		m.Removed, removed = removed[:k], removed[k:]
		if err := s.Send(ctx, tx, root, wire.MethodHostMappings, requestID, &m); err != nil {
			return fmt.Errorf("send host mappings: %w", err)
		}
	}
	return nil
}

// Registrar registers the controller services a process runs in a
// compute cell (nova-conductor, nova-scheduler, ...) and keeps them alive.
type Registrar struct {
	cfg      Config
	host     string
	binaries []string
	interval time.Duration

	ids    []int64
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewRegistrar builds a registrar for binaries on host, beating every
// interval (default 10s).
func NewRegistrar(cfg Config, host string, binaries []string, interval time.Duration) (*Registrar, error) {
	o, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if host == "" {
		return nil, errors.New("hostops: a host name is required")
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	return &Registrar{cfg: o.cfg, host: host, binaries: binaries, interval: interval}, nil
}

// Start registers the services, sends their mappings up, and starts the
// heartbeat.
func (r *Registrar) Start(ctx context.Context) error {
	now := r.cfg.Now()
	err := r.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		r.ids = r.ids[:0]
		var set []wire.HostMapping
		for _, b := range r.binaries {
			s, err := celldb.RegisterService(ctx, tx, r.host, b, now)
			if err != nil {
				return err
			}
			r.ids = append(r.ids, s.ID)
			set = append(set, wire.HostMapping{UUID: s.UUID, Kind: wire.MappingService, Host: s.Host, Binary: s.Binary})
		}
		return SendMappings(ctx, tx, r.cfg.Sender, r.cfg.Cell, "", set, nil)
	})
	if err != nil {
		return fmt.Errorf("hostops: register services: %w", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.interval)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if err := celldb.ServiceHeartbeat(lctx, r.cfg.DB, r.ids, r.cfg.Now()); err != nil && lctx.Err() == nil {
					r.cfg.Logger.Error("service heartbeat", "cell", r.cfg.Cell, "err", err)
				}
			}
		}
	}()
	return nil
}

// Shutdown stops the heartbeat.
func (r *Registrar) Shutdown() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
}

// DescribeHost answers host_describe: the rows of os-hosts' show.
func (o *Ops) DescribeHost(ctx context.Context, env *wire.Envelope) (any, error) {
	var q wire.HostQuery
	if err := decode(env, &q); err != nil {
		return nil, err
	}
	nodes, _, err := o.zones(ctx, o.cfg.DB)
	if err != nil {
		return nil, err
	}
	n, ok := nodes[q.Host]
	if !ok {
		return nil, wire.Errorf(wire.CodeNotFound, "Compute host %s could not be found.", q.Host)
	}
	uses, err := celldb.HostUse(ctx, o.cfg.DB, q.Host)
	if err != nil {
		return nil, err
	}
	out := []wire.HostResource{
		{Project: "(total)", CPU: int64(n.VCPUs), MemoryMB: n.RAMMB, DiskGB: n.DiskGB},
		{Project: "(used_now)", CPU: int64(n.UsedVCPUs), MemoryMB: n.UsedRAMMB, DiskGB: n.UsedDiskGB},
	}
	usedMax := wire.HostResource{Project: "(used_max)"}
	for _, u := range uses {
		usedMax.CPU += u.CPU
		usedMax.MemoryMB += u.MemoryMB
		usedMax.DiskGB += u.DiskGB
	}
	return append(append(out, usedMax), uses...), nil
}

// HostAction answers host_action: enable or disable a compute host (its
// nova-compute service), put it in maintenance (disabled, with the reason
// "maintenance") or take it out, or a power action, which the fake driver
// takes and echoes as Nova's does.
func (o *Ops) HostAction(ctx context.Context, env *wire.Envelope) (any, error) {
	var a wire.HostAction
	if err := decode(env, &a); err != nil {
		return nil, err
	}
	var out wire.HostActionReply
	err := o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		ss, err := celldb.ListServices(ctx, tx, celldb.ServiceFilter{Host: a.Host, Binary: celldb.BinaryCompute})
		if err != nil {
			return err
		}
		if len(ss) != 1 {
			return wire.Errorf(wire.CodeNotFound, "Compute host %s could not be found.", a.Host)
		}
		yes, no, none, maint := true, false, "", "maintenance"
		var c celldb.ServiceChange
		switch a.Action {
		case "enable":
			c, out.Result = celldb.ServiceChange{Disabled: &no, DisabledReason: &none}, "enabled"
		case "disable":
			c, out.Result = celldb.ServiceChange{Disabled: &yes}, "disabled"
		case "maintenance_on":
			c, out.Result = celldb.ServiceChange{Disabled: &yes, DisabledReason: &maint}, "on_maintenance"
		case "maintenance_off":
			c, out.Result = celldb.ServiceChange{Disabled: &no, DisabledReason: &none}, "off_maintenance"
		case "startup", "shutdown", "reboot":
			out.Result = a.Action
			return nil
		default:
			return wire.Errorf(wire.CodeInvalid, "unknown host action %q", a.Action)
		}
		_, err = celldb.UpdateService(ctx, tx, ss[0].ID, c, o.cfg.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	o.log.Info("host action", "request_id", env.RequestID, "host", a.Host, "action", a.Action, "result", out.Result)
	return out, nil
}

// TenantUsage answers tenant_usage.
func (o *Ops) TenantUsage(ctx context.Context, env *wire.Envelope) (any, error) {
	var q wire.TenantUsageQuery
	if err := decode(env, &q); err != nil {
		return nil, err
	}
	us, err := celldb.UsageInWindow(ctx, o.cfg.DB, q.Start, q.Stop, q.Project)
	if us == nil && err == nil {
		us = []wire.InstanceUsage{}
	}
	return us, err
}

// UsageAudit answers usage_audit.
func (o *Ops) UsageAudit(ctx context.Context, env *wire.Envelope) (any, error) {
	var q wire.UsageAuditQuery
	if err := decode(env, &q); err != nil {
		return nil, err
	}
	ss, err := celldb.ListServices(ctx, o.cfg.DB, celldb.ServiceFilter{Binary: celldb.BinaryCompute})
	if err != nil {
		return nil, err
	}
	logs, err := celldb.TaskLogs(ctx, o.cfg.DB, q.Begin, q.End)
	if err != nil {
		return nil, err
	}
	out := wire.UsageAuditReply{Hosts: []string{}, Logs: []wire.AuditTaskLog{}}
	for _, s := range ss {
		out.Hosts = append(out.Hosts, s.Host)
	}
	for _, l := range logs {
		out.Logs = append(out.Logs, wire.AuditTaskLog{Host: l.Host, State: l.State, Instances: l.Items, Errors: l.Errors, Message: l.Message})
	}
	return out, nil
}
