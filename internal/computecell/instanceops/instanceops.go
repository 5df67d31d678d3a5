// Package instanceops carries out server actions in a compute cell: the
// cells service hands it an instance_action message, which it checks
// against the cell's own record (the truth), records as an instance action,
// and queues on the instance; a worker then has the instance's host do it.
// The queue is the instance row itself, so a restarted process resumes.
// Every change it makes to an instance, and the claims a move takes and
// gives back, go through instancestate; its workers run on a workpool.
package instanceops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/instancestate"
	"github.com/cellcloud/cellcloud/internal/computecell/workpool"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
	"github.com/cellcloud/cellcloud/internal/vmstate"
)

// Host carries out an action on an instance's host.
type Host interface {
	Act(ctx context.Context, host, uuid, action string) error
	ConsoleOutput(ctx context.Context, host, uuid string) (string, error)
}

// Sender sends a durable message from this cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// Config configures the operations.
type Config struct {
	Cell   string
	DB     *db.DB
	Sender Sender
	Host   Host
	// VMs and Scheduler carry out the moves (shelve, resize, ...).
	VMs       VMs
	Scheduler HostScheduler
	// Filters answers instance_filter (none: the cell cannot).
	Filters Filters
	// Workers bounds concurrent actions (default 32).
	Workers int
	// PollInterval is how often pending actions are looked for without a
	// wake-up (default 1s).
	PollInterval time.Duration
	// ShelvedOffloadTime is Nova's shelved_offload_time: 0 offloads a
	// shelved instance at once, a negative value never, and a positive one
	// once it has been SHELVED that long, looked for every
	// ShelvedPollInterval (Nova's shelved_poll_interval, default 1h).
	ShelvedOffloadTime  time.Duration
	ShelvedPollInterval time.Duration
	// Ports records an interface attached or detached on the instance's
	// NICs, for its security groups (network.SecGroups; default: recorded,
	// and the groups its NIC names that the cell does not hold are asked
	// for by the next periodic sync).
	Ports Ports
	// Volumes attaches and detaches the instance's volumes on the hosts a
	// move takes it to and from (default: VMs, when it can; none: the
	// moves leave the volumes alone, with a warning).
	Volumes VolumeHosts
	// BootVolumes re-images a volume-backed instance's boot volume in a
	// rebuild at 2.93 (the cell's volume role; none: such a rebuild
	// fails, the instance in ERROR).
	BootVolumes BootVolumes
	Logger      *slog.Logger
	Now         func() time.Time
}

// Ops is the server action service of a compute cell.
type Ops struct {
	cfg   Config
	log   *slog.Logger
	state *instancestate.Owner
	pool  *workpool.Pool
	// stop and done end the offload loop (ShelvedOffloadTime > 0).
	stop, done chan struct{}
}

// New validates the configuration.
func New(cfg Config) (*Ops, error) {
	if cfg.DB == nil || cfg.Sender == nil || cfg.Host == nil || cfg.VMs == nil || cfg.Scheduler == nil {
		return nil, errors.New("instanceops: database, sender, host, VMs and scheduler are required")
	}
	if err := cellpath.Validate(cfg.Cell); err != nil {
		return nil, fmt.Errorf("instanceops: %w", err)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ShelvedPollInterval <= 0 {
		cfg.ShelvedPollInterval = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ports == nil {
		cfg.Ports = recordPorts{}
	}
	if cfg.Volumes == nil {
		if v, ok := cfg.VMs.(VolumeHosts); ok {
			cfg.Volumes = v
		}
	}
	state, err := instancestate.New(cfg.Cell, cfg.Sender, cfg.Now)
	if err != nil {
		return nil, fmt.Errorf("instanceops: %w", err)
	}
	o := &Ops{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "instanceops"), state: state}
	o.pool = workpool.New(workpool.Config{Workers: cfg.Workers, PollInterval: cfg.PollInterval, Poll: o.runPending})
	return o, nil
}

// Start runs the worker loop, and the offload loop when shelved instances
// are offloaded after a while.
func (o *Ops) Start(context.Context) error {
	o.pool.Start()
	if o.cfg.ShelvedOffloadTime > 0 {
		o.stop, o.done = make(chan struct{}), make(chan struct{})
		go o.offloadLoop()
	}
	return nil
}

// Shutdown stops the loops and waits for actions in flight.
func (o *Ops) Shutdown(context.Context) error {
	if o.stop != nil {
		close(o.stop)
		<-o.done
	}
	o.pool.Shutdown()
	return nil
}

// Wake makes the worker look for pending actions now.
func (o *Ops) Wake() { o.pool.Wake() }

// HandleAction is the cast handler of instance_action. An action the
// instance's state does not allow (the API checked its copy, but the cell
// holds the truth) is recorded as a failed action and the instance's state
// is sent up again, so the API's copy drops the task state it set.
func (o *Ops) HandleAction(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var req wire.InstanceAction
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "instance_action: %v", err)
	}
	now := o.cfg.Now()
	log := o.log.With("request_id", env.RequestID, "instance", req.UUID, "action", req.Action)
	in, err := celldb.Get(ctx, tx, req.UUID)
	if errors.Is(err, celldb.ErrNotFound) {
		log.Warn("action for an instance this cell does not have")
		return nil
	}
	if err != nil {
		return err
	}
	record := wire.ActionRecord{UUID: req.UUID, RequestID: env.RequestID, UserID: req.UserID, ProjectID: req.ProjectID, StartTime: now}
	if req.Action == "reset_state" {
		return o.resetState(ctx, tx, in, req, record, now)
	}
	a, ok := vmstate.Actions[req.Action]
	if !ok {
		return wire.Errorf(wire.CodeBadMessage, "instance_action: unknown action %q", req.Action)
	}
	record.Action = a.Name
	if in.Deleted || in.Action != "" {
		return o.refuse(ctx, tx, in, record, fmt.Errorf("instance %s cannot %s now", in.UUID, a.Name), log)
	}
	if err := a.Check(in.UUID, in.VMState, in.TaskState); err != nil {
		return o.refuse(ctx, tx, in, record, err, log)
	}
	id, err := celldb.StartAction(ctx, tx, record)
	if err != nil {
		return err
	}
	event := a.HostOp
	if event == "" {
		event = req.Action
	}
	if _, err := celldb.StartEvent(ctx, tx, id, "compute_"+event, in.Host, now); err != nil {
		return err
	}
	// The action waits on the instance, in its task state (which the API
	// cell's copy has set already).
	pending := &celldb.PendingAction{Action: req.Action, Params: req.Params, RequestID: env.RequestID}
	if err := o.state.Step(ctx, tx, in.UUID, nil, celldb.Change{TaskState: &a.Task, Action: pending}); err != nil {
		return err
	}
	tx.AfterCommit(o.Wake)
	log.Info("server action accepted")
	return nil
}

// refuse records a failed action and resends the instance's state.
func (o *Ops) refuse(ctx context.Context, tx *db.Tx, in *celldb.Instance, record wire.ActionRecord, why error, log *slog.Logger) error {
	log.Warn("server action refused by the cell", "err", why)
	record.Message = "Error"
	if record.Action == "" {
		record.Action = "unknown"
	}
	if _, err := celldb.StartAction(ctx, tx, record); err != nil {
		return err
	}
	_, err := o.state.Transition(ctx, tx, in.UUID, nil, celldb.Change{})
	return err
}

// resetState is os-resetState: an admin sets the vm_state (active or
// error) and clears the task state.
func (o *Ops) resetState(ctx context.Context, tx *db.Tx, in *celldb.Instance, req wire.InstanceAction, record wire.ActionRecord, now time.Time) error {
	var p wire.ResetState
	if err := json.Unmarshal(req.Params, &p); err != nil || (p.State != vmstate.Active && p.State != vmstate.Error) {
		return wire.Errorf(wire.CodeBadMessage, "reset_state: state must be active or error")
	}
	record.Action = "resetState"
	if _, err := celldb.StartAction(ctx, tx, record); err != nil {
		return err
	}
	none := ""
	_, err := o.state.Transition(ctx, tx, in.UUID, nil, celldb.Change{VMState: &p.State, TaskState: &none, Action: &celldb.PendingAction{}})
	return err
}

// runPending is a round of the work loop: start the pending actions.
func (o *Ops) runPending(ctx context.Context) {
	ps, err := celldb.PendingActions(ctx, o.cfg.DB, 1000)
	if err != nil {
		if ctx.Err() == nil {
			o.log.Error("reading pending actions", "err", err)
		}
		return
	}
	for _, p := range ps {
		if !o.pool.Take(p.UUID) {
			continue
		}
		// An action that ends does not wake the loop: the next poll or
		// wake-up finds the next.
		if !o.pool.Go(ctx, p.UUID, func(ctx context.Context) bool { o.run(ctx, p); return false }) {
			return
		}
	}
}

// run carries out one pending action and closes its events.
func (o *Ops) run(ctx context.Context, p celldb.Pending) {
	in, err := celldb.Get(ctx, o.cfg.DB, p.UUID)
	if err != nil {
		o.log.Error("reading an instance with a pending action", "instance", p.UUID, "err", err)
		return
	}
	log := o.log.With("request_id", p.RequestID, "instance", p.UUID, "action", p.Action)
	var actErr error
	if _, ok := moves[p.Action]; ok {
		actErr = o.runMove(ctx, in, p, log)
	} else {
		actErr = o.cfg.Host.Act(ctx, in.Host, p.UUID, p.Action)
	}
	if ctx.Err() != nil {
		return // shutting down: the action stays pending
	}
	result, traceback := "Success", ""
	if actErr != nil && !errors.Is(actErr, celldb.ErrGone) {
		result, traceback = "Error", actErr.Error()
	}
	err = o.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		if actErr != nil {
			if err := o.dropAction(ctx, tx, p); err != nil {
				return err
			}
		}
		return celldb.FinishAction(ctx, tx, p.UUID, p.RequestID, result, traceback, "", o.cfg.Now())
	})
	if err != nil {
		log.Error("recording the end of a server action", "err", err)
	}
}

// dropAction clears an action that did not reach the host (Act records
// the state itself when it did), so it is not retried for ever, and clears
// its task state unless something else (a delete, a reset) has taken the
// instance over.
func (o *Ops) dropAction(ctx context.Context, tx *db.Tx, p celldb.Pending) error {
	cur, err := celldb.Get(ctx, tx, p.UUID)
	if err != nil || cur.Action != p.Action {
		return err
	}
	if cur.TaskState != vmstate.Actions[p.Action].Task {
		return o.state.ClearAction(ctx, tx, p.UUID)
	}
	none := ""
	_, err = o.state.Transition(ctx, tx, p.UUID, nil, celldb.Change{TaskState: &none, Action: &celldb.PendingAction{}})
	return err
}

// ConsoleOutput is the call handler of console_output.
func (o *Ops) ConsoleOutput(ctx context.Context, env *wire.Envelope) (any, error) {
	var req wire.ConsoleOutput
	if err := json.Unmarshal(env.Payload, &req); err != nil {
		return nil, wire.Errorf(wire.CodeBadMessage, "console_output: %v", err)
	}
	in, err := celldb.Get(ctx, o.cfg.DB, req.UUID)
	if errors.Is(err, celldb.ErrNotFound) || (err == nil && in.Deleted) {
		return nil, wire.Errorf(wire.CodeNotFound, "instance %s is not in cell %s", req.UUID, o.cfg.Cell)
	}
	if err != nil {
		return nil, err
	}
	if in.Host == "" {
		return nil, wire.Errorf(wire.CodeConflict, "Instance %s is not ready", in.UUID)
	}
	if !slices.Contains([]string{vmstate.Active, vmstate.Paused, vmstate.Suspended, vmstate.Rescued, vmstate.Stopped, vmstate.Resized, vmstate.Error}, in.VMState) {
		return nil, wire.Errorf(wire.CodeConflict, "Cannot 'get_console_output' instance %s while it is in vm_state %s", in.UUID, in.VMState)
	}
	out, err := o.cfg.Host.ConsoleOutput(ctx, in.Host, in.UUID)
	if err != nil {
		return nil, err
	}
	if req.Length > 0 {
		out = wire.TailConsole(out, req.Length)
	}
	return wire.ConsoleOutputReply{Output: out}, nil
}

// InstanceActions is the call handler of instance_actions.
func (o *Ops) InstanceActions(ctx context.Context, env *wire.Envelope) (any, error) {
	var req wire.InstanceActionsQuery
	if err := json.Unmarshal(env.Payload, &req); err != nil || req.UUID == "" {
		return nil, wire.Errorf(wire.CodeBadMessage, "instance_actions needs an instance uuid")
	}
	return celldb.ListActions(ctx, o.cfg.DB, req.UUID, req.RequestID)
}
