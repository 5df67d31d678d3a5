// Package conductor drives builds and deletes inside a compute cell: it
// takes a build the cells service accepted for this cell, asks the host
// scheduler for hosts, has the network service allocate addresses and the
// compute host claim and spawn, retries failed spawns on other hosts, and
// hands builds that fit nowhere here back to the scheduling parent. Its work
// lives in the cell database (instances in task state "scheduling" or
// "deleting"), so a restarted process picks up where it stopped. A build
// that finds no free address waits, holding no host, for the address
// blocks the network service asked the API cell for (addresses.go).
//
// The conductor takes each instance's claim on its host when it places it
// (instancestate.Owner.Place); the compute host checks the claim as it
// begins the spawn. Every change it makes to an instance goes through
// instancestate, and its work runs on a workpool.
package conductor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/instancestate"
	"github.com/cellcloud/cellcloud/internal/computecell/workpool"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// HostScheduler picks hosts for instances.
type HostScheduler interface {
	Select(ctx context.Context, req *hostsched.Request) ([]hostsched.Selection, error)
}

// Network allocates and frees fixed IPs. Allocate fails with an error
// wrapping wire.ErrAddressesPending when the cell has asked for more
// address blocks and the build must wait for them, and with one wrapping
// wire.ErrNetworkFull when the network has no address left.
type Network interface {
	Allocate(ctx context.Context, uuid string, nics []wire.NIC) ([]wire.Address, error)
	Deallocate(ctx context.Context, uuid string) error
}

// Compute spawns on a host (checking the claim Place took there, or taking
// one on a host the instance has none on) and destroys there.
type Compute interface {
	Spawn(ctx context.Context, host, uuid string) error
	Destroy(ctx context.Context, host, uuid string) error
}

// SecurityGroups asks the API cell, in the transaction of a build, for
// the security groups its NICs' ports are in that the cell does not hold
// (network.SecGroups.Want: no statement when it holds them all).
type SecurityGroups interface {
	Want(ctx context.Context, tx *db.Tx, requestID string, nics []wire.NIC) error
}

// Volumes is the cell's volume role (volume.Manager). It is told in the
// transaction that marks an instance deleted: the instance's volume
// attachments and block device mappings go, and its volumes are available
// again (or deleted, with delete_on_termination), sent up (InstanceGone).
// It makes the volumes of a boot from volume (volumes.go): PrepareBuild,
// in the conductor's transaction, makes the build's new volumes and
// records its mappings and attachments (an error with code invalid is a
// mapping the cell cannot honour); BuildVolumes tells whether they are
// made; ForgetBuild gives back what the API cell took for a build that
// ends before its volumes are made; Wake has it look for work (the
// attachments of a build spawned).
type Volumes interface {
	InstanceGone(ctx context.Context, tx *db.Tx, instanceUUID, requestID string) error
	PrepareBuild(ctx context.Context, tx *db.Tx, in *celldb.Instance, requestID string) error
	ForgetBuild(ctx context.Context, tx *db.Tx, in *celldb.Instance, requestID string) error
	BuildVolumes(ctx context.Context, q db.Querier, instanceUUID string) (celldb.BuildVolumes, error)
	Wake()
}

// Sender sends a durable message from this cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// Config configures the conductor.
type Config struct {
	Cell      string
	DB        *db.DB
	Sender    Sender
	Scheduler HostScheduler
	Network   Network
	Compute   Compute
	// MaxHostAttempts bounds the hosts tried per instance (default 3).
	MaxHostAttempts int
	// Workers bounds concurrent spawns and deletes (default 64).
	Workers int
	// PollInterval is how often the database is checked for work that no
	// wake-up announced (default 1s).
	PollInterval time.Duration
	// HealInterval and HealWindow: every HealInterval the instances changed
	// in the last HealWindow are sent up again (defaults 60s and 10m).
	HealInterval time.Duration
	HealWindow   time.Duration
	// Capacity is told when the cell's free capacity changed (a build
	// placed or a delete done), so that the cell reports it up soon
	// (optional; the cells service offers it).
	Capacity CapacityNotifier
	// AddressWait is how long a build that waits for address blocks is
	// left alone before it is tried again, if no blocks_leased wakes it
	// first (default 5s).
	AddressWait time.Duration
	// SecurityGroups is asked for the groups of each build's NICs
	// (optional).
	SecurityGroups SecurityGroups
	// Volumes is told of each instance deleted (optional: nil when the
	// cell has no volume role).
	Volumes Volumes
	Logger  *slog.Logger
	Now     func() time.Time
}

// CapacityNotifier is told that the cell's free capacity changed (the cells
// service's ReportSoon).
type CapacityNotifier interface {
	ReportSoon()
}

type noNotifier struct{}

func (noNotifier) ReportSoon() {}

// Conductor is the build and delete driver of a compute cell.
type Conductor struct {
	cfg   Config
	log   *slog.Logger
	state *instancestate.Owner
	pool  *workpool.Pool
	// early is the index of the deletes that came before their builds.
	early earlyIndex
	// waiting are the builds that wait for address blocks, until when.
	waiting waitingBuilds
}

// New validates the configuration.
func New(cfg Config) (*Conductor, error) {
	if cfg.DB == nil || cfg.Sender == nil || cfg.Scheduler == nil || cfg.Network == nil || cfg.Compute == nil {
		return nil, errors.New("conductor: database, sender, scheduler, network and compute are required")
	}
	if err := cellpath.Validate(cfg.Cell); err != nil {
		return nil, fmt.Errorf("conductor: %w", err)
	}
	if cfg.MaxHostAttempts <= 0 {
		cfg.MaxHostAttempts = 3
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.HealInterval <= 0 {
		cfg.HealInterval = time.Minute
	}
	if cfg.HealWindow <= 0 {
		cfg.HealWindow = 10 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Capacity == nil {
		cfg.Capacity = noNotifier{}
	}
	if cfg.AddressWait <= 0 {
		cfg.AddressWait = 5 * time.Second
	}
	state, err := instancestate.New(cfg.Cell, cfg.Sender, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("conductor: %w", err)
	}
	c := &Conductor{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "conductor"), state: state}
	c.pool = workpool.New(workpool.Config{Workers: cfg.Workers, PollInterval: cfg.PollInterval, Poll: c.poll})
	return c, nil
}

// Start recovers builds a previous process left half done, then runs the
// work loop and the heal loop. One conductor runs per cell.
func (c *Conductor) Start(ctx context.Context) error {
	if err := c.recover(ctx); err != nil {
		return err
	}
	early, err := celldb.ListEarlyDeletes(ctx, c.cfg.DB)
	if err != nil {
		return fmt.Errorf("conductor: %w", err)
	}
	c.early.set(early)
	c.pool.Start(c.healLoop)
	return nil
}

// Shutdown stops the loops and waits for builds in flight to stop.
func (c *Conductor) Shutdown(context.Context) error {
	c.pool.Shutdown()
	return nil
}

// Wake makes the conductor look for work now.
func (c *Conductor) Wake() { c.pool.Wake() }

// recover puts instances that were between host choice and ACTIVE when the
// last process stopped back to "scheduling", releasing any claim, so they
// are placed again. Their fixed IP is kept (allocation is idempotent); if
// they are handed back instead, handBack frees it.
func (c *Conductor) recover(ctx context.Context) error {
	for _, task := range []string{celldb.TaskNetworking, celldb.TaskSpawning} {
		insts, err := celldb.ListByTask(ctx, c.cfg.DB, task, 100000)
		if err != nil {
			return fmt.Errorf("conductor: recover: %w", err)
		}
		for _, in := range insts {
			if in.Action != "" {
				continue // a server action (unshelve) owns it and resumes itself
			}
			err := c.cfg.DB.InTx(ctx, func(tx *db.Tx) error { return c.state.Unplace(ctx, tx, in.UUID, task) })
			if errors.Is(err, wire.ErrConflict) {
				// Its task changed since the list: the cells service,
				// already taking messages, applied a delete to it, and the
				// delete goes on with it (its claim kept for that).
				c.log.Info("an interrupted build changed meanwhile; left to what changed it", "instance", in.UUID, "err", err)
				continue
			}
			if err != nil {
				return fmt.Errorf("conductor: recover %s: %w", in.UUID, err)
			}
		}
		if len(insts) > 0 {
			c.log.Info("resuming builds interrupted by a restart", "instances", len(insts), "task_state", task)
		}
	}
	return nil
}

// AcceptBuild records a build for this cell's hosts, inside the cells
// service's transaction, and tells the API cell where the instances are,
// unless the cell that sent the build recorded that already (b.Recorded).
func (c *Conductor) AcceptBuild(ctx context.Context, tx *db.Tx, env *wire.Envelope, b *wire.BuildInstances) error {
	now := c.cfg.Now()
	bc := celldb.BuildContext{Scheduler: b.Scheduler, Attempts: b.Attempts, Tried: b.Tried, Hints: b.Hints,
		ImageProps: b.ImageProperties, TargetCell: b.TargetCell, SameCell: b.SameCell, DifferentCell: b.DifferentCell,
		NoNetwork: b.NoNetwork, Group: b.Group, ForcedHost: b.ForcedHost, ForcedNode: b.ForcedNode,
		RequestedHost: b.RequestedHost, RequestedNode: b.RequestedNode}
	insts := make([]celldb.Instance, 0, len(b.Instances))
	for _, spec := range b.Instances {
		bc := bc
		bc.NICs = spec.NICs
		bc.BlockDevices = spec.BlockDevices
		if len(spec.NICs) == 0 && !b.NoNetwork {
			bc.SecurityGroups = spec.SecurityGroups
		}
		insts = append(insts, celldb.Instance{InstanceSpec: spec, Flavor: b.Flavor, Build: bc, VMState: celldb.VMBuilding,
			TaskState: celldb.TaskScheduling, Version: b.BaseVersion + 1, RequestID: env.RequestID})
	}
	// Each with its create action, whose build event starts now. The API
	// cell learns where the instances are unless the cell that sent the
	// build recorded it already.
	first := celldb.FirstAction{Action: "create", Event: "compute__do_build_and_run_instance", At: now}
	if err := c.state.Create(ctx, tx, insts, first, env.RequestID, !b.Recorded); err != nil {
		return err
	}
	if err := c.wantGroups(ctx, tx, env.RequestID, b.Instances); err != nil {
		return err
	}
	uuids := make([]string, len(insts))
	for i, in := range insts {
		uuids[i] = in.UUID
	}
	if hits := c.early.hits(uuids); len(hits) > 0 {
		// A delete that came first: the build is deleted as it arrives.
		early, err := celldb.TakeEarlyDeletes(ctx, tx, hits)
		if err != nil {
			return err
		}
		tx.AfterCommit(func() { c.early.remove(hits) })
		for _, in := range insts {
			if rid, ok := early[in.UUID]; ok {
				c.log.Info("deleting a build whose delete came first", "request_id", rid, "instance", in.UUID)
				if err := c.markDeleting(ctx, tx, &in, rid); err != nil {
					return err
				}
			}
		}
	}
	tx.AfterCommit(c.Wake)
	return nil
}

// wantGroups asks for the security groups of the build's NICs the cell
// does not hold, with one message for the build.
func (c *Conductor) wantGroups(ctx context.Context, tx *db.Tx, requestID string, specs []wire.InstanceSpec) error {
	if c.cfg.SecurityGroups == nil || len(specs) == 0 {
		return nil
	}
	var nics []wire.NIC
	for _, s := range specs {
		nics = append(nics, s.NICs...)
		if len(s.NICs) == 0 && len(s.SecurityGroups) > 0 {
			// The interface the cell makes (celldb.BuildContext.Enforced).
			nics = append(nics, wire.NIC{SecurityGroups: s.SecurityGroups, PortRevision: 1})
		}
	}
	if len(nics) == 0 {
		return nil
	}
	return c.cfg.SecurityGroups.Want(ctx, tx, requestID, nics)
}

// DeleteInstances is the cast handler of delete_instances: it marks the
// instances for deletion; the work loop does the rest.
func (c *Conductor) DeleteInstances(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var d wire.DeleteInstances
	if err := json.Unmarshal(env.Payload, &d); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "delete_instances: %v", err)
	}
	for _, u := range d.UUIDs {
		in, err := celldb.Get(ctx, tx, u)
		if errors.Is(err, celldb.ErrNotFound) {
			// Its build may be behind it (messages can arrive out of
			// order), or went to another cell: kept for the build, pruned
			// if none comes.
			c.log.Warn("delete of an instance this cell does not have; kept for its build", "request_id", env.RequestID, "instance", u)
			now := c.cfg.Now()
			if err := celldb.RecordEarlyDelete(ctx, tx, u, env.RequestID, now); err != nil {
				return err
			}
			// Known at once (a build in the same batch finds it); one
			// whose transaction is undone costs a build a query, no more.
			c.early.add(u, now)
			continue
		}
		if err != nil {
			return err
		}
		if in.Deleted || in.TaskState == celldb.TaskDeleting {
			continue
		}
		if err := c.markDeleting(ctx, tx, in, env.RequestID); err != nil {
			return err
		}
	}
	tx.AfterCommit(c.Wake)
	return nil
}

// markDeleting puts an instance in deleting, ending any server action
// still pending, for the work loop to delete. The API cell marked its copy
// deleting already: it learns the rest when the delete is done.
func (c *Conductor) markDeleting(ctx context.Context, tx *db.Tx, in *celldb.Instance, requestID string) error {
	deleting := celldb.TaskDeleting
	if err := c.state.Step(ctx, tx, in.UUID, nil, celldb.Change{TaskState: &deleting, Action: &celldb.PendingAction{}}); err != nil {
		return err
	}
	_, err := celldb.StartAction(ctx, tx, wire.ActionRecord{Action: "delete", UUID: in.UUID, RequestID: requestID,
		ProjectID: in.ProjectID, StartTime: c.cfg.Now()})
	return err
}

// poll is a round of the work loop: place what waits for a host, spawn
// what waited for its volumes, finish the deletes recorded.
func (c *Conductor) poll(ctx context.Context) {
	c.schedulePending(ctx)
	c.awaitVolumes(ctx)
	c.deletePending(ctx)
}

// schedulePending places the instances waiting for a host, grouped by the
// build they came in.
func (c *Conductor) schedulePending(ctx context.Context) {
	insts, err := celldb.ListByTask(ctx, c.cfg.DB, celldb.TaskScheduling, 1000)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("reading instances to schedule", "err", err)
		}
		return
	}
	groups := map[string][]*celldb.Instance{}
	var order []string
	now := c.cfg.Now()
	for _, in := range insts {
		if c.waiting.waits(in.UUID, now) || !c.pool.Take(in.UUID) {
			continue
		}
		k := in.ReservationID + "/" + in.Flavor.ID + "/" + in.AvailabilityZone
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], in)
	}
	// The builds without a server group are placed together: the host
	// scheduler is asked for each in turn (it counts each choice at once),
	// then every first choice is claimed in one transaction, so that the
	// builds start, allocate and spawn together too. A build with a group
	// goes alone: its group's hosts are read from the claims before it.
	var firsts []*firstRound
	for _, k := range order {
		g := groups[k]
		if g[0].Build.Group != nil {
			c.scheduleGroup(ctx, g, nil)
			continue
		}
		sels, err := c.selectHosts(ctx, g[0], len(g), nil, nil)
		if err != nil && !errors.Is(err, hostsched.ErrNoValidHost) {
			if ctx.Err() == nil {
				c.log.Error("host scheduler failed", "request_id", g[0].RequestID, "err", err)
			}
			for _, in := range g {
				c.pool.Release(in.UUID)
			}
			continue
		}
		firsts = append(firsts, &firstRound{group: g, sels: sels, why: err})
	}
	var chosen []*celldb.Instance
	var sels []hostsched.Selection
	for _, f := range firsts {
		n := min(len(f.sels), len(f.group))
		chosen = append(chosen, f.group[:n]...)
		sels = append(sels, f.sels[:n]...)
	}
	var hosts []string
	var errs []error
	if len(chosen) > 0 {
		hosts, errs = c.claimAll(ctx, chosen, sels)
	}
	for _, f := range firsts {
		n := min(len(f.sels), len(f.group))
		f.hosts, f.errs = hosts[:n], errs[:n]
		hosts, errs = hosts[n:], errs[n:]
		c.scheduleGroup(ctx, f.group, f)
	}
}

// firstRound is a build's first selection and the outcome of its claims,
// made together with other builds' (schedulePending).
type firstRound struct {
	group []*celldb.Instance
	sels  []hostsched.Selection
	why   error // the scheduler's error: ErrNoValidHost when not all fit
	hosts []string
	errs  []error
}

// selectHosts asks the host scheduler for n instances like first, on
// hosts other than ignore.
func (c *Conductor) selectHosts(ctx context.Context, first *celldb.Instance, n int, grp *hostsched.Group, ignore []string) ([]hostsched.Selection, error) {
	req := hostRequest(first)
	req.NumInstances, req.Group, req.IgnoreHosts = n, grp, ignore
	return c.cfg.Scheduler.Select(ctx, req)
}

// scheduleGroup places a group: the host scheduler picks, then each choice
// is claimed on the host at once (in the cell database), so the next choice
// sees it and concurrent builds never oversubscribe a host. Instances whose
// host filled up meanwhile are scheduled again; those that fit nowhere in
// this cell go back to the scheduling parent. With pre, the first round's
// selection and claims were made already (schedulePending).
func (c *Conductor) scheduleGroup(ctx context.Context, group []*celldb.Instance, pre *firstRound) {
	first := group[0]
	log := c.log.With("request_id", first.RequestID, "reservation_id", first.ReservationID)
	pending := group
	var why error
	// refused are the hosts that refused a claim of this group: they had
	// no room, whatever the scheduler's view said (it counts its own
	// choices, not the claims made since it was read), so the next round
	// asks for other hosts, which also has the view read again.
	var refused []string
	for round := 0; round < c.cfg.MaxHostAttempts && len(pending) > 0; round++ {
		var sels []hostsched.Selection
		var hosts []string
		var errs []error
		if round == 0 && pre != nil {
			sels, why, hosts, errs = pre.sels, pre.why, pre.hosts, pre.errs
		} else {
			// A server group's hosts are read afresh each round: the
			// claims of the rounds before count.
			grp, err := c.groupRequest(ctx, first.Build.Group)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("reading the server group's hosts", "err", err)
				}
				for _, in := range pending {
					c.pool.Release(in.UUID)
				}
				return
			}
			sels, err = c.selectHosts(ctx, first, len(pending), grp, refused)
			if err != nil && !errors.Is(err, hostsched.ErrNoValidHost) {
				if ctx.Err() == nil {
					log.Error("host scheduler failed", "err", err)
				}
				for _, in := range pending {
					c.pool.Release(in.UUID)
				}
				return
			}
			why = err
			if chosen := min(len(sels), len(pending)); chosen > 0 {
				hosts, errs = c.claimAll(ctx, pending[:chosen], sels[:chosen])
			}
		}
		var next []*celldb.Instance
		chosen := min(len(sels), len(pending))
		for i, in := range pending {
			if i >= chosen {
				next = append(next, in)
				continue
			}
			host, err := hosts[i], errs[i]
			switch {
			case errors.Is(err, wire.ErrConflict):
				c.pool.Done(in.UUID) // deleted meanwhile
			case errors.Is(err, celldb.ErrClaimFailed):
				next = append(next, in)
				why = err
				for _, h := range append([]string{sels[i].Host}, sels[i].Alternates...) {
					if !slices.Contains(refused, h) {
						refused = append(refused, h)
					}
				}
			case err != nil:
				log.Error("claiming a host", "instance", in.UUID, "err", err)
				c.pool.Release(in.UUID)
			default:
				c.goBuild(ctx, in, host, sels[i].Alternates)
			}
		}
		if len(next) == len(pending) && len(sels) == 0 {
			break // nothing fits: no point in asking again
		}
		pending = next
	}
	if len(pending) > 0 {
		if why == nil {
			why = hostsched.ErrNoValidHost
		}
		// A build with volumes in this cell stays here (volumes.go).
		pending = c.failPinned(ctx, log, pending, why)
	}
	if len(pending) > 0 {
		c.handBack(ctx, log, pending, why)
	}
}

// claimAll claims a host for each instance, all in one transaction: the
// selected host, or else the first alternate with room. The selected
// hosts are claimed at once (Owner.PlaceAll: one round trip on
// PostgreSQL), then the alternates of those refused, one by one. A claim a
// full host refuses undoes its own statements (celldb.Place), so the
// transaction first runs without savepoints, which cost two statements
// and a subtransaction each; only when a claim fails otherwise (the
// instance deleted meanwhile, a statement's error) is it run again with a
// savepoint per claim, so that the one that failed does not undo the
// others. A claim's error is in errs.
func (c *Conductor) claimAll(ctx context.Context, insts []*celldb.Instance, sels []hostsched.Selection) (hosts []string, errs []error) {
	hosts, errs = make([]string, len(insts)), make([]error, len(insts))
	err := c.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		return c.claimEach(ctx, tx, insts, sels, hosts, errs, false)
	})
	if errors.Is(err, errClaimNeedsSavepoints) {
		err = c.cfg.DB.Group(ctx, func(tx *db.Tx) error {
			return c.claimEach(ctx, tx, insts, sels, hosts, errs, true)
		})
	}
	if err != nil {
		for i := range insts {
			hosts[i], errs[i] = "", err
		}
	}
	return hosts, errs
}

// errClaimNeedsSavepoints ends claimAll's first attempt: a claim failed
// in a way that may have left statements to undo.
var errClaimNeedsSavepoints = errors.New("a claim failed: claiming again with savepoints")

// claimEach is claimAll's transaction, with or without a savepoint per
// claim.
func (c *Conductor) claimEach(ctx context.Context, tx *db.Tx, insts []*celldb.Instance, sels []hostsched.Selection, hosts []string, errs []error, savepoints bool) error {
	// Without savepoints, every first choice is claimed at once (one
	// round trip on PostgreSQL), then the alternates of those refused.
	var firsts []error
	if !savepoints {
		chosen := make([]string, len(insts))
		for i := range insts {
			chosen[i] = sels[i].Host
		}
		firsts = c.state.PlaceAll(ctx, tx, insts, chosen)
	}
	for i, in := range insts {
		hosts[i], errs[i] = "", nil
		for j, host := range append([]string{sels[i].Host}, sels[i].Alternates...) {
			var err error
			if savepoints {
				var txErr error
				if err, txErr = c.placeUnder(ctx, tx, "claim"+strconv.Itoa(i), in, host); txErr != nil {
					return txErr
				}
			} else {
				if err = firsts[i]; j > 0 {
					err = c.state.Place(ctx, tx, in, host)
				}
				if err != nil && !errors.Is(err, celldb.ErrClaimFailed) {
					return fmt.Errorf("%w: %w", errClaimNeedsSavepoints, err)
				}
			}
			if err == nil {
				hosts[i], errs[i] = host, nil
				break
			}
			errs[i] = err
			if !errors.Is(err, celldb.ErrClaimFailed) {
				break
			}
		}
	}
	return nil
}

// placeUnder is Place under a savepoint, so that a claim that fails is
// undone alone: err is the claim's error, txErr that of a savepoint
// statement, which ends the transaction.
func (c *Conductor) placeUnder(ctx context.Context, tx *db.Tx, sp string, in *celldb.Instance, host string) (err, txErr error) {
	if txErr = tx.Savepoint(ctx, sp); txErr != nil {
		return nil, txErr
	}
	if err = c.state.Place(ctx, tx, in, host); err != nil {
		if txErr = tx.RollbackTo(ctx, sp); txErr != nil {
			return err, txErr
		}
	}
	return err, tx.Release(ctx, sp)
}

// handBack returns instances this cell cannot place to the cell that
// scheduled them here. It frees what they hold here first: the fixed IPs
// of an instance whose build a restart cut short after its network was
// allocated (recover put it back to scheduling), then, in the transaction
// that removes the rows and sends build_failed, any claim. Each step is
// safe to repeat, so a process that dies in between leaves instances still
// waiting for a host, which the next one places or hands back. An instance
// deleted meanwhile is not handed back (its parent would build a server
// its user deleted): its delete goes on here.
func (c *Conductor) handBack(ctx context.Context, log *slog.Logger, insts []*celldb.Instance, why error) {
	finish := c.pool.Done
	defer func() {
		for _, in := range insts {
			finish(in.UUID)
		}
	}()
	for _, in := range insts {
		if in.Build.NoNetwork {
			continue
		}
		if err := c.cfg.Network.Deallocate(ctx, in.UUID); err != nil {
			if ctx.Err() == nil {
				log.Error("freeing the network of an instance to hand back; will retry", "instance", in.UUID, "err", err)
			}
			finish = c.pool.Release
			return
		}
	}
	first := insts[0]
	b := wire.BuildInstances{Flavor: first.Flavor, ImageProperties: first.Build.ImageProps, Hints: first.Build.Hints,
		TargetCell: first.Build.TargetCell, SameCell: first.Build.SameCell, DifferentCell: first.Build.DifferentCell, NoNetwork: first.Build.NoNetwork,
		Scheduler: first.Build.Scheduler, Attempts: first.Build.Attempts, Tried: first.Build.Tried, Group: first.Build.Group,
		ForcedHost: first.Build.ForcedHost, ForcedNode: first.Build.ForcedNode,
		RequestedHost: first.Build.RequestedHost, RequestedNode: first.Build.RequestedNode}
	// An affinity group with members here cannot go to another cell.
	b.SameCell = c.pinAffinity(ctx, log, first.Build.Group, b.SameCell)
	uuids := make([]string, 0, len(insts))
	for _, in := range insts {
		uuids = append(uuids, in.UUID)
	}
	reason := fmt.Sprintf("cell %s: %v", c.cfg.Cell, why)
	log.Warn("no host for instances; handing the build back", "instances", len(insts), "to", b.Scheduler, "reason", why)
	var kept int
	err := c.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		purged, err := c.state.Purge(ctx, tx, uuids)
		if err != nil {
			return err
		}
		kept = len(insts) - len(purged)
		if len(purged) == 0 {
			return nil
		}
		hb := b
		hb.Instances, hb.BaseVersion = nil, 0
		for _, in := range insts {
			if slices.Contains(purged, in.UUID) {
				hb.Instances = append(hb.Instances, in.InstanceSpec)
				hb.BaseVersion = max(hb.BaseVersion, in.Version+1)
			}
		}
		return c.cfg.Sender.Send(ctx, tx, b.Scheduler, wire.MethodBuildFailed, first.RequestID,
			&wire.BuildFailed{Build: hb, Cell: c.cfg.Cell, Reason: reason})
	})
	if err != nil {
		if ctx.Err() == nil {
			log.Error("handing a build back", "err", err)
		}
		finish = c.pool.Release
		return
	}
	if kept > 0 {
		log.Info("instances deleted while being handed back stay to be deleted here", "instances", kept)
	}
}

func (c *Conductor) goBuild(ctx context.Context, in *celldb.Instance, host string, alternates []string) {
	c.pool.Go(ctx, in.UUID, func(ctx context.Context) bool {
		return c.build(ctx, in, host, alternates)
	})
}

// build allocates the network, has the build's volumes made (volumes.go:
// an instance that must wait for them is spawned by a later round), and
// spawns on the claimed host, trying the alternates (and then the
// scheduler again) when a spawn fails. It reports whether the build made
// progress: a build that waits for address blocks did not.
func (c *Conductor) build(ctx context.Context, in *celldb.Instance, claimed string, alternates []string) bool {
	log := c.log.With("request_id", in.RequestID, "instance", in.UUID)
	if in.Build.NoNetwork {
		log.Debug("booting without a network")
	} else if _, err := c.cfg.Network.Allocate(ctx, in.UUID, in.NICs); err != nil {
		switch {
		case ctx.Err() != nil:
			// shutting down: the build resumes after a restart
		case errors.Is(err, wire.ErrAddressesPending):
			c.waitForAddresses(ctx, log, in)
			return false
		case errors.Is(err, wire.ErrNetworkFull):
			// Nova's NoMoreFixedIps, as its compute manager aborts the
			// build with it.
			c.fail(ctx, log, in, 500, fmt.Sprintf("Build of instance %s aborted: Failed to allocate the network(s) with error %s, not rescheduling.",
				in.UUID, fullMessage(err)))
		default:
			c.fail(ctx, log, in, 500, fmt.Sprintf("Build of instance %s aborted: Failed to allocate the network(s), not rescheduling. %v", in.UUID, err))
		}
		return true
	}
	if len(in.VolumeMappings()) > 0 {
		ready, progress := c.prepareVolumes(ctx, log, in)
		if !ready {
			return progress
		}
	}
	return c.spawn(ctx, log, in, claimed, alternates)
}

// spawn spawns the instance on the claimed host, trying the alternates
// (and then the scheduler again) when a spawn fails.
func (c *Conductor) spawn(ctx context.Context, log *slog.Logger, in *celldb.Instance, claimed string, alternates []string) bool {
	ignore := append([]string(nil), in.Build.IgnoreHosts...)
	hosts := append([]string{claimed}, alternates...)
	var lastErr error
	attempts := c.cfg.MaxHostAttempts
	if in.Build.Forced() {
		// Nova does not reschedule a build forced to a host or node.
		attempts = 1
	}
	for attempt := 0; attempt < attempts; attempt++ {
		if ctx.Err() != nil {
			return true
		}
		host := ""
		for _, h := range hosts {
			if !slices.Contains(ignore, h) {
				host = h
				break
			}
		}
		if host == "" {
			req := hostRequest(in)
			req.IgnoreHosts = ignore
			s, err := c.cfg.Scheduler.Select(ctx, req)
			if err != nil || len(s) == 0 {
				lastErr = fmt.Errorf("no other host: %w", err)
				break
			}
			host, hosts = s[0].Host, append([]string{s[0].Host}, s[0].Alternates...)
		}
		err := c.cfg.Compute.Spawn(ctx, host, in.UUID)
		if err == nil {
			c.cfg.Capacity.ReportSoon()
			if c.cfg.Volumes != nil && len(in.VolumeMappings()) > 0 {
				c.cfg.Volumes.Wake() // the host attaches its volumes
			}
			return true
		}
		if errors.Is(err, celldb.ErrGone) {
			log.Info("instance deleted while building")
			return true
		}
		if ctx.Err() != nil {
			return true
		}
		lastErr = err
		ignore = append(ignore, host)
		log.Warn("build on host failed; rescheduling", "host", host, "attempt", attempt+1, "err", err)
		// A spawn that never reached the host (its agent is down, say)
		// leaves the claim taken when the host was chosen; give it back, or
		// no other host can be claimed for the instance.
		if err := c.state.ReleaseIn(ctx, c.cfg.DB, in.UUID); err != nil && ctx.Err() == nil {
			log.Error("releasing the claim on a failed host", "host", host, "err", err)
		}
	}
	if in.Build.Forced() && lastErr != nil {
		// Nova's fault for a build it does not reschedule: the reason the
		// host gave.
		c.fail(ctx, log, in, 500, lastErr.Error())
		return true
	}
	c.fail(ctx, log, in, 500, fmt.Sprintf("%s Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance %s. Last error: %v",
		"No valid host was found.", in.UUID, lastErr))
	return true
}

// fail puts an instance in ERROR with a fault and tells the API cell.
func (c *Conductor) fail(ctx context.Context, log *slog.Logger, in *celldb.Instance, code int, msg string) {
	if ctx.Err() != nil {
		return // shutting down: not a failure of the build, which resumes after a restart
	}
	log.Error("build failed", "fault", msg)
	vmErr, none, noState := celldb.VMError, "", celldb.PowerNoState
	now := c.cfg.Now()
	err := c.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		cur, err := celldb.Get(ctx, tx, in.UUID)
		if err != nil {
			return err
		}
		if cur.Deleted || cur.TaskState == celldb.TaskDeleting {
			return nil
		}
		// An instance in ERROR holds no resources.
		if err := c.state.Release(ctx, tx, in.UUID); err != nil {
			return err
		}
		if err := c.forgetVolumes(ctx, tx, in, in.RequestID); err != nil {
			return err
		}
		if err := celldb.FinishAction(ctx, tx, in.UUID, in.RequestID, "Error", msg, in.Host, now); err != nil {
			return err
		}
		_, err = c.state.Transition(ctx, tx, in.UUID, nil, celldb.Change{VMState: &vmErr, TaskState: &none, PowerState: &noState,
			Fault: &wire.Fault{Code: code, Message: msg, Created: now}})
		return err
	})
	if err != nil {
		log.Error("recording a failed build", "err", err)
	}
}

// deletePending finishes the deletes the cells service recorded. Each is
// run once: the pool refuses an instance whose delete ended after the list
// was read (workpool.Pool.Take), so a delete in flight while the list was
// read is not run again from it.
func (c *Conductor) deletePending(ctx context.Context) {
	dels, err := celldb.ListDeleting(ctx, c.cfg.DB, 1000)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("reading instances to delete", "err", err)
		}
		return
	}
	for _, d := range dels {
		if !c.pool.Take(d.UUID) {
			continue
		}
		if !c.pool.Go(ctx, d.UUID, func(ctx context.Context) bool { return c.delete(ctx, d.Instance, d.DeleteRequestID) }) {
			return
		}
	}
}

// delete finishes one delete, requested by requestID, and reports whether
// it did.
func (c *Conductor) delete(ctx context.Context, in *celldb.Instance, requestID string) bool {
	if requestID == "" {
		requestID = in.RequestID // put in deleting without a delete action
	}
	log := c.log.With("request_id", requestID, "instance", in.UUID)
	if in.Host != "" {
		if err := c.cfg.Compute.Destroy(ctx, in.Host, in.UUID); err != nil {
			log.Error("destroy failed; will retry", "err", err)
			return false
		}
	}
	// A server deleted during a resize, or while it waits for one to be
	// confirmed, has a copy and a claim on each host.
	if m, err := celldb.ActiveMigration(ctx, c.cfg.DB, in.UUID); err == nil {
		for _, h := range []string{m.SourceHost, m.DestHost} {
			if h == "" || h == in.Host {
				continue
			}
			if err := c.cfg.Compute.Destroy(ctx, h, in.UUID); err != nil {
				log.Error("destroy on the other host of a resize failed; will retry", "host", h, "err", err)
				return false
			}
		}
		err := c.cfg.DB.Group(ctx, func(tx *db.Tx) error {
			if err := c.state.Release(ctx, tx, celldb.DestClaimKey(in.UUID)); err != nil {
				return err
			}
			return celldb.SetMigrationStatus(ctx, tx, m.ID, "deleted", c.cfg.Now())
		})
		if err != nil {
			log.Error("releasing the resize claims failed; will retry", "err", err)
			return false
		}
	} else if !errors.Is(err, celldb.ErrNotFound) {
		log.Error("reading the instance's migration failed; will retry", "err", err)
		return false
	}
	if err := c.cfg.Network.Deallocate(ctx, in.UUID); err != nil {
		log.Error("freeing the network failed; will retry", "err", err)
		return false
	}
	deleting := celldb.TaskDeleting
	vmDeleted, none, noState := celldb.VMDeleted, "", celldb.PowerNoState
	err := c.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		if _, err := c.state.Transition(ctx, tx, in.UUID, &deleting, celldb.Change{VMState: &vmDeleted, TaskState: &none,
			PowerState: &noState, Deleted: true}); err != nil {
			return err
		}
		if err := c.forgetVolumes(ctx, tx, in, requestID); err != nil {
			return err
		}
		if c.cfg.Volumes != nil {
			return c.cfg.Volumes.InstanceGone(ctx, tx, in.UUID, requestID)
		}
		return nil
	})
	if err != nil {
		log.Error("recording the delete", "err", err)
		return false
	}
	c.cfg.Capacity.ReportSoon()
	log.Info("instance deleted")
	return true
}

// earlyDeleteRetention is how long a delete that came before its build is
// kept for it.
const earlyDeleteRetention = 24 * time.Hour

// healLoop resends recently changed instances upward, so that a lost or
// misapplied update is repaired within HealInterval.
func (c *Conductor) healLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.HealInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.Heal(ctx); err != nil && ctx.Err() == nil {
				c.log.Error("heal", "err", err)
			}
			if cutoff := c.cfg.Now().Add(-earlyDeleteRetention); c.early.pruneBefore(cutoff) {
				if _, err := celldb.PruneEarlyDeletes(ctx, c.cfg.DB, cutoff); err != nil && ctx.Err() == nil {
					c.log.Error("pruning early deletes", "err", err)
				}
			}
		}
	}
}

// Heal sends the instances changed within the heal window up again.
func (c *Conductor) Heal(ctx context.Context) error {
	return c.state.Heal(ctx, c.cfg.DB, c.cfg.HealWindow)
}

// hostRequest is what the host scheduler is asked for one instance of a
// build: its flavor and zone, and what the aggregate filters match (its
// project, the flavor's extra specs, the image's properties) and the host
// or node it is forced to or requests.
func hostRequest(in *celldb.Instance) *hostsched.Request {
	return &hostsched.Request{Flavor: in.Need(), NumInstances: 1, AvailabilityZone: in.AvailabilityZone,
		ProjectID: in.ProjectID, ExtraSpecs: in.Flavor.ExtraSpecs, ImageProperties: in.Build.ImageProps,
		ForcedHost: in.Build.ForcedHost, ForcedNode: in.Build.ForcedNode,
		RequestedHost: in.Build.RequestedHost, RequestedNode: in.Build.RequestedNode}
}
