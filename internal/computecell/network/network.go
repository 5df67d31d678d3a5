// Package network is a compute cell's network service: it hands out fixed
// IPs from the address blocks the API cell leased to this cell, and takes
// them back.
//
// The API cell (the root) cuts each IPv4 subnet into aligned blocks and
// leases them to the cells on demand (lease_blocks, answered by
// blocks_leased). An address the cell has handed out is a row of
// fixed_ips, free again (and taken first) once no instance and no port has
// it; a block gets no rows up front: a boot that finds no free row writes
// the next usable address above the top (the highest row) of the lowest
// open block of the network, with no round trip. When fewer than a
// low-water mark are left free, the cell asks the root for another block
// (one request outstanding per network, sent again when unanswered for
// LeaseTimeout); with none free, Allocate fails with wire.ErrAddressesPending
// and the conductor waits for the blocks (Handlers.BlocksLeased wakes it),
// or with wire.ErrNetworkFull when the root said the network has no block
// left. Wholly free blocks beyond a reserve go back to the root
// (return_blocks). An address is a primary key (its subnet and itself), so
// no address is ever given twice, whatever the concurrency; and a block is
// leased to one holder at a time, so no two cells give the same address.
//
// Addresses the API cell handed out itself (a port's, a fixed IP asked on a
// boot) come in the build's NICs and are recorded as they are; an address
// of this cell's blocks that the API cell asked to set aside for a port
// (reserve_address) is never handed out until the port is deleted
// (release_addresses).
package network

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/portid"
	"github.com/cellcloud/cellcloud/internal/tree/cellpath"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Sender sends a durable message from this cell inside a transaction.
type Sender interface {
	Send(ctx context.Context, tx *db.Tx, to, method, requestID string, payload any) error
}

// Config configures the network service.
type Config struct {
	// Cell is this cell's path; lease requests go to its root.
	Cell string
	// Network is the name of the default network, the one an instance
	// without NICs is on (default "private").
	Network string
	DB      *db.DB
	// Sender sends the lease requests and the returned blocks.
	Sender Sender
	Logger *slog.Logger
	Now    func() time.Time
	// LowWater is the most free addresses of a network below which the
	// cell asks for more blocks (default 128; never more than half of a
	// block of the network, so a cell on a small subnet does not hoard it).
	// It asks for two blocks at a time of the default network and where a
	// block has 64 addresses or more, one where blocks are smaller.
	LowWater int
	// LeaseTimeout is how long a lease request may go unanswered before
	// it is sent again (default 30s).
	LeaseTimeout time.Duration
	// FullRetry is how long the root's word that a network is full holds
	// before a cell that needs an address asks again (default 10s).
	FullRetry time.Duration
	// ReserveBlocks is how many wholly free blocks of a network the cell
	// keeps; the rest go back to the root (default 2).
	ReserveBlocks int
	// ReturnInterval is how often the wholly free blocks beyond the reserve
	// are returned (default 1m).
	ReturnInterval time.Duration
}

// Service allocates fixed IPs.
type Service struct {
	cfg Config
	log *slog.Logger
	// low caches each network's low-water mark, from its blocks' sizes.
	// asked holds the networks this process knows a lease request is
	// outstanding for (it sent it, or found it), so that the allocations
	// below the low-water mark do not each read the request again; it is
	// forgotten when an allocation finds the network above the mark (the
	// blocks came) or the request is older than LeaseTimeout.
	// spans keeps the parsed usable ranges of blocks, by their JSON.
	mu    sync.Mutex
	low   map[string]int
	asked map[string]time.Time
	tick  map[string]int
	spans map[string][]span

	stop func()
	done chan struct{}
}

// ErrExhausted is the error of an allocation that finds no free address:
// it wraps wire.ErrAddressesPending (more blocks were asked for: wait) or
// wire.ErrNetworkFull (there are none).
var ErrExhausted = errors.New("no free fixed IP in this cell's blocks of the network")

// New validates the configuration.
func New(cfg Config) (*Service, error) {
	if cfg.Network == "" {
		cfg.Network = "private"
	}
	if cfg.DB == nil {
		return nil, errors.New("network: a database is required")
	}
	if cfg.Sender == nil {
		return nil, errors.New("network: a sender is required")
	}
	if err := cellpath.Validate(cfg.Cell); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LowWater <= 0 {
		cfg.LowWater = 128
	}
	if cfg.LeaseTimeout <= 0 {
		cfg.LeaseTimeout = 30 * time.Second
	}
	if cfg.FullRetry <= 0 {
		cfg.FullRetry = 10 * time.Second
	}
	if cfg.ReserveBlocks <= 0 {
		cfg.ReserveBlocks = 2
	}
	if cfg.ReturnInterval <= 0 {
		cfg.ReturnInterval = time.Minute
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("cell", cfg.Cell, "role", "network"), low: map[string]int{}, asked: map[string]time.Time{}, tick: map[string]int{},
		spans: map[string][]span{}}, nil
}

// Start asks for a first block of the default network if the cell holds
// none (so that the first boot need not wait), and returns the wholly free
// blocks beyond the reserve every ReturnInterval until Shutdown.
func (s *Service) Start(ctx context.Context) error {
	if err := s.prefetch(ctx); err != nil {
		s.log.Warn("asking for a first address block; the first boot will ask again", "err", err)
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.stop, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		t := time.NewTicker(s.cfg.ReturnInterval)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
				if _, err := s.ReturnFree(lctx); err != nil && lctx.Err() == nil {
					s.log.Error("returning free address blocks", "err", err)
				}
			}
		}
	}()
	return nil
}

// Shutdown stops the return loop and waits for it. It is idempotent.
func (s *Service) Shutdown(context.Context) error {
	if s.stop != nil {
		s.stop()
		<-s.done
	}
	return nil
}

// netKey is how a network is named in this cell's tables: by id when the
// NIC knows it, else by name (the default network).
type netKey struct{ id, name string }

func (k netKey) col() string {
	if k.id != "" {
		return "network_id"
	}
	return "network"
}

func (k netKey) val() string {
	if k.id != "" {
		return k.id
	}
	return k.name
}

// request is the key of the network's lease request.
func (k netKey) request() string {
	if k.id != "" {
		return "id:" + k.id
	}
	return "name:" + k.name
}

func (s *Service) prefetch(ctx context.Context) error {
	k := netKey{name: s.cfg.Network}
	return s.cfg.DB.InTx(ctx, func(tx *db.Tx) error {
		// Free rows, or open blocks (whose addresses above their tops
		// have no rows yet).
		var free int
		if err := tx.QueryRow(ctx, `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM fixed_ips WHERE network = ? AND instance_uuid IS NULL AND port_id = '' AND in_block = 1 LIMIT 1) f) +
			(SELECT COUNT(*) FROM address_blocks WHERE network = ? AND filled = 0 AND returned = 0)`, k.name, k.name).Scan(&free); err != nil {
			return err
		}
		if free > 0 {
			return nil
		}
		_, err := s.askForBlocks(ctx, tx, k, "req-"+uuid.NewString())
		return err
	})
}

// Allocate gives the instance an address on each of its NICs (one on the
// default network when it has none) and returns its addresses. It is
// idempotent: a NIC that has its address already keeps it. With no free
// address on a NIC's network it fails with an error wrapping ErrExhausted
// and wire.ErrAddressesPending (blocks were asked for) or
// wire.ErrNetworkFull; the NICs before it keep theirs.
func (s *Service) Allocate(ctx context.Context, uuid string, nics []wire.NIC) ([]wire.Address, error) {
	if len(nics) == 0 {
		nics = []wire.NIC{{NetworkName: s.cfg.Network}}
	}
	mac := MAC(uuid)
	var out []wire.Address
	reread := false
	for i, nic := range nics {
		if nic.MAC == "" {
			nic.MAC = mac
			if i > 0 {
				nic.MAC = MAC(fmt.Sprintf("%s/%d", uuid, i))
			}
		}
		if len(nic.FixedIPs) > 0 {
			if err := s.record(ctx, uuid, i, nic); err != nil {
				return nil, fmt.Errorf("network: allocate for %s: %w", uuid, err)
			}
			for _, f := range nic.FixedIPs {
				out = append(out, wire.Address{Network: nic.NetworkName, Addr: f.Addr, Version: 4, MAC: nic.MAC,
					NetworkID: nic.NetworkID, SubnetID: f.SubnetID, PortID: nic.PortID})
			}
			continue
		}
		a, err := s.allocateNIC(ctx, uuid, i, nic)
		if err != nil {
			return nil, fmt.Errorf("network: allocate for %s: %w", uuid, err)
		}
		if a == nil {
			reread = true // it had its address already
			continue
		}
		out = append(out, *a)
	}
	if !reread {
		return out, nil
	}
	out, err := s.addresses(ctx, uuid)
	if err != nil {
		return nil, fmt.Errorf("network: allocate for %s: %w", uuid, err)
	}
	return out, nil
}

func (s *Service) addresses(ctx context.Context, uuid string) ([]wire.Address, error) {
	rows, err := s.cfg.DB.Query(ctx, `SELECT network, address, mac, network_id, subnet_id, port_id FROM fixed_ips WHERE instance_uuid = ? ORDER BY nic, address_int`, uuid)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []wire.Address
	for rows.Next() {
		a := wire.Address{Version: 4}
		if err := rows.Scan(&a.Network, &a.Addr, &a.MAC, &a.NetworkID, &a.SubnetID, &a.PortID); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// allocateNIC hands out the lowest free address of the cell's blocks of
// the NIC's network and returns it, or nil when the NIC had one already.
func (s *Service) allocateNIC(ctx context.Context, uuid string, nic int, n wire.NIC) (*wire.Address, error) {
	k := netKey{id: n.NetworkID, name: n.NetworkName}
	name := n.NetworkName
	if name == "" {
		name = n.NetworkID
	}
	low, err := s.lowWater(ctx, k)
	if err != nil {
		return nil, err
	}
	// Counting the free addresses up to the mark reads that many index
	// entries: where the mark is high, it is done on every 16th allocation
	// only (the mark leaves room for the few allocations in between).
	count := s.countNow(k, low)
	// An attempt fails with errRetry only when another allocation took the
	// address it chose and committed, so every retry follows someone
	// else's progress; the bound is generous.
	//
	// The allocation's first read goes with the first statements of the
	// group's other transactions (db.GroupQuery): allocateIn reads again
	// where what the group did before it may have changed its answer.
	first := allocQuery(k, uuid, nic, low, count)
	for attempt := 0; attempt < 10000; attempt++ {
		var outcome error
		var got *wire.Address
		err := s.cfg.DB.GroupQuery(ctx, first, func(tx *db.Tx, read db.Answer) error {
			outcome, got = nil, nil
			a, had, nfree, err := s.allocateIn(ctx, tx, k, uuid, nic, name, n.MAC, low, count, &read)
			switch {
			case err != nil || had:
				return err
			case a == nil:
				outcome, err = s.askForBlocks(ctx, tx, k, "req-"+uuid)
				return err
			}
			got = a
			switch {
			case !count:
			case nfree-1 >= low:
				s.forgetAsked(k)
			case !s.knowAsked(k):
				_, err = s.askForBlocks(ctx, tx, k, "req-"+uuid)
			}
			return err
		})
		if errors.Is(err, errRetry) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return nil, err
		}
		return got, outcome
	}
	return nil, fmt.Errorf("gave up after too many attempts: %w", errRetry)
}

// allocateIn gives the NIC an address of the network in tx: the lowest
// free row first (an address let go), else the next address above the
// top of the lowest open block (its highest row), written as a new row. It
// returns the address, or had when the NIC has one already, or neither
// when the cell has no address of the network to give; and, when count is
// set, how many addresses of the network were free before (counted up to
// low + 1 free rows, plus the open blocks' addresses without a row). It
// fails with errRetry when a concurrent allocation took the address it
// chose.
//
// read, when not nil, is the answer to allocQuery that the transaction's
// group read before any of its functions ran (db.GroupQuery). What an
// allocation on the network earlier in the transaction wrote it does not
// see: the top of a block it wrote above is taken from the transaction's
// memo (allocTopKey), a free row or the want of a block is read again
// when such an allocation came first, and the free addresses counted are
// fewer by the allocations before (allocatedKey).
func (s *Service) allocateIn(ctx context.Context, tx *db.Tx, k netKey, uuid string, nic int, name, mac string, low int, count bool, read *db.Answer) (a *wire.Address, had bool, nfree int, err error) {
	// A block found to have no address above its top is marked filled and
	// the query runs again: at most once per open block, so bounded.
	locked := false
	for range 1000 {
		// In one query: the address this NIC has already (a retried
		// allocation), the lowest free one, the lowest open block with its
		// top, and (when counting) how many are free.
		var has, free, first, last, top *int64
		var subnet, usable, netName, netID *string
		var open int
		nfree = low + 1
		dest := []any{&has, &free, &subnet, &first, &last, &usable, &netName, &netID, &top}
		if count {
			dest = append(dest, &nfree, &open)
		}
		early := read != nil
		if early {
			err = read.Scan(dest...)
			read = nil
		} else {
			q := allocQuery(k, uuid, nic, low, count)
			err = tx.QueryRow(ctx, q.SQL, q.Args...).Scan(dest...)
		}
		if err != nil {
			return nil, false, 0, err
		}
		if has != nil {
			return nil, true, 0, nil
		}
		before := 0
		if n, ok := tx.Recall(allocatedKey(k)); ok {
			before = n.(int)
		}
		if early && before > 0 && (free != nil || subnet == nil) {
			continue // read again, after what the transaction wrote
		}
		if subnet != nil {
			if t, ok := tx.Recall(allocTopKey(*subnet, *first)); ok && (top == nil || t.(int64) > *top) {
				v := t.(int64)
				top = &v
			}
		}
		var b openBlock
		if subnet != nil {
			b = openBlock{subnet: *subnet, first: *first, last: *last, usable: *usable, network: *netName, networkID: *netID}
		}
		if count {
			nfree += open
			if early {
				// The count did not see the transaction's allocations
				// before this one: the mark must, or the cell asks for
				// blocks too late.
				nfree -= before
			}
		}
		now := db.Micros(s.cfg.Now())
		if free != nil {
			addr := ipString(uint32(*free))
			a := &wire.Address{Addr: addr, Version: 4, MAC: mac, PortID: portid.Derive(uuid, name, addr)}
			err := tx.QueryRow(ctx, `UPDATE fixed_ips SET instance_uuid = ?, nic = ?, mac = ?, port_id = ?, updated_at = ?
				WHERE `+k.col()+` = ? AND address_int = ? AND instance_uuid IS NULL AND port_id = '' AND in_block = 1 RETURNING network, network_id, subnet_id`,
				uuid, nic, mac, a.PortID, now, k.val(), *free).Scan(&a.Network, &a.NetworkID, &a.SubnetID)
			if errors.Is(err, sql.ErrNoRows) {
				if early {
					continue // taken before in the transaction: read again
				}
				return nil, false, 0, fmt.Errorf("address %s was taken meanwhile: %w", addr, errRetry)
			}
			if err != nil {
				return nil, false, 0, err
			}
			tx.Remember(allocatedKey(k), before+1)
			return a, false, nfree, nil
		}
		if subnet == nil {
			return nil, false, nfree, nil
		}
		next, left := s.above(b, top)
		ok := left > 0
		if !ok {
			if locked {
				// This transaction holds the block's row (FOR SHARE, on
				// PostgreSQL) from its write below: marking the block
				// filled here could wait for another allocation that waits
				// for it. A transaction of its own does it.
				return nil, false, 0, fmt.Errorf("block %d of subnet %s is full: %w", b.first, b.subnet, errRetry)
			}
			filled := allocFilledKey(b.subnet, b.first)
			if _, done := tx.Recall(filled); done {
				continue // marked before in the transaction: read again
			}
			if _, err := tx.Exec(ctx, `UPDATE address_blocks SET filled = 1 WHERE subnet_id = ? AND first_int = ?`, b.subnet, b.first); err != nil {
				return nil, false, 0, err
			}
			tx.Remember(filled, true)
			continue
		}
		addr := ipString(next)
		a := &wire.Address{Addr: addr, Version: 4, MAC: mac, PortID: portid.Derive(uuid, name, addr),
			Network: b.network, NetworkID: b.networkID, SubnetID: b.subnet}
		locked = true
		ok, err := b.insert(ctx, tx, next, `instance_uuid, nic, port_id, mac`, `?, CAST(? AS INTEGER), ?, ?`, []any{uuid, nic, a.PortID, mac}, now)
		if err != nil {
			return nil, false, 0, err
		}
		if !ok {
			// The address has a row the top did not count (an address the
			// API cell handed out, which becomes the block's again), or
			// the block went meanwhile: look again.
			if _, err := tx.Exec(ctx, `UPDATE fixed_ips SET in_block = 1 WHERE subnet_id = ? AND address_int = ? AND in_block = 0`,
				b.subnet, int64(next)); err != nil {
				return nil, false, 0, err
			}
			continue
		}
		tx.Remember(allocatedKey(k), before+1)
		tx.Remember(allocTopKey(b.subnet, b.first), int64(next))
		return a, false, nfree, nil
	}
	return nil, false, 0, fmt.Errorf("no address above the tops of the open blocks of %s: %w", k.val(), errRetry)
}

// allocQuery is allocateIn's read: the address the NIC has already, the
// lowest free one, the lowest open block with its top, and (when
// counting) how many are free.
func allocQuery(k netKey, uuid string, nic, low int, count bool) db.Query {
	q := `SELECT
		(SELECT address_int FROM fixed_ips WHERE instance_uuid = ? AND nic = ? LIMIT 1),
		(SELECT address_int FROM fixed_ips WHERE ` + k.col() + ` = ? AND instance_uuid IS NULL AND port_id = '' AND in_block = 1 ORDER BY address_int LIMIT 1),
		b.subnet_id, b.first_int, b.last_int, b.usable, b.network, b.network_id,
		(SELECT f.address_int FROM fixed_ips f WHERE f.subnet_id = b.subnet_id AND f.address_int BETWEEN b.first_int AND b.last_int AND f.in_block = 1
			ORDER BY f.address_int DESC LIMIT 1)`
	args := []any{uuid, nic, k.val()}
	if count {
		q += `,
		(SELECT COUNT(*) FROM (SELECT 1 FROM fixed_ips WHERE ` + k.col() + ` = ? AND instance_uuid IS NULL AND port_id = '' AND in_block = 1 LIMIT ?) f),
		(SELECT COALESCE(SUM(o.usable_count - (SELECT COUNT(*) FROM fixed_ips f WHERE f.subnet_id = o.subnet_id AND f.address_int BETWEEN o.first_int AND o.last_int)), 0)
			FROM address_blocks o WHERE o.` + k.col() + ` = ? AND o.filled = 0 AND o.returned = 0)`
		args = append(args, k.val(), low+1, k.val())
	}
	q += `
		FROM (SELECT 1 AS one) x LEFT JOIN (SELECT subnet_id, first_int, last_int, usable, network, network_id FROM address_blocks
			WHERE ` + k.col() + ` = ? AND filled = 0 AND returned = 0 ORDER BY first_int LIMIT 1) b ON 1 = 1`
	return db.Query{SQL: q, Args: append(args, k.val())}
}

// allocatedKey is the transaction's memo (db.Tx.Remember) of how many
// allocations on the network it made; allocTopKey holds the highest
// address one wrote above a block's top.
func allocatedKey(k netKey) string { return "network: allocated on " + k.request() }

func allocTopKey(subnet string, first int64) string {
	return "network: top of block " + blockName(subnet, first)
}

// allocFilledKey is the transaction's memo that it marked the block
// filled.
func allocFilledKey(subnet string, first int64) string {
	return "network: filled block " + blockName(subnet, first)
}

func blockName(subnet string, first int64) string { return subnet + "/" + strconv.FormatInt(first, 10) }

var errRetry = errors.New("retry")

// unknownRetry is how soon a cell asks again for blocks of its default
// network when the root did not know it.
const unknownRetry = time.Second

// askForBlocks sends a lease request for the network unless one is
// outstanding (sent less than LeaseTimeout ago) or the root said the
// network is full less than FullRetry ago. It returns the error an
// allocation that found nothing free fails with: pending or full.
func (s *Service) askForBlocks(ctx context.Context, tx *db.Tx, k netKey, requestID string) (error, error) {
	now := s.cfg.Now()
	var requested, answered int64
	var full int
	var why string
	err := tx.QueryRow(ctx, `SELECT requested_at, answered_at, is_full, error FROM lease_requests WHERE network = ?`, k.request()).Scan(&requested, &answered, &full, &why)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, err
	}
	pending := fmt.Errorf("%w: waiting for address blocks of network %s: %w", ErrExhausted, k.val(), wire.ErrAddressesPending)
	switch {
	case exists && answered == 0 && now.Sub(db.FromMicros(requested)) < s.cfg.LeaseTimeout:
		tx.AfterCommit(func() { s.setAsked(k, db.FromMicros(requested)) })
		return pending, nil
	case exists && answered != 0 && why != "" && k.id == "" && now.Sub(db.FromMicros(answered)) < unknownRetry:
		// The root did not know the default network by its name: a root
		// still making it as it starts. The build waits; the cell asks again.
		return pending, nil
	case exists && answered != 0 && (full == 1 || (why != "" && k.id != "")) && now.Sub(db.FromMicros(answered)) < s.cfg.FullRetry:
		msg := "No fixed IP addresses available for network: " + k.val()
		if why != "" {
			msg = why
		}
		return fmt.Errorf("%w: %s: %w", ErrExhausted, msg, wire.ErrNetworkFull), nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO lease_requests (network, requested_at) VALUES (?, ?)
		ON CONFLICT (network) DO UPDATE SET requested_at = excluded.requested_at, answered_at = 0`, k.request(), db.Micros(now)); err != nil {
		return nil, err
	}
	count := 1
	if s.bigBlocks(k) || (k.id == "" && k.name == s.cfg.Network) {
		count = 2 // the default network is big (10.0.0.0/8 has 65,536 blocks)
	}
	s.log.Info("asking the API cell for address blocks", "request_id", requestID, "network", k.val(), "count", count)
	if err := s.cfg.Sender.Send(ctx, tx, cellpath.Root(s.cfg.Cell), wire.MethodLeaseBlocks, requestID,
		&wire.LeaseBlocks{NetworkID: k.id, NetworkName: k.name, Count: count}); err != nil {
		return nil, err
	}
	tx.AfterCommit(func() { s.setAsked(k, now) })
	return pending, nil
}

// countNow says whether this allocation on the network counts its free
// addresses: always where the mark is low, else every 16th time.
func (s *Service) countNow(k netKey, low int) bool {
	if low <= 16 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick[k.request()]++
	return s.tick[k.request()]%16 == 1
}

func (s *Service) setAsked(k netKey, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked[k.request()] = at
}

func (s *Service) forgetAsked(k netKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.asked, k.request())
}

// knowAsked reports whether this process knows of a lease request for the
// network sent less than LeaseTimeout ago.
func (s *Service) knowAsked(k netKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.asked[k.request()]
	return ok && s.cfg.Now().Sub(at) < s.cfg.LeaseTimeout
}

// bigBlocks reports whether the network's blocks (as far as this process
// knows them) have 64 addresses or more.
func (s *Service) bigBlocks(k netKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.low[k.request()] >= 32
}

// lowWater is the network's low-water mark: LowWater, but at most half of
// its largest block's usable addresses (at least 1).
func (s *Service) lowWater(ctx context.Context, k netKey) (int, error) {
	s.mu.Lock()
	low, ok := s.low[k.request()]
	s.mu.Unlock()
	if ok {
		return low, nil
	}
	var size *int64
	if err := s.cfg.DB.QueryRow(ctx, `SELECT MAX(usable_count) FROM address_blocks WHERE `+k.col()+` = ? AND returned = 0`, k.val()).Scan(&size); err != nil {
		return 0, err
	}
	if size == nil {
		return 1, nil // no block yet: ask when the first is used up
	}
	low = max(1, min(s.cfg.LowWater, int(*size)/2))
	s.mu.Lock()
	s.low[k.request()] = low
	s.mu.Unlock()
	return low, nil
}

// record records the addresses the API cell handed out for a NIC: an
// address of this cell's blocks set aside for the NIC's port is the
// instance's now; any other is recorded as it is, kept while the instance
// has it.
func (s *Service) record(ctx context.Context, uuid string, nic int, n wire.NIC) error {
	return s.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		return recordNIC(ctx, tx, uuid, nic, n, s.cfg.Now())
	})
}

func recordNIC(ctx context.Context, tx *db.Tx, uuid string, nic int, n wire.NIC, at time.Time) error {
	now := db.Micros(at)
	for _, f := range n.FixedIPs {
		a, err := netip.ParseAddr(f.Addr)
		if err != nil || !a.Is4() {
			return wire.Errorf(wire.CodeInvalid, "fixed IP %q of port %s is not an IPv4 address", f.Addr, n.PortID)
		}
		ai := int64(u32(a))
		res, err := tx.Exec(ctx, `UPDATE fixed_ips SET instance_uuid = ?, nic = ?, mac = ?, port_id = ?, api_port = 1, network_id = ?, updated_at = ?
			WHERE subnet_id = ? AND address_int = ? AND (instance_uuid = ? OR (instance_uuid IS NULL AND (in_block = 0 OR port_id = '' OR port_id = ?)))`,
			uuid, nic, n.MAC, n.PortID, n.NetworkID, now, f.SubnetID, ai, uuid, n.PortID)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); k == 1 {
			continue
		}
		_, err = tx.Exec(ctx, `INSERT INTO fixed_ips (subnet_id, address_int, address, network_id, network, in_block, instance_uuid, nic, port_id, api_port, mac, updated_at)
			VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?, 1, ?, ?)`, f.SubnetID, ai, a.String(), n.NetworkID, n.NetworkName, uuid, nic, n.PortID, n.MAC, now)
		if db.IsUniqueViolation(err) {
			return wire.Errorf(wire.CodeConflict, "Fixed IP address %s is already in use.", a)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// AttachNIC records, in tx, the addresses the API cell handed out for an
// interface attached to a running instance, as its next NIC (or the NIC
// its port has already: attaching the same port again changes nothing).
func AttachNIC(ctx context.Context, tx *db.Tx, uuid string, n wire.NIC, at time.Time) error {
	if n.PortID == "" || len(n.FixedIPs) == 0 {
		return wire.Errorf(wire.CodeBadMessage, "an attached interface needs a port and its addresses")
	}
	var nic int
	err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT MIN(nic) FROM fixed_ips WHERE instance_uuid = ? AND port_id = ?),
		(SELECT MAX(nic) + 1 FROM fixed_ips WHERE instance_uuid = ?), 0)`, uuid, n.PortID, uuid).Scan(&nic)
	if err != nil {
		return fmt.Errorf("network: the next interface of %s: %w", uuid, err)
	}
	if err := recordNIC(ctx, tx, uuid, nic, n, at); err != nil {
		return fmt.Errorf("network: attach port %s to %s: %w", n.PortID, uuid, err)
	}
	return nil
}

// DetachPort frees, in tx, the instance's addresses of one port, as
// Deallocate frees all of them; it is a no-op when the instance has none
// of that port.
func DetachPort(ctx context.Context, tx *db.Tx, uuid, port string, at time.Time) error {
	_, err := tx.Exec(ctx, `UPDATE fixed_ips SET instance_uuid = NULL, nic = 0, mac = '',
		port_id = CASE WHEN api_port = 1 THEN port_id ELSE '' END, updated_at = ? WHERE instance_uuid = ? AND port_id = ?`, db.Micros(at), uuid, port)
	if err != nil {
		return fmt.Errorf("network: detach port %s from %s: %w", port, uuid, err)
	}
	return nil
}

// Deallocate frees the instance's fixed IPs, in one statement; it is a
// no-op when it has none. Addresses of the cell's blocks are free again,
// but one set aside for a port the API cell holds stays set aside until the
// port is deleted. Addresses the API cell handed out (not of the cell's
// blocks) are never free here: their rows are deleted by the periodic
// sweep (ReturnFree), and until then a build the API cell gives one of
// them again takes it.
func (s *Service) Deallocate(ctx context.Context, uuid string) error {
	_, err := s.cfg.DB.Exec(ctx, `UPDATE fixed_ips SET instance_uuid = NULL, nic = 0, mac = '',
		port_id = CASE WHEN api_port = 1 THEN port_id ELSE '' END, updated_at = ? WHERE instance_uuid = ?`, db.Micros(s.cfg.Now()), uuid)
	if err != nil {
		return fmt.Errorf("network: deallocate for %s: %w", uuid, err)
	}
	return nil
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func ipString(n uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b).String()
}

// MAC derives a stable locally administered MAC from a key (the instance
// UUID, for its first interface).
func MAC(key string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", byte(h>>16), byte(h>>8), byte(h))
}
