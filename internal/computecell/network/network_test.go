package network_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
)

// service is a network service of cell "api!c1" that holds the whole of
// cidr, a subnet of "private", in blocks.
func service(t *testing.T, d *db.DB, cidr string) *network.Service {
	t.Helper()
	s, _ := serviceWith(t, d, network.Config{})
	if err := network.Grant(context.Background(), d, network.SubnetBlocks("private", "sub-1", cidr)); err != nil {
		t.Fatalf("grant %s: %v", cidr, err)
	}
	return s
}

func uuidN(i int) string { return fmt.Sprintf("00000000-0000-0000-0000-%012d", i) }

func allocate(t *testing.T, s *network.Service, uuid string) string {
	t.Helper()
	addrs, err := s.Allocate(context.Background(), uuid, nil)
	if err != nil {
		t.Fatalf("Allocate(%s): %v", uuid, err)
	}
	if len(addrs) != 1 {
		t.Fatalf("Allocate(%s) = %d addresses, want 1", uuid, len(addrs))
	}
	a := addrs[0]
	if a.Network != "private" || a.Version != 4 || a.MAC == "" {
		t.Errorf("Allocate(%s) = %+v, want a v4 address on private with a MAC", uuid, a)
	}
	return a.Addr
}

func inPrefix(t *testing.T, addr, cidr string) {
	t.Helper()
	p := netip.MustParsePrefix(cidr)
	a, err := netip.ParseAddr(addr)
	if err != nil || !p.Contains(a) {
		t.Errorf("address %q is not in %s", addr, cidr)
		return
	}
	network := p.Masked().Addr()
	gateway := network.Next()
	var broadcast netip.Addr
	for x := network; p.Contains(x); x = x.Next() {
		broadcast = x
	}
	if a == network || a == gateway || a == broadcast {
		t.Errorf("address %s is the network, gateway or broadcast address of %s", a, cidr)
	}
}

func held(t *testing.T, d *db.DB) map[string]string {
	t.Helper()
	rows, err := d.Query(context.Background(), `SELECT address, instance_uuid FROM fixed_ips WHERE instance_uuid IS NOT NULL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var a, u string
		if err := rows.Scan(&a, &u); err != nil {
			t.Fatal(err)
		}
		out[u] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAllocateConcurrentlyNeverGivesAnAddressTwice(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		const cidr = "10.0.1.0/24"
		s := service(t, d, cidr)
		const n = 50
		got := make([]string, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				addrs, err := s.Allocate(ctx, uuidN(i), nil)
				if err == nil && len(addrs) != 1 {
					err = fmt.Errorf("%d addresses", len(addrs))
				}
				if err == nil {
					got[i] = addrs[0].Addr
				}
				errs[i] = err
			}()
		}
		close(start)
		wg.Wait()

		byAddr := map[string]int{}
		for i, err := range errs {
			if err != nil {
				t.Errorf("Allocate(%s): %v", uuidN(i), err)
				continue
			}
			inPrefix(t, got[i], cidr)
			if j, dup := byAddr[got[i]]; dup {
				t.Errorf("%s given to both %s and %s", got[i], uuidN(j), uuidN(i))
			}
			byAddr[got[i]] = i
		}
		h := held(t, d)
		if len(h) != n {
			t.Errorf("%d instances hold an address, want %d", len(h), n)
		}
		for i := range n {
			if h[uuidN(i)] != got[i] {
				t.Errorf("%s holds %q in the database, Allocate said %q", uuidN(i), h[uuidN(i)], got[i])
			}
		}
		// The addresses are the first 50 usable ones: nothing was skipped.
		for k := 2; k < 2+n; k++ {
			if _, ok := byAddr[fmt.Sprintf("10.0.1.%d", k)]; !ok {
				t.Errorf("10.0.1.%d was not handed out", k)
			}
		}

		// Asking again, even concurrently, gives each instance the same address.
		var wg2 sync.WaitGroup
		for i := range n {
			wg2.Add(1)
			go func() {
				defer wg2.Done()
				addrs, err := s.Allocate(ctx, uuidN(i), nil)
				if err != nil || len(addrs) != 1 || addrs[0].Addr != got[i] {
					t.Errorf("second Allocate(%s) = %+v, %v; want %s", uuidN(i), addrs, err, got[i])
				}
			}()
		}
		wg2.Wait()
		if h := held(t, d); len(h) != n {
			t.Errorf("%d instances hold an address after asking again, want %d", len(h), n)
		}
	})
}

func TestAllocateSameInstanceConcurrently(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "10.0.2.0/24")
		const n = 20
		got := make([]string, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				addrs, err := s.Allocate(ctx, "the-one", nil)
				if err != nil || len(addrs) != 1 {
					t.Errorf("Allocate: %+v, %v", addrs, err)
					return
				}
				got[i] = addrs[0].Addr
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			if got[i] != got[0] {
				t.Errorf("one instance was given %s and %s", got[0], got[i])
			}
		}
		var rows int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips WHERE instance_uuid = ?`, "the-one").Scan(&rows); err != nil || rows != 1 {
			t.Errorf("the instance holds %d addresses (%v), want 1", rows, err)
		}
	})
}

func TestAllocateIsStableAndDeallocateFreesForReuse(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "192.168.10.0/24")
		a := allocate(t, s, "a")
		if a != "192.168.10.2" {
			t.Errorf("first address = %s, want 192.168.10.2 (after the gateway)", a)
		}
		if again := allocate(t, s, "a"); again != a {
			t.Errorf("Allocate(a) again = %s, want %s", again, a)
		}
		b := allocate(t, s, "b")
		c := allocate(t, s, "c")
		if b == a || c == a || b == c {
			t.Fatalf("a=%s b=%s c=%s, want distinct", a, b, c)
		}
		addrs, _ := s.Allocate(ctx, "a", nil)
		addrsAgain, _ := s.Allocate(ctx, "a", nil)
		if addrs[0].MAC != addrsAgain[0].MAC {
			t.Errorf("MAC changed between allocations: %s, %s", addrs[0].MAC, addrsAgain[0].MAC)
		}

		if err := s.Deallocate(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.Deallocate(ctx, "b"); err != nil {
			t.Errorf("second Deallocate(b): %v", err)
		}
		if err := s.Deallocate(ctx, "never"); err != nil {
			t.Errorf("Deallocate of an instance without an address: %v", err)
		}
		if _, ok := held(t, d)["b"]; ok {
			t.Error("b still holds an address after Deallocate")
		}
		// Another instance gets the freed address, before any new one.
		if got := allocate(t, s, "d"); got != b {
			t.Errorf("Allocate(d) after freeing %s = %s, want the freed address", b, got)
		}
		if got := allocate(t, s, "e"); got == a || got == b || got == c {
			t.Errorf("Allocate(e) = %s, which is taken", got)
		}
		h := held(t, d)
		if len(h) != 4 || h["a"] != a || h["c"] != c || h["d"] != b {
			t.Errorf("held = %v", h)
		}
	})
}

func TestSmallNetworkExhausts(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		const cidr = "10.9.9.8/29" // .8 network, .9 gateway, .15 broadcast
		s := service(t, d, cidr)
		var want []string
		for k := 10; k <= 14; k++ {
			want = append(want, fmt.Sprintf("10.9.9.%d", k))
		}
		for i, w := range want {
			got := allocate(t, s, uuidN(i))
			inPrefix(t, got, cidr)
			if got != w {
				t.Errorf("allocation %d = %s, want %s", i, got, w)
			}
		}
		_, err := s.Allocate(ctx, "one-too-many", nil)
		if !errors.Is(err, network.ErrExhausted) {
			t.Fatalf("Allocate past the end = %v, want ErrExhausted", err)
		}
		if _, ok := held(t, d)["one-too-many"]; ok {
			t.Error("the refused instance holds an address")
		}
		// Existing holders still get theirs, and a freed address goes again.
		if got := allocate(t, s, uuidN(0)); got != want[0] {
			t.Errorf("Allocate of a holder in a full network = %s, want %s", got, want[0])
		}
		if err := s.Deallocate(ctx, uuidN(3)); err != nil {
			t.Fatal(err)
		}
		if got := allocate(t, s, "one-too-many"); got != want[3] {
			t.Errorf("Allocate after a free = %s, want %s", got, want[3])
		}
		if _, err := s.Allocate(ctx, "another", nil); !errors.Is(err, network.ErrExhausted) {
			t.Errorf("Allocate in a full network again = %v, want ErrExhausted", err)
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	d := dbtest.Open(t, "sqlite")
	for name, cfg := range map[string]network.Config{
		"no database": {Cell: "api!c1", Sender: &recorder{}},
		"no sender":   {Cell: "api!c1", DB: d},
		"bad cell":    {Cell: "", DB: d, Sender: &recorder{}},
	} {
		if _, err := network.New(cfg); err == nil {
			t.Errorf("New accepted a config with %s", name)
		}
	}
}
