package instanceops

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Interfaces attached to and detached from a running instance. The API
// cell checked the instance's state against its copy, bound or made the
// port and handed out its addresses before it sent the message, and it has
// answered the request already, so the cell does not refuse: it records
// the change in the cells service's apply transaction (once per message),
// on the instance's addresses and its NICs (what its security groups are
// enforced by: Ports), with the instance action Nova records, and sends
// the instance's new addresses up with a version bump. No host operation is needed: the fake
// hypervisor has no interfaces to plug.

// Ports records, in the transaction of an interface change, the NIC
// attached or detached on the instance, raising the security groups'
// rules_gen (the ports the instance's filter is of changed), and asks for
// the groups an attached NIC names that the cell does not hold.
type Ports interface {
	Attached(ctx context.Context, tx *db.Tx, requestID, uuid string, nic wire.NIC) error
	Detached(ctx context.Context, tx *db.Tx, uuid, port string) error
}

// recordPorts is Ports without the asking.
type recordPorts struct{}

func (recordPorts) Attached(ctx context.Context, tx *db.Tx, _, uuid string, nic wire.NIC) error {
	return network.RecordAttached(ctx, tx, uuid, nic)
}

func (recordPorts) Detached(ctx context.Context, tx *db.Tx, uuid, port string) error {
	return network.RecordDetached(ctx, tx, uuid, port)
}

// AttachInterface is the cast handler of attach_interface.
func (o *Ops) AttachInterface(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var req wire.AttachInterface
	if err := json.Unmarshal(env.Payload, &req); err != nil || req.UUID == "" {
		return wire.Errorf(wire.CodeBadMessage, "attach_interface needs an instance")
	}
	log := o.log.With("request_id", env.RequestID, "instance", req.UUID, "action", "attach_interface", "port", req.NIC.PortID)
	return o.changeInterface(ctx, tx, env, req.UUID, req.UserID, req.ProjectID, "attach_interface", log, func(now time.Time) error {
		if err := o.cfg.Ports.Attached(ctx, tx, env.RequestID, req.UUID, req.NIC); err != nil {
			return err
		}
		return network.AttachNIC(ctx, tx, req.UUID, req.NIC, now)
	})
}

// DetachInterface is the cast handler of detach_interface.
func (o *Ops) DetachInterface(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var req wire.DetachInterface
	if err := json.Unmarshal(env.Payload, &req); err != nil || req.UUID == "" || req.PortID == "" {
		return wire.Errorf(wire.CodeBadMessage, "detach_interface needs an instance and a port")
	}
	log := o.log.With("request_id", env.RequestID, "instance", req.UUID, "action", "detach_interface", "port", req.PortID)
	return o.changeInterface(ctx, tx, env, req.UUID, req.UserID, req.ProjectID, "detach_interface", log, func(now time.Time) error {
		// Before the addresses are freed: a NIC the cell made on the boot
		// is found by them.
		if err := o.cfg.Ports.Detached(ctx, tx, req.UUID, req.PortID); err != nil {
			return err
		}
		return network.DetachPort(ctx, tx, req.UUID, req.PortID, now)
	})
}

// changeInterface records the instance action name with its event, makes
// the change, and sends the instance's state up. A change that fails (an
// address another instance of this cell has) is recorded as the action's
// error (its writes undone), and the instance's state is sent up
// unchanged.
func (o *Ops) changeInterface(ctx context.Context, tx *db.Tx, env *wire.Envelope, uuid, user, project, name string, log *slog.Logger,
	change func(now time.Time) error) error {
	in, err := celldb.Get(ctx, tx, uuid)
	if errors.Is(err, celldb.ErrNotFound) || (err == nil && in.Deleted) {
		log.Warn("interface change for an instance this cell does not have")
		return nil
	}
	if err != nil {
		return err
	}
	now := o.cfg.Now()
	record := wire.ActionRecord{UUID: uuid, Action: name, RequestID: env.RequestID, UserID: user, ProjectID: project, StartTime: now}
	if err := celldb.StartActionWithEvent(ctx, tx, record, "compute_"+name, in.Host, now); err != nil {
		return err
	}
	// The change runs under a savepoint: one that fails (on PostgreSQL, a
	// failed statement spoils the transaction) is undone alone.
	if err := tx.Savepoint(ctx, "iface"); err != nil {
		return err
	}
	result, traceback := "Success", ""
	if err := change(now); err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			return err
		}
		log.Warn("interface change refused by the cell", "err", err)
		result, traceback = "Error", err.Error()
		if err := tx.RollbackTo(ctx, "iface"); err != nil {
			return err
		}
	}
	if err := tx.Release(ctx, "iface"); err != nil {
		return err
	}
	if err := celldb.FinishAction(ctx, tx, uuid, env.RequestID, result, traceback, in.Host, now); err != nil {
		return err
	}
	if _, err := o.state.Transition(ctx, tx, uuid, nil, celldb.Change{}); err != nil {
		return err
	}
	log.Info("interface changed", "result", result)
	return nil
}
