package netdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cellcloud/cellcloud/internal/db"
)

// AddressReserver reserves an address in the cell that holds its block
// (the reserve_address call), for a port about to be recorded. A cell's
// answer that the address is given already is an error wrapping
// ErrAddressTaken.
type AddressReserver interface {
	Reserve(ctx context.Context, cell, subnetID, addr, portID string) error
}

// ErrAddressTaken is a cell's answer that an address of its blocks is in
// use.
var ErrAddressTaken = errors.New("address taken")

// ErrCellUnavailable is a reservation the holder cell did not answer.
var ErrCellUnavailable = errors.New("the cell holding the address did not answer")

// ReserveAddresses places the addresses a port asks for explicitly
// (PlaceAddresses) and reserves, for port portID, those whose block a cell
// holds, in that cell. It returns them (address → cell) for NewPort's
// Reserved. When a reservation fails, those made before it are released
// (ReleaseReserved) and the error is IpAddressAlreadyAllocated for a taken
// address.
func ReserveAddresses(ctx context.Context, d *db.DB, r AddressReserver, s Sender, requestID, networkID, portID string,
	reqs []FixedIPRequest, now time.Time) (map[string]string, error) {
	places, err := PlaceAddresses(ctx, d, networkID, reqs, now)
	if err != nil {
		return nil, err
	}
	reserved := map[string]string{}
	for _, pl := range places {
		if pl.Holder == HolderAPI || pl.Holder == "" {
			continue
		}
		if r == nil {
			err = fmt.Errorf("reserve %s in %s: %w: no reserver configured", pl.Addr, pl.Holder, ErrCellUnavailable)
		} else {
			err = r.Reserve(ctx, pl.Holder, pl.SubnetID, pl.Addr, portID)
		}
		if err != nil {
			if rerr := ReleaseReserved(ctx, d, s, requestID, portID, reserved); rerr != nil {
				err = errors.Join(err, rerr)
			}
			if errors.Is(err, ErrAddressTaken) {
				return nil, ipAlreadyAllocated(pl.Addr, pl.SubnetID)
			}
			return nil, fail(ErrUnavailable, "ServiceUnavailable", fmt.Sprintf(
				"The cell that holds the address block of %s could not reserve it (%v); try again later.", pl.Addr, err))
		}
		reserved[pl.Addr] = pl.Holder
	}
	return reserved, nil
}

// ReleaseReserved sends release_addresses, in its own transaction, for a
// port whose addresses were reserved in cells and which was not recorded.
func ReleaseReserved(ctx context.Context, d *db.DB, s Sender, requestID, portID string, reserved map[string]string) error {
	if len(reserved) == 0 {
		return nil
	}
	if s == nil {
		return errors.New("release reserved addresses: no sender configured")
	}
	rel := Released{}
	for _, cell := range reserved {
		if len(rel[cell]) == 0 {
			rel[cell] = []string{portID}
		}
	}
	return d.InTx(ctx, func(tx *db.Tx) error { return SendReleases(ctx, tx, s, requestID, rel) })
}

// HasReservations reports whether cells reserved addresses for port id.
// Such a port's addresses are not changed by an update: release_addresses
// frees all of a port's reservations in a cell, not one address.
func HasReservations(ctx context.Context, q db.Querier, id string) (bool, error) {
	var n int
	if err := q.QueryRow(ctx, `SELECT COUNT(*) FROM port_fixed_ips WHERE port_id = ? AND reserved_in <> ''`, id).Scan(&n); err != nil {
		return false, fmt.Errorf("reservations of port %s: %w", id, err)
	}
	return n > 0, nil
}

// ReservedAddressesFixed is the refusal to change the addresses of a port
// that has addresses reserved in cells.
func ReservedAddressesFixed(id string) error {
	return fail(ErrConflict, "Conflict", fmt.Sprintf(
		"The fixed_ips of port %s cannot be changed: a compute cell reserved an address of it for it; delete the port and create another.", id))
}
