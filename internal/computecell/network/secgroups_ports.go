package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// What the cell enforces on a port is on its instance's NIC (celldb's
// BuildContext.NICs): its groups, port security, address pairs and the
// port's revision they are of. port_update rewrites a NIC, newer-wins by
// that revision; an interface attached or detached adds or removes one.
// Each raises rules_gen.
//
// A port the cell made on a boot has no id on its NIC (its id is derived
// from its address, and is on its fixed_ips rows, whose nic is the NIC's
// index); the first time such a NIC is looked for by its port, the NICs
// that have addresses are given their ports' ids, and an instance that
// had no NICs (one on the default network) is given the NIC its
// addresses are on, so that later changes find them by id and an index
// that shifts (a NIC detached) loses none.

// PortUpdate is the cast handler of port_update: the port's NIC takes its
// groups, port security and address pairs if the message's revision is
// newer than the NIC's (so a repeat or a late copy changes nothing), and
// the groups it names that the cell does not hold are asked for in the
// same transaction. A port_update for an instance or a port the cell does
// not have is dropped.
func (s *SecGroups) PortUpdate(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.PortUpdate
	if err := json.Unmarshal(env.Payload, &m); err != nil || m.UUID == "" || m.PortID == "" || m.Revision < 1 {
		return wire.Errorf(wire.CodeBadMessage, "port_update needs an instance, a port and a revision")
	}
	log := s.log.With("request_id", env.RequestID, "instance", m.UUID, "port", m.PortID)
	b, err := celldb.BuildForUpdate(ctx, tx, m.UUID)
	if errors.Is(err, celldb.ErrNotFound) {
		log.Warn("port_update for an instance this cell does not have; dropped")
		return nil
	}
	if err != nil {
		return err
	}
	i, err := findPortNIC(ctx, tx, m.UUID, b, m.PortID)
	if err != nil {
		return err
	}
	if i < 0 {
		log.Warn("port_update for a port the instance does not have; dropped")
		return nil
	}
	nic := &b.NICs[i]
	if nic.PortRevision >= m.Revision {
		log.Info("port_update not newer than the port's; ignored", "revision", m.Revision, "held_revision", nic.PortRevision)
		return nil
	}
	nic.PortRevision = m.Revision
	nic.SecurityGroups = m.SecurityGroups
	nic.NoPortSecurity = !m.PortSecurity
	nic.AllowedAddressPairs = m.AllowedAddressPairs
	if err := celldb.SetBuild(ctx, tx, m.UUID, b); err != nil {
		return err
	}
	if err := s.Want(ctx, tx, env.RequestID, b.NICs[i:i+1]); err != nil {
		return err
	}
	if err := raiseGens(ctx, tx, true, false); err != nil {
		return err
	}
	s.changed(tx)
	log.Info("port updated", "revision", m.Revision, "security_groups", m.SecurityGroups, "port_security", m.PortSecurity)
	return nil
}

// Attached records, in tx, an interface attached to an instance (see
// RecordAttached) and asks for its groups the cell does not hold.
func (s *SecGroups) Attached(ctx context.Context, tx *db.Tx, requestID, uuid string, nic wire.NIC) error {
	if err := RecordAttached(ctx, tx, uuid, nic); err != nil {
		return err
	}
	if err := s.Want(ctx, tx, requestID, []wire.NIC{nic}); err != nil {
		return err
	}
	s.changed(tx)
	return nil
}

// Detached records, in tx, an interface detached (see RecordDetached).
func (s *SecGroups) Detached(ctx context.Context, tx *db.Tx, uuid, port string) error {
	if err := RecordDetached(ctx, tx, uuid, port); err != nil {
		return err
	}
	s.changed(tx)
	return nil
}

// RecordAttached records, in tx, an interface attached to an instance as
// its last NIC (or in place of the NIC of the same port: an attach of it
// again; what a port_update newer than the attach's NIC recorded is
// kept), and raises rules_gen. Run it before the addresses are recorded
// (AttachNIC), so that the NICs the cell made on the boot are found by
// their indexes.
func RecordAttached(ctx context.Context, tx *db.Tx, uuid string, nic wire.NIC) error {
	b, err := celldb.BuildForUpdate(ctx, tx, uuid)
	if errors.Is(err, celldb.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := fillPortIDs(ctx, tx, uuid, b); err != nil {
		return err
	}
	i := nicOf(b.NICs, nic.PortID)
	switch {
	case i < 0:
		b.NICs = append(b.NICs, nic)
	case b.NICs[i].PortRevision > nic.PortRevision:
		old := b.NICs[i]
		nic.SecurityGroups, nic.NoPortSecurity, nic.AllowedAddressPairs, nic.PortRevision =
			old.SecurityGroups, old.NoPortSecurity, old.AllowedAddressPairs, old.PortRevision
		b.NICs[i] = nic
	default:
		b.NICs[i] = nic
	}
	if err := celldb.SetBuild(ctx, tx, uuid, b); err != nil {
		return err
	}
	return raiseGens(ctx, tx, true, false)
}

// RecordDetached removes, in tx, the NIC of a port detached from an
// instance, and raises rules_gen. Run it before the port's addresses are
// freed (DetachPort), so that a NIC the cell made is found by them.
func RecordDetached(ctx context.Context, tx *db.Tx, uuid, port string) error {
	b, err := celldb.BuildForUpdate(ctx, tx, uuid)
	if errors.Is(err, celldb.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	filled, err := fillPortIDs(ctx, tx, uuid, b)
	if err != nil {
		return err
	}
	i := nicOf(b.NICs, port)
	if i >= 0 {
		b.NICs = append(b.NICs[:i], b.NICs[i+1:]...)
	}
	if i >= 0 || filled {
		if err := celldb.SetBuild(ctx, tx, uuid, b); err != nil {
			return err
		}
	}
	return raiseGens(ctx, tx, true, false)
}

func nicOf(nics []wire.NIC, port string) int {
	if port == "" {
		return -1
	}
	for i, n := range nics {
		if n.PortID == port {
			return i
		}
	}
	return -1
}

// findPortNIC returns the index of the port's NIC in b, giving the NICs
// the cell made their ports' ids first if none names it; -1 for none.
func findPortNIC(ctx context.Context, tx *db.Tx, uuid string, b *celldb.BuildContext, port string) (int, error) {
	if i := nicOf(b.NICs, port); i >= 0 {
		return i, nil
	}
	if _, err := fillPortIDs(ctx, tx, uuid, b); err != nil {
		return -1, err
	}
	return nicOf(b.NICs, port), nil
}

// fillPortIDs gives the NICs without a port id the id of the port their
// addresses are of (fixed_ips, by the NIC's index), and an instance with
// no NIC the NICs its addresses are on. It reports whether it changed b.
// With every NIC named, it reads nothing.
func fillPortIDs(ctx context.Context, tx *db.Tx, uuid string, b *celldb.BuildContext) (bool, error) {
	if len(b.NICs) > 0 && !hasUnnamed(b.NICs) {
		return false, nil
	}
	type row struct {
		nic                           int
		port, network, networkID, mac string
	}
	rows, err := db.Collect(ctx, tx, func(r db.Scanner) (row, error) {
		var x row
		return x, r.Scan(&x.nic, &x.port, &x.network, &x.networkID, &x.mac)
	}, `SELECT nic, port_id, network, network_id, mac FROM fixed_ips WHERE instance_uuid = ? ORDER BY nic, address_int`, uuid)
	if err != nil {
		return false, fmt.Errorf("the ports of %s: %w", uuid, err)
	}
	implicit := len(b.NICs) == 0
	changed := false
	for _, x := range rows {
		if x.port == "" {
			continue
		}
		switch {
		case implicit:
			if x.nic == len(b.NICs) {
				nic := wire.NIC{NetworkID: x.networkID, NetworkName: x.network, PortID: x.port, MAC: x.mac}
				if len(b.NICs) == 0 && len(b.SecurityGroups) > 0 {
					// The interface the server's groups are enforced on
					// (BuildContext.Enforced).
					nic.SecurityGroups, nic.PortRevision = b.SecurityGroups, 1
				}
				b.NICs = append(b.NICs, nic)
				changed = true
			}
		case x.nic < len(b.NICs) && b.NICs[x.nic].PortID == "":
			b.NICs[x.nic].PortID = x.port
			changed = true
		}
	}
	return changed, nil
}

func hasUnnamed(nics []wire.NIC) bool {
	for _, n := range nics {
		if n.PortID == "" {
			return true
		}
	}
	return false
}
