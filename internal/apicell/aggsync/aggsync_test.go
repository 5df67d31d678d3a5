package aggsync_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/aggsync"
	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

type msg struct {
	to      string
	payload wire.HostAggregates
}

// outbox records the host_aggregates of the transactions that committed.
type outbox struct {
	mu   sync.Mutex
	msgs []msg
}

func (o *outbox) Send(_ context.Context, tx *db.Tx, to, method, _ string, payload any) error {
	if method != wire.MethodHostAggregates {
		return nil
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	var m wire.HostAggregates
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	tx.AfterCommit(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.msgs = append(o.msgs, msg{to, m})
	})
	return nil
}

func (o *outbox) take() []msg {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.msgs
	o.msgs = nil
	return out
}

type fixture struct {
	t   *testing.T
	d   *db.DB
	out *outbox
	p   *aggsync.Pusher
	h   *aggsync.Handlers
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	if err := d.Migrate(context.Background(), "api", apidb.Migrations); err != nil {
		t.Fatal(err)
	}
	out := &outbox{}
	p := &aggsync.Pusher{Sender: out, DefaultZone: "nova"}
	return &fixture{t: t, d: d, out: out, p: p, h: &aggsync.Handlers{Pusher: p, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}}
}

// change runs f under the aggregates' lock and pushes the cells.
func (f *fixture) change(cells []string, fn func(tx *db.Tx) error) {
	f.t.Helper()
	err := f.d.InTx(context.Background(), func(tx *db.Tx) error {
		seq, err := apidb.LockAggregates(context.Background(), tx)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			return err
		}
		return f.p.Push(context.Background(), tx, "req-1", seq, cells...)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sync(cell string, m wire.HostAggregatesSync) {
	f.t.Helper()
	b, _ := json.Marshal(m)
	env := &wire.Envelope{Sender: cell, Method: wire.MethodHostAggregatesSync, RequestID: "req-s", Payload: b}
	if err := f.d.InTx(context.Background(), func(tx *db.Tx) error { return f.h.Sync(context.Background(), tx, env) }); err != nil {
		f.t.Fatal(err)
	}
}

// TestPushAndSync: a change sends each touched cell a snapshot of its own
// hosts only, at a version that grows; a cell that holds the last one
// gets no answer to its sync; one that missed it, holds none, holds
// another default zone or a version the root never gave (a restored
// database) gets a fresh snapshot newer than what it holds.
func TestPushAndSync(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		var agg apidb.Aggregate
		f.change(nil, func(tx *db.Tx) (err error) {
			agg, err = apidb.CreateAggregate(ctx, tx, "u-1", "fast", "az1", t0)
			return err
		})
		if got := f.out.take(); len(got) != 0 {
			t.Fatalf("an aggregate with no hosts sent %v", got)
		}
		c1, c2 := "api!cell1", "api!cell2"
		f.change([]string{c1, c2}, func(tx *db.Tx) error {
			for _, h := range []apidb.AggregateHost{{Cell: c1, Host: "h1"}, {Cell: c2, Host: "h2"}, {Cell: c1, Host: "h3"}} {
				if err := apidb.AddAggregateHost(ctx, tx, agg.ID, h); err != nil {
					return err
				}
			}
			return nil
		})
		got := f.out.take()
		if len(got) != 2 || got[0].to != c1 || got[1].to != c2 {
			t.Fatalf("sent %+v, want one snapshot to each cell", got)
		}
		first := got[0].payload
		if first.Version <= 0 || first.DefaultZone != "nova" || len(first.Aggregates) != 1 ||
			!slices.Equal(first.Aggregates[0].Hosts, []string{"h1", "h3"}) || first.Aggregates[0].Zone() != "az1" {
			t.Errorf("cell1's snapshot %+v, want aggregate fast (az1) with h1 and h3 only", first)
		}
		if h := got[1].payload.Aggregates[0].Hosts; !slices.Equal(h, []string{"h2"}) {
			t.Errorf("cell2's hosts %v, want [h2]", h)
		}
		if got[1].payload.Version != first.Version {
			t.Errorf("versions %d and %d of one change differ", first.Version, got[1].payload.Version)
		}

		// Up to date: no answer. Behind, or no snapshot: a newer one.
		f.sync(c1, wire.HostAggregatesSync{Version: first.Version, DefaultZone: "nova"})
		if got := f.out.take(); len(got) != 0 {
			t.Errorf("a cell holding the last snapshot got %+v", got)
		}
		for _, tc := range []struct {
			name string
			cell string
			held wire.HostAggregatesSync
		}{
			{"missed", c1, wire.HostAggregatesSync{Version: first.Version - 1, DefaultZone: "nova"}},
			{"never had one", "api!cell3", wire.HostAggregatesSync{DefaultZone: "nova"}},
			{"another default zone", c2, wire.HostAggregatesSync{Version: first.Version, DefaultZone: "old"}},
			{"restored database", c1, wire.HostAggregatesSync{Version: first.Version + 100, DefaultZone: "nova"}},
		} {
			f.sync(tc.cell, tc.held)
			got := f.out.take()
			if len(got) != 1 || got[0].to != tc.cell || got[0].payload.Version <= tc.held.Version {
				t.Errorf("%s: sent %+v, want one snapshot to %s newer than %d", tc.name, got, tc.cell, tc.held.Version)
				continue
			}
			if tc.cell == "api!cell3" && len(got[0].payload.Aggregates) != 0 {
				t.Errorf("%s: a cell with no hosts in aggregates got %+v", tc.name, got[0].payload.Aggregates)
			}
			// Its answer recorded: the same sync at the new version is quiet.
			f.sync(tc.cell, wire.HostAggregatesSync{Version: got[0].payload.Version, DefaultZone: "nova"})
			if again := f.out.take(); len(again) != 0 {
				t.Errorf("%s: synced again at the answer's version, sent %+v", tc.name, again)
			}
		}
	})
}

// TestSnapshotsIntoACell: the snapshots a cell gets, applied in any
// order and repeated, leave it holding the newest; a removed host leaves
// the default zone again.
func TestSnapshotsIntoACell(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		f := newFixture(t, d)
		cell := dbtest.Open(t, "sqlite")
		if err := cell.Migrate(ctx, "compute", celldb.Migrations); err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"h1", "h2"} {
			if err := celldb.RegisterNode(ctx, cell, celldb.Node{Host: h, HypervisorType: "fake", VCPUs: 4, RAMMB: 4096, DiskGB: 100,
				CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, t0); err != nil {
				t.Fatal(err)
			}
		}
		c := "api!cell1"
		var agg apidb.Aggregate
		f.change(nil, func(tx *db.Tx) (err error) {
			agg, err = apidb.CreateAggregate(ctx, tx, "u-1", "fast", "az1", t0)
			return err
		})
		f.change([]string{c}, func(tx *db.Tx) error {
			return apidb.AddAggregateHost(ctx, tx, agg.ID, apidb.AggregateHost{Cell: c, Host: "h1"})
		})
		f.change([]string{c}, func(tx *db.Tx) error {
			return apidb.AddAggregateHost(ctx, tx, agg.ID, apidb.AggregateHost{Cell: c, Host: "h2"})
		})
		f.change([]string{c}, func(tx *db.Tx) error {
			return apidb.RemoveAggregateHost(ctx, tx, agg.ID, apidb.AggregateHost{Cell: c, Host: "h1"})
		})
		msgs := f.out.take()
		if len(msgs) != 3 {
			t.Fatalf("sent %d snapshots, want 3", len(msgs))
		}
		// Newest first, then the older ones and a repeat: ignored.
		for _, i := range []int{2, 0, 1, 2} {
			if err := cell.InTx(ctx, func(tx *db.Tx) error {
				_, err := celldb.ApplyHostAggregates(ctx, tx, &msgs[i].payload)
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		nodes, err := celldb.ListNodes(ctx, cell)
		if err != nil {
			t.Fatal(err)
		}
		zones := map[string]string{}
		for _, n := range nodes {
			zones[n.Host] = n.AvailabilityZone
		}
		if zones["h1"] != "nova" || zones["h2"] != "az1" {
			t.Errorf("zones %v, want h1 nova (removed) and h2 az1", zones)
		}
	})
}
