package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/cellcloud/cellcloud/internal/apicell/api/httpkit"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// addressReserver is the API cell's netdb.AddressReserver: the
// reserve_address call through the cells service, as the Compute API makes
// its calls to the cells.
type addressReserver struct{ c caller }

// Reserve asks cell to record addr as taken by portID. The cell's
// conflict (an instance or port has it) is netdb.ErrAddressTaken; no
// answer, or an error, is netdb.ErrCellUnavailable.
func (r addressReserver) Reserve(ctx context.Context, cell, subnetID, addr, portID string) error {
	err := r.c.Call(ctx, cell, wire.MethodReserveAddress, httpkit.RequestID(ctx), &wire.ReserveAddress{SubnetID: subnetID, Addr: addr, PortID: portID}, nil)
	if err == nil {
		return nil
	}
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeConflict {
		return fmt.Errorf("reserve %s in %s: %w: %s", addr, cell, netdb.ErrAddressTaken, we.Message)
	}
	return fmt.Errorf("reserve %s in %s: %w: %w", addr, cell, netdb.ErrCellUnavailable, err)
}
