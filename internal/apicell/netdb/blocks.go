package netdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// Address blocks: how a network's addresses are shared between the cells
// without a round trip on the boot path. Each IPv4 subnet is cut into
// aligned blocks (BlockBits); the API cell leases whole blocks to a holder
// — a compute cell, by its path, or HolderAPI for the addresses the API
// cell hands out itself (ports created through the Networking API, fixed
// IPs asked for on a boot) — and each holder hands out the addresses of its
// own blocks alone. A block is leased to one holder at a time (the primary
// key), so no address is ever given by two holders; a holder gives each of
// its addresses once (its own unique keys). Blocks come back when their
// holder returns them. IPv6 subnets are not cut: nothing allocates from
// them yet.

// HolderAPI is the holder of the blocks the API cell allocates from itself.
const HolderAPI = "api-cell"

// Range is a run of addresses, both ends included.
type Range struct {
	First string `json:"first"`
	Last  string `json:"last"`
}

// Block is a leased block of a subnet.
type Block struct {
	NetworkID   string
	NetworkName string
	SubnetID    string
	// CIDR is the block itself, e.g. 10.0.4.0/24.
	CIDR string
	// Usable are the block's addresses that may be handed out: those inside
	// the subnet's allocation pools, without its gateway. They are read
	// from the subnet as it is now.
	Usable []Range
	Holder string
	// LeasedAt is when the holder got it.
	LeasedAt time.Time
}

// BlockBits is the prefix length of the blocks of an IPv4 subnet: a
// sixteenth of the subnet, at least 4 addresses and at most 256 (/24), and
// never more than the subnet. So 10.0.0.0/8 has 65,536 blocks of 256, a
// /24 16 blocks of 16, a /28 4 blocks of 4, a /30 one.
func BlockBits(subnet netip.Prefix) int {
	b := min(max(subnet.Bits()+4, 24), 30)
	return max(b, subnet.Bits())
}

// usableIn returns the usable ranges of s within block [first, last].
func usableIn(s *Subnet, first, last uint32) []Range {
	var gw uint32
	hasGW := false
	if g, err := netip.ParseAddr(s.GatewayIP); err == nil && g.Is4() {
		gw, hasGW = u32(g), true
	}
	var out []Range
	add := func(a, b uint32) {
		if a <= b {
			out = append(out, Range{First: addr(a).String(), Last: addr(b).String()})
		}
	}
	for _, p := range s.AllocationPools {
		ps, err1 := netip.ParseAddr(p.Start)
		pe, err2 := netip.ParseAddr(p.End)
		if err1 != nil || err2 != nil || !ps.Is4() || !pe.Is4() {
			continue
		}
		a, b := max(u32(ps), first), min(u32(pe), last)
		if a > b {
			continue
		}
		if hasGW && gw >= a && gw <= b {
			if gw > a {
				add(a, gw-1)
			}
			if gw < b {
				add(gw+1, b)
			}
			continue
		}
		add(a, b)
	}
	return out
}

// LeaseBlocks leases to holder up to n blocks of the network's IPv4
// subnets that no one holds, lowest first, skipping blocks with no usable
// address. It returns the blocks leased: fewer than n, or none, when the
// network has no more. The network's row lock orders concurrent leases.
func LeaseBlocks(ctx context.Context, tx *db.Tx, networkID, holder string, n int, now time.Time) ([]Block, error) {
	if holder == "" || n <= 0 {
		return nil, fmt.Errorf("lease blocks of network %s: a holder and a count are required", networkID)
	}
	nw, err := NetworkByID(ctx, tx, networkID)
	if err != nil {
		return nil, err
	}
	if err := lockNetwork(ctx, tx, networkID); err != nil {
		return nil, err
	}
	subs, err := subnetsOf(ctx, tx, networkID)
	if err != nil {
		return nil, err
	}
	var out []Block
	for _, s := range subs {
		if len(out) == n {
			break
		}
		p, err := netip.ParsePrefix(s.CIDR)
		if err != nil || !p.Addr().Is4() {
			continue
		}
		p = p.Masked()
		leased, err := leasedFirsts(ctx, tx, s.ID)
		if err != nil {
			return nil, err
		}
		bits := BlockBits(p)
		size := uint32(1) << (32 - bits)
		start := u32(p.Addr())
		end := start + (uint32(1)<<(32-p.Bits()) - 1)
		for first := start; len(out) < n; first += size {
			last := first + size - 1
			if !leased[first] {
				if u := usableIn(s, first, last); len(u) > 0 {
					if _, err := tx.Exec(ctx, `INSERT INTO address_blocks (subnet_id, first_int, size, holder, leased_at) VALUES (?, ?, ?, ?, ?)`,
						s.ID, int64(first), int64(size), holder, db.Micros(now)); err != nil {
						return nil, fmt.Errorf("lease block %s/%d of subnet %s: %w", addr(first), bits, s.ID, err)
					}
					out = append(out, Block{NetworkID: nw.ID, NetworkName: nw.Name, SubnetID: s.ID,
						CIDR: netip.PrefixFrom(addr(first), bits).String(), Usable: u, Holder: holder, LeasedAt: now.UTC()})
				}
			}
			if last >= end {
				break
			}
		}
	}
	return out, nil
}

func leasedFirsts(ctx context.Context, q db.Querier, subnetID string) (map[uint32]bool, error) {
	rows, err := q.Query(ctx, `SELECT first_int FROM address_blocks WHERE subnet_id = ?`, subnetID)
	if err != nil {
		return nil, fmt.Errorf("leased blocks of subnet %s: %w", subnetID, err)
	}
	defer rows.Close()
	out := map[uint32]bool{}
	for rows.Next() {
		var f int64
		if err := rows.Scan(&f); err != nil {
			return nil, err
		}
		out[uint32(f)] = true
	}
	return out, rows.Err()
}

// HeldBlocks lists the blocks holder holds, of every network, by subnet
// and address, with their usable ranges as the subnets are now.
func HeldBlocks(ctx context.Context, q db.Querier, holder string) ([]Block, error) {
	type row struct {
		subnet      string
		first, size int64
		leased      int64
	}
	rs, err := db.Collect(ctx, q, func(r db.Scanner) (row, error) {
		var x row
		err := r.Scan(&x.subnet, &x.first, &x.size, &x.leased)
		return x, err
	}, `SELECT subnet_id, first_int, size, leased_at FROM address_blocks WHERE holder = ? ORDER BY subnet_id, first_int`, holder)
	if err != nil {
		return nil, fmt.Errorf("blocks held by %s: %w", holder, err)
	}
	subs := map[string]*Subnet{}
	nets := map[string]*Network{}
	out := make([]Block, 0, len(rs))
	for _, x := range rs {
		s, ok := subs[x.subnet]
		if !ok {
			if s, err = GetSubnet(ctx, q, x.subnet); err != nil {
				return nil, err
			}
			subs[x.subnet] = s
		}
		nw, ok := nets[s.NetworkID]
		if !ok {
			if nw, err = NetworkByID(ctx, q, s.NetworkID); err != nil {
				return nil, err
			}
			nets[s.NetworkID] = nw
		}
		first := uint32(x.first)
		bits := 32
		for sz := x.size; sz > 1; sz >>= 1 {
			bits--
		}
		out = append(out, Block{NetworkID: nw.ID, NetworkName: nw.Name, SubnetID: s.ID,
			CIDR: netip.PrefixFrom(addr(first), bits).String(), Usable: usableIn(s, first, first+uint32(x.size)-1),
			Holder: holder, LeasedAt: db.FromMicros(x.leased)})
	}
	return out, nil
}

// ReturnBlocks ends holder's lease of the blocks of subnetID named by
// their CIDRs; blocks it does not hold (returned already, or never its)
// are left alone, so a repeated return changes nothing. It returns how
// many it ended.
func ReturnBlocks(ctx context.Context, tx *db.Tx, holder, subnetID string, cidrs []string) (int, error) {
	n := 0
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil || !p.Addr().Is4() {
			return n, invalidInput(fmt.Sprintf("Invalid address block %q", c))
		}
		res, err := tx.Exec(ctx, `DELETE FROM address_blocks WHERE subnet_id = ? AND first_int = ? AND holder = ?`,
			subnetID, int64(u32(p.Masked().Addr())), holder)
		if err != nil {
			return n, fmt.Errorf("return block %s of subnet %s: %w", c, subnetID, err)
		}
		k, _ := res.RowsAffected()
		n += int(k)
	}
	return n, nil
}

// BlockHolder says who holds the block of subnetID that a lies in: a
// holder, or "" when no one does (or a is not in the subnet).
func BlockHolder(ctx context.Context, q db.Querier, subnetID string, a netip.Addr) (string, error) {
	if !a.Is4() {
		return "", nil
	}
	s, err := GetSubnet(ctx, q, subnetID)
	if err != nil {
		return "", err
	}
	p, err := netip.ParsePrefix(s.CIDR)
	if err != nil || !p.Contains(a) {
		return "", nil
	}
	first := u32(netip.PrefixFrom(a, BlockBits(p.Masked())).Masked().Addr())
	var holder string
	err = q.QueryRow(ctx, `SELECT holder FROM address_blocks WHERE subnet_id = ? AND first_int = ?`, subnetID, int64(first)).Scan(&holder)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("holder of %s in subnet %s: %w", a, subnetID, err)
	}
	return holder, nil
}

// LeaseBlockOf leases to holder the block of subnetID that a lies in, if
// no one holds it, and returns the block's holder afterwards (holder
// itself when it held it already or now does).
func LeaseBlockOf(ctx context.Context, tx *db.Tx, subnetID, holder string, a netip.Addr, now time.Time) (string, error) {
	s, err := GetSubnet(ctx, tx, subnetID)
	if err != nil {
		return "", err
	}
	if err := lockNetwork(ctx, tx, s.NetworkID); err != nil {
		return "", err
	}
	cur, err := BlockHolder(ctx, tx, subnetID, a)
	if err != nil || cur != "" {
		return cur, err
	}
	p, err := netip.ParsePrefix(s.CIDR)
	if err != nil || !a.Is4() || !p.Contains(a) {
		return "", invalidInput(fmt.Sprintf("IP address %s is not a valid IP for the specified subnet.", a))
	}
	bits := BlockBits(p.Masked())
	first := u32(netip.PrefixFrom(a, bits).Masked().Addr())
	if _, err := tx.Exec(ctx, `INSERT INTO address_blocks (subnet_id, first_int, size, holder, leased_at) VALUES (?, ?, ?, ?, ?)`,
		subnetID, int64(first), int64(1)<<(32-bits), holder, db.Micros(now)); err != nil {
		return "", fmt.Errorf("lease block of %s in subnet %s: %w", a, subnetID, err)
	}
	return holder, nil
}

// BlockHolders lists the holders of the blocks of subnetID, each once.
func BlockHolders(ctx context.Context, q db.Querier, subnetID string) ([]string, error) {
	out, err := db.Collect(ctx, q, func(r db.Scanner) (string, error) {
		var h string
		err := r.Scan(&h)
		return h, err
	}, `SELECT DISTINCT holder FROM address_blocks WHERE subnet_id = ? ORDER BY holder`, subnetID)
	if err != nil {
		return nil, fmt.Errorf("holders of the blocks of subnet %s: %w", subnetID, err)
	}
	return out, nil
}

// AddressHolder says who holds the block of the IPv4 subnet that a lies
// in, of any network: a holder, or "" when no one does or no subnet has a.
func AddressHolder(ctx context.Context, q db.Querier, a netip.Addr) (string, error) {
	subs, err := ListSubnets(ctx, q)
	if err != nil {
		return "", err
	}
	for _, s := range subs {
		if p, err := netip.ParsePrefix(s.CIDR); err == nil && p.Contains(a) {
			return BlockHolder(ctx, q, s.ID, a)
		}
	}
	return "", nil
}
