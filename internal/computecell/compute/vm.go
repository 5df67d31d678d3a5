package compute

import (
	"context"

	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The VM primitives drive the hypervisor of one host and touch no
// database: the cell's instance operations (resize, shelve, rebuild) keep
// the state around them. Like Spawn, Act and Destroy, they wait for (or
// take over, or drop) a restart's restore of the copy they drive.

// VMSpawn starts a copy of the instance on host with the flavor.
func (s *Service) VMSpawn(ctx context.Context, host, uuid string, f wire.Flavor) error {
	s.dropRestore(ctx, vmKey{host, uuid})
	return s.cfg.Driver.Spawn(ctx, host, virt.Instance{UUID: uuid, VCPUs: f.VCPUs, RAMMB: f.RAMMB, DiskGB: f.RootGB})
}

// VMDestroy removes the instance's copy from host.
func (s *Service) VMDestroy(ctx context.Context, host, uuid string) error {
	s.dropRestore(ctx, vmKey{host, uuid})
	return s.cfg.Driver.Destroy(ctx, host, uuid)
}

// VMOp carries out a driver operation on the instance on host.
func (s *Service) VMOp(ctx context.Context, host, uuid, op string) error {
	o, ok := s.cfg.Driver.(virt.Operator)
	if !ok {
		return wire.Errorf(wire.CodeBadMessage, "compute: the driver cannot %s", op)
	}
	s.restoreOne(ctx, vmKey{host, uuid})
	return o.Operate(ctx, host, uuid, op)
}
