package network_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/portid"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// recorder is a Sender that records the messages of committed
// transactions.
type recorder struct {
	mu   sync.Mutex
	sent []sent
}

type sent struct {
	to, method string
	payload    json.RawMessage
}

func (r *recorder) Send(_ context.Context, tx *db.Tx, to, method, _ string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	tx.AfterCommit(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.sent = append(r.sent, sent{to, method, b})
	})
	return nil
}

func (r *recorder) of(method string) []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []sent
	for _, s := range r.sent {
		if s.method == method {
			out = append(out, s)
		}
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// serviceWith is a network service of cell api!c1 on a migrated database,
// with a recorder for a sender and a settable clock.
func serviceWith(t testing.TB, d *db.DB, cfg network.Config) (*network.Service, *recorder) {
	t.Helper()
	if err := d.Migrate(context.Background(), "compute", celldb.Migrations); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	rec := &recorder{}
	cfg.Cell, cfg.DB, cfg.Sender = "api!c1", d, rec
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := network.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, rec
}

func handlers(d *db.DB) *network.Handlers {
	return &network.Handlers{DB: d, Logger: slog.New(slog.DiscardHandler)}
}

// cast applies a durable message to the cell as its cells service would.
func cast(t *testing.T, d *db.DB, h func(context.Context, *db.Tx, *wire.Envelope) error, payload any) error {
	t.Helper()
	b, _ := json.Marshal(payload)
	env := &wire.Envelope{Method: "m", Version: wire.V1, RequestID: "req-test", Payload: b}
	return d.InTx(context.Background(), func(tx *db.Tx) error { return h(context.Background(), tx, env) })
}

func call(t *testing.T, h func(context.Context, *wire.Envelope) (any, error), payload any) error {
	t.Helper()
	b, _ := json.Marshal(payload)
	_, err := h(context.Background(), &wire.Envelope{Method: "m", Version: wire.V1, RequestID: "req-test", Payload: b})
	return err
}

func freeCount(t *testing.T, d *db.DB) int {
	t.Helper()
	var n int
	// The free rows, and the open blocks' usable addresses with no row
	// yet (those above their tops).
	if err := d.QueryRow(context.Background(), `SELECT (SELECT COUNT(*) FROM fixed_ips WHERE instance_uuid IS NULL AND port_id = '' AND in_block = 1) +
		(SELECT COALESCE(SUM(b.usable_count - (SELECT COUNT(*) FROM fixed_ips f WHERE f.subnet_id = b.subnet_id
			AND f.address_int BETWEEN b.first_int AND b.last_int AND f.in_block = 1)), 0) FROM address_blocks b WHERE b.filled = 0 AND b.returned = 0)`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A cell with no block asks the root once, its builds wait (pending) and
// go on when the blocks come; a second blocks_leased of the same blocks
// (the message arriving twice) changes nothing.
func TestExhaustionWaitsThenProceedsWhenBlocksArrive(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, rec := serviceWith(t, d, network.Config{})
		for i := range 3 {
			_, err := s.Allocate(ctx, uuidN(i), nil)
			if !errors.Is(err, wire.ErrAddressesPending) || !errors.Is(err, network.ErrExhausted) {
				t.Fatalf("Allocate without blocks = %v, want pending", err)
			}
		}
		reqs := rec.of(wire.MethodLeaseBlocks)
		if len(reqs) != 1 || reqs[0].to != "api" {
			t.Fatalf("lease requests = %+v, want one to the root", reqs)
		}
		var lb wire.LeaseBlocks
		_ = json.Unmarshal(reqs[0].payload, &lb)
		if lb.NetworkName != "private" || lb.NetworkID != "" || lb.Count != 2 {
			t.Errorf("lease request = %+v, want two blocks of the default network, by name", lb)
		}
		// Another network, known by id: one block at a time until its
		// blocks are known to be big.
		if _, err := s.Allocate(ctx, uuidN(9), []wire.NIC{{NetworkID: "net-9", NetworkName: "other"}}); !errors.Is(err, wire.ErrAddressesPending) {
			t.Fatalf("Allocate on another network without blocks = %v, want pending", err)
		}
		reqs = rec.of(wire.MethodLeaseBlocks)
		lb = wire.LeaseBlocks{}
		if len(reqs) == 2 {
			_ = json.Unmarshal(reqs[1].payload, &lb)
		}
		if lb.NetworkID != "net-9" || lb.Count != 1 {
			t.Errorf("lease request = %+v, want one block of net-9 by id", lb)
		}
		m := network.SubnetBlocks("private", "sub-1", "10.0.0.0/8")
		m.NetworkID = "net-1"
		m.Blocks = m.Blocks[:1]
		for range 2 {
			if err := cast(t, d, handlers(d).BlocksLeased, &m); err != nil {
				t.Fatalf("blocks_leased: %v", err)
			}
		}
		if n := freeCount(t, d); n != 254 {
			t.Errorf("%d free addresses after the block 10.0.0.0/24 came twice, want 254 (.2 to .255)", n)
		}
		addrs, err := s.Allocate(ctx, uuidN(0), nil)
		if err != nil || len(addrs) != 1 || addrs[0].Addr != "10.0.0.2" {
			t.Fatalf("Allocate after the blocks = %+v, %v; want 10.0.0.2", addrs, err)
		}
		a := addrs[0]
		if a.SubnetID != "sub-1" || a.NetworkID != "net-1" || a.Network != "private" || a.PortID != portid.Derive(uuidN(0), "private", "10.0.0.2") {
			t.Errorf("address = %+v, want subnet sub-1, network net-1 and the derived port", a)
		}
		st, err := celldb.Addresses(ctx, d, uuidN(0))
		if err != nil || len(st) != 1 || st[0] != a {
			t.Errorf("celldb.Addresses = %+v, %v; want %+v", st, err, a)
		}
	})
}

// Below the low-water mark the cell sends one lease request, not one per
// allocation, and sends it again only when it went unanswered too long.
func TestLowWaterSendsOneRequest(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := &clock{now: time.Unix(1_700_000_000, 0)}
		s, rec := serviceWith(t, d, network.Config{Now: clk.Now, LeaseTimeout: time.Minute})
		// A /24 in blocks of 16: low water is half a block, 8 (14 usable
		// in the first block, 16 in the others: the largest counts).
		if err := network.Grant(ctx, d, network.SubnetBlocks("private", "sub-1", "192.168.1.0/24")); err != nil {
			t.Fatal(err)
		}
		// Keep the first two blocks (14 + 16 = 30 free; the gateway block
		// has .2 to .15).
		if _, err := d.Exec(ctx, `DELETE FROM address_blocks WHERE first_int > ?`, 0xC0A8011F); err != nil {
			t.Fatal(err)
		}
		for i := range 22 {
			if _, err := s.Allocate(ctx, uuidN(i), nil); err != nil {
				t.Fatalf("Allocate %d: %v", i, err)
			}
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 0 {
			t.Fatalf("%d lease requests with 8 free, want none above low water", n)
		}
		for i := 22; i < 28; i++ {
			if _, err := s.Allocate(ctx, uuidN(i), nil); err != nil {
				t.Fatalf("Allocate %d: %v", i, err)
			}
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 1 {
			t.Fatalf("%d lease requests below low water, want 1", n)
		}
		clk.add(2 * time.Minute)
		if _, err := s.Allocate(ctx, uuidN(28), nil); err != nil {
			t.Fatal(err)
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 2 {
			t.Fatalf("%d lease requests after the first went unanswered past the timeout, want 2", n)
		}
		// Blocks came (the free addresses are above the mark again): the
		// next fall below the mark asks anew, once.
		m := network.SubnetBlocks("private", "sub-2", "10.9.0.0/24")
		m.Blocks = []wire.LeasedBlock{m.Blocks[1]} // 16 usable
		if err := cast(t, d, handlers(d).BlocksLeased, &m); err != nil {
			t.Fatal(err)
		}
		for i := 29; i < 41; i++ {
			if _, err := s.Allocate(ctx, uuidN(i), nil); err != nil {
				t.Fatalf("Allocate %d: %v", i, err)
			}
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 3 {
			t.Fatalf("%d lease requests after blocks came and ran low again, want 3", n)
		}
	})
}

// When the root has no block left, a cell with no free address fails the
// allocation with network-full (Nova's NoMoreFixedIps), and asks again only
// after FullRetry.
func TestNetworkFullFails(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := &clock{now: time.Unix(1_700_000_000, 0)}
		s, rec := serviceWith(t, d, network.Config{Now: clk.Now, FullRetry: time.Minute})
		if _, err := s.Allocate(ctx, "a", nil); !errors.Is(err, wire.ErrAddressesPending) {
			t.Fatalf("Allocate = %v, want pending", err)
		}
		h := &network.Handlers{DB: d, Logger: slog.New(slog.DiscardHandler), Now: clk.Now}
		if err := cast(t, d, h.BlocksLeased, &wire.BlocksLeased{NetworkName: "private", Full: true}); err != nil {
			t.Fatal(err)
		}
		_, err := s.Allocate(ctx, "a", nil)
		if !errors.Is(err, wire.ErrNetworkFull) {
			t.Fatalf("Allocate in a full network = %v, want network full", err)
		}
		if len(rec.of(wire.MethodLeaseBlocks)) != 1 {
			t.Errorf("asked again at once after the root said full")
		}
		clk.add(2 * time.Minute)
		if _, err := s.Allocate(ctx, "a", nil); !errors.Is(err, wire.ErrAddressesPending) {
			t.Fatalf("Allocate after FullRetry = %v, want pending (asked again)", err)
		}
		if len(rec.of(wire.MethodLeaseBlocks)) != 2 {
			t.Errorf("did not ask again after FullRetry")
		}
	})
}

// A root that does not know the default network yet (it is still making it
// as it starts) answers with an error, not full: the cell's builds wait
// (pending, not NoMoreFixedIps) and the cell asks again a second later,
// and its builds go on once blocks come.
func TestUnknownDefaultNetworkWaits(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		clk := &clock{now: time.Unix(1_700_000_000, 0)}
		s, rec := serviceWith(t, d, network.Config{Now: clk.Now, FullRetry: time.Minute})
		if _, err := s.Allocate(ctx, "a", nil); !errors.Is(err, wire.ErrAddressesPending) {
			t.Fatalf("Allocate = %v, want pending", err)
		}
		h := &network.Handlers{DB: d, Logger: slog.New(slog.DiscardHandler), Now: clk.Now}
		if err := cast(t, d, h.BlocksLeased, &wire.BlocksLeased{NetworkName: "private", Error: "Network private could not be found."}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Allocate(ctx, "a", nil); !errors.Is(err, wire.ErrAddressesPending) {
			t.Fatalf("Allocate after the root did not know the network = %v, want pending", err)
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 1 {
			t.Errorf("%d lease requests at once after the answer, want 1", n)
		}
		clk.add(2 * time.Second)
		if _, err := s.Allocate(ctx, "a", nil); !errors.Is(err, wire.ErrAddressesPending) {
			t.Fatalf("Allocate a little later = %v, want pending", err)
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 2 {
			t.Errorf("%d lease requests a little later, want 2 (asked again)", n)
		}
		m := network.SubnetBlocks("private", "sub-1", "10.9.0.0/24")
		if err := cast(t, d, h.BlocksLeased, &m); err != nil {
			t.Fatal(err)
		}
		if addrs, err := s.Allocate(ctx, "a", nil); err != nil || len(addrs) != 1 {
			t.Fatalf("Allocate once blocks came = %+v, %v", addrs, err)
		}
	})
}

// Addresses the API cell handed out come in the NIC and are recorded as
// they are, with their port; they are forgotten with the instance, and the
// cell's own free addresses are untouched.
func TestGivenFixedIPsAreRecordedNotAllocated(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "10.0.1.0/24")
		before := freeCount(t, d)
		nics := []wire.NIC{
			{NetworkID: "net-2", NetworkName: "user", PortID: "port-1", MAC: "fa:16:3e:00:00:01", FixedIPs: []wire.FixedIP{{SubnetID: "sub-2", Addr: "172.16.0.9"}}},
			{NetworkName: "private"},
		}
		addrs, err := s.Allocate(ctx, "a", nics)
		if err != nil || len(addrs) != 2 {
			t.Fatalf("Allocate = %+v, %v", addrs, err)
		}
		want := wire.Address{Network: "user", Addr: "172.16.0.9", Version: 4, MAC: "fa:16:3e:00:00:01", NetworkID: "net-2", SubnetID: "sub-2", PortID: "port-1"}
		if addrs[0] != want {
			t.Errorf("first address = %+v, want %+v", addrs[0], want)
		}
		if addrs[1].Addr != "10.0.1.2" || addrs[1].MAC == addrs[0].MAC {
			t.Errorf("second address = %+v, want 10.0.1.2 with a MAC of its own", addrs[1])
		}
		if n := freeCount(t, d); n != before-1 {
			t.Errorf("free = %d, want %d: only the second NIC takes one of the cell's", n, before-1)
		}
		// Again (a retried build): the same.
		again, err := s.Allocate(ctx, "a", nics)
		if err != nil || len(again) != 2 || again[0] != addrs[0] || again[1] != addrs[1] {
			t.Errorf("Allocate again = %+v, %v", again, err)
		}
		// Another instance given the same address: a conflict.
		if _, err := s.Allocate(ctx, "b", nics[:1]); !errors.Is(err, wire.ErrConflict) {
			t.Errorf("the same given address to another instance = %v, want conflict", err)
		}
		if err := s.Deallocate(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if n := freeCount(t, d); n != before {
			t.Errorf("after Deallocate: %d free; want %d (the given address is not the cell's to hand out)", n, before)
		}
		// The API cell gives the address again, to another port: the new
		// instance takes it.
		other := wire.NIC{NetworkID: "net-2", NetworkName: "user", PortID: "port-9", FixedIPs: nics[0].FixedIPs}
		if _, err := s.Allocate(ctx, "c", []wire.NIC{other}); err != nil {
			t.Errorf("the given address to a new port after its instance went: %v", err)
		}
		if err := s.Deallocate(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		// The sweep forgets it.
		if _, err := s.ReturnFree(ctx); err != nil {
			t.Fatal(err)
		}
		var rows int
		_ = d.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips WHERE subnet_id = 'sub-2'`).Scan(&rows)
		if rows != 0 {
			t.Errorf("after the sweep: %d rows of the given subnet, want 0", rows)
		}
	})
}

// reserve_address sets an address of the cell's blocks aside for a port:
// never handed out, asked again for the same port the same, a conflict for
// another port or an instance's address, not found outside the blocks. The
// port's instance takes it; it stays set aside after the instance, until
// release_addresses (which, arriving twice, changes nothing more).
func TestReserveAndRelease(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "10.0.1.0/24")
		h := handlers(d)
		r := wire.ReserveAddress{SubnetID: "sub-1", Addr: "10.0.1.2", PortID: "port-1"}
		for range 2 {
			if err := call(t, h.ReserveAddress, &r); err != nil {
				t.Fatalf("reserve: %v", err)
			}
		}
		if err := call(t, h.ReserveAddress, &wire.ReserveAddress{SubnetID: "sub-1", Addr: "10.0.1.2", PortID: "port-2"}); !errors.Is(err, wire.ErrConflict) {
			t.Errorf("reserve for another port = %v, want conflict", err)
		}
		if got := allocate(t, s, "a"); got != "10.0.1.3" {
			t.Errorf("Allocate = %s, want 10.0.1.3 (10.0.1.2 is set aside)", got)
		}
		if err := call(t, h.ReserveAddress, &wire.ReserveAddress{SubnetID: "sub-1", Addr: "10.0.1.3", PortID: "port-3"}); !errors.Is(err, wire.ErrConflict) {
			t.Errorf("reserve of an instance's address = %v, want conflict", err)
		}
		for _, bad := range []wire.ReserveAddress{{SubnetID: "sub-1", Addr: "10.0.1.1", PortID: "p"}, {SubnetID: "sub-9", Addr: "10.0.1.9", PortID: "p"}} {
			if err := call(t, h.ReserveAddress, &bad); !errors.Is(err, wire.ErrNotFound) {
				t.Errorf("reserve %+v = %v, want not found", bad, err)
			}
		}
		nic := wire.NIC{NetworkName: "private", PortID: "port-1", FixedIPs: []wire.FixedIP{{SubnetID: "sub-1", Addr: "10.0.1.2"}}}
		addrs, err := s.Allocate(ctx, "b", []wire.NIC{nic})
		if err != nil || len(addrs) != 1 || addrs[0].Addr != "10.0.1.2" || addrs[0].PortID != "port-1" {
			t.Fatalf("Allocate with the reserved address = %+v, %v", addrs, err)
		}
		if err := s.Deallocate(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if got := allocate(t, s, "c"); got != "10.0.1.4" {
			t.Errorf("Allocate after the port's instance went = %s, want 10.0.1.4 (the port keeps 10.0.1.2)", got)
		}
		for range 2 {
			if err := cast(t, d, h.ReleaseAddresses, &wire.ReleaseAddresses{PortIDs: []string{"port-1"}}); err != nil {
				t.Fatal(err)
			}
		}
		if got := allocate(t, s, "d"); got != "10.0.1.2" {
			t.Errorf("Allocate after the release = %s, want 10.0.1.2", got)
		}
	})
}

// revoke_blocks (the subnet was deleted) drops the blocks and their free
// addresses; an instance keeps its address until it lets it go. Twice is
// the same as once.
func TestRevoke(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s := service(t, d, "10.0.1.0/24")
		a := allocate(t, s, "a")
		for range 2 {
			if err := cast(t, d, handlers(d).RevokeBlocks, &wire.RevokeBlocks{SubnetID: "sub-1"}); err != nil {
				t.Fatal(err)
			}
		}
		if n := freeCount(t, d); n != 0 {
			t.Errorf("%d free addresses after the revoke, want 0", n)
		}
		if got := held(t, d)["a"]; got != a {
			t.Errorf("a holds %q after the revoke, want %s", got, a)
		}
		if _, err := s.Allocate(ctx, "b", nil); !errors.Is(err, wire.ErrAddressesPending) {
			t.Errorf("Allocate after the revoke = %v, want pending", err)
		}
		if err := s.Deallocate(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Allocate(ctx, "b", nil); !errors.Is(err, wire.ErrAddressesPending) {
			t.Errorf("Allocate after the revoked address was let go = %v, want pending (it is not the cell's)", err)
		}
		if _, err := s.ReturnFree(ctx); err != nil {
			t.Fatal(err)
		}
		var rows int
		_ = d.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips`).Scan(&rows)
		if rows != 0 {
			t.Errorf("%d address rows left after the revoked subnet's last instance went and the sweep, want 0", rows)
		}
	})
}

// Wholly free blocks beyond the reserve go back to the root, the highest
// first, each dropped here in the transaction that sends return_blocks; a
// late copy of the old lease does not bring one back, a new lease does.
func TestReturnFreeBlocks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, rec := serviceWith(t, d, network.Config{ReserveBlocks: 1})
		m := network.SubnetBlocks("private", "sub-1", "10.0.1.0/24") // 16 blocks of 16
		leased := time.Unix(1_700_000_000, 0)
		for i := range m.Blocks {
			m.Blocks[i].LeasedAt = leased
		}
		if err := network.Grant(ctx, d, m); err != nil {
			t.Fatal(err)
		}
		allocate(t, s, "a") // in the first block
		n, err := s.ReturnFree(ctx)
		if err != nil || n != 14 {
			t.Fatalf("ReturnFree = %d, %v; want 14 (16 blocks, one in use, one kept)", n, err)
		}
		ret := rec.of(wire.MethodReturnBlocks)
		if len(ret) != 14 || ret[0].to != "api" {
			t.Fatalf("return_blocks sent = %d, want 14 to the root", len(ret))
		}
		if n := freeCount(t, d); n != 13+16 {
			t.Errorf("free = %d, want 29 (the rest of the first block and one kept)", n)
		}
		if n, _ := s.ReturnFree(ctx); n != 0 {
			t.Errorf("ReturnFree again = %d, want 0", n)
		}
		// The old lease again (a late duplicate): nothing comes back.
		if err := network.Grant(ctx, d, m); err != nil {
			t.Fatal(err)
		}
		if n := freeCount(t, d); n != 29 {
			t.Errorf("free after a late copy of the old lease = %d, want 29", n)
		}
		// A new lease of a returned block: it is the cell's again.
		m2 := m
		m2.Blocks = []wire.LeasedBlock{m.Blocks[15]}
		m2.Blocks[0].LeasedAt = leased.Add(time.Hour)
		if err := network.Grant(ctx, d, m2); err != nil {
			t.Fatal(err)
		}
		if n := freeCount(t, d); n != 29+15 {
			t.Errorf("free after a new lease of a returned block = %d, want 44", n)
		}
	})
}

// Two services on one cell database (the network role in two processes)
// allocating at once from a small subnet never give an address twice.
func TestTwoServicesShareBlocks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s1 := service(t, d, "10.0.1.0/27")
		s2, _ := serviceWith(t, d, network.Config{})
		var wg sync.WaitGroup
		got := make([]string, 26)
		errs := make([]error, 26)
		for i := range 26 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := s1
				if i%2 == 1 {
					s = s2
				}
				addrs, err := s.Allocate(ctx, uuidN(i), nil)
				if err == nil {
					got[i] = addrs[0].Addr
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		seen := map[string]bool{}
		for i := range 26 {
			if errs[i] != nil {
				t.Errorf("Allocate %d: %v", i, errs[i])
				continue
			}
			inPrefix(t, got[i], "10.0.1.0/27")
			if seen[got[i]] {
				t.Errorf("%s given twice", got[i])
			}
			seen[got[i]] = true
		}
		// 29 usable: 3 left.
		if n := freeCount(t, d); n != 3 {
			t.Errorf("free = %d, want 3", n)
		}
	})
}

// The fixed IPs of a cell's static share (before migration 6) stay with
// their instances, reported without a subnet, and go with them.
func TestMigrationKeepsStaticShareAddresses(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		if err := d.Migrate(ctx, "compute", celldb.Migrations[:5]); err != nil {
			t.Fatal(err)
		}
		for i, u := range []any{"a", nil, "b"} {
			if _, err := d.Exec(ctx, `INSERT INTO fixed_ips (address_int, address, network, instance_uuid, mac, updated_at) VALUES (?, ?, 'private', ?, ?, 0)`,
				0x0A010002+i, fmt.Sprintf("10.1.0.%d", 2+i), u, "fa:16:3e:00:00:0"+fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		s, _ := serviceWith(t, d, network.Config{})
		addrs, err := celldb.Addresses(ctx, d, "b")
		if err != nil || len(addrs) != 1 || addrs[0].Addr != "10.1.0.4" || addrs[0].Network != "private" || addrs[0].SubnetID != "" {
			t.Fatalf("b's addresses after the migration = %+v, %v", addrs, err)
		}
		// Allocate is idempotent for it: it keeps its address.
		if got, err := s.Allocate(ctx, "b", nil); err != nil || len(got) != 1 || got[0].Addr != "10.1.0.4" {
			t.Errorf("Allocate(b) = %+v, %v; want its old address", got, err)
		}
		if err := s.Deallocate(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ReturnFree(ctx); err != nil {
			t.Fatal(err)
		}
		var rows int
		_ = d.QueryRow(ctx, `SELECT COUNT(*) FROM fixed_ips`).Scan(&rows)
		if rows != 1 {
			t.Errorf("%d rows after b went and the sweep, want 1 (a's)", rows)
		}
	})
}

// Where the low-water mark is high (128 in blocks of 256), the free
// addresses are counted on every 16th allocation only: the request goes
// out within 16 allocations of crossing the mark, once.
func TestLowWaterOfBigBlocksIsCheckedEvery16th(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, rec := serviceWith(t, d, network.Config{})
		m := network.SubnetBlocks("private", "sub-1", "10.0.0.0/8")
		m.Blocks = m.Blocks[:1] // 10.0.0.2 to 10.0.0.255: 254
		if err := network.Grant(ctx, d, m); err != nil {
			t.Fatal(err)
		}
		for i := range 126 {
			if _, err := s.Allocate(ctx, uuidN(i), nil); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 0 {
			t.Fatalf("%d lease requests with 128 free, want none", n)
		}
		for i := 126; i < 144; i++ {
			if _, err := s.Allocate(ctx, uuidN(i), nil); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(rec.of(wire.MethodLeaseBlocks)); n != 1 {
			t.Fatalf("%d lease requests 18 allocations below the mark, want 1", n)
		}
	})
}

// A cell waits for its first blocks (and offers no capacity) from its
// first lease request of the default network until the root answers it.
func TestAwaitingFirstBlocks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		s, _ := serviceWith(t, d, network.Config{})
		waiting := func() bool {
			t.Helper()
			w, err := network.AwaitingFirstBlocks(ctx, d, "private")
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		if waiting() {
			t.Error("waiting before any request")
		}
		if err := s.Start(ctx); err != nil { // asks for the first blocks
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Shutdown(ctx) })
		if !waiting() {
			t.Error("not waiting with the first request unanswered")
		}
		if err := cast(t, d, handlers(d).BlocksLeased, &wire.BlocksLeased{NetworkName: "private", Full: true}); err != nil {
			t.Fatal(err)
		}
		if waiting() {
			t.Error("still waiting after the root answered (full)")
		}
	})
}
