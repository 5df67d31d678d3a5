package network

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Handlers are the cell's handlers of the address messages from the API
// cell. They work on the cell database alone, so the cells service hosts
// them whichever process runs the network role.
type Handlers struct {
	DB     *db.DB
	Logger *slog.Logger
	Now    func() time.Time
	// OnBlocks is called after blocks_leased commits (the conductor's wake,
	// so that the builds that wait for addresses go on).
	OnBlocks func()
}

func (h *Handlers) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

func (h *Handlers) log() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

// BlocksLeased is the cast handler of blocks_leased: it records the blocks
// (their addresses get rows as they are handed out) and the answer to the
// network's lease request. A block the cell has already is left as it is,
// and one it returned is taken again only when leased again since, so a
// repeated or late message changes nothing.
func (h *Handlers) BlocksLeased(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.BlocksLeased
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "blocks_leased: %v", err)
	}
	now := h.now()
	added := 0
	for _, b := range m.Blocks {
		ok, err := addBlock(ctx, tx, &m, b, now)
		if err != nil {
			return err
		}
		if ok {
			added++
		}
	}
	full := 0
	if m.Full {
		full = 1
	}
	var keys []any
	if m.NetworkID != "" {
		keys = append(keys, "id:"+m.NetworkID)
	}
	if m.NetworkName != "" {
		keys = append(keys, "name:"+m.NetworkName)
	}
	if len(keys) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE lease_requests SET answered_at = ?, is_full = ?, error = ? WHERE network IN (?`+strings.Repeat(", ?", len(keys)-1)+`)`,
			append([]any{db.Micros(now), full, m.Error}, keys...)...); err != nil {
			return err
		}
	}
	h.log().Info("address blocks leased", "request_id", env.RequestID, "network", m.NetworkName, "network_id", m.NetworkID,
		"blocks", len(m.Blocks), "new", added, "full", m.Full, "error", m.Error)
	if h.OnBlocks != nil {
		tx.AfterCommit(h.OnBlocks)
	}
	return nil
}

// addBlock records one leased block, open (no rows yet); it reports
// whether the block is new.
func addBlock(ctx context.Context, tx *db.Tx, m *wire.BlocksLeased, b wire.LeasedBlock, now time.Time) (bool, error) {
	p, err := netip.ParsePrefix(b.CIDR)
	if err != nil || !p.Addr().Is4() || b.SubnetID == "" {
		return false, wire.Errorf(wire.CodeBadMessage, "blocks_leased: bad block %q of subnet %q", b.CIDR, b.SubnetID)
	}
	p = p.Masked()
	first := u32(p.Addr())
	last := first + (uint32(1)<<(32-p.Bits()) - 1)
	var addrs []uint32
	for _, r := range b.Usable {
		a, err1 := netip.ParseAddr(r.First)
		z, err2 := netip.ParseAddr(r.Last)
		if err1 != nil || err2 != nil || !a.Is4() || !z.Is4() || u32(a) < first || u32(z) > last || u32(a) > u32(z) {
			return false, wire.Errorf(wire.CodeBadMessage, "blocks_leased: bad usable range %s-%s of block %s", r.First, r.Last, b.CIDR)
		}
		for v := u32(a); ; v++ {
			addrs = append(addrs, v)
			if v == u32(z) {
				break
			}
		}
	}
	usable, _ := json.Marshal(b.Usable)
	leased := db.Micros(b.LeasedAt)
	if b.LeasedAt.IsZero() {
		leased = db.Micros(now)
	}
	var returned int
	err = tx.QueryRow(ctx, `SELECT returned FROM address_blocks WHERE subnet_id = ? AND first_int = ?`, b.SubnetID, int64(first)).Scan(&returned)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.Exec(ctx, `INSERT INTO address_blocks (subnet_id, first_int, last_int, cidr, network_id, network, usable, usable_count, leased_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, b.SubnetID, int64(first), int64(last), p.String(), m.NetworkID, m.NetworkName,
			string(usable), len(addrs), leased); err != nil {
			return false, err
		}
	case err != nil:
		return false, err
	case returned == 0:
		return false, nil // a repeat
	default:
		// Returned or revoked before: taken again only if the root leased
		// it again after that. A late copy of the old lease is older than
		// the return (the cell sent return_blocks after it applied it).
		res, err := tx.Exec(ctx, `UPDATE address_blocks SET returned = 0, filled = 0, leased_at = ?, usable = ?, usable_count = ?
			WHERE subnet_id = ? AND first_int = ? AND returned = 1 AND leased_at < ?`,
			leased, string(usable), len(addrs), b.SubnetID, int64(first), leased)
		if err != nil {
			return false, err
		}
		if k, _ := res.RowsAffected(); k != 1 {
			return false, nil
		}
	}
	// No rows: an allocation writes the block's addresses as it gives
	// them (allocateIn). An address with a row from the block's earlier
	// lease (an instance still has it) is skipped then, and becomes the
	// block's again.
	return true, nil
}

// openBlock is a block of this cell whose usable addresses above its top
// (its highest row) have no row yet.
type openBlock struct {
	subnet             string
	first, last        int64
	usable             string // JSON []wire.AddressRange
	network, networkID string
}

// span is a range of usable addresses.
type span struct{ lo, hi int64 }

// spans parses a block's usable ranges.
func spans(usable string) []span {
	var rs []wire.AddressRange
	if err := json.Unmarshal([]byte(usable), &rs); err != nil {
		return nil
	}
	var out []span
	for _, r := range rs {
		a, err1 := netip.ParseAddr(r.First)
		z, err2 := netip.ParseAddr(r.Last)
		if err1 != nil || err2 != nil || !a.Is4() || !z.Is4() {
			continue
		}
		out = append(out, span{int64(u32(a)), int64(u32(z))})
	}
	return out
}

// above returns the lowest usable address of the block above top (nil: the
// block has no row) and how many there are above top (0: none, and the
// address is meaningless). The blocks' parsed ranges are kept, so that an
// allocation does not parse its block's JSON each time.
func (s *Service) above(b openBlock, top *int64) (uint32, int) {
	s.mu.Lock()
	ss, ok := s.spans[b.usable]
	s.mu.Unlock()
	if !ok {
		ss = spans(b.usable)
		s.mu.Lock()
		if len(s.spans) >= 1024 {
			clear(s.spans)
		}
		s.spans[b.usable] = ss
		s.mu.Unlock()
	}
	var best int64 = -1
	left := 0
	for _, r := range ss {
		lo := r.lo
		if top != nil && *top >= lo {
			lo = *top + 1
		}
		if lo > r.hi {
			continue
		}
		left += int(r.hi - lo + 1)
		if best < 0 || lo < best {
			best = lo
		}
	}
	return uint32(best), left
}

// usableBetween lists the usable addresses of the block in [from, to].
func (b openBlock) usableBetween(from, to int64) []uint32 {
	var out []uint32
	for _, r := range spans(b.usable) {
		for v := max(r.lo, from); v <= min(r.hi, to); v++ {
			out = append(out, uint32(v))
		}
	}
	slices.Sort(out)
	return out
}

// insert writes the block's row of address v with the columns cols set to
// vals (placeholders in ph), in_block 1, unless the address has a row
// already or the block is no longer this cell's; it reports whether it
// wrote it. On PostgreSQL it holds the block's row (FOR SHARE) until the
// transaction ends, so that a concurrent return or revoke of the block,
// which updates that row first, either waits for it and then sees the
// address taken, or goes first and makes this write nothing.
func (b openBlock) insert(ctx context.Context, tx *db.Tx, v uint32, cols, ph string, vals []any, now int64) (bool, error) {
	q := `INSERT INTO fixed_ips (subnet_id, address_int, address, network_id, network, in_block, updated_at, ` + cols + `)
		SELECT subnet_id, CAST(? AS BIGINT), ?, network_id, network, 1, CAST(? AS BIGINT), ` + ph + `
		FROM address_blocks WHERE subnet_id = ? AND first_int = ? AND returned = 0`
	if tx.Dialect == db.Postgres {
		q += ` FOR SHARE`
	}
	q += ` ON CONFLICT (subnet_id, address_int) DO NOTHING`
	args := append([]any{int64(v), ipString(v), now}, vals...)
	args = append(args, b.subnet, b.first)
	res, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("write address %s of block %d of subnet %s: %w", ipString(v), b.first, b.subnet, err)
	}
	k, err := res.RowsAffected()
	return k == 1, err
}

// openBlockOf is the open block of this cell's subnet that address v is a
// usable address of, above the block's top, with that top; nil when there
// is none (v is below the top, not usable, or not of an open block).
func openBlockOf(ctx context.Context, tx *db.Tx, subnet string, v int64) (*openBlock, *int64, error) {
	var b openBlock
	var top *int64
	err := tx.QueryRow(ctx, `SELECT b.subnet_id, b.first_int, b.last_int, b.usable, b.network, b.network_id,
		(SELECT f.address_int FROM fixed_ips f WHERE f.subnet_id = b.subnet_id AND f.address_int BETWEEN b.first_int AND b.last_int AND f.in_block = 1
				ORDER BY f.address_int DESC LIMIT 1)
		FROM address_blocks b WHERE b.subnet_id = ? AND b.first_int <= ? AND b.last_int >= ? AND b.filled = 0 AND b.returned = 0`,
		subnet, v, v).Scan(&b.subnet, &b.first, &b.last, &b.usable, &b.network, &b.networkID, &top)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if top != nil && v <= *top {
		return nil, nil, nil
	}
	if u := b.usableBetween(v, v); len(u) != 1 {
		return nil, nil, nil
	}
	return &b, top, nil
}

// fillBelow writes a free row for each usable address of the block above
// top and below v, so that the block's top can move up to v without
// leaving an address behind (an address set aside above the top). An
// address with a row already (one the API cell handed out) becomes the
// block's.
func (b openBlock) fillBelow(ctx context.Context, tx *db.Tx, top *int64, v int64, now int64) error {
	from := b.first
	if top != nil {
		from = *top + 1
	}
	addrs := b.usableBetween(from, v-1)
	for len(addrs) > 0 {
		n := min(len(addrs), 100)
		args := make([]any, 0, n*6)
		for _, a := range addrs[:n] {
			args = append(args, b.subnet, int64(a), ipString(a), b.networkID, b.network, now)
		}
		q := `INSERT INTO fixed_ips (subnet_id, address_int, address, network_id, network, in_block, updated_at) VALUES ` +
			strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, 1, ?), ", n), ", ") +
			` ON CONFLICT (subnet_id, address_int) DO UPDATE SET in_block = 1`
		if _, err := tx.Exec(ctx, q, args...); err != nil {
			return fmt.Errorf("fill block %d of subnet %s: %w", b.first, b.subnet, err)
		}
		addrs = addrs[n:]
	}
	return nil
}

// RevokeBlocks is the cast handler of revoke_blocks: the subnet was
// deleted, so the cell drops its blocks of it and their free or set-aside
// addresses; an address an instance has stays with it until the instance
// lets it go. Applying it twice changes nothing.
func (h *Handlers) RevokeBlocks(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.RevokeBlocks
	if err := json.Unmarshal(env.Payload, &m); err != nil || m.SubnetID == "" {
		return wire.Errorf(wire.CodeBadMessage, "revoke_blocks needs a subnet id")
	}
	if _, err := tx.Exec(ctx, `UPDATE address_blocks SET returned = 1 WHERE subnet_id = ?`, m.SubnetID); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM fixed_ips WHERE subnet_id = ? AND instance_uuid IS NULL`, m.SubnetID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE fixed_ips SET in_block = 0 WHERE subnet_id = ?`, m.SubnetID)
	h.log().Info("address blocks revoked", "request_id", env.RequestID, "subnet_id", m.SubnetID)
	return err
}

// ReleaseAddresses is the cast handler of release_addresses: the ports
// were deleted, so the addresses set aside for them are free again (or,
// if an instance still has one, free once it lets it go). Applying it
// twice changes nothing.
func (h *Handlers) ReleaseAddresses(ctx context.Context, tx *db.Tx, env *wire.Envelope) error {
	var m wire.ReleaseAddresses
	if err := json.Unmarshal(env.Payload, &m); err != nil {
		return wire.Errorf(wire.CodeBadMessage, "release_addresses: %v", err)
	}
	for _, p := range m.PortIDs {
		if p == "" {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE fixed_ips SET port_id = '', api_port = 0, updated_at = ? WHERE port_id = ? AND api_port = 1 AND instance_uuid IS NULL`,
			db.Micros(h.now()), p); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE fixed_ips SET api_port = 0 WHERE port_id = ? AND api_port = 1`, p); err != nil {
			return err
		}
	}
	h.log().Info("addresses of deleted ports released", "request_id", env.RequestID, "ports", len(m.PortIDs))
	return nil
}

// ReserveAddress is the call handler of reserve_address: it sets an
// address of this cell's blocks aside for a port, so the cell never hands
// it out. Asking again for the same port is answered the same; an address
// an instance or another port has is a conflict, and one the cell does not
// hand out (not in its blocks, or not usable) is not found.
func (h *Handlers) ReserveAddress(ctx context.Context, env *wire.Envelope) (any, error) {
	var m wire.ReserveAddress
	if err := json.Unmarshal(env.Payload, &m); err != nil || m.SubnetID == "" || m.PortID == "" {
		return nil, wire.Errorf(wire.CodeBadMessage, "reserve_address needs a subnet, an address and a port")
	}
	a, err := netip.ParseAddr(m.Addr)
	if err != nil || !a.Is4() {
		return nil, wire.Errorf(wire.CodeBadMessage, "reserve_address: %q is not an IPv4 address", m.Addr)
	}
	err = h.DB.InTx(ctx, func(tx *db.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE fixed_ips SET port_id = ?, api_port = 1, updated_at = ?
			WHERE subnet_id = ? AND address_int = ? AND in_block = 1 AND instance_uuid IS NULL AND (port_id = '' OR (port_id = ? AND api_port = 1))`,
			m.PortID, db.Micros(h.now()), m.SubnetID, int64(u32(a)), m.PortID)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 1 {
			return nil
		}
		var inst sql.NullString
		var port string
		var inBlock int
		err = tx.QueryRow(ctx, `SELECT instance_uuid, port_id, in_block FROM fixed_ips WHERE subnet_id = ? AND address_int = ?`,
			m.SubnetID, int64(u32(a))).Scan(&inst, &port, &inBlock)
		if errors.Is(err, sql.ErrNoRows) {
			// An address above its block's top has no row yet: written
			// now, set aside, with free rows for those between.
			ok, rerr := h.reserveAboveTop(ctx, tx, m.SubnetID, int64(u32(a)), m.PortID)
			if rerr != nil || ok {
				return rerr
			}
			// Not above a top, or written meanwhile by an allocation.
			err = tx.QueryRow(ctx, `SELECT instance_uuid, port_id, in_block FROM fixed_ips WHERE subnet_id = ? AND address_int = ?`,
				m.SubnetID, int64(u32(a))).Scan(&inst, &port, &inBlock)
		}
		switch {
		case errors.Is(err, sql.ErrNoRows) || (err == nil && inBlock == 0 && !inst.Valid):
			return wire.Errorf(wire.CodeNotFound, "address %s of subnet %s is not handed out by this cell", a, m.SubnetID)
		case err != nil:
			return err
		case inst.Valid && port == m.PortID:
			return nil // the port's own instance has it
		}
		return wire.Errorf(wire.CodeConflict, "IP address %s already allocated in subnet %s", a, m.SubnetID)
	})
	if err != nil {
		return nil, err
	}
	h.log().Info("address set aside for a port", "request_id", env.RequestID, "subnet_id", m.SubnetID, "addr", m.Addr, "port_id", m.PortID)
	return struct{}{}, nil
}

// reserveAboveTop writes the row of address v, set aside for port, when v
// is a usable address above the top of an open block of the subnet, and
// free rows for the block's addresses between its top and v; it reports
// whether it did.
func (h *Handlers) reserveAboveTop(ctx context.Context, tx *db.Tx, subnet string, v int64, port string) (bool, error) {
	b, top, err := openBlockOf(ctx, tx, subnet, v)
	if err != nil || b == nil {
		return false, err
	}
	now := db.Micros(h.now())
	ok, err := b.insert(ctx, tx, uint32(v), `port_id, api_port`, `?, 1`, []any{port}, now)
	if err != nil || !ok {
		return false, err
	}
	return true, b.fillBelow(ctx, tx, top, v, now)
}

// ReturnFree forgets the addresses not of the cell's blocks that no
// instance has any more, and gives the root back the wholly free blocks of
// each network beyond ReserveBlocks (the highest first: allocation takes the lowest
// addresses), and returns how many it gave back. Each block is dropped
// here and return_blocks sent in one transaction; a block an address of
// which was taken meanwhile stays.
func (s *Service) ReturnFree(ctx context.Context) (int, error) {
	// The addresses the API cell handed out that no instance has any more
	// go first.
	if _, err := s.cfg.DB.Exec(ctx, `DELETE FROM fixed_ips WHERE instance_uuid IS NULL AND in_block = 0`); err != nil {
		return 0, fmt.Errorf("network: forget addresses no instance has: %w", err)
	}
	type blk struct {
		subnet, cidr, netID, net string
		first, last              int64
	}
	blocks, err := db.Collect(ctx, s.cfg.DB, func(r db.Scanner) (blk, error) {
		var b blk
		err := r.Scan(&b.subnet, &b.cidr, &b.netID, &b.net, &b.first, &b.last)
		return b, err
	}, `SELECT b.subnet_id, b.cidr, b.network_id, b.network, b.first_int, b.last_int FROM address_blocks b
		WHERE b.returned = 0 AND NOT EXISTS (SELECT 1 FROM fixed_ips f WHERE f.subnet_id = b.subnet_id
			AND f.address_int BETWEEN b.first_int AND b.last_int AND (f.instance_uuid IS NOT NULL OR f.port_id <> ''))
		ORDER BY b.network, b.first_int`)
	if err != nil {
		return 0, fmt.Errorf("network: free blocks: %w", err)
	}
	byNet := map[string][]blk{}
	var order []string
	for _, b := range blocks {
		if _, ok := byNet[b.net]; !ok {
			order = append(order, b.net)
		}
		byNet[b.net] = append(byNet[b.net], b)
	}
	returned := 0
	for _, n := range order {
		bs := byNet[n]
		if len(bs) <= s.cfg.ReserveBlocks {
			continue
		}
		for _, b := range bs[s.cfg.ReserveBlocks:] {
			rid := "req-" + uuid.NewString()
			err := s.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
				res, err := tx.Exec(ctx, `UPDATE address_blocks SET returned = 1 WHERE subnet_id = ? AND first_int = ? AND returned = 0`, b.subnet, b.first)
				if err != nil {
					return err
				}
				if k, _ := res.RowsAffected(); k != 1 {
					return errSkip
				}
				if _, err := tx.Exec(ctx, `DELETE FROM fixed_ips WHERE subnet_id = ? AND address_int BETWEEN ? AND ? AND instance_uuid IS NULL AND port_id = ''`,
					b.subnet, b.first, b.last); err != nil {
					return err
				}
				// An allocation that took one meanwhile keeps its row:
				// then the block stays.
				var left int
				if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips WHERE subnet_id = ? AND address_int BETWEEN ? AND ?`,
					b.subnet, b.first, b.last).Scan(&left); err != nil {
					return err
				}
				if left > 0 {
					return errSkip
				}
				return s.cfg.Sender.Send(ctx, tx, cellpath.Root(s.cfg.Cell), wire.MethodReturnBlocks, rid,
					&wire.ReturnBlocks{SubnetID: b.subnet, CIDRs: []string{b.cidr}})
			})
			if errors.Is(err, errSkip) {
				continue
			}
			if err != nil {
				return returned, fmt.Errorf("network: return block %s: %w", b.cidr, err)
			}
			returned++
			s.log.Info("address block returned", "request_id", rid, "network", n, "subnet_id", b.subnet, "cidr", b.cidr)
		}
	}
	return returned, nil
}

var errSkip = errors.New("skip")

// SubnetBlocks is the blocks_leased a cell would get for the whole of an
// IPv4 subnet of the network named network: the subnet cut as the root cuts
// it (a sixteenth, 4 to 256 addresses), usable from its third address to
// the one before its broadcast address (Neutron's default pool, the second
// address being the gateway). For tests and tools that give a cell
// addresses without an API cell.
func SubnetBlocks(network, subnetID, cidr string) wire.BlocksLeased {
	p := netip.MustParsePrefix(cidr).Masked()
	bits := min(max(p.Bits()+4, 24), 30)
	bits = max(bits, p.Bits())
	start := u32(p.Addr())
	end := start + (uint32(1)<<(32-p.Bits()) - 1)
	size := uint32(1) << (32 - bits)
	m := wire.BlocksLeased{NetworkName: network}
	for first := start; ; first += size {
		last := first + size - 1
		a, z := max(first, start+2), min(last, end-1)
		if a <= z {
			m.Blocks = append(m.Blocks, wire.LeasedBlock{SubnetID: subnetID, CIDR: netip.PrefixFrom(netip.AddrFrom4(as4(first)), bits).String(),
				Usable: []wire.AddressRange{{First: ipString(a), Last: ipString(z)}}})
		}
		if last >= end {
			break
		}
	}
	return m
}

func as4(v uint32) [4]byte {
	var b [4]byte
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return b
}

// Grant applies a blocks_leased to the cell's database in a transaction of
// its own, as the handler does: for tests and tools.
func Grant(ctx context.Context, d *db.DB, m wire.BlocksLeased) error {
	h := &Handlers{DB: d, Logger: slog.New(slog.DiscardHandler)}
	return d.InTx(ctx, func(tx *db.Tx) error {
		env, err := envelopeOf(wire.MethodBlocksLeased, &m)
		if err != nil {
			return err
		}
		return h.BlocksLeased(ctx, tx, env)
	})
}

func envelopeOf(method string, payload any) (*wire.Envelope, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return &wire.Envelope{Method: method, Version: wire.V1, RequestID: "req-" + uuid.NewString(), Payload: b}, nil
}

// AwaitingFirstBlocks reports whether the cell holds no block of the
// network called name while its lease request for it is unanswered: a cell
// that has just started (or started on data of a static share). The cell
// offers no capacity until then, so that builds are not sent to a cell that
// can give them no address yet.
func AwaitingFirstBlocks(ctx context.Context, q db.Querier, name string) (bool, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT COUNT(*) FROM lease_requests r WHERE r.network = ? AND r.answered_at = 0
		AND NOT EXISTS (SELECT 1 FROM address_blocks b WHERE b.network = ?)`, "name:"+name, name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("network: first blocks of %s: %w", name, err)
	}
	return n > 0, nil
}
