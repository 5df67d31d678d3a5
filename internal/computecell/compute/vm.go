package compute

import (
	"context"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/virt"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// The VM primitives drive the hypervisor of one host and touch no
// database (but for VMSpawn's read of the copy's ports and addresses, for
// its filter): the cell's instance operations (resize, shelve, rebuild) keep
// the state around them. Like Spawn, Act and Destroy, they wait for (or
// take over, or drop) a restart's restore of the copy they drive.

// VMSpawn starts a copy of the instance on host with the flavor.
func (s *Service) VMSpawn(ctx context.Context, host, uuid string, f wire.Flavor) error {
	s.dropRestore(ctx, vmKey{host, uuid})
	if err := s.cfg.Driver.Spawn(ctx, host, virt.Instance{UUID: uuid, VCPUs: f.VCPUs, RAMMB: f.RAMMB, DiskGB: f.RootGB}); err != nil {
		return err
	}
	s.filterUp(ctx, host, uuid)
	return nil
}

// filterUp sets the filter of a copy started outside a build (a move's):
// its NICs and addresses are read here, the firewall's periodic reload
// being the fallback when they cannot be.
func (s *Service) filterUp(ctx context.Context, host, uuid string) {
	if s.fw == nil {
		return
	}
	in, err := celldb.Get(ctx, s.cfg.DB, uuid)
	if err != nil {
		s.log.Warn("reading the ports of a copy for its filter", "instance", uuid, "host", host, "err", err)
		return
	}
	addrs, err := celldb.Addresses(ctx, s.cfg.DB, uuid)
	if err != nil {
		s.log.Warn("reading the addresses of a copy for its filter", "instance", uuid, "host", host, "err", err)
		return
	}
	s.fw.VMUp(ctx, host, uuid, in.Build.Enforced(), addrs)
}

// VMDestroy removes the instance's copy from host.
func (s *Service) VMDestroy(ctx context.Context, host, uuid string) error {
	s.dropRestore(ctx, vmKey{host, uuid})
	if err := s.cfg.Driver.Destroy(ctx, host, uuid); err != nil {
		return err
	}
	if s.fw != nil {
		s.fw.VMGone(ctx, host, uuid)
	}
	return nil
}

// VMOp carries out a driver operation on the instance on host.
func (s *Service) VMOp(ctx context.Context, host, uuid, op string) error {
	o, ok := s.cfg.Driver.(virt.Operator)
	if !ok {
		return wire.Errorf(wire.CodeBadMessage, "compute: the driver cannot %s", op)
	}
	s.restoreOne(ctx, vmKey{host, uuid})
	if err := o.Operate(ctx, host, uuid, op); err != nil {
		return err
	}
	s.operated(ctx, host, uuid, op)
	return nil
}
