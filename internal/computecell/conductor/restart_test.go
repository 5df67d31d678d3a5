package conductor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/computecell/network"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

// interrupted is a cell database as a process killed mid-build leaves it:
// uuidN(1) allocating its network and uuidN(2) spawning, both placed on h1
// with a claim there and a fixed IP each (the allocation had committed),
// and uuidN(3) still waiting for a host. All three came in one build that
// parent scheduled here.
func interrupted(t *testing.T) (*db.DB, *network.Service) {
	t.Helper()
	ctx := context.Background()
	d := openCellDB(t)
	if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: "h1", AvailabilityZone: "nova", HypervisorType: "fake", VCPUs: 16,
		RAMMB: 65536, DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	net, err := network.New(network.Config{Cell: cell, DB: d, Sender: &recorder{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := network.Grant(ctx, d, network.SubnetBlocks("private", "sub-1", "10.0.1.0/24")); err != nil {
		t.Fatal(err)
	}
	tasks := []string{celldb.TaskNetworking, celldb.TaskSpawning, celldb.TaskScheduling}
	b := build(len(tasks), 0)
	err = d.InTx(ctx, func(tx *db.Tx) error {
		for i, task := range tasks {
			in := celldb.Instance{InstanceSpec: b.Instances[i], Flavor: small, VMState: celldb.VMBuilding, TaskState: task, Version: 3,
				RequestID: "req-build", Build: celldb.BuildContext{Scheduler: parent, Attempts: 1}}
			if task != celldb.TaskScheduling {
				in.Host = "h1"
			}
			if err := celldb.Insert(ctx, tx, []celldb.Instance{in}, t0); err != nil {
				return err
			}
			if in.Host != "" {
				if err := celldb.Claim(ctx, tx, in.UUID, "h1", small.Need(), t0); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{uuidN(1), uuidN(2)} {
		if _, err := net.Allocate(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	if held := heldAddresses(t, d); len(held) != 2 {
		t.Fatalf("addresses held before the restart: %v, want 2", held)
	}
	return d, net
}

// heldAddresses maps each fixed IP held to its instance.
func heldAddresses(t *testing.T, d *db.DB) map[string]string {
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
		out[a] = u
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// handedBack lists the instances of every build_failed sent, in order.
func handedBack(t *testing.T, r *recorder) [][]string {
	t.Helper()
	var out [][]string
	for _, m := range r.buildFailed(t) {
		var f wire.BuildFailed
		if err := json.Unmarshal(m.Payload, &f); err != nil {
			t.Fatal(err)
		}
		var us []string
		for _, in := range f.Build.Instances {
			us = append(us, in.UUID)
		}
		out = append(out, us)
	}
	return out
}

// startConductor starts a conductor over d, as a restarted process does
// (recover, then the work loop); it is shut down at the end of the test.
func startConductor(t *testing.T, d *db.DB, sent conductor.Sender, sched conductor.HostScheduler, net conductor.Network) *conductor.Conductor {
	t.Helper()
	cd := newConductor(t, d, sent, sched, net)
	runConductor(t, cd)
	return cd
}

func newConductor(t *testing.T, d *db.DB, sent conductor.Sender, sched conductor.HostScheduler, net conductor.Network) *conductor.Conductor {
	t.Helper()
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: sent, Scheduler: sched, Network: net, Compute: fakeCompute{},
		PollInterval: poll, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return cd
}

func runConductor(t *testing.T, cd *conductor.Conductor) {
	t.Helper()
	if err := cd.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })
}

// failingSender refuses every message, as a database that fails the
// commit would: the transaction that sends rolls back.
type failingSender struct{ tries chan struct{} }

func (f failingSender) Send(context.Context, *db.Tx, string, string, string, any) error {
	select {
	case f.tries <- struct{}{}:
	default:
	}
	return errors.New("disk full")
}

// TestRestartHandsBackWithoutLeakingAddresses: a cell restarted after a
// kill mid-build, with no host that has room, hands the build back; the
// instances it hands back hold no fixed IP and no claim afterwards.
//
// Twice and halfway: the first restart dies in the middle of handing back
// (its transaction never commits: here a sender that fails, as a kill
// before the commit would look); the addresses freed before the commit stay
// free, the rows stay, and the next restart hands the build back once.
// Restarting yet again finds nothing to do and sends nothing more. A
// build_failed delivered twice to the parent is the parent's inbox's
// business (applied once per message id); this cell sends one per build.
func TestRestartHandsBackWithoutLeakingAddresses(t *testing.T) {
	ctx := context.Background()
	d, net := interrupted(t)
	noHost := &fakeScheduler{} // every host full: ErrNoValidHost

	// A first restart that dies while handing the build back.
	tries := make(chan struct{}, 1)
	dying := startConductor(t, d, failingSender{tries}, noHost, net)
	<-tries // it reached the hand-back's transaction, which fails
	_ = dying.Shutdown(ctx)
	if n, err := celldb.CountInstances(ctx, d); err != nil || n != 3 {
		t.Fatalf("%d instances after a hand-back that never committed (%v), want all 3 still here", n, err)
	}
	if c := claims(t, d); len(c) != 0 {
		t.Errorf("claims %v after recover, want none", c)
	}

	// The next restart hands the build back.
	sent := &recorder{}
	startConductor(t, d, sent, noHost, net)
	testpoll.Eventually(t, wait, "the build handed back", func() (bool, string) {
		hb := handedBack(t, sent)
		return len(hb) > 0, fmt.Sprintf("build_failed sent: %v", hb)
	})
	hb := handedBack(t, sent)
	if len(hb) != 1 || !slices.Equal(hb[0], []string{uuidN(1), uuidN(2), uuidN(3)}) {
		t.Errorf("handed back %v, want one build of the three instances", hb)
	}
	if n, err := celldb.CountInstances(ctx, d); err != nil || n != 0 {
		t.Errorf("%d instances left in the cell (%v), want 0", n, err)
	}
	if held := heldAddresses(t, d); len(held) != 0 {
		t.Errorf("the cell still holds %v for instances it handed back", held)
	}
	if c := claims(t, d); len(c) != 0 {
		t.Errorf("claims %v after the hand-back, want none", c)
	}
	if n, v := used(t, d); n != 0 || v != 0 {
		t.Errorf("h1 counts %d instances and %d vCPUs, want none", n, v)
	}

	// Restarting again changes nothing and sends nothing.
	again := &recorder{}
	cd := startConductor(t, d, again, noHost, net)
	_ = cd.Shutdown(ctx)
	if len(again.messages()) != 0 || len(sent.buildFailed(t)) != 1 {
		t.Errorf("a restart after the hand-back sent %d messages (and the earlier one %d build_failed), want none more",
			len(again.messages()), len(sent.buildFailed(t)))
	}
	if held := heldAddresses(t, d); len(held) != 0 {
		t.Errorf("after another restart the cell holds %v", held)
	}
	// The addresses are free for the next build.
	if addrs, err := net.Allocate(ctx, uuidN(9), nil); err != nil || len(addrs) != 1 || addrs[0].Addr != "10.0.1.2" {
		t.Errorf("next allocation %v, %v; want the first address back", addrs, err)
	}
}

// TestDeleteDuringHandBackIsADeleteNotAHandBack: an instance recovered to
// scheduling that is deleted while its cell looks for a host (the delete
// lands between the scheduler's answer and the hand-back) is deleted here,
// its address freed; it is not handed back, which would have the parent
// build a server its user deleted. The rest of the build is handed back.
//
// Twice and halfway: a second delete_instances for it changes nothing (it
// is deleted already); a restart after the delete finds nothing to do.
func TestDeleteDuringHandBackIsADeleteNotAHandBack(t *testing.T) {
	ctx := context.Background()
	d, net := interrupted(t)
	sent := &recorder{}
	var cd *conductor.Conductor
	deleted := false
	sched := &fakeScheduler{fn: func(*hostsched.Request) ([]hostsched.Selection, error) {
		if !deleted {
			deleted = true
			err := d.InTx(ctx, func(tx *db.Tx) error {
				return cd.DeleteInstances(ctx, tx, envelope("req-del", &wire.DeleteInstances{UUIDs: []string{uuidN(1)}}))
			})
			if err != nil {
				t.Errorf("DeleteInstances: %v", err)
			}
		}
		return nil, hostsched.ErrNoValidHost
	}}
	cd = newConductor(t, d, sent, sched, net)
	runConductor(t, cd)
	// The recorder keeps a message once its transaction has committed
	// (AfterCommit), a moment after the row reads as deleted: wait for
	// the deleted state too.
	testpoll.Eventually(t, wait, "the delete done and sent up, and the rest handed back", func() (bool, string) {
		in := get(t, d, uuidN(1))
		sts := sent.statesOf(t, uuidN(1))
		sentDeleted := len(sts) > 0 && sts[len(sts)-1].Deleted
		return in.Deleted && sentDeleted && len(sent.buildFailed(t)) > 0,
			fmt.Sprintf("deleted %v (sent %v), task %q; handed back %v", in.Deleted, sentDeleted, in.TaskState, handedBack(t, sent))
	})
	if hb := handedBack(t, sent); len(hb) != 1 || !slices.Equal(hb[0], []string{uuidN(2), uuidN(3)}) {
		t.Errorf("handed back %v, want only the two instances not deleted", hb)
	}
	if held := heldAddresses(t, d); len(held) != 0 {
		t.Errorf("the cell still holds %v", held)
	}
	if c := claims(t, d); len(c) != 0 {
		t.Errorf("claims %v, want none", c)
	}
	sts := sent.statesOf(t, uuidN(1))
	if len(sts) == 0 || !sts[len(sts)-1].Deleted {
		t.Errorf("states sent for the deleted instance %+v, want it deleted last", sts)
	}

	// The delete again: nothing changes.
	before := get(t, d, uuidN(1))
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		return cd.DeleteInstances(ctx, tx, envelope("req-del-again", &wire.DeleteInstances{UUIDs: []string{uuidN(1)}}))
	}); err != nil {
		t.Fatal(err)
	}
	if after := get(t, d, uuidN(1)); after.Version != before.Version || after.TaskState != "" {
		t.Errorf("a second delete changed the instance: %+v", after)
	}
	_ = cd.Shutdown(ctx)
	again := &recorder{}
	cd2 := startConductor(t, d, again, &fakeScheduler{}, net)
	_ = cd2.Shutdown(ctx)
	if len(again.messages()) != 0 {
		t.Errorf("a restart after all this sent %d messages, want none", len(again.messages()))
	}
	if held := heldAddresses(t, d); len(held) != 0 {
		t.Errorf("after a restart the cell holds %v", held)
	}
}

// A restart puts the builds it interrupted back to scheduling, while the
// cells service already applies the messages that came meanwhile: a
// delete that marks one of them between the conductor's list and its
// update is not an error that stops the process (it did: "recover …: is
// in task state deleting, not networking", and the cell stayed down). The
// instance is left deleting, with its claim, for the delete. PostgreSQL
// makes the interleaving certain: the delete's transaction holds the row
// until the recovery waits for it.
func TestRecoverLeavesAnInstanceDeletedMeanwhile(t *testing.T) {
	ctx := context.Background()
	d := migrateCellDB(t, dbtest.Open(t, "postgres"))
	if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: "h1", VCPUs: 16, RAMMB: 65536, DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, time.Now()); err != nil {
		t.Fatal(err)
	}
	b := build(1, 0)
	u := b.Instances[0].UUID
	err := d.InTx(ctx, func(tx *db.Tx) error {
		in := celldb.Instance{InstanceSpec: b.Instances[0], Flavor: small, VMState: celldb.VMBuilding, TaskState: celldb.TaskNetworking,
			Version: 3, RequestID: "req-build", Host: "h1", Build: celldb.BuildContext{Scheduler: parent, Attempts: 1}}
		if err := celldb.Insert(ctx, tx, []celldb.Instance{in}, t0); err != nil {
			return err
		}
		return celldb.Claim(ctx, tx, u, "h1", small.Need(), t0)
	})
	if err != nil {
		t.Fatal(err)
	}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: &recorder{}, Scheduler: &fakeScheduler{}, Network: fakeNetwork{},
		Compute: fakeCompute{}, PollInterval: time.Hour, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// The delete: its transaction marks the instance and waits to commit.
	xid, commit, deleted := make(chan int64, 1), make(chan struct{}), make(chan error, 1)
	go func() {
		deleted <- d.InTx(ctx, func(tx *db.Tx) error {
			var x int64
			if err := tx.QueryRow(ctx, `UPDATE instances SET task_state = 'deleting' WHERE uuid = ? RETURNING txid_current()`, u).Scan(&x); err != nil {
				return err
			}
			xid <- x
			<-commit
			return nil
		})
	}()
	var x int64
	select {
	case x = <-xid:
	case err := <-deleted:
		t.Fatalf("the delete's transaction: %v", err)
	}
	started := make(chan error, 1)
	go func() { started <- cd.Start(ctx) }()
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })
	// The recovery listed the instance as networking and waits for the
	// delete's row lock.
	testpoll.Eventually(t, wait, "the recovery waiting for the delete's transaction", func() (bool, string) {
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'transactionid' AND transactionid::text = ? AND NOT granted`,
			fmt.Sprint(x)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n > 0, fmt.Sprintf("%d waiting", n)
	})
	close(commit)
	if err := <-deleted; err != nil {
		t.Fatalf("the delete's transaction: %v", err)
	}
	if err := <-started; err != nil {
		t.Fatalf("Start: %v; want the instance deleted meanwhile left to its delete", err)
	}
	if in := get(t, d, u); in.TaskState != celldb.TaskDeleting || in.Host != "h1" {
		t.Errorf("instance task %q host %q, want deleting on h1", in.TaskState, in.Host)
	}
	if h := claims(t, d)[u]; h != "h1" {
		t.Errorf("claim on %q, want h1 kept for the delete", h)
	}
}
