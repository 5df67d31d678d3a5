package leases_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/leases"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

type message struct {
	to, method string
	payload    json.RawMessage
}

// recorder records the messages of committed transactions.
type recorder struct {
	mu   sync.Mutex
	msgs []message
}

func (r *recorder) Send(_ context.Context, tx *db.Tx, to, method, _ string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	tx.AfterCommit(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.msgs = append(r.msgs, message{to, method, b})
	})
	return nil
}

func (r *recorder) last(t *testing.T, method string, v any) message {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.msgs) - 1; i >= 0; i-- {
		if r.msgs[i].method == method {
			reflect.ValueOf(v).Elem().SetZero()
			if err := json.Unmarshal(r.msgs[i].payload, v); err != nil {
				t.Fatal(err)
			}
			return r.msgs[i]
		}
	}
	t.Fatalf("no %s sent", method)
	return message{}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.msgs)
}

func setup(t *testing.T, d *db.DB) (netID, subID string) {
	t.Helper()
	ctx := context.Background()
	if err := d.Migrate(ctx, "api", apidb.Migrations); err != nil {
		t.Fatal(err)
	}
	if err := d.Migrate(ctx, netdb.MigrationSet, netdb.Migrations); err != nil {
		t.Fatal(err)
	}
	netID, err := netdb.Seed(ctx, d, "private", "10.0.0.0/8", "")
	if err != nil {
		t.Fatal(err)
	}
	n, err := netdb.NetworkByID(ctx, d, netID)
	if err != nil {
		t.Fatal(err)
	}
	return netID, n.Subnets[0]
}

func cast(d *db.DB, h func(context.Context, *db.Tx, *wire.Envelope) error, from string, payload any) error {
	b, _ := json.Marshal(payload)
	env := &wire.Envelope{ID: "m-1", Method: "m", Version: wire.V1, Sender: from, RequestID: "req-1", Payload: b}
	return d.InTx(context.Background(), func(tx *db.Tx) error { return h(context.Background(), tx, env) })
}

// lease_blocks by name (a cell's default network) or by id leases the
// lowest free blocks to the sending cell and answers it in the same
// transaction; a second request leases the next ones (never the same
// block twice); an unknown network is answered with an error.
func TestLeaseBlocks(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		netID, subID := setup(t, d)
		rec := &recorder{}
		h := &leases.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.Unix(1_700_000_000, 0) }}
		if err := cast(d, h.LeaseBlocks, "api!c1", &wire.LeaseBlocks{NetworkName: "private", Count: 1}); err != nil {
			t.Fatal(err)
		}
		var got wire.BlocksLeased
		m := rec.last(t, wire.MethodBlocksLeased, &got)
		if m.to != "api!c1" || got.NetworkName != "private" || got.NetworkID != netID || got.Full || len(got.Blocks) != 1 || got.Blocks[0].CIDR != "10.0.0.0/24" ||
			got.Blocks[0].SubnetID != subID || got.Blocks[0].Usable[0].First != "10.0.0.2" || got.Blocks[0].LeasedAt.IsZero() {
			t.Fatalf("answer to %s: %+v", m.to, got)
		}
		if err := cast(d, h.LeaseBlocks, "api!c2", &wire.LeaseBlocks{NetworkID: netID, Count: 2}); err != nil {
			t.Fatal(err)
		}
		m = rec.last(t, wire.MethodBlocksLeased, &got)
		if m.to != "api!c2" || got.NetworkID != netID || len(got.Blocks) != 2 || got.Blocks[0].CIDR != "10.0.1.0/24" {
			t.Fatalf("second answer to %s: %+v", m.to, got)
		}
		if held, _ := netdb.HeldBlocks(ctx, d, "api!c2"); len(held) != 2 {
			t.Errorf("c2 holds %d blocks, want 2", len(held))
		}
		if err := cast(d, h.LeaseBlocks, "api!c1", &wire.LeaseBlocks{NetworkName: "nope", Count: 1}); err != nil {
			t.Fatal(err)
		}
		rec.last(t, wire.MethodBlocksLeased, &got)
		if got.Error == "" || got.Full || len(got.Blocks) != 0 {
			t.Errorf("answer for an unknown network: %+v, want an error and not full (a root still seeding it: the cell asks again)", got)
		}
		if err := cast(d, h.LeaseBlocks, "api!c1", &wire.LeaseBlocks{Count: 1}); !errors.Is(err, wire.ErrBadMessage) {
			t.Errorf("lease_blocks without a network = %v, want bad message", err)
		}
	})
}

// A small subnet runs out: the answer says full, with the blocks there
// were; then none.
func TestLeaseBlocksFull(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		setup(t, d)
		var netID string
		err := d.InTx(ctx, func(tx *db.Tx) error {
			n := &netdb.Network{Name: "small", ProjectID: "p"}
			if err := netdb.CreateNetwork(ctx, tx, n, time.Now()); err != nil {
				return err
			}
			netID = n.ID
			_, err := netdb.CreateSubnet(ctx, tx, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "p", IPVersion: 4, CIDR: "192.168.9.0/28"}, time.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		h := &leases.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler)}
		if err := cast(d, h.LeaseBlocks, "api!c1", &wire.LeaseBlocks{NetworkID: netID, Count: 16}); err != nil {
			t.Fatal(err)
		}
		var got wire.BlocksLeased
		rec.last(t, wire.MethodBlocksLeased, &got)
		if !got.Full || len(got.Blocks) != 4 {
			t.Fatalf("answer %+v, want the 4 blocks of the /28 and full", got)
		}
		if err := cast(d, h.LeaseBlocks, "api!c2", &wire.LeaseBlocks{NetworkID: netID, Count: 1}); err != nil {
			t.Fatal(err)
		}
		rec.last(t, wire.MethodBlocksLeased, &got)
		if !got.Full || len(got.Blocks) != 0 {
			t.Fatalf("answer %+v, want none and full", got)
		}
	})
}

// return_blocks ends the sender's lease (twice is once; another cell's
// return of a block it does not hold changes nothing); Revoke tells each
// holder of a subnet's blocks, in the caller's transaction.
func TestReturnAndRevoke(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		_, subID := setup(t, d)
		rec := &recorder{}
		h := &leases.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler)}
		for _, c := range []string{"api!c1", "api!c2", "api!c1"} {
			if err := cast(d, h.LeaseBlocks, c, &wire.LeaseBlocks{NetworkName: "private", Count: 1}); err != nil {
				t.Fatal(err)
			}
		}
		ret := &wire.ReturnBlocks{SubnetID: subID, CIDRs: []string{"10.0.0.0/24"}}
		for _, c := range []string{"api!c2", "api!c1", "api!c1"} {
			if err := cast(d, h.ReturnBlocks, c, ret); err != nil {
				t.Fatal(err)
			}
		}
		held1, _ := netdb.HeldBlocks(ctx, d, "api!c1")
		held2, _ := netdb.HeldBlocks(ctx, d, "api!c2")
		if len(held1) != 1 || held1[0].CIDR != "10.0.2.0/24" || len(held2) != 1 {
			t.Errorf("held after returns: c1 %+v, c2 %+v", held1, held2)
		}
		if err := cast(d, h.ReturnBlocks, "api!c1", &wire.ReturnBlocks{SubnetID: subID, CIDRs: []string{"nonsense"}}); !errors.Is(err, wire.ErrBadMessage) {
			t.Errorf("return of a bad CIDR = %v, want bad message", err)
		}
		before := rec.count()
		err := d.InTx(ctx, func(tx *db.Tx) error { return leases.Revoke(ctx, tx, rec, subID, "req-del") })
		if err != nil {
			t.Fatal(err)
		}
		if n := rec.count() - before; n != 2 {
			t.Errorf("%d revoke_blocks sent, want one to each of the 2 holders", n)
		}
		var rv wire.RevokeBlocks
		if rec.last(t, wire.MethodRevokeBlocks, &rv); rv.SubnetID != subID {
			t.Errorf("revoke %+v", rv)
		}
		// Undone with its transaction: nothing sent.
		before = rec.count()
		_ = d.InTx(ctx, func(tx *db.Tx) error {
			if err := leases.Revoke(ctx, tx, rec, subID, "req-del"); err != nil {
				return err
			}
			return errors.New("the delete failed")
		})
		if rec.count() != before {
			t.Error("revoke_blocks sent although the subnet's delete was undone")
		}
	})
}

// A network's deletion takes its subnets' leases with it: RevokeNetwork
// tells each holder of each subnet's blocks, in the caller's transaction,
// and nothing when that transaction is undone.
func TestRevokeNetwork(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		netID, subID := setup(t, d)
		rec := &recorder{}
		h := &leases.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler)}
		for _, c := range []string{"api!c1", "api!c2"} {
			if err := cast(d, h.LeaseBlocks, c, &wire.LeaseBlocks{NetworkName: "private", Count: 1}); err != nil {
				t.Fatal(err)
			}
		}
		before := rec.count()
		_ = d.InTx(ctx, func(tx *db.Tx) error {
			if err := leases.RevokeNetwork(ctx, tx, rec, netID, "req-del"); err != nil {
				return err
			}
			return errors.New("the delete failed")
		})
		if rec.count() != before {
			t.Error("revoke_blocks sent although the network's delete was undone")
		}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := leases.RevokeNetwork(ctx, tx, rec, netID, "req-del"); err != nil {
				return err
			}
			return netdb.DeleteNetwork(ctx, tx, netID)
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := rec.count() - before; n != 2 {
			t.Errorf("%d revoke_blocks sent, want one to each of the 2 holders", n)
		}
		var rv wire.RevokeBlocks
		if rec.last(t, wire.MethodRevokeBlocks, &rv); rv.SubnetID != subID {
			t.Errorf("revoke %+v, want subnet %s", rv, subID)
		}
	})
}

// The lease and its answer commit together: a root that dies halfway (the
// transaction undone) has leased nothing and sent nothing, and the cell
// asks again after its timeout. The same request applied twice (a cell
// that asked again) leases the next blocks, never one twice.
func TestLeaseIsAllOrNothingAndARepeatLeasesOthers(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		setup(t, d)
		rec := &recorder{}
		h := &leases.Handlers{Sender: rec, Logger: slog.New(slog.DiscardHandler)}
		b, _ := json.Marshal(&wire.LeaseBlocks{NetworkName: "private", Count: 1})
		env := &wire.Envelope{ID: "m-1", Method: wire.MethodLeaseBlocks, Version: wire.V1, Sender: "api!c1", RequestID: "req-1", Payload: b}
		err := d.InTx(ctx, func(tx *db.Tx) error {
			if err := h.LeaseBlocks(ctx, tx, env); err != nil {
				return err
			}
			return errors.New("the root dies before the commit")
		})
		if err == nil {
			t.Fatal("the transaction committed")
		}
		if held, _ := netdb.HeldBlocks(ctx, d, "api!c1"); len(held) != 0 || rec.count() != 0 {
			t.Fatalf("after an undone lease: %d blocks held, %d messages sent; want none", len(held), rec.count())
		}
		for range 2 {
			if err := d.InTx(ctx, func(tx *db.Tx) error { return h.LeaseBlocks(ctx, tx, env) }); err != nil {
				t.Fatal(err)
			}
		}
		held, _ := netdb.HeldBlocks(ctx, d, "api!c1")
		if len(held) != 2 || held[0].CIDR == held[1].CIDR || rec.count() != 2 {
			t.Errorf("after the request twice: held %+v, %d answers; want two different blocks and two answers", held, rec.count())
		}
	})
}
