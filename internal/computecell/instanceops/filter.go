package instanceops

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Filters reads what a host's firewall enforces on an instance's ports
// (the compute agent of the host: in this process, or over the cell's
// broker).
type Filters interface {
	InstanceFilter(ctx context.Context, host, uuid string) (wire.InstanceFilterAnswer, error)
}

// InstanceFilter is the call handler of instance_filter: the cell finds
// the instance's host and asks its compute agent what its driver
// enforces. An instance on no host (building, offloaded) has nothing
// enforced: the answer has no port.
func (o *Ops) InstanceFilter(ctx context.Context, env *wire.Envelope) (any, error) {
	var req wire.InstanceFilter
	if err := json.Unmarshal(env.Payload, &req); err != nil || req.UUID == "" {
		return nil, wire.Errorf(wire.CodeBadMessage, "instance_filter needs an instance uuid")
	}
	in, err := celldb.Get(ctx, o.cfg.DB, req.UUID)
	if errors.Is(err, celldb.ErrNotFound) || (err == nil && in.Deleted) {
		return nil, wire.Errorf(wire.CodeNotFound, "instance %s is not in cell %s", req.UUID, o.cfg.Cell)
	}
	if err != nil {
		return nil, err
	}
	if in.Host == "" {
		return wire.InstanceFilterAnswer{UUID: in.UUID, Ports: []wire.PortFilter{}}, nil
	}
	if o.cfg.Filters == nil {
		return nil, wire.Errorf(wire.CodeBadMessage, "instance_filter: cell %s reads no host's firewall", o.cfg.Cell)
	}
	ans, err := o.cfg.Filters.InstanceFilter(ctx, in.Host, in.UUID)
	if err != nil {
		o.log.Warn("reading an instance's filter", "request_id", env.RequestID, "instance", in.UUID, "host", in.Host, "err", err)
		return nil, err
	}
	return ans, nil
}
