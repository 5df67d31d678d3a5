// Package compute is the compute role of a cell: the agent of one or many
// hosts. It registers its hosts as compute nodes, keeps their heartbeat,
// checks (or, on a host the conductor did not place the instance on,
// takes) the instance's claim on a host as a spawn begins, so concurrent
// builds cannot oversubscribe it, drives the hypervisor driver, and has
// each instance's new state recorded and sent up through instancestate.
// When the driver has a firewall, it enforces the security groups of the
// instances' ports on their hosts (package firewall).
package compute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cellcloud/cellcloud/internal/auditperiod"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/firewall"
	"github.com/cellcloud/cellcloud/internal/computecell/hostops"
	"github.com/cellcloud/cellcloud/internal/computecell/instancestate"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// Sender sends a durable message from this cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// HostSpec is the size of each fake host; zero fields take DefaultSpec's.
// It has config.HostSpec's fields, so the configuration converts to it
// (compute imports no configuration: config is the process's, not a role's).
type HostSpec struct {
	VCPUs     int
	RAMMB     int64
	DiskGB    int64
	CPURatio  float64
	RAMRatio  float64
	DiskRatio float64
	// AvailabilityZone is not used: a host's zone is its aggregates' (the
	// cell's snapshot, celldb aggregates.go). It stays so that the
	// configuration's host spec converts to this one.
	AvailabilityZone string
}

// Config configures the compute role.
type Config struct {
	Cell   string
	DB     *db.DB
	Sender Sender
	Driver virt.Driver
	// Hosts are the names of the hosts this process runs.
	Hosts []string
	Spec  HostSpec
	// HeartbeatInterval (default 10s).
	HeartbeatInterval time.Duration
	// UsageAudit turns on the periodic instance usage audit of each host
	// (Nova's instance_usage_audit), for the last completed period of
	// AuditPeriod (default "month"), tried every AuditInterval (default
	// 60s; a host audits each period once).
	UsageAudit    bool
	AuditPeriod   string
	AuditInterval time.Duration
	// FirewallInterval is how often the firewall reads the cell's
	// generations of security groups without a wake (default 1s).
	FirewallInterval time.Duration
	Logger           *slog.Logger
	Now              func() time.Time
}

// Service is the compute role.
type Service struct {
	cfg    Config
	log    *slog.Logger
	state  *instancestate.Owner
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// restoring is what a restart still has to put back on the hosts.
	restoring restoreQueue
	// fw programs the driver's firewall (nil: the driver has none).
	fw *firewall.Syncer
	// cacheWake wakes the pre-caching of images (imagecache.go).
	cacheWake chan struct{}
}

// DefaultSpec is the default fake host: 16 vCPUs, 64 GiB, 1 TB.
func DefaultSpec() HostSpec {
	return HostSpec{VCPUs: 16, RAMMB: 65536, DiskGB: 1000, CPURatio: 4, RAMRatio: 1, DiskRatio: 1}
}

// New validates the configuration.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Sender == nil || cfg.Driver == nil {
		return nil, errors.New("compute: database, sender and driver are required")
	}
	if err := cellpath.Validate(cfg.Cell); err != nil {
		return nil, fmt.Errorf("compute: %w", err)
	}
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("compute: no hosts")
	}
	def := DefaultSpec()
	s := &cfg.Spec
	if s.VCPUs <= 0 {
		s.VCPUs = def.VCPUs
	}
	if s.RAMMB <= 0 {
		s.RAMMB = def.RAMMB
	}
	if s.DiskGB <= 0 {
		s.DiskGB = def.DiskGB
	}
	if s.CPURatio <= 0 {
		s.CPURatio = def.CPURatio
	}
	if s.RAMRatio <= 0 {
		s.RAMRatio = def.RAMRatio
	}
	if s.DiskRatio <= 0 {
		s.DiskRatio = def.DiskRatio
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 10 * time.Second
	}
	if cfg.AuditPeriod == "" {
		cfg.AuditPeriod = auditperiod.Default
	}
	if err := auditperiod.Validate(cfg.AuditPeriod); err != nil {
		return nil, fmt.Errorf("compute: %w", err)
	}
	if cfg.AuditInterval <= 0 {
		cfg.AuditInterval = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	state, err := instancestate.New(cfg.Cell, cfg.Sender, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("compute: %w", err)
	}
	svc := &Service{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "compute"), state: state, cacheWake: make(chan struct{}, 1)}
	if fw, ok := cfg.Driver.(virt.Firewall); ok {
		svc.fw, err = firewall.New(firewall.Config{Cell: cfg.Cell, DB: cfg.DB, Driver: fw, Hosts: cfg.Hosts, Interval: cfg.FirewallInterval, Logger: cfg.Logger})
		if err != nil {
			return nil, fmt.Errorf("compute: %w", err)
		}
	}
	return svc, nil
}

// Start registers the hosts, starts their heartbeat, and then restores
// the instances the database places on them in the background (see
// restore.go): the hosts stay up however long the restore takes.
func (s *Service) Start(ctx context.Context) error {
	if err := s.register(ctx); err != nil {
		return err
	}
	ks, err := s.restoreList(ctx)
	if err != nil {
		return err
	}
	s.queueRestore(ks)
	// The firewall loads the groups and the instances of the hosts and
	// sets their filters (those to restore too) before the hosts serve.
	if s.fw != nil {
		if err := s.fw.Start(ctx); err != nil {
			return err
		}
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.HeartbeatInterval)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if err := celldb.Heartbeat(lctx, s.cfg.DB, s.cfg.Hosts, s.cfg.Now()); err != nil && lctx.Err() == nil {
					s.log.Error("heartbeat", "err", err)
				}
			}
		}
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.restore(lctx, ks)
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.cacheLoop(lctx)
	}()
	if s.cfg.UsageAudit {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(s.cfg.AuditInterval)
			defer t.Stop()
			for {
				s.audit(lctx)
				select {
				case <-lctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	s.log.Info("compute started", "hosts", len(s.cfg.Hosts), "to_restore", len(ks))
	return nil
}

// register records each host as a compute node with its nova-compute
// service, and sends their mappings to the API cell, a few hundred hosts
// to a transaction.
func (s *Service) register(ctx context.Context) error {
	now := s.cfg.Now()
	const chunk = 500
	for i := 0; i < len(s.cfg.Hosts); i += chunk {
		hosts := s.cfg.Hosts[i:min(i+chunk, len(s.cfg.Hosts))]
		err := s.cfg.DB.Group(ctx, func(tx *db.Tx) error {
			for _, h := range hosts {
				n := celldb.Node{Host: h, HypervisorType: "fake", VCPUs: s.cfg.Spec.VCPUs,
					RAMMB: s.cfg.Spec.RAMMB, DiskGB: s.cfg.Spec.DiskGB, CPURatio: s.cfg.Spec.CPURatio, RAMRatio: s.cfg.Spec.RAMRatio, DiskRatio: s.cfg.Spec.DiskRatio}
				if err := celldb.RegisterNodeTx(ctx, tx, n, now); err != nil {
					return fmt.Errorf("compute: register host %s: %w", h, err)
				}
				if _, err := celldb.RegisterService(ctx, tx, h, celldb.BinaryCompute, now); err != nil {
					return fmt.Errorf("compute: register host %s: %w", h, err)
				}
			}
			maps, err := celldb.Mappings(ctx, tx, hosts)
			if err != nil {
				return err
			}
			return hostops.SendMappings(ctx, tx, s.cfg.Sender, s.cfg.Cell, "", maps, nil)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// audit runs the usage audit of each host for the last completed period,
// once per host and period.
func (s *Service) audit(ctx context.Context) {
	begin, end, err := auditperiod.LastCompleted(s.cfg.AuditPeriod, s.cfg.Now())
	if err != nil {
		s.log.Error("usage audit", "err", err)
		return
	}
	ran := 0
	for _, h := range s.cfg.Hosts {
		ok, err := celldb.AuditHost(ctx, s.cfg.DB, h, begin, end, s.cfg.Now)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error("usage audit", "host", h, "err", err)
			}
			return
		}
		if ok {
			ran++
		}
	}
	if ran > 0 {
		s.log.Info("usage audit ran", "hosts", ran, "period_beginning", begin, "period_ending", end)
	}
}

// Shutdown stops the heartbeat, the restore and the firewall's loop, and
// waits for them.
func (s *Service) Shutdown(ctx context.Context) error {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	if s.fw != nil {
		return s.fw.Shutdown(ctx)
	}
	return nil
}

// Hosts are the hosts this process runs.
func (s *Service) Hosts() []string { return s.cfg.Hosts }

// Spawn claims room on host for the instance, starts it, and marks it
// ACTIVE. A failed claim or spawn leaves no claim behind and returns an
// error (celldb.ErrClaimFailed for a full host), so the caller can try
// another host.
func (s *Service) Spawn(ctx context.Context, host, uuid string) error {
	// The spawn begins in one statement that goes with those of the
	// spawns and ACTIVEs of the same group (db.GroupQuery).
	var in *celldb.Instance
	err := s.cfg.DB.GroupQuery(ctx, s.state.BeginSpawnQuery(uuid, host), func(tx *db.Tx, a db.Answer) (err error) {
		in, err = s.state.BeginSpawnFrom(ctx, tx, uuid, host, a)
		return err
	})
	if err != nil {
		return err
	}
	log := s.log.With("request_id", in.RequestID, "instance", uuid, "host", host)
	vi := virt.Instance{UUID: uuid, Name: in.Name, VCPUs: in.Flavor.VCPUs, RAMMB: in.Flavor.RAMMB, DiskGB: in.Flavor.RootGB}
	s.dropRestore(ctx, vmKey{host, uuid})
	if err := s.cfg.Driver.Spawn(ctx, host, vi); err != nil {
		log.Warn("spawn failed", "err", err)
		if rerr := s.state.ReleaseIn(ctx, s.cfg.DB, uuid); rerr != nil {
			log.Error("releasing the claim after a failed spawn", "err", rerr)
		}
		return fmt.Errorf("spawn on %s: %w", host, err)
	}
	// The volumes the instance has attached already (an unshelve of an
	// offloaded instance) are attached on this host before it is active;
	// a host that cannot attach them fails the spawn, as Nova's
	// _prep_block_device does. A first build without volume mappings has
	// none (an attach needs an instance past building): no statement.
	var built []*celldb.VolumeAttachment
	if in.VMState != celldb.VMBuilding || len(in.BlockDevices) > 0 {
		err := s.attachInstanceVolumes(ctx, host, uuid, log)
		if err == nil && in.VMState == celldb.VMBuilding {
			built, err = s.attachBuildVolumes(ctx, host, uuid, log)
		}
		if err != nil {
			log.Warn("attaching the instance's volumes failed: the spawn fails", "err", err)
			if derr := s.cfg.Driver.Destroy(ctx, host, uuid); derr != nil {
				log.Error("destroying the copy whose volumes failed", "err", derr)
			}
			if rerr := s.state.ReleaseIn(ctx, s.cfg.DB, uuid); rerr != nil {
				log.Error("releasing the claim after a failed spawn", "err", rerr)
			}
			return fmt.Errorf("spawn on %s: %w", host, err)
		}
	}
	active, none, running := celldb.VMActive, "", celldb.PowerRunning
	now := s.cfg.Now()
	// The build's action ends with the change (the transaction may run
	// again: in is what the last run left).
	end := &celldb.ActionEnd{RequestID: in.RequestID, Result: "Success", Host: host, At: now}
	var st wire.InstanceState
	spawning := instancestate.Task(celldb.TaskSpawning)
	change := celldb.Change{VMState: &active, TaskState: &none, PowerState: &running, LaunchedAt: &now, EndAction: end}
	if len(built) > 0 {
		err = s.cfg.DB.Group(ctx, func(tx *db.Tx) error {
			// The instance's row first, then its volumes' (the volume
			// role's order); their states go up before the instance's,
			// so that the API cell shows them in-use once it shows it
			// active.
			if _, err := celldb.GetForUpdate(ctx, tx, uuid); err != nil {
				return err
			}
			if err := s.bootAttached(ctx, tx, in.RequestID, built, now); err != nil {
				return err
			}
			var err error
			in, st, err = s.state.TransitionState(ctx, tx, uuid, spawning, change)
			return err
		})
	} else {
		// Without volumes the change is the transaction's first
		// statement, sent with the group's others (db.GroupQuery).
		err = s.cfg.DB.GroupQuery(ctx, s.state.TransitionQuery(s.cfg.DB.Dialect, uuid, spawning, change), func(tx *db.Tx, a db.Answer) error {
			var err error
			in, st, err = s.state.TransitionStateFrom(ctx, tx, uuid, spawning, change, a)
			return err
		})
	}
	if errors.Is(err, wire.ErrConflict) {
		return celldb.ErrGone
	}
	if err != nil {
		return err
	}
	// Its filter, from the NICs and the addresses the update carried up:
	// no statement when the firewall holds the groups of its ports.
	if s.fw != nil {
		s.fw.VMUp(ctx, host, uuid, in.Build.Enforced(), st.Addresses)
	}
	log.Info("instance active")
	return nil
}

// Act carries out a server action (a key of vmstate.Actions with a host
// operation) on the instance's host and records the result: the action's
// resulting vm and power state on success, or the state before with an
// error event on failure. Either way the new state goes up to the API cell.
func (s *Service) Act(ctx context.Context, host, uuid, key string) error {
	a, ok := vmstate.Actions[key]
	if !ok || a.HostOp == "" {
		return wire.Errorf(wire.CodeBadMessage, "compute: no host operation for action %q", key)
	}
	op, ok := s.cfg.Driver.(virt.Operator)
	if !ok {
		return wire.Errorf(wire.CodeBadMessage, "compute: the driver cannot %s", a.HostOp)
	}
	in, err := celldb.Get(ctx, s.cfg.DB, uuid)
	if err != nil {
		return err
	}
	if in.Host != host {
		return fmt.Errorf("compute: instance %s is on %q, not %q", uuid, in.Host, host)
	}
	log := s.log.With("request_id", in.RequestID, "instance", uuid, "host", host, "action", key)
	s.restoreOne(ctx, vmKey{host, uuid})
	opErr := op.Operate(ctx, host, uuid, a.HostOp)
	if opErr == nil {
		s.operated(ctx, host, uuid, a.HostOp)
	}
	err = s.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		// The action ends: its task state and the pending action go.
		c := celldb.Change{TaskState: new(string), Action: &celldb.PendingAction{}}
		if opErr == nil {
			if a.ResultVM != "" {
				c.VMState = &a.ResultVM
			}
			c.PowerState = &a.ResultPower
		}
		_, err := s.state.Transition(ctx, tx, uuid, instancestate.Task(a.Task), c)
		return err
	})
	if errors.Is(err, wire.ErrConflict) {
		return celldb.ErrGone // the instance moved on (deleted, reset) meanwhile
	}
	if err != nil {
		return err
	}
	if opErr != nil {
		log.Warn("server action failed", "err", opErr)
		return opErr
	}
	log.Info("server action done")
	return nil
}

// AttachVolume attaches the volume whose backing is path to the instance
// on host as device (the volume manager's pending attach). The instance
// must be on host; attaching it again does nothing.
func (s *Service) AttachVolume(ctx context.Context, host, uuid, device, path string) error {
	va, err := s.volumeAttacher(ctx, host, uuid)
	if err != nil {
		return err
	}
	if err := va.AttachVolume(ctx, host, uuid, device, path); err != nil {
		return fmt.Errorf("attach %s to %s on %s: %w", device, uuid, host, err)
	}
	s.log.Info("volume attached", "instance", uuid, "host", host, "device", device)
	return nil
}

// DetachVolume detaches device from the instance on host (the volume
// manager's pending detach); a device it does not have is not an error.
func (s *Service) DetachVolume(ctx context.Context, host, uuid, device string) error {
	va, err := s.volumeAttacher(ctx, host, uuid)
	if err != nil {
		return err
	}
	if err := va.DetachVolume(ctx, host, uuid, device); err != nil {
		return fmt.Errorf("detach %s from %s on %s: %w", device, uuid, host, err)
	}
	s.log.Info("volume detached", "instance", uuid, "host", host, "device", device)
	return nil
}

// VolumeDisks are the volumes the driver has attached to the instance on
// host (device to backing), for operators' checks and tests; none when
// the driver cannot tell.
func (s *Service) VolumeDisks(host, uuid string) map[string]string {
	if d, ok := s.cfg.Driver.(interface {
		Disks(host, uuid string) map[string]string
	}); ok {
		return d.Disks(host, uuid)
	}
	return nil
}

// volumeAttacher is the driver's VolumeAttacher, once the instance is
// known to be on host (and put back there after a restart).
func (s *Service) volumeAttacher(ctx context.Context, host, uuid string) (virt.VolumeAttacher, error) {
	va, ok := s.cfg.Driver.(virt.VolumeAttacher)
	if !ok {
		return nil, wire.Errorf(wire.CodeBadMessage, "compute: the driver cannot attach volumes")
	}
	in, err := celldb.Get(ctx, s.cfg.DB, uuid)
	if err != nil {
		return nil, err
	}
	if in.Host != host {
		// A resize or migration has a copy on its other host: its
		// volumes move with it (instanceops moves).
		m, err := celldb.ActiveMigration(ctx, s.cfg.DB, uuid)
		if err != nil || (m.SourceHost != host && m.DestHost != host) {
			return nil, fmt.Errorf("compute: instance %s is on %q, not %q", uuid, in.Host, host)
		}
	}
	s.restoreOne(ctx, vmKey{host, uuid})
	return va, nil
}

// ConsoleOutput returns the instance's console log.
func (s *Service) ConsoleOutput(ctx context.Context, host, uuid string) (string, error) {
	c, ok := s.cfg.Driver.(virt.Consoler)
	if !ok {
		return "", wire.Errorf(wire.CodeBadMessage, "compute: the driver has no console log")
	}
	s.restoreOne(ctx, vmKey{host, uuid})
	return c.ConsoleOutput(ctx, host, uuid)
}

// Destroy removes the instance from its host and gives the claim back.
func (s *Service) Destroy(ctx context.Context, host, uuid string) error {
	s.dropRestore(ctx, vmKey{host, uuid})
	if err := s.cfg.Driver.Destroy(ctx, host, uuid); err != nil {
		return fmt.Errorf("destroy %s on %s: %w", uuid, host, err)
	}
	if s.fw != nil {
		s.fw.VMGone(ctx, host, uuid)
	}
	return s.state.ReleaseIn(ctx, s.cfg.DB, uuid)
}

// operated follows a driver operation done on an instance: one that took
// the instance off its host ("shelve") took its filter with it.
func (s *Service) operated(ctx context.Context, host, uuid, op string) {
	if op == "shelve" && s.fw != nil {
		s.fw.VMGone(ctx, host, uuid)
	}
}

// InstanceFilter is what host's driver enforces on the instance's ports
// (no port when it enforces nothing there).
func (s *Service) InstanceFilter(_ context.Context, host, uuid string) (wire.InstanceFilterAnswer, error) {
	fr, ok := s.cfg.Driver.(virt.FilterReader)
	if !ok {
		return wire.InstanceFilterAnswer{}, wire.Errorf(wire.CodeBadMessage, "compute: the driver has no firewall")
	}
	ports, sets, _ := fr.Filter(host, uuid)
	return firewall.Answer(uuid, host, ports, sets), nil
}

// FirewallMembers gives the firewall the member deltas the cell applied
// in this process (after they committed): it applies them in memory.
func (s *Service) FirewallMembers(deltas []wire.MemberDelta) {
	if s.fw != nil {
		s.fw.Members(deltas)
	}
}

// WakeFirewall makes the firewall read the cell's security groups now
// (after a change of them committed in this process).
func (s *Service) WakeFirewall() {
	if s.fw != nil {
		s.fw.Wake()
	}
}
