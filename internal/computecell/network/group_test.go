package network_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// allocateInOneGroup allocates for uuids at once, lined up behind a held
// group so that their transactions commit as one (db.GroupQuery: their
// first reads go together), and returns each one's address and the round
// trips the group took.
func allocateInOneGroup(t *testing.T, d *db.DB, s *network.Service, uuids []string) ([]string, int64) {
	t.Helper()
	ctx := context.Background()
	release, entered := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- d.Group(ctx, func(*db.Tx) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce()
	got := make([]string, len(uuids))
	errs := make([]error, len(uuids))
	var wg sync.WaitGroup
	for i, u := range uuids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			addrs, err := s.Allocate(ctx, u, nil)
			if err == nil && len(addrs) != 1 {
				err = fmt.Errorf("%d addresses", len(addrs))
			}
			if err == nil {
				got[i] = addrs[0].Addr
			}
			errs[i] = err
		}()
	}
	testpoll.Eventually(t, 10*time.Second, "the allocations waiting for one group", func() (bool, string) {
		n := d.GroupWaiting()
		return n == len(uuids), fmt.Sprintf("%d waiting", n)
	})
	trips := d.RoundTrips()
	releaseOnce()
	wg.Wait()
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Allocate(%s): %v", uuids[i], err)
		}
	}
	return got, d.RoundTrips() - trips
}

// TestAllocationsOfAGroupReadTogether: the allocations of one group read
// the network once, together, and each still gets its own address, the
// lowest free first — those above a block's top from the transaction's
// memo of what it wrote, a row freed before read again after the first
// allocation took it.
func TestAllocationsOfAGroupReadTogether(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "10.0.1.0/24")
		for i := range 3 {
			allocate(t, s, uuidN(i)) // 10.0.1.2 .. 10.0.1.4
		}

		// Above the top: ten inserts after one read.
		var uuids []string
		for i := 10; i < 20; i++ {
			uuids = append(uuids, uuidN(i))
		}
		got, trips := allocateInOneGroup(t, d, s, uuids)
		want := []string{}
		for k := 5; k < 15; k++ {
			want = append(want, fmt.Sprintf("10.0.1.%d", k))
		}
		if g := sortedAddrs(got); !slices.Equal(g, want) {
			t.Errorf("the group's addresses %v, want %v", g, want)
		}
		// On PostgreSQL: the reads with the begin, an insert each, the commit.
		if d.Dialect == db.Postgres && trips != 12 {
			t.Errorf("%d round trips for ten allocations in a group, want 12", trips)
		}

		// Two rows freed: the group's first two take them (the second
		// reading again), the rest go above the top.
		freed := held(t, d)[uuidN(12)]
		for _, u := range []string{uuidN(1), uuidN(12)} {
			if err := s.Deallocate(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		uuids = nil
		for i := 20; i < 25; i++ {
			uuids = append(uuids, uuidN(i))
		}
		got, _ = allocateInOneGroup(t, d, s, uuids)
		want = sortedAddrs([]string{"10.0.1.3", freed, "10.0.1.15", "10.0.1.16", "10.0.1.17"})
		if g := sortedAddrs(got); !slices.Equal(g, want) {
			t.Errorf("the group's addresses %v, want %v", g, want)
		}
		h := held(t, d)
		byAddr := map[string]string{}
		for u, a := range h {
			if o, dup := byAddr[a]; dup {
				t.Errorf("%s held by both %s and %s", a, o, u)
			}
			byAddr[a] = u
		}
		if len(h) != 16 {
			t.Errorf("%d instances hold an address, want 16", len(h))
		}
	})
}

// sortedAddrs sorts IPv4 addresses in address order.
func sortedAddrs(as []string) []string {
	out := slices.Clone(as)
	slices.SortFunc(out, func(a, b string) int {
		return netip.MustParseAddr(a).Compare(netip.MustParseAddr(b))
	})
	return out
}

// TestAGroupOfAllocationsAsksForBlocksBelowLowWater: the allocations of a
// group count the free addresses from one read, before any of them; those
// after the mark is crossed still see it crossed (the transaction's own
// allocations taken off) and the cell asks for blocks.
func TestAGroupOfAllocationsAsksForBlocksBelowLowWater(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, rec := serviceWith(t, d, network.Config{LeaseTimeout: time.Minute})
		// Blocks of 16 (low water 8): the first two, 14 + 16 = 30 free.
		if err := network.Grant(ctx, d, network.SubnetBlocks("private", "sub-1", "192.168.1.0/24")); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Exec(ctx, `DELETE FROM address_blocks WHERE first_int > ?`, 0xC0A8011F); err != nil {
			t.Fatal(err)
		}
		for i := range 15 {
			allocate(t, s, uuidN(i))
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 0 {
			t.Fatalf("%d lease requests with 15 free, want none", n)
		}
		var uuids []string
		for i := 20; i < 30; i++ {
			uuids = append(uuids, uuidN(i))
		}
		allocateInOneGroup(t, d, s, uuids) // 15 free before, 5 after
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 1 {
			t.Errorf("%d lease requests after a group went below low water, want 1", n)
		}
	})
}
