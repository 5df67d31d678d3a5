package network_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func rowCount(t *testing.T, d *db.DB, where string, args ...any) int {
	t.Helper()
	var n int
	if err := d.QueryRow(context.Background(), `SELECT COUNT(*) FROM fixed_ips WHERE `+where, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func ip(s string) int64 {
	b := netip.MustParseAddr(s).As4()
	return int64(b[0])<<24 | int64(b[1])<<16 | int64(b[2])<<8 | int64(b[3])
}

// A leased block gets no rows: an allocation writes the next address above
// the block's top, an address let go is taken again before the top moves,
// and the next block is opened when the first has no address left.
func TestBlocksAreFilledOnDemand(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "10.0.1.0/24") // 16 blocks of 16; the first has .2 to .15
		if n := rowCount(t, d, `1 = 1`); n != 0 {
			t.Fatalf("%d rows after the lease, want none", n)
		}
		if n := freeCount(t, d); n != 253 {
			t.Fatalf("free = %d, want 253 (.2 to .254)", n)
		}
		for i, want := range []string{"10.0.1.2", "10.0.1.3", "10.0.1.4"} {
			if got := allocate(t, s, uuidN(i)); got != want {
				t.Fatalf("Allocate %d = %s, want %s", i, got, want)
			}
		}
		if n := rowCount(t, d, `1 = 1`); n != 3 {
			t.Errorf("%d rows after 3 allocations, want 3", n)
		}
		if err := s.Deallocate(ctx, uuidN(1)); err != nil {
			t.Fatal(err)
		}
		if got := allocate(t, s, "again"); got != "10.0.1.3" {
			t.Errorf("Allocate after .3 was let go = %s, want 10.0.1.3 (a free row before the top)", got)
		}
		for i := 3; i < 14; i++ {
			allocate(t, s, uuidN(i))
		}
		if got := allocate(t, s, uuidN(14)); got != "10.0.1.16" {
			t.Errorf("Allocate once the first block is full = %s, want 10.0.1.16", got)
		}
		var filled int
		if err := d.QueryRow(ctx, `SELECT filled FROM address_blocks WHERE first_int = ?`, ip("10.0.1.0")).Scan(&filled); err != nil || filled != 1 {
			t.Errorf("first block filled = %d, %v; want 1", filled, err)
		}
		if n := freeCount(t, d); n != 253-15 {
			t.Errorf("free = %d, want %d", n, 253-15)
		}
	})
}

// An address set aside above a block's top gets its row and the addresses
// between get free rows, so that none is left behind: they are handed out,
// the set-aside one is not until its port is deleted.
func TestReserveAboveTheTop(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "10.0.1.0/24")
		h := handlers(d)
		allocate(t, s, "a") // .2
		r := wire.ReserveAddress{SubnetID: "sub-1", Addr: "10.0.1.6", PortID: "port-1"}
		for range 2 { // asked again: the same
			if err := call(t, h.ReserveAddress, &r); err != nil {
				t.Fatalf("reserve above the top: %v", err)
			}
		}
		if n := rowCount(t, d, `address_int BETWEEN ? AND ?`, ip("10.0.1.3"), ip("10.0.1.5")); n != 3 {
			t.Errorf("%d rows below the set-aside address, want 3", n)
		}
		if err := call(t, h.ReserveAddress, &wire.ReserveAddress{SubnetID: "sub-1", Addr: "10.0.1.6", PortID: "port-2"}); !errors.Is(err, wire.ErrConflict) {
			t.Errorf("reserve for another port = %v, want conflict", err)
		}
		for i, want := range []string{"10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.7"} {
			if got := allocate(t, s, uuidN(i)); got != want {
				t.Errorf("Allocate %d = %s, want %s", i, got, want)
			}
		}
		if err := cast(t, d, h.ReleaseAddresses, &wire.ReleaseAddresses{PortIDs: []string{"port-1"}}); err != nil {
			t.Fatal(err)
		}
		if got := allocate(t, s, "b"); got != "10.0.1.6" {
			t.Errorf("Allocate after the release = %s, want 10.0.1.6", got)
		}
		// An address that is not usable, or of no block of the cell, is not
		// found; one in a block above the top of a returned block neither.
		for _, bad := range []string{"10.0.1.0", "10.0.1.1", "10.0.1.255"} {
			if err := call(t, h.ReserveAddress, &wire.ReserveAddress{SubnetID: "sub-1", Addr: bad, PortID: "p"}); !errors.Is(err, wire.ErrNotFound) {
				t.Errorf("reserve %s = %v, want not found", bad, err)
			}
		}
		if n, err := s.ReturnFree(ctx); err != nil || n != 13 {
			t.Fatalf("ReturnFree = %d, %v; want 13 (16 blocks, one in use, two kept)", n, err)
		}
		if err := call(t, h.ReserveAddress, &wire.ReserveAddress{SubnetID: "sub-1", Addr: "10.0.1.250", PortID: "p"}); !errors.Is(err, wire.ErrNotFound) {
			t.Errorf("reserve in a returned block = %v, want not found", err)
		}
	})
}

// An address of a block the API cell handed out itself (recorded with no
// row of the block) is skipped when the top reaches it, and is the block's
// once its instance lets it go and its port is deleted.
func TestGivenAddressAboveTheTopIsSkipped(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "10.0.1.0/24")
		nic := wire.NIC{NetworkName: "private", PortID: "port-5", FixedIPs: []wire.FixedIP{{SubnetID: "sub-1", Addr: "10.0.1.5"}}}
		if _, err := s.Allocate(ctx, "given", []wire.NIC{nic}); err != nil {
			t.Fatal(err)
		}
		for i, want := range []string{"10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.6"} {
			if got := allocate(t, s, uuidN(i)); got != want {
				t.Errorf("Allocate %d = %s, want %s", i, got, want)
			}
		}
		if err := s.Deallocate(ctx, "given"); err != nil {
			t.Fatal(err)
		}
		if got := allocate(t, s, "next"); got != "10.0.1.7" {
			t.Errorf("Allocate after the given address was let go = %s, want 10.0.1.7 (its port keeps it)", got)
		}
		if err := cast(t, d, handlers(d).ReleaseAddresses, &wire.ReleaseAddresses{PortIDs: []string{"port-5"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReturnFree(ctx); err != nil { // the sweep of addresses not of the blocks
			t.Fatal(err)
		}
		if got := allocate(t, s, "last"); got != "10.0.1.5" {
			t.Errorf("Allocate after the port was deleted = %s, want 10.0.1.5 (the block's now)", got)
		}
	})
}

// A cell's data from the release before migration 8 (every usable address
// of a block a row, free or held) keeps working: the free rows are handed
// out first, lowest first, each once; a wholly free old block goes back to
// the root with its rows; a block leased after the upgrade is filled on
// demand.
func TestUpgradeFromRowsWrittenUpFront(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "compute", celldb.Migrations[:7]); err != nil {
			t.Fatal(err)
		}
		// Two blocks as migration 7's cell wrote them: .32/28 with .32
		// held by old-a, .48/28 wholly free.
		for _, first := range []int64{ip("10.0.1.32"), ip("10.0.1.48")} {
			a, z := netip.AddrFrom4([4]byte{10, 0, 1, byte(first)}), netip.AddrFrom4([4]byte{10, 0, 1, byte(first + 15)})
			usable, _ := json.Marshal([]wire.AddressRange{{First: a.String(), Last: z.String()}})
			if _, err := d.Exec(ctx, `INSERT INTO address_blocks (subnet_id, first_int, last_int, cidr, network_id, network, usable, usable_count, leased_at)
				VALUES ('sub-1', ?, ?, ?, 'net-1', 'private', ?, 16, 1)`, first, first+15, a.String()+"/28", string(usable)); err != nil {
				t.Fatal(err)
			}
			for v := first; v <= first+15; v++ {
				var inst any
				if v == ip("10.0.1.32") {
					inst = "old-a"
				}
				if _, err := d.Exec(ctx, `INSERT INTO fixed_ips (subnet_id, address_int, address, network_id, network, in_block, instance_uuid, updated_at)
					VALUES ('sub-1', ?, ?, 'net-1', 'private', 1, ?, 0)`, v, fmt.Sprintf("10.0.1.%d", v&0xff), inst); err != nil {
					t.Fatal(err)
				}
			}
		}
		s, rec := serviceWith(t, d, network.Config{ReserveBlocks: 1}) // migrates to the end
		// A block leased after the upgrade, below the old ones.
		if err := network.Grant(ctx, d, wire.BlocksLeased{NetworkName: "private", NetworkID: "net-1", Blocks: []wire.LeasedBlock{
			{SubnetID: "sub-1", CIDR: "10.0.1.16/28", Usable: []wire.AddressRange{{First: "10.0.1.16", Last: "10.0.1.31"}}}}}); err != nil {
			t.Fatal(err)
		}
		if n := rowCount(t, d, `address_int BETWEEN ? AND ?`, ip("10.0.1.16"), ip("10.0.1.31")); n != 0 {
			t.Errorf("%d rows of the new block, want none", n)
		}
		// Wholly free: the old .48 and the new .16; one is kept (the lowest).
		if n, err := s.ReturnFree(ctx); err != nil || n != 1 {
			t.Fatalf("ReturnFree = %d, %v; want 1", n, err)
		}
		var rb wire.ReturnBlocks
		if ret := rec.of(wire.MethodReturnBlocks); len(ret) == 1 {
			_ = json.Unmarshal(ret[0].payload, &rb)
		}
		if len(rb.CIDRs) != 1 || rb.CIDRs[0] != "10.0.1.48/28" {
			t.Fatalf("returned %+v, want the old 10.0.1.48/28", rb)
		}
		if n := rowCount(t, d, `address_int >= ?`, ip("10.0.1.48")); n != 0 {
			t.Errorf("%d rows of the returned old block left, want none", n)
		}
		// The old block's free rows first (.33 to .47), then the new one's.
		seen := map[string]bool{"10.0.1.32": true}
		for i := range 15 + 16 {
			a := allocate(t, s, uuidN(i))
			want := fmt.Sprintf("10.0.1.%d", 33+i)
			if i >= 15 {
				want = fmt.Sprintf("10.0.1.%d", 16+i-15)
			}
			if a != want || seen[a] {
				t.Errorf("Allocate %d = %s, want %s once", i, a, want)
			}
			seen[a] = true
		}
		if _, err := s.Allocate(ctx, "one-more", nil); !errors.Is(err, wire.ErrAddressesPending) {
			t.Errorf("Allocate with every address given = %v, want pending", err)
		}
		if got := held(t, d)["old-a"]; got != "10.0.1.32" {
			t.Errorf("old-a holds %q, want 10.0.1.32", got)
		}
	})
}

// A return of wholly free blocks running while allocations fill blocks
// never returns a block an address of which an instance holds, and no
// address is given twice.
func TestReturnFreeRacingAllocations(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, rec := serviceWith(t, d, network.Config{ReserveBlocks: 1})
		if err := network.Grant(ctx, d, network.SubnetBlocks("private", "sub-1", "10.0.1.0/24")); err != nil {
			t.Fatal(err)
		}
		const n = 60
		got := make([]string, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				addrs, err := s.Allocate(ctx, uuidN(i), nil)
				switch {
				case errors.Is(err, wire.ErrAddressesPending): // every block went back meanwhile
				case err != nil:
					t.Errorf("Allocate %d: %v", i, err)
				default:
					got[i] = addrs[0].Addr
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 5 {
				if _, err := s.ReturnFree(ctx); err != nil {
					t.Errorf("ReturnFree: %v", err)
				}
			}
		}()
		close(start)
		wg.Wait()
		var returned []netip.Prefix
		for _, m := range rec.of(wire.MethodReturnBlocks) {
			var rb wire.ReturnBlocks
			_ = json.Unmarshal(m.payload, &rb)
			for _, c := range rb.CIDRs {
				returned = append(returned, netip.MustParsePrefix(c))
			}
		}
		seen := map[string]bool{}
		h := held(t, d)
		for i, a := range got {
			if a == "" {
				continue
			}
			if seen[a] {
				t.Errorf("%s given twice", a)
			}
			seen[a] = true
			if h[uuidN(i)] != a {
				t.Errorf("%s holds %q, Allocate said %s", uuidN(i), h[uuidN(i)], a)
			}
			for _, p := range returned {
				if p.Contains(netip.MustParseAddr(a)) {
					t.Errorf("%s is held by %s but its block %s was returned", a, uuidN(i), p)
				}
			}
		}
		if len(seen) == 0 {
			t.Errorf("no allocation succeeded")
		}
	})
}
