// Package leases is the API cell's side of the address blocks it leases to
// the compute cells (netdb's address_blocks): it answers a cell's
// lease_blocks with blocks_leased in the same transaction, takes back the
// blocks a cell returns, and tells the holders of a deleted subnet's blocks
// to drop them (revoke_blocks).
package leases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// MaxCount bounds the blocks one lease_blocks gets.
const MaxCount = 16

// Sender sends a durable message from the API cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// Handlers are the API cell's handlers of lease_blocks and return_blocks.
type Handlers struct {
	Sender Sender
	Logger *slog.Logger
	Now    func() time.Time
}

func (h *Handlers) log() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

func (h *Handlers) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

// LeaseBlocks is the cast handler of lease_blocks: it leases the sending
// cell up to Count blocks of the network (lowest first) and sends them in
// blocks_leased, in the same transaction, so a lease is never recorded
// without its answer. A network that does not exist is answered with an
// error the cell fails its waiting builds with. A repeated request (a cell
// that asked again after a timeout) leases more blocks: the cell keeps
// them or gives the wholly free ones back.
func (h *Handlers) LeaseBlocks(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.LeaseBlocks
	if err := json.Unmarshal(env.Payload, &m); err != nil || (m.NetworkID == "" && m.NetworkName == "") {
		return wire.Errorf(wire.CodeBadMessage, "lease_blocks needs a network id or name")
	}
	holder := env.Sender
	if holder == "" || holder == netdb.HolderAPI {
		return wire.Errorf(wire.CodeBadMessage, "lease_blocks from no cell")
	}
	count := min(max(m.Count, 1), MaxCount)
	answer := wire.BlocksLeased{NetworkID: m.NetworkID, NetworkName: m.NetworkName}
	var nw *netdb.Network
	var err error
	if m.NetworkID != "" {
		nw, err = netdb.NetworkByID(ctx, tx, m.NetworkID)
	} else {
		nw, err = netdb.GetNetwork(ctx, tx, m.NetworkName)
	}
	switch {
	case errors.Is(err, netdb.ErrNotFound):
		// Not full: a network asked for by name may not be made yet (a
		// root still starting), and the cell asks again.
		answer.Error = fmt.Sprintf("Network %s could not be found.", firstOf(m.NetworkID, m.NetworkName))
	case err != nil:
		return err
	default:
		answer.NetworkID, answer.NetworkName = nw.ID, nw.Name
		blocks, err := netdb.LeaseBlocks(ctx, tx, nw.ID, holder, count, h.now())
		if err != nil {
			return err
		}
		for _, b := range blocks {
			lb := wire.LeasedBlock{SubnetID: b.SubnetID, CIDR: b.CIDR, LeasedAt: b.LeasedAt}
			for _, r := range b.Usable {
				lb.Usable = append(lb.Usable, wire.AddressRange{First: r.First, Last: r.Last})
			}
			answer.Blocks = append(answer.Blocks, lb)
		}
		answer.Full = len(blocks) < count
	}
	h.log().Info("address blocks leased to a cell", "request_id", env.RequestID, "holder", holder,
		"network", firstOf(m.NetworkID, m.NetworkName), "asked", count, "blocks", len(answer.Blocks), "full", answer.Full, "error", answer.Error)
	return h.Sender.Send(ctx, tx, holder, wire.MethodBlocksLeased, env.RequestID, &answer)
}

// ReturnBlocks is the cast handler of return_blocks: the sending cell's
// lease of the blocks ends. Blocks it no longer holds are left alone, so a
// repeat changes nothing.
func (h *Handlers) ReturnBlocks(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.ReturnBlocks
	if err := json.Unmarshal(env.Payload, &m); err != nil || m.SubnetID == "" {
		return wire.Errorf(wire.CodeBadMessage, "return_blocks needs a subnet id")
	}
	n, err := netdb.ReturnBlocks(ctx, tx, env.Sender, m.SubnetID, m.CIDRs)
	if err != nil {
		var bad *netdb.Error
		if errors.As(err, &bad) {
			return wire.Errorf(wire.CodeBadMessage, "return_blocks: %v", err)
		}
		return err
	}
	h.log().Info("address blocks returned by a cell", "request_id", env.RequestID, "holder", env.Sender, "subnet_id", m.SubnetID, "blocks", n)
	return nil
}

// Revoke tells every cell that holds blocks of subnetID to drop them
// (revoke_blocks), in tx: the subnet's deletion, which deletes the leases
// themselves (netdb.DeleteSubnet), commits with the messages or not at
// all. Call it before DeleteSubnet. A nil sender sends nothing.
func Revoke(ctx context.Context, tx *db.Tx, sender Sender, subnetID, requestID string) error {
	if sender == nil {
		return nil
	}
	holders, err := netdb.BlockHolders(ctx, tx, subnetID)
	if err != nil {
		return err
	}
	for _, c := range holders {
		if c == netdb.HolderAPI {
			continue
		}
		if err := sender.Send(ctx, tx, c, wire.MethodRevokeBlocks, requestID, &wire.RevokeBlocks{SubnetID: subnetID}); err != nil {
			return fmt.Errorf("revoke the blocks of subnet %s from %s: %w", subnetID, c, err)
		}
	}
	return nil
}

// RevokeNetwork is Revoke for every subnet of the network: the network's
// deletion takes its subnets and their leases with it (netdb.DeleteNetwork).
// Call it before DeleteNetwork.
func RevokeNetwork(ctx context.Context, tx *db.Tx, sender Sender, networkID, requestID string) error {
	if sender == nil {
		return nil
	}
	n, err := netdb.NetworkByID(ctx, tx, networkID)
	if err != nil {
		return err
	}
	for _, sub := range n.Subnets {
		if err := Revoke(ctx, tx, sender, sub, requestID); err != nil {
			return err
		}
	}
	return nil
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
