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
	"github.com/cellcloud/cellcloud/internal/db/dbtest"
	"github.com/cellcloud/cellcloud/internal/testpoll"
	"github.com/cellcloud/cellcloud/internal/tree/capacity"
)

// Builds that wait for a host together have their first choices claimed in
// one transaction; each build then goes on from its own claims' outcomes:
// a claim refused (its host is full) is placed again, a build that fits
// nowhere is handed back, and the rest start. Six builds: one transaction
// claims the five chosen, one claims build 5 again after its first host
// refused it, one hands build 6 back. Claimed a build at a time, as
// before, it took eight.
func TestBuildsWaitingTogetherAreClaimedInOneTransaction(t *testing.T) {
	ctx := context.Background()
	d := openCellDB(t)
	for _, n := range []celldb.Node{
		{Host: "h1", VCPUs: 16, RAMMB: 65536, DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1},
		{Host: "full", VCPUs: 0, RAMMB: 0, DiskGB: 0, CPURatio: 1, RAMRatio: 1, DiskRatio: 1},
	} {
		if err := celldb.RegisterNode(ctx, d, n, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu     sync.Mutex
		asked        = map[string]int{}
		before int64 = -1
	)
	sched := &fakeScheduler{fn: func(req *hostsched.Request) ([]hostsched.Selection, error) {
		mu.Lock()
		defer mu.Unlock()
		if before < 0 {
			before = d.Commits()
		}
		asked[req.ProjectID]++
		switch {
		case req.ProjectID == "p-6":
			return nil, hostsched.ErrNoValidHost
		case req.ProjectID == "p-5" && asked["p-5"] == 1:
			return []hostsched.Selection{{Host: "full"}}, nil
		}
		return []hostsched.Selection{{Host: "h1"}}, nil
	}}
	sent := &recorder{}
	cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: sent, Scheduler: sched, Network: fakeNetwork{}, Compute: fakeCompute{},
		PollInterval: time.Hour, HealInterval: time.Hour, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	uuids := acceptApart(t, d, cd, 6)
	if err := cd.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })

	testpoll.Eventually(t, wait, "five builds placed on h1 and the sixth handed back", func() (bool, string) {
		cl := claims(t, d)
		onH1 := 0
		for _, u := range uuids[:5] {
			if cl[u] == "h1" {
				onH1++
			}
		}
		failed := sent.buildFailed(t)
		return onH1 == 5 && len(failed) == 1, fmt.Sprintf("%d claims on h1 (%v), %d build_failed", onH1, cl, len(failed))
	})
	if f := sent.buildFailed(t)[0]; f.RequestID != "req-6" {
		t.Errorf("build_failed for %s, want req-6", f.RequestID)
	}
	for _, u := range uuids[:5] {
		if h := get(t, d, u).Host; h != "h1" {
			t.Errorf("instance %s on host %q, want h1", u, h)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["p-5"] != 2 {
		t.Errorf("the scheduler was asked %d times for build 5, want 2 (its first host was full)", asked["p-5"])
	}
	if got := d.Commits() - before; got != 3 {
		t.Errorf("%d transactions committed from the first selection on, want 3: the five first choices claimed together, build 5 claimed again, build 6 handed back", got)
	}
}

// The host scheduler's view counts its own choices, not the claims made
// since it was read: when builds are selected together and claimed after
// (or another worker claims meanwhile), its view can say a host has room
// that it has not. A claim refused there must not be asked for again from
// the same view: the next round leaves out the hosts that refused and has
// the view read again. Here four hosts look empty to the view but are
// full, and the fifth, which the view ranks last, has room for one: the
// build lands there in its second round. Asked from the stale view again,
// it was handed back after three rounds of refusals.
func TestRefusedClaimsAreNotAskedForAgainFromTheSameView(t *testing.T) {
	ctx := context.Background()
	e := newCell(t, cellOpts{hosts: []string{"a1", "a2", "a3", "a4", "b"}})
	// b has room for one small instance, by RAM; the a hosts are empty.
	if _, err := e.db.Exec(ctx, `UPDATE compute_nodes SET used_ram_mb = ram_mb - ? WHERE host = 'b'`, small.RAMMB); err != nil {
		t.Fatal(err)
	}
	// The scheduler reads its view (and counts this choice in it).
	if _, err := e.sched.Select(ctx, &hostsched.Request{Flavor: capacity.Flavor{VCPUs: 1, RAMMB: 1}, NumInstances: 1}); err != nil {
		t.Fatal(err)
	}
	// Then the a hosts fill up behind its back.
	if _, err := e.db.Exec(ctx, `UPDATE compute_nodes SET used_ram_mb = ram_mb WHERE host LIKE 'a%'`); err != nil {
		t.Fatal(err)
	}
	b := build(1, 0)
	accept(t, e.db, e.cd, "req-1", b)
	e.start(t)
	u := b.Instances[0].UUID
	testpoll.Eventually(t, wait, "the build placed on b or handed back", func() (bool, string) {
		h := claims(t, e.db)[u]
		return h != "" || len(e.sent.buildFailed(t)) > 0, fmt.Sprintf("claim on %q", h)
	})
	if f := e.sent.buildFailed(t); len(f) > 0 {
		t.Fatalf("the build was handed back (%s): its later rounds chose the full hosts again", f[0].Payload)
	}
	if h := claims(t, e.db)[u]; h != "b" {
		t.Errorf("claimed on %q, want b, the one host with room", h)
	}
}

// Builds claimed together run without savepoints at first (a claim a full
// host refuses undoes itself); a claim that fails otherwise has the
// transaction run again with a savepoint per claim. Here build 2 leaves
// task state scheduling between its selection and its claim (as a delete
// or another operation would take it): builds 1 and 3 are claimed, and
// build 2 holds no claim and takes nothing from the host, though its
// claim row and the host's room had been written before its own update
// found it gone.
func TestAClaimThatFailsAmongOthersIsUndoneAlone(t *testing.T) {
	dbtest.ForEach(t, func(t *testing.T, d *db.DB) {
		ctx := context.Background()
		d = migrateCellDB(t, d)
		if err := celldb.RegisterNode(ctx, d, celldb.Node{Host: "h1", VCPUs: 16, RAMMB: 65536, DiskGB: 1000, CPURatio: 1, RAMRatio: 1, DiskRatio: 1}, time.Now()); err != nil {
			t.Fatal(err)
		}
		sched := &fakeScheduler{fn: func(req *hostsched.Request) ([]hostsched.Selection, error) {
			if req.ProjectID == "p-2" {
				if _, err := d.Exec(ctx, `UPDATE instances SET task_state = 'rebooting' WHERE uuid = ?`, uuidN(102)); err != nil {
					return nil, err
				}
			}
			return []hostsched.Selection{{Host: "h1"}}, nil
		}}
		cd, err := conductor.New(conductor.Config{Cell: cell, DB: d, Sender: &recorder{}, Scheduler: sched, Network: fakeNetwork{}, Compute: fakeCompute{},
			PollInterval: time.Hour, HealInterval: time.Hour, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		acceptApart(t, d, cd, 3)
		if err := cd.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cd.Shutdown(context.Background()) })
		testpoll.Eventually(t, wait, "builds 1 and 3 claimed on h1", func() (bool, string) {
			cl := claims(t, d)
			return cl[uuidN(101)] == "h1" && cl[uuidN(103)] == "h1", fmt.Sprintf("claims %v", cl)
		})
		if h, ok := claims(t, d)[uuidN(102)]; ok {
			t.Errorf("build 2 holds a claim on %q", h)
		}
		if n, vcpus := used(t, d); n != 2 || vcpus != 2*small.VCPUs {
			t.Errorf("the host counts %d instances and %d vCPUs, want 2 and %d", n, vcpus, 2*small.VCPUs)
		}
		if in := get(t, d, uuidN(102)); in.TaskState != "rebooting" || in.Host != "" {
			t.Errorf("build 2 in task state %q on host %q, want rebooting on none", in.TaskState, in.Host)
		}
	})
}

// acceptApart accepts n builds of one instance each, build i (from 1) in
// request req-i, reservation r-i and project p-i, its instance
// uuidN(100+i), and returns the instances' uuids.
func acceptApart(t *testing.T, d *db.DB, cd *conductor.Conductor, n int) []string {
	t.Helper()
	var uuids []string
	for i := 1; i <= n; i++ {
		b := build(1, 0)
		b.Instances[0].UUID = uuidN(100 + i)
		b.Instances[0].ReservationID = fmt.Sprintf("r-%d", i)
		b.Instances[0].ProjectID = fmt.Sprintf("p-%d", i)
		accept(t, d, cd, fmt.Sprintf("req-%d", i), b)
		uuids = append(uuids, b.Instances[0].UUID)
	}
	return uuids
}
