package sgsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// NICFields fills in what a NIC sent down says of its port's enforcement:
// the port's groups, port security, address pairs and revision.
func NICFields(nic *wire.NIC, p *netdb.Port) {
	nic.SecurityGroups = append([]string(nil), p.SecurityGroups...)
	nic.NoPortSecurity = !p.PortSecurity
	nic.AllowedAddressPairs = wirePairs(p.AllowedAddressPairs)
	nic.PortRevision = max(p.RevisionNumber, 1)
}

func wirePairs(ps []netdb.AddressPair) []wire.AddressPair {
	if len(ps) == 0 {
		return nil
	}
	out := make([]wire.AddressPair, 0, len(ps))
	for _, p := range ps {
		out = append(out, wire.AddressPair{IPAddress: p.IPAddress, MACAddress: p.MACAddress})
	}
	return out
}

// SendPortUpdate sends port_update, in tx, to the cell of the live server
// p is bound to; p is the port as the change left it. Nothing is sent for
// a port bound to no live server, or to one not placed in a cell yet; the
// server is noted (apidb.NotePortsRevised) so that the cell that takes its
// build (its first placement, or one after a hand-back) is sent its ports'
// states then (SendPorts). A nil sender sends nothing.
func SendPortUpdate(ctx context.Context, tx *db.Tx, s Sender, requestID string, p *netdb.Port) error {
	if s == nil || p.DeviceID == "" || !strings.HasPrefix(p.DeviceOwner, "compute:") {
		return nil
	}
	cell, err := apidb.NotePortsRevised(ctx, tx, p.DeviceID)
	if errors.Is(err, apidb.ErrNotFound) {
		return nil
	}
	if err != nil || cell == "" {
		return err
	}
	return sendPort(ctx, tx, s, requestID, cell, p)
}

// LockServer locks, in tx, the copy's row of the live server p is bound
// to (none for a port bound to no server), as the Compute API's actions
// and the instance updates do before they read or change its ports: a
// port update that may send port_update takes it before the port's row,
// in the same order, so that neither waits on the other's.
func LockServer(ctx context.Context, tx *db.Tx, p *netdb.Port) error {
	if p.DeviceID == "" || !strings.HasPrefix(p.DeviceOwner, "compute:") {
		return nil
	}
	if _, err := apidb.GetForUpdate(ctx, tx, p.DeviceID); err != nil && !errors.Is(err, apidb.ErrNotFound) {
		return err
	}
	return nil
}

func sendPort(ctx context.Context, tx *db.Tx, s Sender, requestID, cell string, p *netdb.Port) error {
	groups := append([]string{}, p.SecurityGroups...)
	err := s.Send(ctx, tx, cell, wire.MethodPortUpdate, requestID, &wire.PortUpdate{UUID: p.DeviceID, PortID: p.ID, Revision: p.RevisionNumber,
		SecurityGroups: groups, PortSecurity: p.PortSecurity, AllowedAddressPairs: wirePairs(p.AllowedAddressPairs)})
	if err != nil {
		return fmt.Errorf("port update of %s to %s: %w", p.ID, cell, err)
	}
	return nil
}

// SendPorts sends port_update, in tx, to cell for each port f reads that is
// bound to a server and revised since a build could have carried it
// (revision above 1: a cell's own NIC is at 1), with the port's state now:
// to the cell that takes a build of servers whose ports were revised (the
// build carries their states as they were when it was recorded), and for
// the ports a cell made that MaterializeServerPorts revised. One query, and
// one message per port; a nil sender sends nothing.
func SendPorts(ctx context.Context, tx *db.Tx, s Sender, requestID, cell string, f netdb.PortFilter) error {
	if s == nil || cell == "" {
		return nil
	}
	ports, err := netdb.ListPorts(ctx, tx, f)
	if err != nil {
		return err
	}
	for _, p := range ports {
		if p.RevisionNumber <= 1 || p.DeviceID == "" || !strings.HasPrefix(p.DeviceOwner, "compute:") {
			continue
		}
		if err := sendPort(ctx, tx, s, requestID, cell, p); err != nil {
			return err
		}
	}
	return nil
}

// ServerGroupsChanged sends port_update for each port of server whose
// groups are the server's (after addSecurityGroup or removeSecurityGroup
// changed them, in tx).
func ServerGroupsChanged(ctx context.Context, tx *db.Tx, s Sender, requestID, server string) error {
	if s == nil {
		return nil
	}
	ports, err := netdb.ListPorts(ctx, tx, netdb.PortFilter{DeviceIDs: []string{server}})
	if err != nil {
		return err
	}
	for _, p := range ports {
		if !p.ServerGroups {
			continue
		}
		if err := SendPortUpdate(ctx, tx, s, requestID, p); err != nil {
			return err
		}
	}
	return nil
}
