// Package network is a compute cell's network service: it hands out fixed
// IPs from the cell's share of each network and takes them back. An address
// is a primary key and an instance holds at most one per network, so no
// address is ever given twice, whatever the concurrency.
package network

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// Config configures the network service.
type Config struct {
	// Network is the network's name (default "private").
	Network string
	// CIDR is this cell's share of it, e.g. "10.0.1.0/24". The first
	// address (network) and the last (broadcast) are never handed out, nor
	// is the second (the gateway).
	CIDR   string
	DB     *db.DB
	Logger *slog.Logger
}

// Service allocates fixed IPs.
type Service struct {
	cfg         Config
	first, last uint32
	log         *slog.Logger
}

// ErrExhausted is returned when the cell's share has no free address.
var ErrExhausted = errors.New("no free fixed IP left in this cell's share of the network")

// New validates the configuration.
func New(cfg Config) (*Service, error) {
	if cfg.Network == "" {
		cfg.Network = "private"
	}
	if cfg.DB == nil {
		return nil, errors.New("network: a database is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p, err := netip.ParsePrefix(cfg.CIDR)
	if err != nil || !p.Addr().Is4() {
		return nil, fmt.Errorf("network: CIDR %q must be an IPv4 prefix such as 10.0.1.0/24", cfg.CIDR)
	}
	if p.Bits() > 29 {
		return nil, fmt.Errorf("network: CIDR %q is too small (at most /29)", cfg.CIDR)
	}
	p = p.Masked()
	a := p.Addr().As4()
	base := binary.BigEndian.Uint32(a[:])
	size := uint32(1) << (32 - p.Bits())
	return &Service{cfg: cfg, first: base + 2, last: base + size - 2, log: cfg.Logger.With("role", "network")}, nil
}

// Allocate gives the instance a fixed IP (the same one if it already has
// one) and returns its addresses.
func (s *Service) Allocate(ctx context.Context, uuid string) ([]wire.Address, error) {
	var out wire.Address
	var err error
	// An attempt fails with errRetry only when another allocation took the
	// address it chose and committed (PostgreSQL makes the conflicting
	// statement wait for the other transaction), so every retry follows
	// someone else's progress: with many allocating at once a fixed small
	// number of attempts is not enough, the size of the range is.
	for attempts := int64(s.last-s.first) + 10; attempts > 0; attempts-- {
		out, err = s.allocateOnce(ctx, uuid)
		if !errors.Is(err, errRetry) || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("network: allocate for %s: %w", uuid, err)
	}
	return []wire.Address{out}, nil
}

func (s *Service) allocateOnce(ctx context.Context, uuid string) (wire.Address, error) {
	var out wire.Address
	err := s.cfg.DB.Group(ctx, func(tx *db.Tx) error {
		// In one query: the address the instance holds already (a retried
		// allocation), the lowest freed one, and the highest ever given.
		var addr sql.NullString
		var free, top sql.NullInt64
		err := tx.QueryRow(ctx, `SELECT
			(SELECT address FROM fixed_ips WHERE instance_uuid = ? AND network = ?),
			(SELECT address_int FROM fixed_ips WHERE instance_uuid IS NULL AND network = ? AND address_int BETWEEN ? AND ? ORDER BY address_int LIMIT 1),
			(SELECT MAX(address_int) FROM fixed_ips WHERE network = ? AND address_int BETWEEN ? AND ?)`,
			uuid, s.cfg.Network, s.cfg.Network, int64(s.first), int64(s.last), s.cfg.Network, int64(s.first), int64(s.last)).Scan(&addr, &free, &top)
		if err != nil {
			return err
		}
		if addr.Valid {
			out = wire.Address{Network: s.cfg.Network, Addr: addr.String, Version: 4, MAC: mac(uuid)}
			return nil
		}
		now := time.Now().UnixMicro()
		// Reuse a freed address first, lowest first.
		n := free.Int64
		switch {
		case free.Valid:
			res, err := tx.Exec(ctx, `UPDATE fixed_ips SET instance_uuid = ?, mac = ?, updated_at = ? WHERE address_int = ? AND instance_uuid IS NULL`,
				uuid, mac(uuid), now, n)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k != 1 {
				return fmt.Errorf("address %s was taken meanwhile: %w", ipString(uint32(n)), errRetry)
			}
		default:
			n = int64(s.first)
			if top.Valid {
				n = top.Int64 + 1
			}
			if n > int64(s.last) {
				return ErrExhausted
			}
			if _, err := tx.Exec(ctx, `INSERT INTO fixed_ips (address_int, address, network, instance_uuid, mac, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
				n, ipString(uint32(n)), s.cfg.Network, uuid, mac(uuid), now); err != nil {
				if db.IsUniqueViolation(err) {
					return fmt.Errorf("%v: %w", err, errRetry)
				}
				return err
			}
		}
		out = wire.Address{Network: s.cfg.Network, Addr: ipString(uint32(n)), Version: 4, MAC: mac(uuid)}
		return nil
	})
	return out, err
}

var errRetry = errors.New("retry")

// Deallocate frees the instance's fixed IPs; it is a no-op when it has none.
func (s *Service) Deallocate(ctx context.Context, uuid string) error {
	_, err := s.cfg.DB.Exec(ctx, `UPDATE fixed_ips SET instance_uuid = NULL, mac = '', updated_at = ? WHERE instance_uuid = ?`, time.Now().UnixMicro(), uuid)
	if err != nil {
		return fmt.Errorf("network: deallocate for %s: %w", uuid, err)
	}
	return nil
}

func ipString(n uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n)
	return netip.AddrFrom4(b).String()
}

// mac derives a stable locally administered MAC from the instance UUID.
func mac(uuid string) string {
	var h uint32 = 2166136261
	for i := 0; i < len(uuid); i++ {
		h ^= uint32(uuid[i])
		h *= 16777619
	}
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", byte(h>>16), byte(h>>8), byte(h))
}
