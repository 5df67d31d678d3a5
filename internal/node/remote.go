package node

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/cells"
	"github.com/cellcloud/cellcloud/internal/tree/rpc"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Subjects of the roles inside one cell, on the cell's own broker. Each
// begins with the cell's subject root (subjectRoot): the tree's prefix and
// the cell path; the cell arguments and fields below are that root.
func schedSubject(cell string) string   { return cell + ".scheduler.select" }
func netSubject(cell, op string) string { return cell + ".network." + op }
func computeSubject(cell, host, op string) string {
	return cell + ".compute." + host + "." + op
}

// subjectRoot begins the subjects of cell's roles under the tree's
// broker.prefix: "cellcloud.<cell>" by default, as before the prefix could
// be set.
func subjectRoot(prefix, cell string) string { return prefix + "." + cell }

// Deadlines of calls to roles in other processes, so that a role that
// takes a request and dies cannot hold a build for ever.
const (
	remoteTimeout      = 30 * time.Second
	remoteSpawnTimeout = 5 * time.Minute
)

type hostOp struct {
	UUID   string       `json:"uuid"`
	Action string       `json:"action,omitempty"`
	Flavor *wire.Flavor `json:"flavor,omitempty"`
	NICs   []wire.NIC   `json:"nics,omitempty"`
	// Device and Path: a volume's device in the guest and its backing
	// (volume.attach, volume.detach).
	Device string `json:"device,omitempty"`
	Path   string `json:"path,omitempty"`
}

// remoteScheduler, remoteNetwork and remoteCompute reach roles that run in
// another process of the same cell.
type remoteScheduler struct {
	nc   *nats.Conn
	cell string
}

func (r remoteScheduler) Select(ctx context.Context, req *hostsched.Request) ([]hostsched.Selection, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	var out struct {
		Selections []hostsched.Selection `json:"selections"`
		Error      string                `json:"error,omitempty"`
	}
	if err := rpc.Call(ctx, r.nc, schedSubject(r.cell), req, &out); err != nil {
		return nil, err
	}
	if out.Error != "" {
		return out.Selections, noValidHost(out.Error)
	}
	return out.Selections, nil
}

// noValidHost is the scheduler's ErrNoValidHost as it came over the wire:
// the served error's message already says "no valid host was found", so it
// is kept as it is (not prefixed again) and matches hostsched.ErrNoValidHost.
type noValidHost string

func (e noValidHost) Error() string { return string(e) }
func (e noValidHost) Unwrap() error { return hostsched.ErrNoValidHost }

type remoteNetwork struct {
	nc   *nats.Conn
	cell string
}

func (r remoteNetwork) Allocate(ctx context.Context, uuid string, nics []wire.NIC) ([]wire.Address, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	var out []wire.Address
	err := rpc.Call(ctx, r.nc, netSubject(r.cell, "allocate"), hostOp{UUID: uuid, NICs: nics}, &out)
	return out, err
}

func (r remoteNetwork) Deallocate(ctx context.Context, uuid string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, netSubject(r.cell, "deallocate"), hostOp{UUID: uuid}, nil)
}

type remoteCompute struct {
	nc   *nats.Conn
	cell string
}

func (r remoteCompute) Spawn(ctx context.Context, host, uuid string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteSpawnTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "spawn"), hostOp{UUID: uuid}, nil)
}

func (r remoteCompute) Act(ctx context.Context, host, uuid, action string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteSpawnTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "act"), hostOp{UUID: uuid, Action: action}, nil)
}

func (r remoteCompute) ConsoleOutput(ctx context.Context, host, uuid string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	var out string
	err := rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "console"), hostOp{UUID: uuid}, &out)
	return out, err
}

func (r remoteCompute) VMSpawn(ctx context.Context, host, uuid string, f wire.Flavor) error {
	ctx, cancel := context.WithTimeout(ctx, remoteSpawnTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "vm.spawn"), hostOp{UUID: uuid, Flavor: &f}, nil)
}

func (r remoteCompute) VMDestroy(ctx context.Context, host, uuid string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "vm.destroy"), hostOp{UUID: uuid}, nil)
}

func (r remoteCompute) VMOp(ctx context.Context, host, uuid, op string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteSpawnTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "vm.op"), hostOp{UUID: uuid, Action: op}, nil)
}

func (r remoteCompute) InstanceFilter(ctx context.Context, host, uuid string) (wire.InstanceFilterAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	var out wire.InstanceFilterAnswer
	err := rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "filter"), hostOp{UUID: uuid}, &out)
	return out, err
}

func (r remoteCompute) AttachVolume(ctx context.Context, host, uuid, device, path string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "volume.attach"), hostOp{UUID: uuid, Device: device, Path: path}, nil)
}

func (r remoteCompute) DetachVolume(ctx context.Context, host, uuid, device string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "volume.detach"), hostOp{UUID: uuid, Device: device}, nil)
}

func (r remoteCompute) Destroy(ctx context.Context, host, uuid string) error {
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, computeSubject(r.cell, host, "destroy"), hostOp{UUID: uuid}, nil)
}

// Local role interfaces, as served over rpc.
type selector interface {
	Select(ctx context.Context, req *hostsched.Request) ([]hostsched.Selection, error)
}

type allocator interface {
	Allocate(ctx context.Context, uuid string, nics []wire.NIC) ([]wire.Address, error)
	Deallocate(ctx context.Context, uuid string) error
}

type spawner interface {
	Spawn(ctx context.Context, host, uuid string) error
	Destroy(ctx context.Context, host, uuid string) error
	Act(ctx context.Context, host, uuid, action string) error
	ConsoleOutput(ctx context.Context, host, uuid string) (string, error)
	VMSpawn(ctx context.Context, host, uuid string, f wire.Flavor) error
	VMDestroy(ctx context.Context, host, uuid string) error
	VMOp(ctx context.Context, host, uuid, op string) error
	InstanceFilter(ctx context.Context, host, uuid string) (wire.InstanceFilterAnswer, error)
	AttachVolume(ctx context.Context, host, uuid, device, path string) error
	DetachVolume(ctx context.Context, host, uuid, device string) error
}

func decodeOp(b json.RawMessage) (hostOp, error) {
	var op hostOp
	if err := json.Unmarshal(b, &op); err != nil || op.UUID == "" {
		return op, wire.Errorf(wire.CodeBadMessage, "request needs an instance uuid")
	}
	return op, nil
}

func serveScheduler(srv *rpc.Server, cell string, s selector) error {
	return srv.Handle(schedSubject(cell), "scheduler", func(ctx context.Context, b json.RawMessage) (any, error) {
		var req hostsched.Request
		if err := json.Unmarshal(b, &req); err != nil {
			return nil, wire.Errorf(wire.CodeBadMessage, "select: %v", err)
		}
		sels, err := s.Select(ctx, &req)
		out := struct {
			Selections []hostsched.Selection `json:"selections"`
			Error      string                `json:"error,omitempty"`
		}{Selections: sels}
		if errors.Is(err, hostsched.ErrNoValidHost) {
			out.Error = err.Error()
			return out, nil
		}
		return out, err
	})
}

func serveNetwork(srv *rpc.Server, cell string, n allocator) error {
	err := srv.Handle(netSubject(cell, "allocate"), "network", func(ctx context.Context, b json.RawMessage) (any, error) {
		op, err := decodeOp(b)
		if err != nil {
			return nil, err
		}
		return n.Allocate(ctx, op.UUID, op.NICs)
	})
	if err != nil {
		return err
	}
	return srv.Handle(netSubject(cell, "deallocate"), "network", func(ctx context.Context, b json.RawMessage) (any, error) {
		op, err := decodeOp(b)
		if err != nil {
			return nil, err
		}
		return nil, n.Deallocate(ctx, op.UUID)
	})
}

func serveCompute(srv *rpc.Server, cell string, hosts []string, c spawner) error {
	for _, host := range hosts {
		ops := []struct {
			op string
			h  func(ctx context.Context, op hostOp) (any, error)
		}{
			{"spawn", func(ctx context.Context, op hostOp) (any, error) { return nil, c.Spawn(ctx, host, op.UUID) }},
			{"destroy", func(ctx context.Context, op hostOp) (any, error) { return nil, c.Destroy(ctx, host, op.UUID) }},
			{"act", func(ctx context.Context, op hostOp) (any, error) { return nil, c.Act(ctx, host, op.UUID, op.Action) }},
			{"console", func(ctx context.Context, op hostOp) (any, error) { return c.ConsoleOutput(ctx, host, op.UUID) }},
			{"vm.spawn", func(ctx context.Context, op hostOp) (any, error) {
				if op.Flavor == nil {
					return nil, wire.Errorf(wire.CodeBadMessage, "vm.spawn needs a flavor")
				}
				return nil, c.VMSpawn(ctx, host, op.UUID, *op.Flavor)
			}},
			{"vm.destroy", func(ctx context.Context, op hostOp) (any, error) { return nil, c.VMDestroy(ctx, host, op.UUID) }},
			{"vm.op", func(ctx context.Context, op hostOp) (any, error) { return nil, c.VMOp(ctx, host, op.UUID, op.Action) }},
			{"filter", func(ctx context.Context, op hostOp) (any, error) { return c.InstanceFilter(ctx, host, op.UUID) }},
			{"volume.attach", func(ctx context.Context, op hostOp) (any, error) {
				if op.Device == "" || op.Path == "" {
					return nil, wire.Errorf(wire.CodeBadMessage, "volume.attach needs a device and a path")
				}
				return nil, c.AttachVolume(ctx, host, op.UUID, op.Device, op.Path)
			}},
			{"volume.detach", func(ctx context.Context, op hostOp) (any, error) {
				if op.Device == "" {
					return nil, wire.Errorf(wire.CodeBadMessage, "volume.detach needs a device")
				}
				return nil, c.DetachVolume(ctx, host, op.UUID, op.Device)
			}},
		}
		for _, o := range ops {
			err := srv.Handle(computeSubject(cell, host, o.op), "", func(ctx context.Context, b json.RawMessage) (any, error) {
				op, err := decodeOp(b)
				if err != nil {
					return nil, err
				}
				return o.h(ctx, op)
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// The API role reaches the cells with calls (console output, instance
// actions); when the cells service runs in another process of the API
// cell, the call goes to it over the cell's broker.
func cellsCallSubject(cell string) string { return cell + ".cells.call" }

type cellsCall struct {
	Target    string          `json:"target"`
	Method    string          `json:"method"`
	RequestID string          `json:"request_id,omitempty"`
	Payload   json.RawMessage `json:"payload,omitempty"`
	// Gather asks every cell below (Target is then empty).
	Gather bool `json:"gather,omitempty"`
}

// gatherReply is the answer to a gathering cells call.
type gatherReply struct {
	Results []wire.Result `json:"results"`
	Missing []string      `json:"missing,omitempty"`
}

type caller interface {
	Call(ctx context.Context, target, method, requestID string, payload, out any) error
	Gather(ctx context.Context, method, requestID string, payload any) ([]wire.Result, []string, error)
}

// localCaller is the cells service of this process, as the API uses it.
type localCaller struct{ *cells.Service }

// Gather asks every cell below this one.
func (l localCaller) Gather(ctx context.Context, method, requestID string, payload any) ([]wire.Result, []string, error) {
	return l.Service.Gather(ctx, wire.Down, cellpath.MaxDepth, method, requestID, payload)
}

// Gather asks every cell below through the cells service's process.
func (r remoteCaller) Gather(ctx context.Context, method, requestID string, payload any) ([]wire.Result, []string, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	var out gatherReply
	err = rpc.Call(ctx, r.nc, cellsCallSubject(r.cell), cellsCall{Method: method, RequestID: requestID, Payload: b, Gather: true}, &out)
	return out.Results, out.Missing, err
}

type remoteCaller struct {
	nc   *nats.Conn
	cell string
}

func (r remoteCaller) Call(ctx context.Context, target, method, requestID string, payload, out any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, remoteTimeout)
	defer cancel()
	return rpc.Call(ctx, r.nc, cellsCallSubject(r.cell), cellsCall{Target: target, Method: method, RequestID: requestID, Payload: b}, out)
}

func serveCellsCalls(srv *rpc.Server, cell string, c caller) error {
	return srv.Handle(cellsCallSubject(cell), "cells", func(ctx context.Context, b json.RawMessage) (any, error) {
		var req cellsCall
		if err := json.Unmarshal(b, &req); err != nil || (req.Target == "") != req.Gather || req.Method == "" {
			return nil, wire.Errorf(wire.CodeBadMessage, "cells call needs a method and a target (or gather)")
		}
		if req.Gather {
			res, missing, err := c.Gather(ctx, req.Method, req.RequestID, req.Payload)
			if err != nil {
				return nil, err
			}
			return gatherReply{Results: res, Missing: missing}, nil
		}
		var out json.RawMessage
		if err := c.Call(ctx, req.Target, req.Method, req.RequestID, req.Payload, &out); err != nil {
			return nil, err
		}
		return out, nil
	})
}
