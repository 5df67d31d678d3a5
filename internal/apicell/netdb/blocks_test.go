package netdb_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

func TestBlockBits(t *testing.T) {
	for cidr, want := range map[string]int{
		"10.0.0.0/8": 24, "10.1.0.0/16": 24, "10.0.0.0/20": 24, "10.0.0.0/22": 26,
		"192.168.0.0/24": 28, "192.168.0.0/26": 30, "192.168.0.0/28": 30, "192.168.0.0/30": 30, "192.168.0.0/31": 31,
	} {
		if got := netdb.BlockBits(netip.MustParsePrefix(cidr)); got != want {
			t.Errorf("BlockBits(%s) = %d, want %d", cidr, got, want)
		}
	}
}

// networkWithSubnet makes a network with one IPv4 subnet of cidr (default
// gateway and pools) and returns their ids.
func networkWithSubnet(t *testing.T, d *db.DB, name, cidr string) (string, string) {
	t.Helper()
	ctx := context.Background()
	var netID, subID string
	err := d.InTx(ctx, func(tx *db.Tx) error {
		n := &netdb.Network{Name: name, ProjectID: "p"}
		if err := netdb.CreateNetwork(ctx, tx, n, t0); err != nil {
			return err
		}
		s, err := netdb.CreateSubnet(ctx, tx, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "p", IPVersion: 4, CIDR: cidr}, t0)
		if err != nil {
			return err
		}
		netID, subID = n.ID, s.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return netID, subID
}

func lease(t *testing.T, d *db.DB, netID, holder string, n int) []netdb.Block {
	t.Helper()
	var out []netdb.Block
	err := d.InTx(context.Background(), func(tx *db.Tx) error {
		var err error
		out, err = netdb.LeaseBlocks(context.Background(), tx, netID, holder, n, t0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func cidrs(bs []netdb.Block) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.CIDR
	}
	return out
}

// A small subnet's blocks go to whoever asks first, each to one holder,
// with the usable addresses inside the pools and without the gateway, and
// come back when returned (a repeated return changing nothing).
func TestLeaseBlocksOfASmallSubnet(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		netID, subID := networkWithSubnet(t, d, "small", "192.168.7.0/28")

		a := lease(t, d, netID, "api!c1", 3)
		if got, want := cidrs(a), []string{"192.168.7.0/30", "192.168.7.4/30", "192.168.7.8/30"}; !slices.Equal(got, want) {
			t.Fatalf("c1 leased %v, want %v", got, want)
		}
		if got := a[0].Usable; len(got) != 1 || got[0] != (netdb.Range{First: "192.168.7.2", Last: "192.168.7.3"}) {
			t.Fatalf("first block usable %v, want 192.168.7.2-192.168.7.3 (network address and gateway left out)", got)
		}
		if a[0].NetworkName != "small" || a[0].SubnetID != subID || a[0].Holder != "api!c1" {
			t.Fatalf("block %+v", a[0])
		}
		b := lease(t, d, netID, "api!c2", 3)
		if got := cidrs(b); !slices.Equal(got, []string{"192.168.7.12/30"}) {
			t.Fatalf("c2 leased %v, want only the last block", got)
		}
		if u := b[0].Usable; len(u) != 1 || u[0] != (netdb.Range{First: "192.168.7.12", Last: "192.168.7.14"}) {
			t.Fatalf("last block usable %v, want 192.168.7.12-14 (broadcast left out)", u)
		}
		if got := lease(t, d, netID, "api!c2", 1); len(got) != 0 {
			t.Fatalf("a full subnet leased %v", cidrs(got))
		}

		held, err := netdb.HeldBlocks(ctx, d, "api!c1")
		if err != nil || !slices.Equal(cidrs(held), cidrs(a)) || held[0].Usable[0] != a[0].Usable[0] {
			t.Fatalf("HeldBlocks(c1) = %v, %v; want %v", held, err, cidrs(a))
		}
		if h, err := netdb.BlockHolder(ctx, d, subID, netip.MustParseAddr("192.168.7.13")); err != nil || h != "api!c2" {
			t.Fatalf("holder of .13 = %q, %v", h, err)
		}

		var n1, n2 int
		err = d.InTx(ctx, func(tx *db.Tx) error {
			var err error
			// c2 cannot return c1's block.
			if n1, err = netdb.ReturnBlocks(ctx, tx, "api!c2", subID, []string{"192.168.7.4/30"}); err != nil {
				return err
			}
			n2, err = netdb.ReturnBlocks(ctx, tx, "api!c1", subID, []string{"192.168.7.4/30", "192.168.7.4/30"})
			return err
		})
		if err != nil || n1 != 0 || n2 != 1 {
			t.Fatalf("returns ended %d and %d leases (%v), want 0 and 1", n1, n2, err)
		}
		if got := lease(t, d, netID, "api!c2", 2); !slices.Equal(cidrs(got), []string{"192.168.7.4/30"}) {
			t.Fatalf("after the return c2 leased %v", cidrs(got))
		}
	})
}

// Leases racing for one network's blocks never give a block twice.
func TestLeaseBlocksConcurrently(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		netID, _ := networkWithSubnet(t, d, "mid", "10.20.0.0/24") // 16 blocks of 16
		const callers = 6
		got := make([][]netdb.Block, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 3 {
					var bs []netdb.Block
					err := d.InTx(context.Background(), func(tx *db.Tx) error {
						var err error
						bs, err = netdb.LeaseBlocks(context.Background(), tx, netID, "cell"+string(rune('a'+i)), 1, t0)
						return err
					})
					if err != nil {
						errs[i] = err
						return
					}
					got[i] = append(got[i], bs...)
				}
			}()
		}
		wg.Wait()
		seen := map[string]string{}
		for i, bs := range got {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			for _, b := range bs {
				if o, dup := seen[b.CIDR]; dup {
					t.Fatalf("block %s leased to %s and %s", b.CIDR, o, b.Holder)
				}
				seen[b.CIDR] = b.Holder
			}
		}
		if len(seen) == 0 || len(seen) > 16 {
			t.Fatalf("%d blocks leased of 16", len(seen))
		}
	})
}

// An address asked for leases its block to the asker when no one holds
// it, and names the holder when someone does.
func TestLeaseBlockOf(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		netID, subID := networkWithSubnet(t, d, "mid", "10.30.0.0/24")
		lease(t, d, netID, "api!c1", 1) // 10.30.0.0/28
		try := func(a string) (string, error) {
			var h string
			err := d.InTx(ctx, func(tx *db.Tx) error {
				var err error
				h, err = netdb.LeaseBlockOf(ctx, tx, subID, netdb.HolderAPI, netip.MustParseAddr(a), t0)
				return err
			})
			return h, err
		}
		if h, err := try("10.30.0.5"); err != nil || h != "api!c1" {
			t.Fatalf("10.30.0.5: holder %q, %v; want api!c1", h, err)
		}
		if h, err := try("10.30.0.200"); err != nil || h != netdb.HolderAPI {
			t.Fatalf("10.30.0.200: holder %q, %v; want the API cell", h, err)
		}
		if h, err := netdb.BlockHolder(ctx, d, subID, netip.MustParseAddr("10.30.0.207")); err != nil || h != netdb.HolderAPI {
			t.Fatalf("10.30.0.207 (same block): holder %q, %v", h, err)
		}
		if _, err := try("10.31.0.1"); !errors.Is(err, netdb.ErrInvalid) {
			t.Fatalf("an address outside the subnet: %v, want invalid", err)
		}
	})
}

// A network's delete takes its subnets' leased blocks with them, as a
// subnet's delete does (it failed on the blocks' foreign key before); a
// holder asking again finds none.
func TestDeleteNetworkWithLeasedBlocks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		migrated(t, d)
		ctx := context.Background()
		netID, _ := networkWithSubnet(t, d, "leased", "192.168.9.0/24")
		if got := lease(t, d, netID, "api!cell1", 2); len(got) != 2 {
			t.Fatalf("leased %v", got)
		}
		if err := d.InTx(ctx, func(tx *db.Tx) error { return netdb.DeleteNetwork(ctx, tx, netID) }); err != nil {
			t.Fatalf("delete a network with leased blocks: %v", err)
		}
		held, err := netdb.HeldBlocks(ctx, d, "api!cell1")
		if err != nil || len(held) != 0 {
			t.Fatalf("held after the delete: %v, %v", held, err)
		}
	})
}
