package conductor_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cellcloud/cellcloud/internal/computecell/celldb"
	"github.com/cellcloud/cellcloud/internal/computecell/conductor"
	"github.com/cellcloud/cellcloud/internal/computecell/hostsched"
	"github.com/cellcloud/cellcloud/internal/db"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/wire"
)

func deleteInstances(t *testing.T, d *db.DB, cd *conductor.Conductor, requestID string, uuids ...string) {
	t.Helper()
	ctx := context.Background()
	if err := d.InTx(ctx, func(tx *db.Tx) error {
		return cd.DeleteInstances(ctx, tx, envelope(requestID, &wire.DeleteInstances{UUIDs: uuids}))
	}); err != nil {
		t.Fatalf("DeleteInstances: %v", err)
	}
}

// TestADeleteBeforeItsBuildDeletesTheBuild: messages can arrive out of
// order (a build relayed or applied again after the delete that followed
// it). A delete_instances for an instance the cell does not have yet is
// kept, twice as once; when the build comes, that instance is deleted as
// it arrives — never placed, nothing claimed or addressed — and the
// others of the build are built. The delete it kept is used once.
func TestADeleteBeforeItsBuildDeletesTheBuild(t *testing.T) {
	e := newCell(t, cellOpts{})
	e.start(t)
	deleteInstances(t, e.db, e.cd, "req-del", uuidN(1))
	deleteInstances(t, e.db, e.cd, "req-del", uuidN(1)) // the message twice
	accept(t, e.db, e.cd, "req-build", build(2, 0))

	testpoll.Eventually(t, wait, "the first instance deleted, the second ACTIVE", func() (bool, string) {
		a, b := get(t, e.db, uuidN(1)), get(t, e.db, uuidN(2))
		return a.Deleted && b.VMState == celldb.VMActive, fmt.Sprintf("%s/%s deleted=%v, %s", a.VMState, a.TaskState, a.Deleted, b.VMState)
	})
	if a := get(t, e.db, uuidN(1)); a.Host != "" {
		t.Errorf("the deleted build was placed on %s", a.Host)
	}
	if c := claims(t, e.db); len(c) != 1 || c[uuidN(2)] == "" {
		t.Errorf("claims %v, want one for the built instance only", c)
	}
	// The delete it kept was used up.
	var left int
	if err := e.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM early_deletes`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d early deletes left (%v), want 0", left, err)
	}
	// The API cell heard of the delete.
	states := e.sent.statesOf(t, uuidN(1))
	if len(states) == 0 || !states[len(states)-1].Deleted {
		t.Errorf("updates sent for the deleted build: %+v", states)
	}
}

// TestAnEarlyDeleteOutlivesARestart: the delete kept before a restart
// still deletes the build that comes after it.
func TestAnEarlyDeleteOutlivesARestart(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	newConductor := func() *conductor.Conductor {
		cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: &recorder{}, Network: fakeNetwork{}, Compute: fakeCompute{},
			Scheduler: &fakeScheduler{}, PollInterval: 100 * time.Millisecond, HealInterval: time.Hour, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return cd
	}
	first := newConductor()
	if err := first.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deleteInstances(t, d, first, "req-del", uuidN(1))
	_ = first.Shutdown(ctx)

	second := newConductor()
	if err := second.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = second.Shutdown(context.Background()) })
	accept(t, d, second, "req-build", build(1, 0))
	testpoll.Eventually(t, wait, "the build deleted", func() (bool, string) {
		in := get(t, d, uuidN(1))
		return in.Deleted, fmt.Sprintf("%s/%s", in.VMState, in.TaskState)
	})
}

// TestAnEarlyDeleteWhoseBuildNeverComesIsDropped: a routing cell hears of
// deletes for builds it passed down, which never come to it; they are
// dropped a day later, and a build with that id afterwards is built.
func TestAnEarlyDeleteWhoseBuildNeverComesIsDropped(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// The scheduler holds the build while the test looks at it.
	asked, release := make(chan struct{}, 1), make(chan struct{})
	sched := &fakeScheduler{fn: func(*hostsched.Request) ([]hostsched.Selection, error) {
		asked <- struct{}{}
		<-release
		return nil, hostsched.ErrNoValidHost
	}}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: &recorder{}, Network: fakeNetwork{}, Compute: fakeCompute{},
		Scheduler: sched, PollInterval: 50 * time.Millisecond, HealInterval: 50 * time.Millisecond, Logger: quiet, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := cd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })
	deleteInstances(t, d, cd, "req-del", uuidN(1))
	mu.Lock()
	now = now.Add(25 * time.Hour)
	mu.Unlock()
	testpoll.Eventually(t, wait, "the early delete dropped", func() (bool, string) {
		var n int
		if err := d.QueryRow(ctx, `SELECT COUNT(*) FROM early_deletes`).Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 0, fmt.Sprintf("%d kept", n)
	})
	accept(t, d, cd, "req-build", build(1, 0))
	<-asked
	in := get(t, d, uuidN(1))
	close(release)
	if in.TaskState != celldb.TaskScheduling {
		t.Errorf("the build after the early delete was dropped is %s/%s, want it scheduled", in.VMState, in.TaskState)
	}
}
