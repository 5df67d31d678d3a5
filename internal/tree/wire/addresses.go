package wire

import "time"

// Address blocks: how a network's IPv4 addresses are shared between the
// cells. The API cell (the root) leases aligned blocks of each subnet to
// the cells on demand; a cell hands out the addresses of its own blocks on
// the boot path, with no round trip, and gives wholly free blocks back.
// Every address is handed out by the holder of its block alone, so none is
// ever given twice.
const (
	// MethodLeaseBlocks (targeted to the root, up, durable): lease this
	// cell up to Count more blocks of a network. The root answers with
	// blocks_leased in the same transaction.
	MethodLeaseBlocks = "lease_blocks"
	// MethodBlocksLeased (targeted, down, durable): the blocks the root
	// leased to the target cell; Full when the network had fewer left than
	// asked. Applying it twice changes nothing.
	MethodBlocksLeased = "blocks_leased"
	// MethodReturnBlocks (targeted to the root, up, durable): the sending
	// cell gives these wholly free blocks back (it dropped them first, in
	// the transaction that sent this).
	MethodReturnBlocks = "return_blocks"
	// MethodRevokeBlocks (targeted, down, durable): the subnet was deleted;
	// the target cell drops its blocks of it. Addresses in use stay with
	// their instances.
	MethodRevokeBlocks = "revoke_blocks"
	// MethodReserveAddress (targeted, down, call): the API cell asks the
	// cell that holds an address's block to set it aside for a port; the
	// answer is empty, or a conflict when an instance or another port has
	// it.
	MethodReserveAddress = "reserve_address"
	// MethodReleaseAddresses (targeted, down, durable): these ports were
	// deleted; the target cell frees the addresses it set aside for them.
	MethodReleaseAddresses = "release_addresses"
)

// Error codes of address allocation inside a cell (between the conductor
// and the network role of another process).
const (
	// CodeAddressesPending: the cell has no free address of the network
	// now and has asked the root for more blocks; the build waits.
	CodeAddressesPending Code = "addresses_pending"
	// CodeNetworkFull: the root has no block of the network left.
	CodeNetworkFull Code = "network_full"
)

// Sentinels of the codes above, for errors.Is.
var (
	ErrAddressesPending = &Error{Code: CodeAddressesPending}
	ErrNetworkFull      = &Error{Code: CodeNetworkFull}
)

// LeaseBlocks is the payload of lease_blocks. NetworkID names the network;
// without it, NetworkName does (a cell's default network, which it knows by
// name alone).
type LeaseBlocks struct {
	NetworkID   string `json:"network_id,omitempty"`
	NetworkName string `json:"network_name,omitempty"`
	Count       int    `json:"count"`
}

// AddressRange is a run of addresses, both ends included.
type AddressRange struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

// LeasedBlock is one block leased to a cell: its CIDR in its subnet and
// the addresses of it that may be handed out (inside the subnet's
// allocation pools, without the gateway).
type LeasedBlock struct {
	SubnetID string         `json:"subnet_id"`
	CIDR     string         `json:"cidr"`
	Usable   []AddressRange `json:"usable"`
	// LeasedAt is when the root leased it: a cell that returned the block
	// takes it again only from a later lease.
	LeasedAt time.Time `json:"leased_at,omitzero"`
}

// BlocksLeased is the payload of blocks_leased: the answer to a
// lease_blocks, for the network it named (both its id and name, so the
// cell matches the request whichever it sent).
type BlocksLeased struct {
	NetworkID   string        `json:"network_id"`
	NetworkName string        `json:"network_name"`
	Blocks      []LeasedBlock `json:"blocks,omitempty"`
	// Full says the network had fewer blocks left than asked (none at all
	// when Blocks is empty).
	Full bool `json:"full,omitempty"`
	// Error is set when the root could not lease at all (no such network).
	// A network asked for by id: the cell fails the builds that wait for
	// it. Its default network, asked for by name: the cell's builds wait
	// and it asks again a second later (a root still making it).
	Error string `json:"error,omitempty"`
}

// ReturnBlocks is the payload of return_blocks.
type ReturnBlocks struct {
	SubnetID string   `json:"subnet_id"`
	CIDRs    []string `json:"cidrs"`
}

// RevokeBlocks is the payload of revoke_blocks.
type RevokeBlocks struct {
	SubnetID string `json:"subnet_id"`
}

// ReserveAddress is the payload of reserve_address.
type ReserveAddress struct {
	SubnetID string `json:"subnet_id"`
	Addr     string `json:"addr"`
	PortID   string `json:"port_id"`
}

// ReleaseAddresses is the payload of release_addresses.
type ReleaseAddresses struct {
	PortIDs []string `json:"port_ids"`
}
