package sgsync_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/apicell/apidb"
	"github.com/cellcloud/cellcloud/internal/apicell/netdb"
	"github.com/cellcloud/cellcloud/internal/apicell/sgsync"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// msg is a message the API cell sent, as the outbox would relay it.
type msg struct {
	to, method string
	payload    json.RawMessage
}

// outbox records the messages of the transactions that committed; while
// down, every send fails (as a broken outbox write would).
type outbox struct {
	mu   sync.Mutex
	down bool
	msgs []msg
}

func (o *outbox) Send(_ context.Context, tx *db.Tx, to, method, _ string, payload any) error {
	o.mu.Lock()
	down := o.down
	o.mu.Unlock()
	if down {
		return errors.New("outbox write failed")
	}
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	tx.AfterCommit(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.msgs = append(o.msgs, msg{to, method, b})
	})
	return nil
}

// take returns and forgets the messages sent so far.
func (o *outbox) take() []msg {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := o.msgs
	o.msgs = nil
	return out
}

func (o *outbox) setDown(v bool) {
	o.mu.Lock()
	o.down = v
	o.mu.Unlock()
}

// fixture is an API cell's database with a network and three groups of
// project p: A (a default group: its ingress rules name A itself), B (an
// ingress rule names C as its remote group) and C; a port in A and one in
// C, each with one address. The member log starts empty.
type fixture struct {
	t       *testing.T
	d       *db.DB
	out     *outbox
	h       *sgsync.Handlers
	net     string
	a, b, c string
	portA   string
	portC   string
	addrA   string
	addrC   string
}

func newFixture(t *testing.T, d *db.DB) *fixture {
	t.Helper()
	ctx := context.Background()
	for _, m := range []struct {
		set string
		ms  []db.Migration
	}{{"api", apidb.Migrations}, {netdb.MigrationSet, netdb.Migrations}} {
		if err := d.Migrate(ctx, m.set, m.ms); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{t: t, d: d, out: &outbox{}}
	f.h = &sgsync.Handlers{Sender: f.out, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	err := d.InTx(ctx, func(tx *db.Tx) error {
		n := &netdb.Network{Name: "net", ProjectID: "p", AdminStateUp: true}
		if err := netdb.CreateNetwork(ctx, tx, n, t0); err != nil {
			return err
		}
		f.net = n.ID
		if _, err := netdb.CreateSubnet(ctx, tx, netdb.SubnetSpec{NetworkID: n.ID, ProjectID: "p", IPVersion: 4, CIDR: "10.9.0.0/24"}, t0); err != nil {
			return err
		}
		a := &netdb.SecurityGroup{Name: "default", ProjectID: "p", Stateful: true, IsDefault: true}
		b := &netdb.SecurityGroup{Name: "b", ProjectID: "p", Stateful: true}
		c := &netdb.SecurityGroup{Name: "c", ProjectID: "p", Stateful: true}
		for _, g := range []*netdb.SecurityGroup{a, b, c} {
			if err := netdb.CreateSecurityGroup(ctx, tx, g, t0); err != nil {
				return err
			}
		}
		f.a, f.b, f.c = a.ID, b.ID, c.ID
		if err := netdb.CreateSecurityGroupRule(ctx, tx, &netdb.SecurityGroupRule{SecurityGroupID: b.ID, ProjectID: "p", Direction: "ingress",
			EtherType: "IPv4", Protocol: "tcp", PortRangeMin: ptr(22), PortRangeMax: ptr(22), RemoteGroupID: c.ID}, t0); err != nil {
			return err
		}
		pa, err := netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: n.ID, ProjectID: "p", AdminStateUp: true, PortSecurity: true,
			SecurityGroups: []string{a.ID}}}, t0)
		if err != nil {
			return err
		}
		pc, err := netdb.CreatePort(ctx, tx, &netdb.NewPort{Port: netdb.Port{NetworkID: n.ID, ProjectID: "p", AdminStateUp: true, PortSecurity: true,
			SecurityGroups: []string{c.ID}}}, t0)
		if err != nil {
			return err
		}
		f.portA, f.addrA, f.portC, f.addrC = pa.ID, pa.FixedIPs[0].IPAddress, pc.ID, pc.FixedIPs[0].IPAddress
		_, err = tx.Exec(ctx, `DELETE FROM security_group_member_changes`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ptr(v int) *int { return &v }

// sync runs the handler of security_groups_sync from cell and returns
// the security_groups it answered (nil: none), and any other message.
func (f *fixture) sync(cell string, m wire.SecurityGroupsSync) *wire.SecurityGroups {
	f.t.Helper()
	ctx := context.Background()
	b, _ := json.Marshal(m)
	env := &wire.Envelope{Method: wire.MethodSecurityGroupsSync, Sender: cell, RequestID: "req-sync", Payload: b}
	if err := f.d.InTx(ctx, func(tx *db.Tx) error { return f.h.Sync(ctx, tx, env) }); err != nil {
		f.t.Fatalf("sync from %s: %v", cell, err)
	}
	msgs := f.out.take()
	if len(msgs) == 0 {
		return nil
	}
	if len(msgs) > 1 || msgs[0].to != cell || msgs[0].method != wire.MethodSecurityGroups {
		f.t.Fatalf("sync from %s answered %+v, want one security_groups to it", cell, msgs)
	}
	var sg wire.SecurityGroups
	if err := json.Unmarshal(msgs[0].payload, &sg); err != nil {
		f.t.Fatal(err)
	}
	return &sg
}

// holds are the groups cell holds at the root.
func (f *fixture) holds(cell string) []string {
	f.t.Helper()
	ids, err := netdb.CellHolds(context.Background(), f.d, cell)
	if err != nil {
		f.t.Fatal(err)
	}
	return ids
}

// holderRows counts the holder rows of a cell (a repeat adds none).
func (f *fixture) holderRows(cell string) int {
	f.t.Helper()
	var n int
	if err := f.d.QueryRow(context.Background(), `SELECT COUNT(*) FROM security_group_holders WHERE cell = ?`, cell).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// logRows counts the member log's rows.
func (f *fixture) logRows() int {
	f.t.Helper()
	var n int
	if err := f.d.QueryRow(context.Background(), `SELECT COUNT(*) FROM security_group_member_changes`).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// state is the group's state at the root.
func (f *fixture) state(id string) *netdb.GroupState {
	f.t.Helper()
	st, err := netdb.GroupStates(context.Background(), f.d, []string{id})
	if err != nil || st[id] == nil {
		f.t.Fatalf("state of %s: %v", id, err)
	}
	return st[id]
}

// held is what a cell that applied a state holds of it.
func held(g *netdb.GroupState) wire.HeldGroup {
	return wire.HeldGroup{ID: g.ID, Revision: g.RevisionNumber, MemberSeq: g.MemberSeq}
}

func groupIDs(sg *wire.SecurityGroups) []string {
	var out []string
	for _, g := range sg.Groups {
		out = append(out, g.ID)
	}
	slices.Sort(out)
	return out
}

func find(sg *wire.SecurityGroups, id string) *wire.SecurityGroupState {
	for i := range sg.Groups {
		if sg.Groups[i].ID == id {
			return &sg.Groups[i]
		}
	}
	return nil
}

func sorted(ss ...string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
